#!/usr/bin/env bash
# build-static.sh [DIR] — build imago's programs as static executables (no shared library:
# no libc.so, no libssl; TLS is rustls) and copy them into DIR (default dist/static/).
# Prints where they are. Each is checked: no ELF interpreter and no NEEDED library.
#
# The target is glibc with `crt-static` (x86_64-unknown-linux-gnu) unless
# IMAGO_STATIC_TARGET names another, e.g. x86_64-unknown-linux-musl once its std is
# installed (`rustup target add x86_64-unknown-linux-musl`; Debian's musl-tools for the
# C parts). `--target` keeps build scripts and proc macros dynamic: only the programs are
# static. IMAGO_STATIC_PROFILE picks the cargo profile (default release). A static glibc
# still loads NSS modules for host-name lookups: docs/hpc.md ("Static binaries") says
# what that means on a node with another glibc.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every program: one directory under bins/ each.
mapfile -t PROGRAMS < <(ls bins)
OUT="${1:-dist/static}"
TARGET="${IMAGO_STATIC_TARGET:-x86_64-unknown-linux-gnu}"
PROFILE="${IMAGO_STATIC_PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

# RUSTFLAGS from the caller are kept; crt-static applies to the target only (--target).
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
cargo build --locked --profile "$PROFILE" --target "$TARGET" \
  $(printf -- '-p %s ' "${PROGRAMS[@]}")

# cargo names the dev profile's directory "debug".
dir="$PROFILE"
[ "$dir" = dev ] && dir=debug
built="$TARGET_DIR/$TARGET/$dir"
mkdir -p "$OUT"
for p in "${PROGRAMS[@]}"; do
  # A dynamic executable has a program interpreter (ld.so) or NEEDED libraries.
  if LC_ALL=C readelf -ld "$built/$p" | grep -qE 'Requesting program interpreter|\(NEEDED\)'; then
    echo "build-static.sh: $built/$p is not static:" >&2
    LC_ALL=C readelf -ld "$built/$p" | grep -E 'interpreter|NEEDED' >&2
    exit 1
  fi
  install -m 0755 "$built/$p" "$OUT/$p"
done
case "$OUT" in /*) where="$OUT" ;; *) where="$(pwd)/$OUT" ;; esac
echo "static ${PROGRAMS[*]} ($TARGET, $PROFILE) in $where"
