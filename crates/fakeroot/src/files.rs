//! The supervisor's answers to the file calls: chown & co (the record), chmod of a
//! recorded file, the stat family (a recorded owner shown, and the device a plain file
//! stands for: device.rs); for symlinks, fifos and sockets the side record (side.rs).
//! Never: resolves a path itself (record.rs), keeps per-process state (table.rs).

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;

use crate::creds::KEEP;
use crate::record::{self, Target};
use crate::side::SideOwners;
use crate::supervisor::{put, Answer, Stats};

pub(crate) fn chown(
    listener: BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    (stats, side): (&mut Stats, &mut SideOwners),
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
        // magic link, a FUSE root mounted with `allow_other`, which refuses processes
        // outside the container's user namespace: EACCES): no record; the call succeeds
        // as under the no-op fakeroot.
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
    if record::on_root_fs(t.pid, fd.as_fd()) != Ok(true) {
        return if root_only {
            Answer::Continue
        } else {
            Answer::Value(0)
        };
    }
    if !record::can_carry(st.st_mode) {
        return side_chown((stats, side), t.pid, fd.as_fd(), (uid, gid), root_only);
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

/// chown of a symlink, fifo or socket: noted in the side record by its path.
fn side_chown(
    (stats, side): (&mut Stats, &mut SideOwners),
    pid: i32,
    fd: BorrowedFd<'_>,
    (uid, gid): (u32, u32),
    root_only: bool,
) -> Answer {
    match crate::side::path_in_root(pid, fd) {
        Ok(path) if root_only && side.get(&path).is_none() => Answer::Continue,
        Ok(path) => {
            side.chown(path, uid, gid);
            stats.recorded += 1;
            if let Err(e) = crate::side::copy_up(fd) {
                tracing::debug!("fakeroot: a lower special file not copied up: {e}");
            }
            Answer::Value(0)
        }
        Err(e) => {
            tracing::debug!("fakeroot: chown of a special file not recorded: {e}");
            if root_only {
                Answer::Continue
            } else {
                Answer::Value(0)
            }
        }
    }
}

/// The owner noted for a symlink, fifo or socket, if any.
fn side_shown(side: &SideOwners, pid: i32, fd: BorrowedFd<'_>) -> Option<record::Shown> {
    if side.is_empty() {
        return None;
    }
    let (uid, gid) = side.get(&crate::side::path_in_root(pid, fd).ok()?)?;
    Some(record::Shown {
        uid,
        gid,
        device: None,
    })
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
    (stats, side): (&mut Stats, &SideOwners),
    t: Target<'_>,
    buf: u64,
    statx: Option<(u64, u64)>,
) -> Answer {
    let Ok((fd, st)) = record::open_and_stat(&t) else {
        return Answer::Continue;
    };
    let shown = match record::can_carry(st.st_mode) {
        true => record::shown(fd.as_fd(), st.st_mode),
        false => side_shown(side, t.pid, fd.as_fd()),
    };
    let Some(shown) = shown else {
        return Answer::Continue;
    };
    let bytes = match statx {
        None => {
            let mut st = st;
            st.st_uid = shown.uid;
            st.st_gid = shown.gid;
            if let Some((t, major, minor)) = shown.device {
                st.st_mode = (st.st_mode & !libc::S_IFMT) | t;
                st.st_rdev = libc::makedev(major, minor);
            }
            crate::sys::bytes_of(&st)
        }
        Some((flags, mask)) => match crate::sys::statx_raw(fd.as_fd(), flags as i32, mask as u32) {
            Ok(mut sx) => {
                sx.stx_uid = shown.uid;
                sx.stx_gid = shown.gid;
                if let Some((t, major, minor)) = shown.device {
                    // The type bits fit the u16 stx_mode (S_IFMT is 0o170000).
                    sx.stx_mode = (sx.stx_mode & !(libc::S_IFMT as u16)) | t as u16;
                    sx.stx_rdev_major = major;
                    sx.stx_rdev_minor = minor;
                }
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
