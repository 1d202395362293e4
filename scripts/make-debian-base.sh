#!/usr/bin/env bash
# make-debian-base.sh [--cache DIR] [--suite SUITE] [NAME] — a Debian base image made from
# Debian's packages, for machines that cannot reach Docker Hub: mmdebstrap (minbase
# variant, unshare mode, so any user with a subuid range can run it) writes a root file
# system tar into the cache dir, and `iimage import` makes it the image NAME (default
# debian:SUITE, SUITE default bookworm) in the current store ($IMAGO_ROOT, else the
# default), with the config of Docker Hub's debian images (PATH, CMD ["bash"]).
#
# The tar is kept in the cache dir (default $IMAGO_BASE_CACHE, else
# ${XDG_CACHE_HOME:-~/.cache}/imago-bases) and reused: a second run only imports it.
# Remove it to make a fresh one (Debian's security updates come with a fresh one).
# Needs: mmdebstrap and uidmap (scripts/setup-host.sh installs them), iimage on PATH.
set -euo pipefail
usage() { sed -n '2,12s/^# \{0,1\}//p' "$0" >&2; exit "${1:-2}"; }

cache=${IMAGO_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imago-bases}
suite=bookworm
name=
while [ $# -gt 0 ]; do
  case $1 in
    --cache) [ $# -ge 2 ] || usage; cache=$2; shift 2 ;;
    --suite) [ $# -ge 2 ] || usage; suite=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "make-debian-base: unknown flag $1" >&2; usage ;;
    *) [ -z "$name" ] || usage; name=$1; shift ;;
  esac
done
name=${name:-debian:$suite}
command -v iimage >/dev/null || { echo "make-debian-base: iimage is not on PATH" >&2; exit 1; }

tar=$cache/debian-$suite-minbase.tar
if [ -s "$tar" ]; then
  echo "make-debian-base: using the cached $tar (remove it for a fresh one)" >&2
else
  command -v mmdebstrap >/dev/null \
    || { echo "make-debian-base: mmdebstrap is missing: apt-get install mmdebstrap uidmap" >&2; exit 1; }
  mkdir -p "$cache"
  # Written under another name and renamed: an interrupted run leaves no half tar behind
  # that a later run would take for the cache.
  part=$(mktemp "$cache/.debian-$suite-minbase.XXXXXX.tar")
  trap 'rm -f "$part"' EXIT
  echo "make-debian-base: mmdebstrap --variant=minbase $suite (takes about half a minute)" >&2
  # dpkg without fsync and apt without translations, as in Docker Hub's debian images:
  # package installs in RUN steps go faster, and `apt update` fetches less.
  mmdebstrap --mode=unshare --variant=minbase --dpkgopt=force-unsafe-io \
    --aptopt='Acquire::Languages "none"' "$suite" "$part" </dev/null
  chmod 644 "$part"
  mv "$part" "$tar"
  trap - EXIT
fi

iimage import -m "mmdebstrap --variant=minbase $suite" \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["bash"]' \
  "$tar" "$name"
