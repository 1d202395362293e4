#!/usr/bin/env bash
# demo.sh — the main job for a newcomer on a fresh Debian 12 machine: prepare the host
# (as root), build imago, make the offline busybox base image from Debian's busybox-static,
# build the example image examples/cowsay with ibuild and run it with irun — as the
# calling user and, when run as root, again rootless as the unprivileged user imago-sub.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] && scripts/setup-host.sh
cargo build --workspace --release --locked

# Everything the demo needs, in a world-readable dir: the checkout may sit where
# other users cannot enter (e.g. under /root).
work=$(mktemp -d /tmp/imago-demo.XXXXXX); chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
install -d -m 755 "$work/bin"
for p in ibuild irun ipull ipush ilogin itag iimage; do install -m 755 "target/release/$p" "$work/bin/"; done
cp -r examples "$work/examples"; cp scripts/make-busybox-rootfs.sh "$work/"
chmod -R a+rX "$work"

cat > "$work/demo-as-user.sh" <<'DEMO'
#!/usr/bin/env bash
# One user's demo, with a store of its own.
set -euo pipefail
work=$(dirname "$0"); export PATH="$work/bin:$PATH"
export IMAGO_ROOT; IMAGO_ROOT=$(mktemp -d /tmp/imago-demo-store.XXXXXX)
"$work/make-busybox-rootfs.sh" "$IMAGO_ROOT/busybox-rootfs.tar"
iimage import --change 'CMD ["sh"]' "$IMAGO_ROOT/busybox-rootfs.tar" busybox:latest
ibuild -t cowsay "$work/examples/cowsay"
iimage ls
irun --rm cowsay
irun --rm cowsay "hello from $(id -un), no daemon"
iimage rm cowsay busybox >/dev/null
rm -rf "$IMAGO_ROOT" 2>/dev/null || true
DEMO
chmod 755 "$work/demo-as-user.sh"

echo "== as $(id -un)"
"$work/demo-as-user.sh"
if [ "$(id -u)" = 0 ] && id imago-sub >/dev/null 2>&1; then
  echo "== again, rootless, as imago-sub"
  runuser -u imago-sub -- env -i PATH=/usr/bin:/bin HOME=/home/imago-sub "$work/demo-as-user.sh"
fi
