#!/usr/bin/env bash
# demo.sh — the main job for a newcomer on a fresh Debian 12 machine: prepare the host
# (as root), build imago, make the offline busybox base image, build the example image
# from examples/ and run it — as root and, rootless, as the unprivileged user imago-sub.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] && scripts/setup-host.sh
cargo build --workspace --release --locked
bins=$(mktemp -d /tmp/imago-demo-bins.XXXXXX); chmod 755 "$bins"
for b in target/release/i*; do [ -x "$b" ] && [ -f "$b" ] && cp "$b" "$bins/"; done
export PATH="$bins:$PATH"

run_demo() {  # run_demo: as the calling user, with a fresh store
  local store; store=$(mktemp -d /tmp/imago-demo-store.XXXXXX)
  export IMAGO_ROOT=$store
  local tar=$store/busybox-rootfs.tar
  scripts/make-busybox-rootfs.sh "$tar"
  iimage import --change 'CMD ["sh"]' "$tar" busybox:latest
  iimage ls
  if [ -x "$bins/ibuild" ]; then
    ibuild -t hello examples/hello
    irun --rm hello
    irun --rm hello imago
  else
    irun --rm busybox echo "hello from a rootless imago container"
  fi
}

run_demo
if [ "$(id -u)" = 0 ] && id imago-sub >/dev/null 2>&1; then
  echo "== again, rootless, as imago-sub"
  runuser -u imago-sub -- env -i PATH="$bins:/usr/bin:/bin" HOME=/home/imago-sub \
    bash -c "cd '$PWD' && $(declare -f run_demo); bins='$bins'; run_demo"
fi
