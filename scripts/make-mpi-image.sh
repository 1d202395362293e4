#!/usr/bin/env bash
# make-mpi-image.sh [--cache DIR] [--suite SUITE] [NAME] — a small image holding Debian's
# Open MPI runtime (openmpi-bin and what it needs: libopenmpi3, libpmix2, hwloc, …) and
# nothing else, for MPI programs built on the host with the same suite's mpicc and run
# one container per rank (`mpirun -n 2 irun --hpc NAME ./prog`, docs/hpc.md). Made
# from Debian's mirror with mmdebstrap (unshare mode, so any user with a subuid range
# can run it); `iimage import` makes it the image NAME (default debian-openmpi:SUITE,
# SUITE default bookworm) in the current store ($IMAGO_ROOT, else the default).
#
# The tar is kept in the cache dir (default $IMAGO_BASE_CACHE, else
# ${XDG_CACHE_HOME:-~/.cache}/imago-bases) under a name that changes with the package
# set below, and reused: a second run only imports it. Remove it for a fresh one.
# Needs: mmdebstrap and uidmap (scripts/setup-host.sh installs them), iimage on PATH.
set -euo pipefail
usage() { sed -n '2,13s/^# \{0,1\}//p' "$0" >&2; exit "${1:-2}"; }

cache=${IMAGO_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imago-bases}
suite=bookworm
name=
while [ $# -gt 0 ]; do
  case $1 in
    --cache) [ $# -ge 2 ] || usage; cache=$2; shift 2 ;;
    --suite) [ $# -ge 2 ] || usage; suite=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "make-mpi-image: unknown flag $1" >&2; usage ;;
    *) [ -z "$name" ] || usage; name=$1; shift ;;
  esac
done
name=${name:-debian-openmpi:$suite}
command -v iimage >/dev/null || { echo "make-mpi-image: iimage is not on PATH" >&2; exit 1; }

# The extract variant unpacks only these packages and their dependencies: no shell, no
# apt, no dpkg database, no maintainer scripts (a rank needs none of them). openmpi-bin
# is there for /etc/openmpi/openmpi-mca-params.conf: Debian's component choices (no
# UCX, no libfabric), which the ranks must share with the host's mpirun; without it a
# rank picks libfabric's transport over Open MPI's own shared memory (vader).
# Left out: documentation, and hwloc's plugins (PCI, OpenCL, NVML, X11, libxml2 topology
# import), which pull in ICU and X11 (40 MB) and which ranks on one node do not use.
lib=/usr/lib/x86_64-linux-gnu
args=(--mode=unshare --variant=extract --include=openmpi-bin
      --aptopt='Acquire::Languages "none"'
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*'
      --dpkgopt="path-exclude=$lib/hwloc/*" --dpkgopt="path-exclude=$lib/libicu*"
      # The one alternative in the set: libpsm-infinipath1's library, which its
      # maintainer script (not run in the extract variant) would link.
      --extract-hook="for f in \"\$1\"/usr/lib/libpsm1/libpsm_infinipath.so.1.*; do ln -sf \"/usr/lib/libpsm1/\${f##*/}\" \"\$1$lib/libpsm_infinipath.so.1\"; done")
key=$(printf '%s\n' "$suite" "${args[@]}" | sha256sum | cut -c1-12)
tar=$cache/debian-$suite-openmpi-$key.tar
if [ -s "$tar" ]; then
  echo "make-mpi-image: using the cached $tar (remove it for a fresh one)" >&2
else
  command -v mmdebstrap >/dev/null \
    || { echo "make-mpi-image: mmdebstrap is missing: apt-get install mmdebstrap uidmap" >&2; exit 1; }
  mkdir -p "$cache"
  # Written under another name and renamed: an interrupted run leaves no half tar behind
  # that a later run would take for the cache.
  part=$(mktemp "$cache/.debian-$suite-openmpi.XXXXXX.tar")
  trap 'rm -f "$part"' EXIT
  echo "make-mpi-image: mmdebstrap --variant=extract --include=openmpi-bin $suite (about half a minute)" >&2
  mmdebstrap "${args[@]}" "$suite" "$part" </dev/null
  chmod 644 "$part"
  mv "$part" "$tar"
  trap - EXIT
fi

iimage import -m "mmdebstrap --variant=extract --include=openmpi-bin $suite" \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tar" "$name"
