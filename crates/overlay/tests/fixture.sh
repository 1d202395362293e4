#!/usr/bin/env bash
# fixture.sh TOP BOTTOM — the two lower layers posix.sh runs on (TOP over BOTTOM), in
# overlay's on-disk form (0:0 char device whiteouts, user.overlay.opaque), so kernel
# overlayfs (mounted with userxattr) and the FUSE overlay read them alike. Run as root.
set -euo pipefail
top=$1 bottom=$2
mkdir -p "$top" "$bottom"
xattr() { python3 -c 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)' "$@"; }

cd "$bottom"
echo base > base
mkdir -p dir/sub mvdir/inner edir opq big e2
echo one > dir/one; echo two > dir/two; echo deep > dir/sub/deep
echo old > opq/old
echo x > edir/x
echo a > e2/a; echo b > e2/b
echo mmap-me > mm
# A program run from the mount: exec maps it and the kernel asks for pages in requests
# of many sizes (a reply longer than its request fails the exec with SIGBUS).
cp /bin/busybox prog
echo m > mvdir/inner/file; ln -s inner/file mvdir/link
echo gone > gone
echo hard > hl1; ln hl1 hl2
echo xa > xa; xattr xa user.test hello
ln -s base lnk
echo ro > ro; chmod 444 ro
echo suid > suid; chmod 4755 suid
echo owned > owned; chown 7:8 owned
mkfifo fifo
truncate -s 8M sparse
printf 'head' | dd of=sparse conv=notrunc status=none
printf 'middle' | dd of=sparse bs=1M seek=4 conv=notrunc status=none
for i in $(seq -w 0 5999); do : > "big/f$i"; done
touch -d '2001-02-03 04:05:06' dir/one base

cd "$top"
mkdir -p dir opq edir
echo three > dir/three
echo base2 > base2
mknod gone c 0 0
mknod edir/x c 0 0
xattr opq user.overlay.opaque y
echo new > opq/new
