#!/usr/bin/env bash
# slurm-start.sh — start a real one-node Slurm cluster on loopback for the tests (run as root).
#
# munged, slurmctld and slurmd run straight from their binaries (no systemd, no init
# scripts, no cgroups), each in a session of its own; their pids are recorded under
# /var/tmp/slurm/pids for scripts/slurm-stop.sh, which stops them by those pids only.
# Everything Slurm writes lives under /var/tmp/slurm. Idempotent: daemons already up are
# left alone (slurmctld and slurmd are restarted when slurm.conf changed). Quiet unless
# something fails. Installs nothing: scripts/setup-host.sh installs slurm-wlm, slurmctld,
# slurmd, slurm-client and munge.
#
# 4 tasks on a 2-CPU machine need `srun --overcommit`: Slurm is told the real CPU count.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm-start.sh: run as root" >&2; exit 1; }
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

S=/var/tmp/slurm
PIDS=$S/pids
CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)
die() { echo "slurm-start.sh: $*" >&2; exit 1; }

for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
    || die "package $p is missing: run scripts/setup-host.sh"
done
id slurm >/dev/null 2>&1 || die "user slurm is missing (the slurmctld package makes it)"
id munge >/dev/null 2>&1 || die "user munge is missing (the munge package makes it)"

install -d -m 755 $S
# One run at a time. The lock's fd must not reach the daemons (munged keeps inherited
# fds open, and the next run would wait on it forever): each start closes fd 9.
exec 9>$S/start.lock
flock -w 60 9 || die "another slurm-start.sh holds $S/start.lock"

# Slurm binds every daemon and srun to the address the node name resolves to
# (NoInAddrAny): it must be loopback, so nothing listens beyond this machine.
addr=$(getent ahostsv4 "$NODE" | awk 'NR==1 {print $1}')
if [ -z "$addr" ]; then
  echo "127.0.0.1 $NODE" >> /etc/hosts
elif [[ $addr != 127.* ]]; then
  die "$NODE resolves to $addr; Slurm here must run on loopback (add '127.0.0.1 $NODE' to /etc/hosts)"
fi

install -d -m 755 $PIDS $S/spool
install -d -m 700 -o slurm -g slurm $S/state          # slurmctld runs as SlurmUser
install -d -m 755 -o slurm -g slurm $S/log $S/run
# munged refuses dirs and a key that are not its own or are group/world-writable;
# /run/munge holds the socket every user's srun talks to.
install -d -m 755 -o munge -g munge /run/munge
install -d -m 700 -o munge -g munge /etc/munge /var/log/munge
install -d -m 711 -o munge -g munge /var/lib/munge
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key --force >/dev/null
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key

# The node line from the hardware slurmd sees, e.g.
# "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
hw=$(slurmd -C | head -1)
[[ $hw == NodeName=*" CPUs="* ]] || die "unexpected 'slurmd -C' output: $hw"
node_line="NodeName=$NODE NodeHostname=$NODE NodeAddr=127.0.0.1 CPUs=${hw#* CPUs=} State=UNKNOWN"
conf=$(cat <<EOF
# Written by scripts/slurm-start.sh: one node on loopback, no systemd, no cgroups.
ClusterName=imago
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups on the test machines: processes are tracked by their parent pids.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
# A request the node can never satisfy fails at once instead of pending forever.
EnforcePartLimits=ALL
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
Waittime=0
$node_line
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=0
if [ ! -f $CONF ] || [ "$(cat $CONF)" != "$conf" ]; then
  install -d -m 755 /etc/slurm
  printf '%s\n' "$conf" > $CONF.tmp
  mv $CONF.tmp $CONF
  changed=1
fi
chmod 644 $CONF   # srun, sbatch and sinfo read it as the calling user

alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }
if [ $changed = 1 ] && { alive slurmctld || alive slurmd; }; then
  SLURM_STOP_KEEP_MUNGE=1 "$(dirname "$0")/slurm-stop.sh"
fi

# start NAME CMD...: the daemon in the foreground, in a session of its own, detached from
# this shell. setsid and setpriv exec, so $! is the daemon itself.
start() {
  local name=$1; shift
  alive "$name" && return 0
  setsid "$@" >>"$S/log/$name.out" 2>&1 </dev/null 9>&- &
  echo $! > "$PIDS/$name.pid"
}
# wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s.
wait_for() {
  local n=$(( $1 * 10 )) what=$2 i; shift 2
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "slurm-start.sh: timed out waiting for $what" >&2
  return 1
}
# Up: idle, or busy with the jobs of a run that is still going (then this run is a no-op).
node_up() { [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) =~ ^(idle|mixed|allocated|completing)$ ]]; }

# munged checks that the key is owned by its own uid; setpriv execs (runuser would fork).
start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for 10 munged bash -c 'munge -n | unmunge' || { tail -5 $S/log/munged.out >&2; exit 1; }
start slurmctld /usr/sbin/slurmctld -D -f $CONF
wait_for 10 slurmctld scontrol ping || { tail -20 $S/log/slurmctld.log >&2; exit 1; }
start slurmd /usr/sbin/slurmd -D -f $CONF
if ! wait_for 8 "node $NODE up" node_up; then
  # A node an earlier run left down or drained comes back once asked.
  scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
  wait_for 4 "node $NODE up" node_up || { sinfo -R >&2; tail -20 $S/log/slurmd.log >&2; exit 1; }
fi
