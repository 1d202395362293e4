#!/usr/bin/env bash
# irun-startup.sh — container start+exit latency of `irun --rm busybox true` against the
# namespace floor and the peers, measured in one run with hyperfine, rootless as BENCH_USER
# (default imago-sub: has a subuid range, like most workstations). Not a test.
#
#   sudo benches/irun-startup.sh            # needs root only to prepare dirs and switch user
#   BENCH_USER=imago-nosub RUNS=100 IRUN=target/release/irun sudo -E benches/irun-startup.sh
#
# Prints a table: median, mean ± stddev, and the ratio of each median to two floors:
# `unshare -Urmpf --mount-proc chroot ROOTFS /bin/true` (x floor: the kernel's part, the
# map written directly, one id), and the same with `--map-auto --map-root-user` (x map:
# the map written by newuidmap/newgidmap from the user's subuid range, as irun must for
# such a user; n/a for a user without one). A peer that cannot run here is reported as
# n/a with the reason (its log stays in $W/logs). All state lives under
# $IMAGO_TEST_TMP (a tmpfs in our setup; the root ext4 of our VMs is slow at small writes).
set -euo pipefail
cd "$(dirname "$0")/.."; REPO=$PWD
. benches/lib.sh
bench_user irun-startup
RUNS=${RUNS:-200}; PEER_RUNS=${PEER_RUNS:-30}
IRUN=${IRUN:-$REPO/target/release/irun}
[ -x "$IRUN" ] || { echo "irun-startup: $IRUN not built: cargo build --release -p irun (or IRUN=path)" >&2; exit 1; }
for t in hyperfine skopeo umoci jq; do command -v $t >/dev/null || { echo "irun-startup: $t missing" >&2; exit 1; }; done
bench_workdir irun-bench

log "fixtures in $W (user $U)"
cp "$IRUN" "$W/irun"; chmod 755 "$W/irun"
"$REPO/scripts/make-busybox-rootfs.sh" "$W/busybox.tar"
install -d "$W/rootfs"; tar -C "$W/rootfs" -xf "$W/busybox.tar"   # root-owned, read-only for $U
chmod 755 "$W/rootfs"
# irun --rootfs needs a root its container's uid 0 owns (files of unmapped ids cannot be
# shadowed in the upper dir): a copy owned by the user.
cp -a "$W/rootfs" "$W/rootfs-user"; chown -R "$U:$GID_" "$W/rootfs-user"
# OCI layout (umoci), then into imago's store (an OCI layout itself) and podman's storage.
( umoci init --layout "$W/oci" && umoci new --image "$W/oci:latest" &&
  umoci raw add-layer --image "$W/oci:latest" "$W/busybox.tar" &&
  umoci config --image "$W/oci:latest" --config.cmd sh --os linux --architecture amd64 ) >"$W/logs/umoci.log" 2>&1
chmod -R a+rX "$W/oci"
asu skopeo copy -q "oci:$W/oci:latest" "oci:$W/store:busybox" >"$W/logs/skopeo.log" 2>&1
asu "$W/irun" --rm busybox true || { echo "irun-startup: irun cannot run busybox here (see above)" >&2; exit 1; }

podman_conf
PODMAN_OK=1
asu skopeo copy -q "oci:$W/oci:latest" containers-storage:localhost/busybox:latest >"$W/logs/podman-load.log" 2>&1 || PODMAN_OK=0
# crun: a rootless bundle on a copy of the rootfs, single mapping (crun spec --rootless)
CRUN_OK=1
install -d -o "$U" -g "$GID_" "$W/bundle"; cp -a "$W/rootfs" "$W/bundle/rootfs"; chown -R "$U:$GID_" "$W/bundle"
( cd "$W/bundle" && runuser -u "$U" -- "${ENVU[@]}" crun spec --rootless ) >"$W/logs/crun-spec.log" 2>&1 || CRUN_OK=0
if [ $CRUN_OK = 1 ]; then
  jq '.process.args=["true"] | .process.terminal=false' "$W/bundle/config.json" > "$W/bundle/c.json" && mv "$W/bundle/c.json" "$W/bundle/config.json"
  chown "$U:$GID_" "$W/bundle/config.json"
fi

R=$W/results; install -d -o "$U" -g "$GID_" "$R"
declare -a IDS DESCS
bench() { # bench ID "DESCRIPTION" RUNS -- COMMAND...
  local id=$1 desc=$2 runs=$3; shift 4
  local warm=10; [ "$runs" -lt 20 ] && warm=1
  log "$id: $*"
  if asu hyperfine -N --style none --warmup "$warm" --runs "$runs" --export-json "$R/$id.json" "$*" >"$W/logs/$id.log" 2>&1; then
    IDS+=("$id"); DESCS+=("$desc")
  else
    IDS+=("$id"); DESCS+=("$desc [n/a: $(tail -1 "$W/logs/$id.log" | cut -c1-80)]")
  fi
}
bench floor "unshare -Urmpf --mount-proc chroot ROOTFS /bin/true (floor)" "$RUNS" -- unshare -Urmpf --mount-proc chroot "$W/rootfs" /bin/true
bench floor-map "unshare --map-auto --map-root-user -mpf --mount-proc chroot ROOTFS /bin/true (floor, newuidmap/newgidmap)" "$RUNS" -- unshare --map-auto --map-root-user -mpf --mount-proc chroot "$W/rootfs" /bin/true
bench irun "irun --rm busybox true (overlay, userns+mnt+pid+uts+ipc, seccomp, caps, init)" "$RUNS" -- "$W/irun" --rm busybox true
bench irun-rootfs "irun --rm --rootfs ROOTFS true (same, no store lookup)" "$RUNS" -- "$W/irun" --rm --rootfs "$W/rootfs-user" true
bench irun-noinit "irun --rm --no-init busybox true" "$RUNS" -- "$W/irun" --rm --no-init busybox true
command -v ch-run >/dev/null && bench ch-run "ch-run ROOTFS -- true (charliecloud, no overlay)" "$RUNS" -- ch-run "$W/rootfs" -- true
[ $CRUN_OK = 1 ] && command -v crun >/dev/null && bench crun "crun run (rootless bundle, no overlay)" "$RUNS" -- crun --root "$W/run/crun" run -b "$W/bundle" bench-crun
[ $PODMAN_OK = 1 ] && command -v podman >/dev/null && bench podman "podman run --rm --network=none (overlay, crun)" "$PEER_RUNS" -- podman run --rm --network=none localhost/busybox true

floor=$(jq '.results[0].median' "$R/floor.json")
mapfloor=$( [ -s "$R/floor-map.json" ] && jq '.results[0].median' "$R/floor-map.json" || echo 0)
printf '\nirun start+exit latency, user %s (%s), kernel %s, %s runs (podman %s)\n' "$U" \
  "$(grep -q "^$U:" /etc/subuid && echo subuid range || echo single mapping)" "$(uname -r)" "$RUNS" "$PEER_RUNS"
printf '%-13s %10s %18s %8s %8s  %s\n' id "median ms" "mean ± sd ms" "x floor" "x map" what
for i in "${!IDS[@]}"; do
  id=${IDS[$i]}; f=$R/$id.json
  if [ -s "$f" ]; then
    read -r med mean sd < <(jq -r '.results[0] | "\(.median) \(.mean) \(.stddev)"' "$f")
    awk -v id="$id" -v m="$med" -v a="$mean" -v s="$sd" -v fl="$floor" -v mf="$mapfloor" -v d="${DESCS[$i]}" \
      'BEGIN { x = mf > 0 ? sprintf("%8.2f", m/mf) : sprintf("%8s", "n/a")
               printf "%-13s %10.2f %10.2f ± %5.2f %8.2f %s  %s\n", id, m*1000, a*1000, s*1000, m/fl, x, d }'
  else
    printf '%-13s %10s %18s %8s %8s  %s\n' "$id" n/a "" "" "" "${DESCS[$i]}"
  fi
done
podman_end_pause
