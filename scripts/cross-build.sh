#!/usr/bin/env bash
# cross-build.sh [--setup] [--check] [--smoke] [TARGET...] — build imago's programs for
# other architectures and print a table: target, result, seconds.
#
# Default targets: aarch64, powerpc64le, riscv64gc and s390x (-unknown-linux-gnu); x86_64
# is the main build. The toolchain is Debian's, not rustup's: rustc-web/cargo-web (1.96,
# bookworm-security) with rust-web-src, whose std sources match that compiler, so
# `-Zbuild-std` (RUSTC_BOOTSTRAP=1) builds std for every target alike — riscv64 has no
# Debian std package on bookworm. The linker and the C parts (ring, zstd) use Debian's
# cross gcc. Everything goes to CROSS_TARGET_DIR (default /var/tmp/cross-target), never
# to the main target/ directory; logs to CROSS_TARGET_DIR/logs/TARGET.log.
#
#   --setup  install the Debian packages first (as root)
#   --check  `cargo check` only (no codegen, no link); not run by CI: about 15 minutes
#            for the four targets on 2 cores
#   --smoke  run each built `irun --version` under qemu-user (qemu-ARCH -L /usr/TRIPLE)
#
# A target whose link fails although its code compiles is reported as "check ok (link
# failed)": the cause is then outside our code (a C library, the cross linker). The exit
# status is 1 when any target fails to compile or its smoke run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

setup=0 mode=build smoke=0 targets=()
for a in "$@"; do
  case "$a" in
    --setup) setup=1 ;;
    --check) mode=check ;;
    --smoke) smoke=1 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "cross-build.sh: unknown option $a" >&2; exit 2 ;;
    *) targets+=("$a") ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-gnu powerpc64le-unknown-linux-gnu
                                     riscv64gc-unknown-linux-gnu s390x-unknown-linux-gnu)

# The GNU triple of Debian's cross tools and qemu's name for a Rust target.
gnu_of() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo aarch64-linux-gnu ;;
    powerpc64le-unknown-linux-gnu) echo powerpc64le-linux-gnu ;;
    riscv64gc-unknown-linux-gnu) echo riscv64-linux-gnu ;;
    s390x-unknown-linux-gnu) echo s390x-linux-gnu ;;
    *) return 1 ;;
  esac
}
deb_of() {
  case "$1" in
    aarch64-*) echo arm64 ;; powerpc64le-*) echo ppc64el ;;
    riscv64gc-*) echo riscv64 ;; s390x-*) echo s390x ;;
  esac
}
qemu_of() {
  case "$1" in
    aarch64-*) echo qemu-aarch64 ;; powerpc64le-*) echo qemu-ppc64le ;;
    riscv64gc-*) echo qemu-riscv64 ;; s390x-*) echo qemu-s390x ;;
  esac
}
for t in "${targets[@]}"; do
  gnu_of "$t" >/dev/null || { echo "cross-build.sh: unsupported target $t" >&2; exit 2; }
done

if [ "$setup" = 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "cross-build.sh --setup: run as root" >&2; exit 1; }
  pkgs=(rustc-web cargo-web rust-web-src qemu-user)
  # The cross gcc only recommends its C library (crt files, libc.so to link against).
  for t in "${targets[@]}"; do pkgs+=("gcc-$(gnu_of "$t")" "libc6-dev-$(deb_of "$t")-cross"); done
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# Debian's compiler, called by path: rustup's proxies come first on PATH and have no std
# for these targets and no rust-src.
RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo
for f in "$RUSTC" "$CARGO" /usr/lib/rustlib/src/rust/library/Cargo.lock; do
  [ -e "$f" ] || { echo "cross-build.sh: $f missing: run with --setup (Debian: rustc-web cargo-web rust-web-src)" >&2; exit 1; }
done
export RUSTC RUSTC_BOOTSTRAP=1
unset RUSTUP_TOOLCHAIN RUSTFLAGS
TARGET_DIR="${CROSS_TARGET_DIR:-/var/tmp/cross-target}"
export CARGO_TARGET_DIR="$TARGET_DIR"
mkdir -p "$TARGET_DIR/logs"

mapfile -t PROGRAMS < <(ls bins)
PKGS=()
for p in "${PROGRAMS[@]}"; do PKGS+=(-p "$p"); done

# cargo check/build of every program for $1; output to the target's log.
cargo_for() {
  local sub=$1 t=$2 gnu env_t
  gnu=$(gnu_of "$t")
  env_t=$(echo "$t" | tr 'a-z-' 'A-Z_')
  env "CARGO_TARGET_${env_t}_LINKER=$gnu-gcc" "CC_${t//-/_}=$gnu-gcc" "AR_${t//-/_}=$gnu-ar" \
    "$CARGO" "$sub" --locked --keep-going -Zbuild-std --target "$t" "${PKGS[@]}" \
    >>"$TARGET_DIR/logs/$t.log" 2>&1
}

results=() failed=0
for t in "${targets[@]}"; do
  if ! command -v "$(gnu_of "$t")-gcc" >/dev/null; then
    results+=("$t|no $(gnu_of "$t")-gcc (--setup)|0"); failed=1; continue
  fi
  : >"$TARGET_DIR/logs/$t.log"
  start=$SECONDS
  if [ "$mode" = check ]; then
    if cargo_for check "$t"; then r="check ok"; else r="FAIL (check)"; failed=1; fi
  elif cargo_for build "$t"; then
    r="build ok"
    if [ "$smoke" = 1 ]; then
      q=$(qemu_of "$t")
      if out=$("$q" -L "/usr/$(gnu_of "$t")" "$TARGET_DIR/$t/debug/irun" --version 2>&1); then
        r="$r, qemu: $out"
      else
        r="$r, qemu FAIL: $out"; failed=1
      fi
    fi
  elif cargo_for check "$t"; then
    r="check ok (link failed)"
  else
    r="FAIL"; failed=1
  fi
  results+=("$t|$r|$((SECONDS - start))")
done

# Incremental state is for edit-compile loops, not for cross builds: drop it.
rm -rf "$TARGET_DIR"/*/debug/incremental
printf '%-32s %-44s %s\n' target result seconds
for row in "${results[@]}"; do
  IFS='|' read -r t r s <<<"$row"
  printf '%-32s %-44s %s\n' "$t" "$r" "$s"
done
[ "$failed" = 0 ] || echo "cross-build.sh: logs in $TARGET_DIR/logs/" >&2
exit "$failed"
