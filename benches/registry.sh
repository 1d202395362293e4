#!/usr/bin/env bash
# registry.sh — push and pull of a ~200 MB, 4-layer image to a loopback docker-registry:
# ipush/ipull against `skopeo copy`, cold and warm; medians of N runs and ratios. Then the
# same bytes as one 200 MiB layer, cold: one stream has no other layer to overlap with,
# so it shows the cost per byte where the 4-layer case also shows the cost per layer.
# Not a test: run by hand (as any user) after `cargo build --release -p ipush -p ipull`.
#
#   benches/registry.sh [RUNS]        (default 5)
#   IMAGO_BIN_DIR=target/debug benches/registry.sh   to bench another build
#
# cold push: the registry's storage is wiped before each run (no blob-descriptor cache is
#            configured, so that is safe); warm push: every blob is already there.
# cold pull: an empty store / OCI dir each run; warm pull: everything already present.
# Each case also prints the median CPU per run of the client and of the registry: on a
# busy machine they move less than wall time does.
# Work files live in $IMAGO_TEST_TMP (a tmpfs in scripts/test.sh), else /var/tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BIN=${IMAGO_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
for t in docker-registry skopeo sha256sum gzip openssl; do
  command -v "$t" >/dev/null || { echo "registry.sh: $t is missing" >&2; exit 1; }
done
for b in ipush ipull; do
  [ -x "$BIN/$b" ] || { echo "registry.sh: $BIN/$b not built (cargo build --release -p ipush -p ipull)" >&2; exit 1; }
done
W=$(mktemp -d "${IMAGO_TEST_TMP:-/var/tmp}/imago-regbench.XXXXXX")
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# ---- the images, in one OCI layout: "big", 4 layers of 50 MiB, and "one", 1 layer of
# 200 MiB; incompressible (seeded, deterministic) data, gzip -1
SRC=$W/src; mkdir -p "$SRC/blobs/sha256"
manifests=
make_image() { # NAME LAYERS MIB-PER-LAYER SEED-PREFIX
  local name=$1 n=$2 mib=$3 seed=$4 layers_json= diffids= i d diff dig size config cdig csize manifest mdig msize
  for i in $(seq "$n"); do
    d=$W/l$i; mkdir -p "$d/data"
    # openssl dies of SIGPIPE when head has enough: that is the plan, not an error.
    { openssl enc -aes-128-ctr -nosalt -pass "pass:imago-bench-$seed$i" -pbkdf2 </dev/zero 2>/dev/null || true; } |
      head -c $((mib * 1024 * 1024)) >"$d/data/blob$i"
    tar --numeric-owner --owner=0 --group=0 --mtime='2024-01-01 00:00:00Z' -C "$d" -cf "$d/layer.tar" data
    diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
    gzip -1 -n -c "$d/layer.tar" >"$d/layer.tar.gz"
    dig=$(sha256sum "$d/layer.tar.gz" | cut -d' ' -f1); size=$(stat -c %s "$d/layer.tar.gz")
    mv "$d/layer.tar.gz" "$SRC/blobs/sha256/$dig"; rm -rf "$d"
    layers_json="$layers_json${layers_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dig\",\"size\":$size}"
    diffids="$diffids${diffids:+,}\"sha256:$diff\""
  done
  config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diffids]}}"
  printf '%s' "$config" >"$W/config"; cdig=$(sha256sum "$W/config" | cut -d' ' -f1); csize=$(stat -c %s "$W/config")
  mv "$W/config" "$SRC/blobs/sha256/$cdig"
  manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":$csize},\"layers\":[$layers_json]}"
  printf '%s' "$manifest" >"$W/manifest"; mdig=$(sha256sum "$W/manifest" | cut -d' ' -f1); msize=$(stat -c %s "$W/manifest")
  mv "$W/manifest" "$SRC/blobs/sha256/$mdig"
  manifests="$manifests${manifests:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mdig\",\"size\":$msize,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$name\"}}"
}
make_image big 4 50 ""
make_image one 1 200 one-
printf '{"imageLayoutVersion":"1.0.0"}' >"$SRC/oci-layout"
printf '{"schemaVersion":2,"manifests":[%s]}' "$manifests" >"$SRC/index.json"
total=$(du -sm "$SRC/blobs" | cut -f1)
echo "images: big (4 x 50 MiB layers), one (1 x 200 MiB layer); ${total} MiB in $SRC"

# ---- the registry
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$W/reg.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/regdata
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$W/reg.yml" >"$W/reg.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
R=127.0.0.1:$PORT/bench/big:1
R1=127.0.0.1:$PORT/bench/one:1

# CPU, which a busy machine disturbs less than wall time: the client's (user + sys, from
# the shell's `times`) and the registry's (its /proc stat) over each run, in ms.
TICK_MS=$((1000 / $(getconf CLK_TCK)))
registry_cpu() { awk -v t="$TICK_MS" '{print ($14 + $15) * t}' "/proc/$REG_PID/stat"; }
# One run of a command: "WALL CLIENT-CPU REGISTRY-CPU", in ms. `times` (a builtin: no
# child of its own) before and after gives what the command's processes used.
ms() {
  local s e r0 r1 t=$W/times.$BASHPID
  r0=$(registry_cpu); s=$(date +%s%N)
  times >"$t.0"
  "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
  times >"$t.1"
  e=$(date +%s%N); r1=$(registry_cpu)
  echo "$(((e - s) / 1000000)) $(children_cpu "$t.1" "$t.0") $((r1 - r0))"
  rm -f "$t.0" "$t.1"
}
# The children's user + sys of the second `times` output less the first's, in ms.
children_cpu() {
  awk 'FNR == 2 { split($0, f, /[ms]+ */); c[FILENAME == ARGV[1]] = f[1] * 60 + f[2] + f[3] * 60 + f[4] }
    END { print int(1000 * (c[1] - c[0]) + 0.5) }' "$1" "$2"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
column() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | median; }
wipe_registry() { rm -rf "$W/regdata/docker"; rm -f "$SRC/imago/registry/registry-blob-sources" "$SRC/registry-blob-sources"; }

run_case() { # name prepare-fn imago-cmd... -- skopeo-cmd...
  local name=$1 prep=$2; shift 2
  local icmd=() scmd=() seen=0
  for a in "$@"; do if [ "$a" = -- ]; then seen=1; elif [ $seen = 0 ]; then icmd+=("$a"); else scmd+=("$a"); fi; done
  local it=() st=()
  if [ "$prep" = nothing ]; then # warm: one unmeasured run of each first
    "${icmd[@]}" >/dev/null 2>&1; "${scmd[@]}" >/dev/null 2>&1
  fi
  for _ in $(seq "$RUNS"); do
    $prep; it+=("$(ms "${icmd[@]}")")
    $prep; st+=("$(ms "${scmd[@]}")")
  done
  local im sm
  im=$(column 1 "${it[@]}"); sm=$(column 1 "${st[@]}")
  printf '%-16s imago %6d ms   skopeo %6d ms   ratio %.2f   (runs: imago %s | skopeo %s)\n' \
    "$name" "$im" "$sm" "$(echo "$im $sm" | awk '{print ($2>0)?$1/$2:0}')" \
    "$(column_list 1 "${it[@]}")" "$(column_list 1 "${st[@]}")"
  printf '%-16s   cpu ms, median (client + registry): imago %d + %d   skopeo %d + %d\n' "" \
    "$(column 2 "${it[@]}")" "$(column 3 "${it[@]}")" "$(column 2 "${st[@]}")" "$(column 3 "${st[@]}")"
}
column_list() { printf '%s\n' "${@:2}" | awk -v c="$1" '{print $c}' | paste -sd' '; }

nothing() { :; }
fresh_dst() { rm -rf "$W/dst" "$W/sdst"; }

echo "runs per case: $RUNS; binaries: $BIN"
run_case "push cold" wipe_registry "$BIN/ipush" -q --root "$SRC" big "$R" -- \
  skopeo copy -q --dest-tls-verify=false "oci:$SRC:big" "docker://$R"
run_case "push warm" nothing "$BIN/ipush" -q --root "$SRC" big "$R" -- \
  skopeo copy -q --dest-tls-verify=false "oci:$SRC:big" "docker://$R"
run_case "pull cold" fresh_dst "$BIN/ipull" -q --root "$W/dst" "$R" -- \
  skopeo copy -q --src-tls-verify=false "docker://$R" "oci:$W/sdst:big"
run_case "pull warm" nothing "$BIN/ipull" -q --root "$W/dst" "$R" -- \
  skopeo copy -q --src-tls-verify=false "docker://$R" "oci:$W/sdst:big"
run_case "push cold 1x200" wipe_registry "$BIN/ipush" -q --root "$SRC" one "$R1" -- \
  skopeo copy -q --dest-tls-verify=false "oci:$SRC:one" "docker://$R1"
run_case "pull cold 1x200" fresh_dst "$BIN/ipull" -q --root "$W/dst" "$R1" -- \
  skopeo copy -q --src-tls-verify=false "docker://$R1" "oci:$W/sdst:one"
