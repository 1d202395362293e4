//! Symlinks and fifos made by a process that believes it is another user (a faked
//! `setuid(33)`): neither can carry the ownership xattr, so the supervisor makes them
//! itself, where the caller's call would have, and notes that user as their owner in the
//! side record (side.rs) by their path in the container, as a real `setuid` would have
//! made them that user's (the group a set-group-id parent's: create.rs); the call
//! returns what the kernel's would. A fifo gets the caller's mode less the caller's
//! umask (not the supervisor's).
//! Root's run as is; one made at a name the side record still holds (a link or fifo
//! removed since) drops that entry: the new one is root's.
//! Anything else runs as is, unrecorded: a name with a trailing slash, a path that does
//! not resolve from here, a parent outside the container's root file system (a volume);
//! mknod of a socket (a layer tar holds none).
//! Never: follows a caller's path outside its root (create.rs and record.rs resolve),
//! reads a link's target (text, stored as given).

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::create::Creator;
use crate::record;
use crate::side::SideOwners;
use crate::supervisor::{Answer, Stats};

fn to_nix(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// The parent dir and last name of a new symlink or fifo, if the record can live there.
/// A trailing slash: the kernel refuses the name, so nothing is made here.
fn new_name(pid: i32, dirfd: i32, path: &CStr) -> Option<(OwnedFd, String)> {
    if path.to_bytes().ends_with(b"/") {
        return None;
    }
    crate::create::parent_of(pid, dirfd, path)
}

/// symlink/symlinkat(target, dirfd, path) of the caller of `c`.
pub(crate) fn symlink(
    c: &Creator<'_>,
    (stats, side): (&mut Stats, &mut SideOwners),
    dirfd: i32,
    path: u64,
    target: u64,
) -> Answer {
    let pid = c.n.pid as i32;
    if c.owner == (0, 0) {
        forget(side, pid, dirfd, path);
        return Answer::Continue;
    }
    // An unreadable argument: the kernel's own call says EFAULT.
    let Ok(path) = record::read_path(pid, path) else {
        return Answer::Continue;
    };
    let Ok(target) = record::read_path(pid, target) else {
        return Answer::Continue;
    };
    let Some((dir, name)) = new_name(pid, dirfd, &path) else {
        return Answer::Continue;
    };
    if !crate::sys::notif_id_valid(c.listener, c.n.id) {
        return Answer::Fail(Errno::ESRCH);
    }
    if let Err(e) = rustix::fs::symlinkat(target.as_c_str(), &dir, name.as_str()) {
        return Answer::Fail(to_nix(e));
    }
    if let Some(fd) = open_new(&dir, &name) {
        note(c, (stats, side), dir.as_fd(), fd.as_fd());
    }
    Answer::Value(0)
}

/// mknod/mknodat(dirfd, path, `mode` with S_IFIFO) of the caller of `c`.
pub(crate) fn mkfifo(
    c: &Creator<'_>,
    (stats, side): (&mut Stats, &mut SideOwners),
    dirfd: i32,
    path: u64,
    mode: u32,
) -> Answer {
    let pid = c.n.pid as i32;
    if c.owner == (0, 0) {
        forget(side, pid, dirfd, path);
        return Answer::Continue;
    }
    let Ok(path) = record::read_path(pid, path) else {
        return Answer::Continue;
    };
    let Some((dir, name)) = new_name(pid, dirfd, &path) else {
        return Answer::Continue;
    };
    if !crate::sys::notif_id_valid(c.listener, c.n.id) {
        return Answer::Fail(Errno::ESRCH);
    }
    let perm = Mode::from_raw_mode(mode & 0o7777 & !crate::create::umask(pid));
    if let Err(e) = rustix::fs::mknodat(&dir, name.as_str(), FileType::Fifo, perm, 0) {
        return Answer::Fail(to_nix(e));
    }
    if let Some(fd) = open_new(&dir, &name) {
        crate::create::undo_own_umask(fd.as_fd(), libc::S_IFIFO, perm.bits());
        note(c, (stats, side), dir.as_fd(), fd.as_fd());
    }
    Answer::Value(0)
}

/// The entry just made at `name` in `dir`, not followed (O_PATH: a fifo does not block).
fn open_new(dir: &OwnedFd, name: &str) -> Option<OwnedFd> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::debug!("fakeroot: a new link or fifo not recorded: {e}");
            None
        }
    }
}

/// Note the caller's user as the owner of `fd`, new in `dir`.
fn note(
    c: &Creator<'_>,
    (stats, side): (&mut Stats, &mut SideOwners),
    dir: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
) {
    match crate::side::path_in_root(c.n.pid as i32, fd) {
        Ok(path) => {
            let (uid, gid) = crate::create::owner_in(dir, c.owner);
            side.chown(path, uid, gid);
            stats.recorded += 1;
        }
        Err(e) => tracing::debug!("fakeroot: a new link or fifo not recorded: {e}"),
    }
}

/// Root makes a link or fifo at `path` (in its memory): an entry left at that name (its file removed
/// since) is dropped. A name that exists keeps its entry (the call fails with EEXIST).
fn forget(side: &mut SideOwners, pid: i32, dirfd: i32, path: u64) {
    if side.is_empty() {
        return;
    }
    let Ok(path) = record::read_path(pid, path) else {
        return;
    };
    let Some((dir, name)) = new_name(pid, dirfd, &path) else {
        return;
    };
    match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => {}
        _ => return,
    }
    if let Ok(p) = crate::side::path_of_name(pid, dir.as_fd(), &name) {
        side.chown(p, 0, 0);
    }
}
