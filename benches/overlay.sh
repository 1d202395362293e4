#!/usr/bin/env bash
# overlay.sh — file-system speed of imago's FUSE overlay (imago_overlay::fuse, mounted by
# crates/overlay/examples/fuse-mount) against Debian's fuse-overlayfs, kernel overlayfs
# and a plain directory, on the same tmpfs. Not a test.
#
#   sudo benches/overlay.sh                 # root: it mounts (FILES=20000 THREADS=4 ROUNDS=3)
#   FUSE_MOUNT=target/release/examples/fuse-mount FILES=5000 sudo -E benches/overlay.sh
#
# Steps, each timed on its own (seconds), the kernel's caches dropped before all but
# the first so the file system itself answers: create FILES small files in 20 dirs
# (one bash, no forks), find them, read them all back (one cat), delete half. The
# lower is a small tree (one dir with 1000 files) the steps never touch. ROUNDS rounds,
# the four file systems taking turns in each (a shared VM's noise then hits all of
# them); the table shows the median seconds per step and the ratio of imago's median
# to fuse-overlayfs' (goal: <= 0.5). State lives under $IMAGO_TEST_TMP (a tmpfs here).
#
#   REQUESTS=1 sudo -E benches/overlay.sh   # also count the FUSE requests of each step
#   FUSE_MOUNT_BEFORE=/tmp/fuse-mount.old sudo -E benches/overlay.sh   # and an older build
#
# FUSE_MOUNT_BEFORE adds a second imago build to each round (after the first): a change's
# before and after, measured under the same load.
#
# REQUESTS=1 counts, in round 1, the requests the kernel sends to each FUSE server per
# step (the fuse:fuse_request_send tracepoint, Linux 6.13+, tracefs mounted): the figure
# that does not move with the machine's load. It slows both FUSE runs of round 1 alike.
set -euo pipefail
cd "$(dirname "$0")/.."; REPO=$PWD
. benches/lib.sh
[ "$(id -u)" = 0 ] || { echo "overlay: run as root (it mounts)" >&2; exit 1; }
FILES=${FILES:-20000}; THREADS=${THREADS:-4}; ROUNDS=${ROUNDS:-3}
FUSE_MOUNT=${FUSE_MOUNT:-$REPO/target/release/examples/fuse-mount}
FUSE_MOUNT_BEFORE=${FUSE_MOUNT_BEFORE:-}
[ -z "$FUSE_MOUNT_BEFORE" ] || [ -x "$FUSE_MOUNT_BEFORE" ] || { echo "overlay: $FUSE_MOUNT_BEFORE is not executable" >&2; exit 1; }
[ -x "$FUSE_MOUNT" ] || { echo "overlay: $FUSE_MOUNT not built: cargo build --release -p imago-overlay --example fuse-mount" >&2; exit 1; }
command -v fuse-overlayfs >/dev/null || { echo "overlay: fuse-overlayfs missing (scripts/setup-host.sh installs it)" >&2; exit 1; }
[ -e /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229

W=${IMAGO_TEST_TMP:-/var/tmp/imago-test}/overlay-bench
for m in "$W"/*/merged; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
rm -rf "$W"; mkdir -p "$W/lower/etc"
for i in $(seq 1000); do echo "lower $i" > "$W/lower/etc/f$i"; done
log "fixtures in $W, $FILES files, $(nproc) CPUs, kernel $(uname -r)"

now() { date +%s.%N; }
REQUESTS=${REQUESTS:-0}; TR=/sys/kernel/tracing
if [ "$REQUESTS" = 1 ] && [ ! -d "$TR/events/fuse/fuse_request_send" ]; then
  echo "overlay: REQUESTS=1 needs tracefs at $TR and a kernel with fuse tracepoints (6.13+)" >&2; exit 1
fi
if [ "$REQUESTS" = 1 ]; then # room for a step's 120,000 events; put back at the end
  TR_KB=$(sed 's/ .*//' "$TR/buffer_size_kb"); echo 16384 > "$TR/buffer_size_kb"
fi
trace_on() { # trace_on ID MOUNT: start counting MOUNT's FUSE requests (round 1 of a FUSE run only)
  case "$REQUESTS,$1" in 1,fo,1|1,imago,1|1,before,1) ;; *) return 0 ;; esac
  echo 0 > "$TR/tracing_on"; echo > "$TR/trace"
  # Only this mount's connection (the kernel's dev_t of it): other FUSE mounts of a shared
  # machine stay out of the counts.
  echo "connection == $(( $(stat -c '%Hd' "$2") << 20 | $(stat -c '%Ld' "$2") ))" > "$TR/events/fuse/fuse_request_send/filter"
  echo 1 > "$TR/events/fuse/fuse_request_send/enable"; echo 1 > "$TR/tracing_on"
}
trace_off() { # trace_off ID STEP: stop counting; the counts into $W/ID.STEP.req
  case "$REQUESTS,$1" in 1,fo,1|1,imago,1|1,before,1) ;; *) return 0 ;; esac
  echo 0 > "$TR/events/fuse/fuse_request_send/enable"; echo 0 > "$TR/events/fuse/fuse_request_send/filter"
  grep -o 'opcode [0-9]* (FUSE_[A-Z_0-9]*)' "$TR/trace" | sed 's/.*(FUSE_\(.*\))/\1/' | sort | uniq -c |
    sort -rn | awk '{ n += $1; o = o sprintf(" %s=%d", $2, $1) } END { printf "%6d:%s\n", n, o }' > "$W/${1%,*}.$2.req"
  if grep -q LOST "$TR/trace"; then echo "  (events were lost: counts too low)" >> "$W/${1%,*}.$2.req"; fi
}
STEPS=(create find read delete)
declare -A T
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
steps() { # steps ID,ROUND DIR: the four steps inside DIR, times into T[ID,ROUND,step]
  local id=$1 d=$2/bench t0
  trace_on "$id" "$2"; t0=$(now)
  bash -c 'mkdir -p "$1"; cd "$1"; for j in $(seq 0 19); do mkdir "d$j"; done
           for ((i = 0; i < $2; i++)); do printf "file %d\n" $i > "d$((i % 20))/f$i"; done' _ "$d" "$FILES"
  T[$id,create]=$(echo "$(now) - $t0" | bc); trace_off "$id" create
  drop; trace_on "$id" "$2"; t0=$(now); find "$d" -type f | wc -l > "$W/$id.count"; T[$id,find]=$(echo "$(now) - $t0" | bc)
  trace_off "$id" find
  drop; trace_on "$id" "$2"; t0=$(now); find "$d" -type f -print0 | xargs -0 cat | wc -l > "$W/$id.lines"; T[$id,read]=$(echo "$(now) - $t0" | bc)
  trace_off "$id" read
  drop; trace_on "$id" "$2"; t0=$(now); find "$d" -type f -name '*[02468]' -delete; T[$id,delete]=$(echo "$(now) - $t0" | bc)
  trace_off "$id" delete
  if [ "$(cat "$W/$id.count")" != "$FILES" ] || [ "$(cat "$W/$id.lines")" != "$FILES" ] ||
     [ "$(find "$d" -type f | wc -l)" != $((FILES / 2)) ]; then
    echo "overlay: $id gave wrong results" >&2; exit 1
  fi
}
waitmount() { for _ in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.1; done; echo "overlay: $1 not mounted" >&2; exit 1; }
prep() { rm -rf "${W:?}/$1"; mkdir -p "$W/$1/upper" "$W/$1/work" "$W/$1/merged"; }

round() { # round R: the four file systems once, times into T[ID,step,R]
  local r=$1 pid
  log "round $r: plain"; rm -rf "$W/plain"; mkdir -p "$W/plain"; steps "plain,$r" "$W/plain"
  log "round $r: kernel"; prep kernel
  mount -t overlay overlay -o "lowerdir=$W/lower,upperdir=$W/kernel/upper,workdir=$W/kernel/work" "$W/kernel/merged"
  steps "kernel,$r" "$W/kernel/merged"; umount "$W/kernel/merged"
  log "round $r: fuse-overlayfs"; prep fo
  fuse-overlayfs -o "lowerdir=$W/lower,upperdir=$W/fo/upper,workdir=$W/fo/work" "$W/fo/merged" 2>"$W/fo.log"
  waitmount "$W/fo/merged"; steps "fo,$r" "$W/fo/merged"; umount "$W/fo/merged"
  log "round $r: imago"; prep imago
  "$FUSE_MOUNT" --threads "$THREADS" --upper "$W/imago/upper" --work "$W/imago/work" --lower "$W/lower" "$W/imago/merged" &
  pid=$!; waitmount "$W/imago/merged"; steps "imago,$r" "$W/imago/merged"; umount "$W/imago/merged"; wait "$pid"
  [ -n "$FUSE_MOUNT_BEFORE" ] || return 0
  log "round $r: imago before"; prep before
  "$FUSE_MOUNT_BEFORE" --threads "$THREADS" --upper "$W/before/upper" --work "$W/before/work" --lower "$W/lower" "$W/before/merged" &
  pid=$!; waitmount "$W/before/merged"; steps "before,$r" "$W/before/merged"; umount "$W/before/merged"; wait "$pid"
}
for r in $(seq "$ROUNDS"); do round "$r"; done
median() { # median ID STEP
  for r in $(seq "$ROUNDS"); do echo "${T[$1,$r,$2]}"; done | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf '\noverlay file-system speed: %s files in 20 dirs, kernel %s, %s CPUs, tmpfs, median of %s rounds\n' \
  "$FILES" "$(uname -r)" "$(nproc)" "$ROUNDS"
printf '%-8s %10s %10s %16s %18s' step plain kernel fuse-overlayfs "imago fuse (x fo)"
if [ -n "$FUSE_MOUNT_BEFORE" ]; then printf ' %18s' "before (x fo)"; fi; echo
for s in "${STEPS[@]}"; do
  awk -v s="$s" -v p="$(median plain "$s")" -v k="$(median kernel "$s")" -v f="$(median fo "$s")" \
    -v i="$(median imago "$s")" 'BEGIN { printf "%-8s %10.3f %10.3f %16.3f %10.3f (%.2f)", s, p, k, f, i, i / f }'
  if [ -n "$FUSE_MOUNT_BEFORE" ]; then
    awk -v f="$(median fo "$s")" -v b="$(median before "$s")" 'BEGIN { printf " %10.3f (%.2f)", b, b / f }'
  fi
  echo
done
if [ "$REQUESTS" = 1 ]; then
  printf '\nFUSE requests per step (round 1; FORGETs of the cache drops come before each step)\n'
  for s in "${STEPS[@]}"; do
    for f in fo imago ${FUSE_MOUNT_BEFORE:+before}; do printf '%-7s %-15s %s\n' "$s" "$f" "$(cat "$W/$f.$s.req")"; done
  done
  echo "$TR_KB" > "$TR/buffer_size_kb"
fi
