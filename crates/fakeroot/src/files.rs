//! The supervisor's answers to the file calls: chown & co (the record), chmod of a
//! recorded file, the stat family (a recorded owner shown), mknod of a device (no-op).
//! Never: resolves a path itself (record.rs), keeps per-process state (table.rs).

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;

use crate::creds::KEEP;
use crate::record::{self, Target};
use crate::supervisor::{put, Answer, Stats};

/// mknod: a block device, or a character device other than the 0:0 whiteout, is a
/// no-op that succeeds (no node: devices cannot be made in a user namespace).
pub(crate) fn mknod(mode: u32, dev: u64) -> Answer {
    match mode & libc::S_IFMT {
        libc::S_IFBLK => Answer::Value(0),
        libc::S_IFCHR if dev != 0 => Answer::Value(0),
        _ => Answer::Continue,
    }
}

pub(crate) fn chown(
    listener: BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    stats: &mut Stats,
    t: Target<'_>,
    uid: u32,
    gid: u32,
) -> Answer {
    let root_only = [0, KEEP].contains(&uid) && [0, KEEP].contains(&gid);
    let (fd, st) = match record::open_and_stat(&t) {
        Ok(x) => x,
        // What the kernel would answer for the path itself.
        Err(e @ (Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EBADF)) => {
            return Answer::Fail(e)
        }
        // Not resolvable from here (a relative path that climbs out of its dir, a
        // magic link, a FUSE root that refuses processes outside the container's user
        // namespace: EACCES): no record; the call succeeds as under the no-op fakeroot.
        Err(e) => {
            tracing::debug!("fakeroot: chown not recorded: {e}");
            return if root_only {
                Answer::Continue
            } else {
                Answer::Value(0)
            };
        }
    };
    if !crate::sys::notif_id_valid(listener, n.id) {
        return Answer::Fail(Errno::ESRCH);
    }
    if !record::can_carry(st.st_mode) || record::on_root_fs(t.pid, fd.as_fd()) != Ok(true) {
        return if root_only {
            Answer::Continue
        } else {
            Answer::Value(0)
        };
    }
    if root_only && record::read(fd.as_fd()).is_none() {
        // Nothing recorded and root asked: the file is root's already.
        return Answer::Continue;
    }
    match record::write(fd.as_fd(), &st, uid, gid) {
        Ok(()) => stats.recorded += 1,
        Err(e) => tracing::debug!("fakeroot: chown not recorded: {e}"),
    }
    Answer::Value(0)
}

/// chmod: a recorded file's record takes the new mode; the call then runs as is.
pub(crate) fn chmod(
    listener: BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    t: Target<'_>,
    mode: u32,
) -> Answer {
    let Ok((fd, st)) = record::open_and_stat(&t) else {
        return Answer::Continue;
    };
    if record::can_carry(st.st_mode)
        && crate::sys::notif_id_valid(listener, n.id)
        && record::on_root_fs(t.pid, fd.as_fd()) == Ok(true)
    {
        if let Err(e) = record::set_mode(fd.as_fd(), mode) {
            tracing::debug!("fakeroot: chmod not recorded: {e}");
        }
    }
    Answer::Continue
}

/// The stat family: a file with a recorded owner other than root is stat'ed here and
/// the struct written into the caller (`statx`: Some((flags, mask))); anything else runs.
pub(crate) fn stat(
    listener: BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    stats: &mut Stats,
    t: Target<'_>,
    buf: u64,
    statx: Option<(u64, u64)>,
) -> Answer {
    let Ok((fd, st)) = record::open_and_stat(&t) else {
        return Answer::Continue;
    };
    let Some((uid, gid)) = record::faked_owner(fd.as_fd(), st.st_mode) else {
        return Answer::Continue;
    };
    let bytes = match statx {
        None => {
            let mut st = st;
            st.st_uid = uid;
            st.st_gid = gid;
            crate::sys::bytes_of(&st)
        }
        Some((flags, mask)) => match crate::sys::statx_raw(fd.as_fd(), flags as i32, mask as u32) {
            Ok(mut sx) => {
                sx.stx_uid = uid;
                sx.stx_gid = gid;
                crate::sys::bytes_of(&sx)
            }
            Err(_) => return Answer::Continue,
        },
    };
    if put(listener, n, buf, &bytes) {
        stats.faked_stats += 1;
        Answer::Value(0)
    } else {
        Answer::Continue
    }
}
