#!/usr/bin/env bash
# make-busybox-rootfs.sh OUT.tar — an offline busybox root file system from Debian's
# busybox-static, as a deterministic tar (fixed owner, mtime and order): the applet
# links, /etc/passwd, /etc/group, /tmp 1777. Shared by the README's demo and the tests.
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUT.tar}
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-busybox-rootfs: $bb missing: apt-get install busybox-static" >&2; exit 1; }
"$bb" --list-full >/dev/null 2>&1 || { echo "make-busybox-rootfs: $bb is not busybox-static" >&2; exit 1; }
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
install -d "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,home,var}
install -d -m 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list-full); do
  [ "$a" = bin/busybox ] || ln -sf /bin/busybox "$root/$a"
done
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
www-data:x:33:
nogroup:x:65534:
G
tar --numeric-owner --owner=0 --group=0 --mtime='2024-01-01 00:00:00Z' --sort=name \
    -C "$root" -cf "$out" .
