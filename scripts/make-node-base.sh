#!/usr/bin/env bash
# make-node-base.sh [--cache DIR] [--ca FILE] — the Node.js base images made from Debian's
# packages, stand-ins for Docker Hub's node images on machines that cannot reach it:
#   debian-node:bookworm        nodejs, npm   (for the tutorial's node:10)
#   debian-node:bookworm-slim   nodejs only   (for node:10-slim)
# ibuild builds examples/bases/node/Dockerfile FROM debian:bookworm, which must be in the
# current store already (scripts/make-debian-base.sh), with the host's CA bundle (--ca,
# default /etc/ssl/certs/ca-certificates.crt) in the build context: the images trust what
# the host trusts, so npm in them works where outbound HTTPS is re-signed by a local CA.
#
# Both images are saved to the cache dir (default $IMAGO_BASE_CACHE, else
# ${XDG_CACHE_HOME:-~/.cache}/imago-bases), keyed by the Dockerfile, the CA bundle and the
# debian:bookworm image, and loaded from there when the key matches: a second run takes a
# second. apt in a RUN step needs a second uid (its _apt sandbox user): build as root or as
# a user with a subuid range; any user can load the cached images.
# Needs: ibuild and iimage on PATH.
set -euo pipefail
usage() { sed -n '2,17s/^# \{0,1\}//p' "$0" >&2; exit "${1:-2}"; }

cache=${IMAGO_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imago-bases}
ca=/etc/ssl/certs/ca-certificates.crt
while [ $# -gt 0 ]; do
  case $1 in
    --cache) [ $# -ge 2 ] || usage; cache=$2; shift 2 ;;
    --ca) [ $# -ge 2 ] || usage; ca=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "make-node-base: unknown argument $1" >&2; usage ;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
dockerfile=$here/examples/bases/node/Dockerfile
for p in ibuild iimage; do
  command -v "$p" >/dev/null || { echo "make-node-base: $p is not on PATH" >&2; exit 1; }
done
[ -r "$dockerfile" ] || { echo "make-node-base: $dockerfile is missing" >&2; exit 1; }
[ -r "$ca" ] || { echo "make-node-base: no CA bundle at $ca (apt-get install ca-certificates, or --ca FILE)" >&2; exit 1; }
base_id=$(iimage inspect debian:bookworm 2>/dev/null | grep -o '"Id": *"sha256:[0-9a-f]*"' | head -n 1 || true)
[ -n "$base_id" ] || { echo "make-node-base: debian:bookworm is not in the store: run scripts/make-debian-base.sh first" >&2; exit 1; }

key=$(cat "$dockerfile" "$ca" <(echo "$base_id") | sha256sum | cut -c1-16)
saved=$cache/debian-node-bookworm-$key.oci.tar
if [ -s "$saved" ]; then
  echo "make-node-base: loading the cached $saved" >&2
  iimage load -i "$saved"
  exit 0
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/imago-node-base.XXXXXX")
part=
trap 'rm -rf "$ctx" ${part:+"$part"}' EXIT
cp "$dockerfile" "$ctx/Dockerfile"
cp "$ca" "$ctx/host-ca-certificates.crt"
echo "make-node-base: building debian-node:bookworm-slim and debian-node:bookworm (about a minute)" >&2
ibuild --target slim -t debian-node:bookworm-slim "$ctx"
ibuild -t debian-node:bookworm "$ctx"

mkdir -p "$cache"
# Older keys' archives are stale now: keep only the one being written.
rm -f "$cache"/debian-node-bookworm-*.oci.tar
part=$(mktemp "$cache/.debian-node-bookworm.XXXXXX.tar")
iimage save --format oci-archive -o "$part" debian-node:bookworm debian-node:bookworm-slim
chmod 644 "$part"
mv "$part" "$saved"
part=
