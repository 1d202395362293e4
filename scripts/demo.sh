#!/usr/bin/env bash
# demo.sh [--offline] — the main job: replays the tutorial (docs/tutorial.md) end to end on
# a fresh Debian 12 machine. Run as root, it prepares the host (scripts/setup-host.sh),
# builds imago in release, and then, as the unprivileged user imago-sub, with a store of
# its own:
#   1. makes the base images from Debian's packages (scripts/make-debian-base.sh,
#      scripts/make-node-base.sh; cached in ~imago-sub/.cache/imago-bases);
#   2. builds the cowsay image (cowsay-dockerfile: apt in RUN steps) and runs it;
#   3. builds my-website (npm install in a RUN step), runs it detached with a published
#      port (`irun -dit -p 8080:8080 --name my-website`), fetches the page with curl, and
#      lists, stops and removes the container with ictr;
#   4. tags and pushes my-website to a docker-registry on 127.0.0.1;
#   5. builds the multi-stage variant and shows with `iimage ls` that it is smaller.
# Run as another user, it does the same as that user (the host must be prepared already).
#
# --offline (or, by itself, when deb.debian.org cannot be reached, said on stderr): the
# busybox examples (examples/cowsay, examples/website, examples/website-multistage) on a
# base made from the host's busybox-static, which needs no network at all.
set -euo pipefail

offline=0 user_part=0
for a in "$@"; do
  case $a in
    --offline) offline=1 ;;
    --user-part) user_part=1 ;; # internal: the part that runs as the demo user
    -h|--help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

# Bold headings on a terminal only: a log file gets no escape codes.
if [ -t 1 ]; then say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }; else say() { printf '\n== %s\n' "$*"; }; fi
note() { echo "demo: $*" >&2; }
# A loopback port nobody listens on (probed with bash's /dev/tcp; no extra tools).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "demo: no free loopback port found" >&2; return 1
}
# GET a page, waiting up to 20 s for the server to come up.
fetch() {
  for _ in $(seq 100); do
    curl -fsS --max-time 5 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  curl -fsS --max-time 5 "$1"
}
human() { awk -v b="$1" 'BEGIN { if (b >= 1e6) printf "%.1f MB", b / 1e6; else printf "%.1f kB", b / 1e3 }'; }

# ---- the part run as the demo user (imago-sub), in the world-readable work dir --------
reg_pid=
user_cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; fi
  # The store's unpacked layers hold files of the user's subordinate ids, which only
  # imago (inside the user's id mapping) can remove: empty the store with iimage first.
  # A demo stopped half-way may leave its detached container running: remove it first.
  local ids
  ids=$(ictr ps -aq 2>/dev/null || true)
  # shellcheck disable=SC2086 # one id per word
  [ -z "$ids" ] || ictr rm -f $ids >/dev/null 2>&1 || true
  ids=$(iimage ls -q 2>/dev/null || true)
  # shellcheck disable=SC2086 # one id per word
  [ -z "$ids" ] || iimage rm -f $ids >/dev/null 2>&1 || true
  iimage gc --layers --build-cache >/dev/null 2>&1 || true
  rm -rf "$IMAGO_ROOT" 2>/dev/null || true
}

user_part() {
  work=$(cd "$(dirname "$0")/.." && pwd)
  export PATH="$work/bin:$PATH"
  IMAGO_ROOT="$work/store-$(id -un)"
  export IMAGO_ROOT
  cache=${IMAGO_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imago-bases}
  trap user_cleanup EXIT
  start=$SECONDS
  site_port=8080
  if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
    site_port=$(free_port)
    note "port 8080 is taken on this host: publishing on $site_port instead"
  fi

  if [ "$offline" = 1 ]; then
    say "the offline base: busybox from the host's busybox-static"
    "$work/scripts/make-busybox-rootfs.sh" "$work/busybox-rootfs.tar"
    iimage import --change 'CMD ["sh"]' "$work/busybox-rootfs.tar" busybox:latest
    say "ibuild -t cowsay examples/cowsay && irun --rm cowsay"
    ibuild -t cowsay "$work/examples/cowsay"
    irun --rm cowsay
    irun --rm cowsay "hello from $(id -un), no daemon"
    say "ibuild -t website examples/website"
    ibuild -t website "$work/examples/website"
    site=website
  else
    say "the Debian base: mmdebstrap, then iimage import (scripts/make-debian-base.sh)"
    "$work/scripts/make-debian-base.sh" --cache "$cache"
    say "the Node.js bases: ibuild examples/bases/node (scripts/make-node-base.sh)"
    "$work/scripts/make-node-base.sh" --cache "$cache"
    cd "$work/examples/tutorial/cowsay"
    say "ibuild --build-arg BASE=debian:bookworm -t cowsay -f cowsay-dockerfile ."
    ibuild --build-arg BASE=debian:bookworm -t cowsay -f cowsay-dockerfile .
    say "irun --rm cowsay"
    irun --rm cowsay
    irun --rm cowsay "Hello from $(id -un)!"
    cd "$work/examples/tutorial/my-website"
    say "ibuild --build-arg BASE=debian-node:bookworm -t my-website ."
    ibuild --build-arg BASE=debian-node:bookworm -t my-website .
    site=my-website
  fi

  say "irun -dit -p $site_port:8080 --name $site $site"
  irun -dit -p "$site_port:8080" --name "$site" "$site"
  say "curl http://localhost:$site_port/"
  fetch "http://127.0.0.1:$site_port/"
  say "ictr ps"
  ictr ps
  say "ictr logs $site"
  ictr logs "$site"
  say "ictr stop $site && ictr rm $site"
  ictr stop "$site"
  ictr rm "$site"

  cd "$work"
  say "a registry on 127.0.0.1 (docker-registry), itag and ipush"
  reg_port=$(free_port)
  mkdir -p "$work/registry-$(id -un)"
  cat > "$work/registry-$(id -un)/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry-$(id -un)/data
http:
  addr: 127.0.0.1:$reg_port
YML
  docker-registry serve "$work/registry-$(id -un)/config.yml" >"$work/registry-$(id -un)/log" 2>&1 &
  reg_pid=$!
  fetch "http://127.0.0.1:$reg_port/v2/" >/dev/null
  remote=127.0.0.1:$reg_port/tutorial/$site:1
  echo "+ itag $site $remote"
  itag "$site" "$remote"
  echo "+ ipush $remote"
  ipush "$remote"
  echo "+ curl http://127.0.0.1:$reg_port/v2/tutorial/$site/tags/list"
  fetch "http://127.0.0.1:$reg_port/v2/tutorial/$site/tags/list"
  echo

  if [ "$offline" = 1 ]; then
    say "ibuild -t website-ms examples/website-multistage: the multi-stage variant"
    ibuild -t website-ms "$work/examples/website-multistage"
    small=website-ms
  else
    cd "$work/examples/tutorial/my-website"
    say "the multi-stage variant: ibuild -f Dockerfile.multistage -t my-website:multistage ."
    ibuild --build-arg BASE=debian-node:bookworm --build-arg RUN_BASE=debian-node:bookworm-slim \
      -f Dockerfile.multistage -t my-website:multistage .
    small=my-website:multistage
  fi
  say "iimage ls"
  iimage ls
  size_of() {
    iimage inspect "$1" | grep -o '"Size": *[0-9]*' | head -n 1 | grep -o '[0-9]*$'
  }
  big_size=$(size_of "$site") small_size=$(size_of "$small")
  if [ "$small_size" -ge "$big_size" ]; then
    echo "demo: the multi-stage image ($small_size bytes) is not smaller than $site ($big_size bytes)" >&2
    exit 1
  fi
  echo "$small ($(human "$small_size")) is $(human $((big_size - small_size))) smaller than $site ($(human "$big_size"))"
  say "done: the tutorial took $((SECONDS - start)) s as $(id -un)"
}

if [ "$user_part" = 1 ]; then
  user_part
  exit 0
fi

# ---- the part run by whoever starts the demo (root on a fresh machine) ----------------
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] && scripts/setup-host.sh
if [ "$offline" = 0 ] && ! curl -fsS --max-time 10 -o /dev/null http://deb.debian.org/debian/dists/bookworm/InRelease; then
  note "deb.debian.org cannot be reached: the offline demo (busybox examples) instead"
  offline=1
fi
cargo build --workspace --release --locked

# Everything the demo needs, in a world-readable dir: the checkout may sit where other
# users cannot enter (e.g. under /root).
work=$(mktemp -d "${IMAGO_DEMO_TMP:-/tmp}/imago-demo.XXXXXX")
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
install -d -m 755 "$work/bin" "$work/scripts"
for p in ibuild irun ictr ipull ipush ilogin ilogout itag iimage; do install -m 755 "target/release/$p" "$work/bin/"; done
cp -r examples "$work/examples"
cp scripts/demo.sh scripts/make-busybox-rootfs.sh scripts/make-debian-base.sh scripts/make-node-base.sh "$work/scripts/"
chmod -R a+rX "$work"

flags=(--user-part)
[ "$offline" = 1 ] && flags+=(--offline)
if [ "$(id -u)" = 0 ]; then
  id imago-sub >/dev/null 2>&1 || { echo "demo.sh: user imago-sub is missing (scripts/setup-host.sh makes it)" >&2; exit 1; }
  chown imago-sub: "$work"
  runuser -u imago-sub -- env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    HOME="$(getent passwd imago-sub | cut -d: -f6)" LANG=C.UTF-8 TERM="${TERM:-dumb}" "$work/scripts/demo.sh" "${flags[@]}"
else
  "$work/scripts/demo.sh" "${flags[@]}"
fi
