#!/usr/bin/env bash
# posix.sh MERGED — POSIX behaviour of an overlay mounted on MERGED over fixture.sh's
# lowers. Prints what it sees, deterministically (no inode numbers, no times it did not
# set, no sizes of directories): run on kernel overlayfs and on the FUSE overlay, the
# outputs must be equal. CHOWN_ID (default 1) is the id chown tests use.
set -u
cd "$1" || exit 1
id=${CHOWN_ID:-1}
step() { printf '\n== %s\n' "$*"; }
# Every entry but big/: type, mode, owner; size and links for non-directories.
tree() {
  find "${1:-.}" -path ./big -prune -o -print | LC_ALL=C sort | while IFS= read -r f; do
    if [ -d "$f" ] && [ ! -L "$f" ]; then stat -c '%n %F %a %u:%g' "$f"
    elif [ -b "$f" ] || [ -c "$f" ]; then stat -c '%n %F %a %u:%g %t:%T' "$f"
    else stat -c '%n %F %a %u:%g %s %h' "$f"; fi
  done
}
run() { "$@" 2>&1 | sed 's/^[a-z]*: //'; }
py() { python3 -c "$@"; }
xattrs() { py 'import os,sys
for p in sys.argv[1:]:
    ks = sorted(os.listxattr(p, follow_symlinks=False))
    print(p, [(k, os.getxattr(p, k, follow_symlinks=False).decode()) for k in ks])' "$@"; }

step initial tree; tree
step contents; cat base dir/one dir/two dir/three dir/sub/deep lnk opq/new; readlink lnk
step hidden; run ls gone opq/old edir/x; ls opq edir
step copy-up by append; echo app >> base; cat base; stat -c '%n %a %u:%g %s' base
step write in the middle; printf XY | dd of=dir/one bs=1 seek=1 conv=notrunc status=none; cat dir/one
step metadata copy-up; chmod 600 dir/two; chown "$id:$id" owned; chown "$id" suid
touch -d '2011-12-13 14:15:16' dir/sub/deep; touch -h -d '2012-01-01 00:00:00' lnk
stat -c '%n %a %u:%g %Y' dir/two owned suid dir/sub/deep; stat -c '%n %Y' lnk
step truncate; truncate -s 3 base2; cat base2; echo; truncate -s 10000 base2; stat -c '%n %s' base2
: > ro; stat -c '%n %a %s' ro
step xattrs; xattrs xa opq
py 'import os; os.setxattr("base", "user.new", b"v1"); os.setxattr("dir", "user.d", b"dv"); os.removexattr("xa", "user.test")'
xattrs xa base dir
# Overlay's own names are escaped (kernel 6.7+): the user's copy is a plain xattr.
py 'import os; os.setxattr("base", "user.overlay.opaque", b"y")'; xattrs base
step unlink and recreate; rm dir/two gone2 2>/dev/null; ls dir; echo again > dir/two; cat dir/two
rm base2; run cat base2; echo base2-new > base2; cat base2
step open and unlinked; exec 3< dir/three; rm dir/three; cat <&3; stat -L -c '%s %h' /dev/fd/3; exec 3<&-
echo w > opened; exec 4<> opened; rm opened; echo more >&4; stat -L -c '%s %h' /dev/fd/4; exec 4<&-
step rmdir of a merged dir; run rmdir dir; rm -r dir; ls; run ls dir; mkdir dir; ls -a dir; echo in > dir/one; ls dir
step mkdir over a whiteout; mkdir gone; ls -a gone; rmdir gone; run ls gone
step rename over lower files; mv base2 base; cat base; run cat base2
mv lnk lnk2; readlink lnk2; run ls lnk; mv xa ro; cat ro
step rename dirs; mv mvdir mvdir2; tree mvdir2; run ls mvdir
mkdir newd; echo f > newd/f; mv newd newd2; tree newd2
run mv -T newd2 opq; mv -T newd2 edir; ls edir; cat edir/f
mkdir -p up/a up2; mv up/a up/b; ls up; mv up/b up2/; ls up up2
rm e2/a e2/b; mkdir src2; echo s > src2/s; mv -T src2 e2; ls -a e2
chown -h "$id" lnk2; touch -d '2003-04-05 06:07:08' e2; stat -c '%n %u %Y' lnk2 e2
step hardlinks; ln hl1 hl3; stat -c '%n %h' hl1 hl3; echo mod >> hl3; cat hl1 hl3
ln dir/one dir/one-link; stat -c '%n %h' dir/one dir/one-link
# The copy-up's holes are checked on the upper (kernel overlay may fill some in).
step mmap; py 'import mmap, os
fd = os.open("mm", os.O_RDWR); m = mmap.mmap(fd, 4); m[0:2] = b"MM"; m.flush(); m.close(); os.close(fd)'
cat mm
step exec; ./prog echo exec-ok; cmp prog /bin/busybox && echo prog same
step sparse; du -k sparse; chmod 640 sparse; stat -c '%n %s' sparse
cmp <(head -c 4 sparse) <(printf head) && echo head ok
dd if=sparse bs=1M skip=4 count=1 status=none | head -c 6; echo
truncate -s 64M sparse2; du -k sparse2; printf z | dd of=sparse2 bs=1M seek=32 conv=notrunc status=none; du -k sparse2
step specials; mkfifo newfifo; run mknod newchr c 1 3; chmod 600 fifo
py 'import socket; s = socket.socket(socket.AF_UNIX); s.bind("sock")'
run mknod wh c 0 0
tree . | grep -E '^\./(newfifo|newchr|fifo|sock|wh) '
step symlinks; ln -s no/where dangling; readlink dangling; run cat dangling; ln -s base lnk3; cat lnk3
step owners of new entries; mkdir -m 1777 pub; chgrp "$id" dir
setpriv --reuid="$id" --regid="$id" --clear-groups sh -c 'echo u > pub/mine; mkdir pub/d; ln -s x pub/l; mkfifo pub/p'
mkdir sg; chgrp "$id" sg; chmod 2775 sg; : > sg/f; mkdir sg/d; ln -s f sg/l
setpriv --reuid="$id" --regid="$id" --clear-groups sh -c 'umask 022; : > pub/suid; chmod 4755 pub/suid'
tree pub; tree sg
step umask; (umask 027; : > um; mkdir umd); stat -c '%n %a' um umd
step big dir; for i in $(seq 6000 9999); do : > "big/f$i"; done
ls big | wc -l; ls -f big | LC_ALL=C sort | md5sum; find big -type f | wc -l
ls big | head -2; ls big | tail -2
rm big/f0*; ls big | wc -l
step final tree; tree
