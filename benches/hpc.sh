#!/usr/bin/env bash
# hpc.sh — single-file images on a cluster node, rootless as BENCH_USER (default
# imago-sub; BENCH_USER=imago-nosub for a user without a subuid range). Not a test.
#
#   sudo benches/hpc.sh
#   BENCH_USER=imago-nosub RUNS=50 IRUN=target/release/irun sudo -E benches/hpc.sh
#
# 1. Start+exit latency (hyperfine): `irun --rm FILE.sqsh true` against `ch-run` on a
#    squashfs (Charliecloud mounts it with squashfuse) and `irun --rm IMG true` from the
#    store (unpacked layers).
# 2. Bytes read from the disk when RANKS (default 8) containers start at once and each
#    reads the image's files (busybox plus a 16 MiB data file): from one shared `.sqsh`,
#    from one squashfs with ch-run, and from RANKS unpacked copies (`irun --rootfs`, what
#    a per-rank unpack leaves). The images sit on a disk-backed dir (BENCH_DISK_DIR,
#    default /var/tmp/imago-bench-disk: must not be a tmpfs), the page cache is dropped
#    before each case; reads are counted per rank (/proc/PID/io) and by the device
#    (/proc/diskstats). Container dirs go to $IMAGO_TEST_TMP (node-local scratch).
# Needs root (to prepare dirs, switch user and drop caches), hyperfine, squashfs-tools,
# charliecloud (ch-run); a missing peer shows as n/a.
set -euo pipefail
cd "$(dirname "$0")/.."; REPO=$PWD
. benches/lib.sh
bench_user hpc
RUNS=${RUNS:-100}; RANKS=${RANKS:-8}
IRUN=${IRUN:-$REPO/target/release/irun}; IIMAGE=${IIMAGE:-$(dirname "$IRUN")/iimage}
for b in "$IRUN" "$IIMAGE"; do
  [ -x "$b" ] || { echo "hpc: $b not built: cargo build --release -p irun -p iimage (or IRUN=path)" >&2; exit 1; }
done
for t in hyperfine mksquashfs jq; do command -v $t >/dev/null || { echo "hpc: $t missing" >&2; exit 1; }; done
bench_workdir hpc-bench
ENVU+=(USER="$U")
DISK=${BENCH_DISK_DIR:-/var/tmp/imago-bench-disk}
rm -rf "$DISK"; install -d -m 755 "$DISK"
DEV=$(findmnt -n -o SOURCE --target "$DISK" || true)
DEVNAME=$(basename "$DEV")
grep -q " $DEVNAME " /proc/diskstats || DEVNAME=""

log "fixtures in $W and $DISK (user $U)"
cp "$IRUN" "$W/irun"; cp "$IIMAGE" "$W/iimage"; chmod 755 "$W/irun" "$W/iimage"
"$REPO/scripts/make-busybox-rootfs.sh" "$W/busybox.tar"
# The image: busybox plus 16 MiB of compressible data (base64 of random bytes).
install -d "$W/extra/opt"
head -c 12582912 /dev/urandom | base64 -w 0 | head -c 16777216 > "$W/extra/opt/data.bin"
cp "$W/busybox.tar" "$W/image.tar"
tar --numeric-owner --owner=0 --group=0 -C "$W/extra" -rf "$W/image.tar" opt
chown -R "$U:$GID_" "$W"
asu "$W/iimage" import --change 'CMD ["sh"]' "$W/image.tar" bench >/dev/null
asu "$W/iimage" squash bench -o "$W/bench.sqsh"
install -m 644 "$W/bench.sqsh" "$DISK/bench.sqsh"
# Charliecloud's image: the same tree through mksquashfs (its ch-convert does the same).
install -d "$W/tree"; tar -C "$W/tree" -xf "$W/image.tar"
mksquashfs "$W/tree" "$DISK/bench.sqfs" -comp zstd -quiet -no-progress -all-root >/dev/null
chmod 644 "$DISK/bench.sqfs"
# Unpacked copies owned by the user (irun --rootfs needs a root its uid 0 owns).
for i in $(seq 1 "$RANKS"); do cp -a "$W/tree" "$DISK/copy$i"; done
chown -R "$U:$GID_" "$DISK"/copy*
sqsh_mib=$(du -m "$DISK/bench.sqsh" | cut -f1); tree_mib=$(du -sm "$W/tree" | cut -f1)

R=$W/results; install -d -o "$U" -g "$GID_" "$R"
declare -a IDS DESCS
bench() { # bench ID "DESCRIPTION" -- COMMAND...
  local id=$1 desc=$2; shift 3
  log "$id: $*"
  if asu hyperfine -N --style none --warmup 5 --runs "$RUNS" --export-json "$R/$id.json" "$*" >"$W/logs/$id.log" 2>&1; then
    IDS+=("$id"); DESCS+=("$desc")
  else
    IDS+=("$id"); DESCS+=("$desc [n/a: $(tail -1 "$W/logs/$id.log" | cut -c1-80)]")
  fi
}
bench irun-sqsh "irun --rm FILE.sqsh true (FUSE lower + overlay)" -- "$W/irun" --rm "$DISK/bench.sqsh" true
bench irun-store "irun --rm IMG true (store, unpacked layers)" -- "$W/irun" --rm bench true
if command -v ch-run >/dev/null; then
  bench ch-run-sqfs "ch-run FILE.sqfs -- true (charliecloud, squashfuse)" -- ch-run "$DISK/bench.sqfs" -- true
  bench ch-run-sqsh "ch-run FILE.sqsh -- true (charliecloud on imago's file)" -- ch-run "$DISK/bench.sqsh" -- true
fi

printf '\nStart+exit latency, user %s, kernel %s, %s runs\n' "$U" "$(uname -r)" "$RUNS"
printf '%-12s %10s %18s  %s\n' id "median ms" "mean ± sd ms" what
for i in "${!IDS[@]}"; do
  id=${IDS[$i]}; f=$R/$id.json
  if [ -s "$f" ]; then
    read -r med mean sd < <(jq -r '.results[0] | "\(.median) \(.mean) \(.stddev)"' "$f")
    awk -v id="$id" -v m="$med" -v a="$mean" -v s="$sd" -v d="${DESCS[$i]}" \
      'BEGIN { printf "%-12s %10.2f %10.2f ± %5.2f  %s\n", id, m*1000, a*1000, s*1000, d }'
  else
    printf '%-12s %10s %18s  %s\n' "$id" n/a "" "${DESCS[$i]}"
  fi
done

# Bytes read by RANKS concurrent starts, each reading every file of the image. Counted
# twice: `read_bytes` of each rank's shell (/proc/PID/io: storage reads of the rank and
# of every process it reaped: irun, the FUSE server, the container), and the device's
# sectors-read counter (the whole machine: other work adds to it).
READ='cat /bin/busybox /opt/data.bin >/dev/null'
sectors() { awk -v d="$DEVNAME" '$3 == d { print $6 }' /proc/diskstats; }
ranks() { # ranks ID "DESCRIPTION" CMD-TEMPLATE (%i: the rank number)
  local id=$1 desc=$2 tmpl=$3 pids=() fail=0
  if [ -z "$DEVNAME" ]; then printf '%-12s %10s %10s  %s [n/a: %s is not on a block device]\n' "$id" n/a n/a "$desc" "$DISK"; return; fi
  sync; echo 3 > /proc/sys/vm/drop_caches
  local before; before=$(sectors)
  for i in $(seq 1 "$RANKS"); do
    asu sh -c "${tmpl//%i/$i} >/dev/null 2>&1 || echo rank-failed; cat /proc/\$\$/io" >"$W/logs/$id.$i.log" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  local after; after=$(sectors)
  grep -q rank-failed "$W/logs/$id".*.log && fail=1
  local own dev
  own=$(cat "$W/logs/$id".*.log | awk '/^read_bytes:/ { s += $2 } END { printf "%.1f", s/1048576 }')
  dev=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.1f", (a-b)*512/1048576 }')
  [ $fail = 0 ] || desc="$desc [a rank failed: see $W/logs/$id.*.log]"
  printf '%-12s %10s %10s  %s\n' "$id" "$own" "$dev" "$desc"
}
printf '\nMiB read from %s when %s ranks start at once (image: %s MiB unpacked, .sqsh %s MiB)\n' \
  "${DEV:-?}" "$RANKS" "$tree_mib" "$sqsh_mib"
printf '%-12s %10s %10s  %s\n' id "by ranks" "by device" what
ranks sqsh-shared "irun FILE.sqsh, one file for all ranks" "'$W/irun' --rm '$DISK/bench.sqsh' sh -c '$READ'"
command -v ch-run >/dev/null && ranks ch-run-sqfs "ch-run FILE.sqfs, one file for all ranks" "ch-run '$DISK/bench.sqfs' -- sh -c '$READ'"
ranks copies "irun --rootfs COPY%i, an unpacked copy per rank" "'$W/irun' --rm --rootfs '$DISK/copy%i' sh -c '$READ'"
rm -rf "$DISK"
