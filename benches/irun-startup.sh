#!/usr/bin/env bash
# irun-startup.sh — container start+exit latency of `irun --rm busybox true` against the
# namespace floor and the peers, measured in one run with hyperfine, rootless as BENCH_USER
# (default imago-sub: has a subuid range, like most workstations). Not a test.
#
#   sudo benches/irun-startup.sh            # needs root only to prepare dirs and switch user
#   BENCH_USER=imago-nosub RUNS=100 IRUN=target/release/irun sudo -E benches/irun-startup.sh
#   IRUN_BEFORE=/tmp/irun-old sudo -E benches/irun-startup.sh   # an older build beside it
#   PEER_RUNS=0 sudo -E benches/irun-startup.sh   # without podman (20 s a run on our VMs)
#
# Prints a table: median, mean ± stddev, and the ratio of each median to two floors:
# `unshare -Urmpf --mount-proc chroot ROOTFS /bin/true` (x floor: the kernel's part, the
# map written directly, one id), and the same with `--map-auto --map-root-user` (x map:
# the map written by newuidmap/newgidmap from the user's subuid range, as irun must for
# such a user; n/a for a user without one). A peer that cannot run here is reported as
# n/a with the reason (its log stays in $W/logs). All state lives under
# $IMAGO_TEST_TMP (a tmpfs in our setup; the root ext4 of our VMs is slow at small writes).
#
# The runs are split into ROUNDS (default 5) that take turns: round 1 of every command,
# then round 2 of every command, and so on. A VM's speed drifts over minutes (the same
# command's median moved by 30 % between back-to-back blocks of 100 runs on ours), so
# commands run in one block each would be compared across that drift. The table pools
# every round; "x floor by round" gives the lowest and highest of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/.."; REPO=$PWD
. benches/lib.sh
bench_user irun-startup
RUNS=${RUNS:-200}; PEER_RUNS=${PEER_RUNS:-30}; ROUNDS=${ROUNDS:-5}
IRUN=${IRUN:-$REPO/target/release/irun}
[ -x "$IRUN" ] || { echo "irun-startup: $IRUN not built: cargo build --release -p irun (or IRUN=path)" >&2; exit 1; }
[ -z "${IRUN_BEFORE:-}" ] || [ -x "$IRUN_BEFORE" ] || { echo "irun-startup: IRUN_BEFORE=$IRUN_BEFORE is not an executable" >&2; exit 1; }
for t in hyperfine skopeo umoci jq; do command -v $t >/dev/null || { echo "irun-startup: $t missing" >&2; exit 1; }; done
bench_workdir irun-bench

log "fixtures in $W (user $U)"
cp "$IRUN" "$W/irun"; chmod 755 "$W/irun"
[ -z "${IRUN_BEFORE:-}" ] || { cp "$IRUN_BEFORE" "$W/irun-before"; chmod 755 "$W/irun-before"; }
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
declare -a IDS DESCS NRUNS CMDS
bench() { # bench ID "DESCRIPTION" RUNS -- COMMAND...: queued; run_rounds measures
  local id=$1 desc=$2 runs=$3; shift 4
  IDS+=("$id"); DESCS+=("$desc"); NRUNS+=("$runs"); CMDS+=("$*")
}
# Each command gets RUNS/ROUNDS runs (at least 2) per round, after a warm-up in round 1;
# a command that fails once is n/a from then on, with the reason.
run_rounds() {
  local r i id per warm
  for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!IDS[@]}"; do
      id=${IDS[$i]}
      [ -e "$R/$id.na" ] && continue
      per=$(( NRUNS[i] / ROUNDS )); [ "$per" -lt 2 ] && per=2
      warm=0; [ "$r" = 1 ] && { warm=10; [ "${NRUNS[$i]}" -lt 20 ] && warm=1; }
      log "$id (round $r of $ROUNDS, $per runs): ${CMDS[$i]}"
      if ! asu hyperfine -N --style none --warmup "$warm" --runs "$per" --export-json "$R/$id.$r.json" \
           "${CMDS[$i]}" >"$W/logs/$id.$r.log" 2>&1; then
        tail -1 "$W/logs/$id.$r.log" | cut -c1-80 > "$R/$id.na"
        DESCS[$i]="${DESCS[$i]} [n/a: $(cat "$R/$id.na")]"
      fi
    done
  done
}
# pooled ID: "median mean sd" in seconds over every round's runs.
pooled() {
  jq -s -r '[.[].results[0].times[]] | sort | length as $n
    | (if $n % 2 == 1 then .[($n - 1) / 2] else (.[$n / 2 - 1] + .[$n / 2]) / 2 end) as $med
    | (add / $n) as $mean
    | ([.[] | (. - $mean) * (. - $mean)] | add / $n | sqrt) as $sd
    | "\($med) \($mean) \($sd)"' "$R/$1".[0-9]*.json
}
# ratios ID: "lowest highest" of the round medians of ID over the floor's of that round.
ratios() {
  local r lo="" hi="" m f x
  for ((r = 1; r <= ROUNDS; r++)); do
    [ -s "$R/$1.$r.json" ] && [ -s "$R/floor.$r.json" ] || continue
    m=$(jq '.results[0].median' "$R/$1.$r.json"); f=$(jq '.results[0].median' "$R/floor.$r.json")
    x=$(awk -v m="$m" -v f="$f" 'BEGIN { printf "%.2f", m / f }')
    if [ -z "$lo" ] || awk -v a="$x" -v b="$lo" 'BEGIN { exit !(a < b) }'; then lo=$x; fi
    if [ -z "$hi" ] || awk -v a="$x" -v b="$hi" 'BEGIN { exit !(a > b) }'; then hi=$x; fi
  done
  echo "${lo:-n/a}-${hi:-n/a}"
}
bench floor "unshare -Urmpf --mount-proc chroot ROOTFS /bin/true (floor)" "$RUNS" -- unshare -Urmpf --mount-proc chroot "$W/rootfs" /bin/true
bench floor-map "unshare --map-auto --map-root-user -mpf --mount-proc chroot ROOTFS /bin/true (floor, newuidmap/newgidmap)" "$RUNS" -- unshare --map-auto --map-root-user -mpf --mount-proc chroot "$W/rootfs" /bin/true
bench irun "irun --rm busybox true (overlay, userns+mnt+pid+uts+ipc, seccomp, caps, init)" "$RUNS" -- "$W/irun" --rm busybox true
[ -n "${IRUN_BEFORE:-}" ] && bench irun-before "IRUN_BEFORE --rm busybox true (the same, older build)" "$RUNS" -- "$W/irun-before" --rm busybox true
bench irun-rootfs "irun --rm --rootfs ROOTFS true (same, no store lookup)" "$RUNS" -- "$W/irun" --rm --rootfs "$W/rootfs-user" true
bench irun-noinit "irun --rm --no-init busybox true" "$RUNS" -- "$W/irun" --rm --no-init busybox true
command -v ch-run >/dev/null && bench ch-run "ch-run ROOTFS -- true (charliecloud, no overlay)" "$RUNS" -- ch-run "$W/rootfs" -- true
[ $CRUN_OK = 1 ] && command -v crun >/dev/null && bench crun "crun run (rootless bundle, no overlay)" "$RUNS" -- crun --root "$W/run/crun" run -b "$W/bundle" bench-crun
[ "$PEER_RUNS" -gt 0 ] && [ $PODMAN_OK = 1 ] && command -v podman >/dev/null && bench podman "podman run --rm --network=none (overlay, crun)" "$PEER_RUNS" -- podman run --rm --network=none localhost/busybox true
run_rounds

[ -e "$R/floor.na" ] && { echo "irun-startup: the floor could not run: $(cat "$R/floor.na")" >&2; exit 1; }
read -r floor _ < <(pooled floor)
mapfloor=0; [ -e "$R/floor-map.na" ] || read -r mapfloor _ < <(pooled floor-map)
printf '\nirun start+exit latency, user %s (%s), kernel %s, %s runs in %s rounds (podman %s)\n' "$U" \
  "$(grep -q "^$U:" /etc/subuid && echo subuid range || echo single mapping)" "$(uname -r)" "$RUNS" "$ROUNDS" "$PEER_RUNS"
printf '%-13s %10s %18s %8s %10s %8s  %s\n' id "median ms" "mean ± sd ms" "x floor" "by round" "x map" what
for i in "${!IDS[@]}"; do
  id=${IDS[$i]}
  if [ ! -e "$R/$id.na" ]; then
    read -r med mean sd < <(pooled "$id")
    awk -v id="$id" -v m="$med" -v a="$mean" -v s="$sd" -v fl="$floor" -v mf="$mapfloor" -v rr="$(ratios "$id")" -v d="${DESCS[$i]}" \
      'BEGIN { x = mf > 0 ? sprintf("%8.2f", m/mf) : sprintf("%8s", "n/a")
               printf "%-13s %10.2f %10.2f ± %5.2f %8.2f %10s %s  %s\n", id, m*1000, a*1000, s*1000, m/fl, rr, x, d }'
  else
    printf '%-13s %10s %18s %8s %10s %8s  %s\n' "$id" n/a "" "" "" "" "${DESCS[$i]}"
  fi
done
podman_end_pause
