#!/usr/bin/env bash
# slurm-stop.sh — stop the one-node Slurm cluster scripts/slurm-start.sh started (as root).
#
# Cancels the cluster's jobs first (while slurmctld and slurmd can still end their steps),
# then stops slurmd, slurmctld and munged, each only by the pid slurm-start.sh recorded
# in /var/tmp/slurm/pids, and only while that pid is still the daemon (a reused pid is
# left alone). Never matches processes by name. Idempotent and quiet.
# SLURM_STOP_KEEP_MUNGE=1 leaves munged running (slurm-start.sh uses it on a new slurm.conf).
# State under /var/tmp/slurm survives; remove that dir after a stop for a fresh cluster.
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm-stop.sh: run as root" >&2; exit 1; }
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
PIDS=/var/tmp/slurm/pids

# stop NAME: SIGTERM, up to 15 s to exit (each daemon takes about 2 s), then SIGKILL.
stop() {
  local name=$1 f=$PIDS/$1.pid pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if ! kill -0 "$pid" 2>/dev/null || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ]; then
    rm -f "$f"
    return 0
  fi
  kill -TERM "$pid"
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "slurm-stop.sh: $name (pid $pid) ignored SIGTERM; killing it" >&2
    kill -KILL "$pid"
  fi
  rm -f "$f"
}

# slurmstepd outlives slurmd: without a cancel, job steps and their tasks would stay.
if [ -f $PIDS/slurmctld.pid ] && kill -0 "$(cat $PIDS/slurmctld.pid)" 2>/dev/null; then
  jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    # shellcheck disable=SC2086 # one job id per word
    scancel $jobs 2>/dev/null
    for ((i = 0; i < 100; i++)); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
  fi
fi
stop slurmd
stop slurmctld
[ "${SLURM_STOP_KEEP_MUNGE:-0}" = 1 ] || stop munged
exit 0
