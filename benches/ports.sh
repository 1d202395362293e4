#!/usr/bin/env bash
# ports.sh — bytes/s through a published port: `irun -p` (the built-in forwarder, private
# network) against the same server reached directly on loopback (`irun --network host`)
# and against rootless `podman run -p`; rootless as BENCH_USER (default imago-sub). One
# run: the three servers run side by side and REPS rounds download from each in turn
# (best taken). Not a test.
#
#   sudo benches/ports.sh                  # needs root only to prepare dirs and switch user
#   BENCH_USER=imago-nosub SIZE_MB=512 REPS=9 sudo -E benches/ports.sh
#
# The server: busybox httpd in the container serving a SIZE_MB file (zeros, made inside
# the container); the client: curl on the host, to /dev/null. Prints MB/s per path and
# the ratios (goal: irun -p ≥ 0.8× direct). All state lives under $IMAGO_TEST_TMP.
set -euo pipefail
cd "$(dirname "$0")/.."; REPO=$PWD
. benches/lib.sh
bench_user ports.sh
SIZE_MB=${SIZE_MB:-256}; REPS=${REPS:-5}
BIN=${IMAGO_BIN_DIR:-$REPO/target/release}
for b in irun iimage; do
  [ -x "$BIN/$b" ] || { echo "ports.sh: $BIN/$b not built: cargo build --release -p irun -p iimage" >&2; exit 1; }
done
for t in curl podman ss; do command -v $t >/dev/null || { echo "ports.sh: $t missing" >&2; exit 1; }; done
bench_workdir ports-bench
BG=()
stop_all() {
  local id pid
  for id in direct irun podman; do
    pid=$(cat "$W/$id.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -f "$W/$id.pid"
  done
  # podman's SIGTERM reaches httpd as the container's pid 1, which ignores it: remove it
  asu podman rm -f -t 0 imago-ports-bench >/dev/null 2>&1 || true
  for pid in "${BG[@]}"; do wait "$pid" 2>/dev/null || true; done
}
cleanup() {
  stop_all
  podman_end_pause
}
trap cleanup EXIT

# A port nothing listens on (tcp).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}
SERVE="mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count=$SIZE_MB 2>/dev/null && exec httpd -f -p 8080 -h /www"

log "fixtures in $W (user $U)"
cp "$BIN/irun" "$BIN/iimage" "$W/"; chmod 755 "$W/irun" "$W/iimage"
"$REPO/scripts/make-busybox-rootfs.sh" "$W/busybox.tar" >"$W/logs/rootfs.log" 2>&1
chown "$U:$GID_" "$W/busybox.tar"
asu "$W/iimage" import --change 'CMD ["sh"]' "$W/busybox.tar" bb:latest >"$W/logs/import.log" 2>&1
podman_conf
PODMAN_OK=1
asu podman import --change 'CMD ["sh"]' "$W/busybox.tar" localhost/bb:latest >"$W/logs/podman-import.log" 2>&1 || PODMAN_OK=0

# Wait until the whole file comes through port $1 (the server makes it first).
ready() {
  local t=0
  until [ "$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$1/big" 2>/dev/null)" = $((SIZE_MB * 1048576)) ]; do
    t=$((t + 1)); [ $t -gt 300 ] && return 1; sleep 0.2
  done
}
declare -A MBS WHAT PORT
IDS=()
serve() { # serve ID "DESCRIPTION" PORT -- COMMAND... (a server in the foreground)
  local id=$1 desc=$2 port=$3; shift 4
  log "$id: $*"
  # the server's own pid (irun, podman) in a pid file, for the SIGTERM at the end
  asu sh -c 'echo $$ > "$0"; exec "$@"' "$W/$id.pid" "$@" >"$W/logs/$id.log" 2>&1 &
  BG+=($!)
  WHAT[$id]=$desc; PORT[$id]=$port; MBS[$id]=0
  if ready "$port"; then IDS+=("$id"); else MBS[$id]="n/a"; WHAT[$id]+=" [failed: see $W/logs/$id.log]"; fi
}

P=$(free_port)
serve direct "irun --network host: httpd reached directly on loopback" "$P" -- \
  "$W/irun" --rm --network host bb sh -c "${SERVE/8080/$P}"
P=$(free_port)
serve irun "irun -p PORT:8080 (private network, built-in forwarder)" "$P" -- \
  "$W/irun" --rm -p "$P:8080" bb sh -c "$SERVE"
if [ $PODMAN_OK = 1 ]; then
  P=$(free_port)
  serve podman "podman run -p PORT:8080 (rootless, its default port handler)" "$P" -- \
    podman run --rm --name imago-ports-bench -p "$P:8080" localhost/bb:latest sh -c "$SERVE"
else
  WHAT[podman]="podman run -p [n/a: import failed, see $W/logs/podman-import.log]"; MBS[podman]=n/a
fi
# Rounds over the three paths, best MiB/s of each: load from elsewhere on the machine
# hits them alike.
log "downloads: $REPS rounds"
for _ in $(seq "$REPS"); do
  for id in "${IDS[@]}"; do
    s=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:${PORT[$id]}/big")
    MBS[$id]=$(awk -v a="${MBS[$id]}" -v b="$s" 'BEGIN { b /= 1048576; printf "%.0f", (b > a) ? b : a }')
  done
done
stop_all

printf '\nbytes/s through a published port, user %s, kernel %s, %s MiB file, best of %s rounds\n' \
  "$U" "$(uname -r)" "$SIZE_MB" "$REPS"
printf '%-8s %8s  %s\n' id "MiB/s" what
for id in direct irun podman; do printf '%-8s %8s  %s\n' "$id" "${MBS[$id]}" "${WHAT[$id]}"; done
ratio() { awk -v a="${MBS[$1]}" -v b="${MBS[$2]}" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\nirun -p / direct: %s (goal ≥ 0.80)\npodman -p / direct: %s\nirun -p / podman -p: %s\n' \
  "$(ratio irun direct)" "$(ratio podman direct)" "$(ratio irun podman)"
