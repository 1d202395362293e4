//! Files made by a process that believes it is another user (a faked `setuid(33)`):
//! the supervisor makes them itself, where the caller's call would have, and records
//! that user as their owner, as a real `setuid` would have made them; the call then
//! returns what the kernel's would.
//! - mkdir: made here with the caller's mode less its umask; the call returns 0.
//! - open with O_CREAT of a name that does not exist yet: the file is made here (empty,
//!   the caller's mode less its umask) and recorded; the caller's own open then runs and
//!   opens it. With O_EXCL (which would now fail) the supervisor opens it with the
//!   caller's flags and hands the caller that fd (SECCOMP_IOCTL_NOTIF_ADDFD).
//!
//! The mode is the caller's less the caller's umask alone: the supervisor's own umask
//! (its process's, shared with every thread, so left as it is) is undone on what it
//! made.
//! In a set-group-id dir the group recorded is the dir's, not the caller's, and a new
//! dir keeps the set-group-id bit the kernel gave it, as under a real `setuid`.
//!
//! Anything else runs as is, unrecorded: an existing name, a path that does not resolve
//! from here, a parent outside the container's root file system (a volume). Symlinks
//! and fifos, which cannot carry the record: special.rs; devices: device.rs.
//! Never: follows a caller's path outside its root (record.rs resolves), makes anything
//! for a process whose fake ids are root's.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::record::{self, Target};
use crate::supervisor::{Answer, Stats};

/// The caller of one notification, and who it believes it is.
pub(crate) struct Creator<'a> {
    pub listener: BorrowedFd<'a>,
    pub n: &'a libc::seccomp_notif,
    pub owner: (u32, u32),
}

/// `(parent, name)` of a path: the parent `None` for a bare name (the start dir);
/// `None` when there is no last name to make (`/`, `.`, `..`).
fn split(path: &CStr) -> Option<(Option<CString>, String)> {
    let b = path.to_bytes();
    let end = b.iter().rposition(|c| *c != b'/')? + 1;
    let b = &b[..end];
    let (parent, name) = match b.iter().rposition(|c| *c == b'/') {
        None => (None, b),
        Some(0) => (Some(CString::from(c"/")), &b[1..]),
        Some(i) => (Some(CString::new(&b[..i]).ok()?), &b[i + 1..]),
    };
    let name = std::str::from_utf8(name).ok()?;
    match name {
        "." | ".." => None,
        n => Some((parent, n.to_string())),
    }
}

/// The caller's umask (`Umask:` of /proc/PID/status, Linux 4.7); 022 when unreadable.
pub(crate) fn umask(pid: i32) -> u32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Give `fd`, an entry the supervisor has just made (a file type of `kind`, opened
/// without following), the permission bits `perm` (the caller's mode less the caller's
/// umask) that the supervisor's own umask may have taken some of; the bits above them
/// (a set-group-id inherited from the parent dir) stay as the kernel set them. Another
/// type under that name (swapped in meanwhile) is left alone.
pub(crate) fn undo_own_umask(fd: BorrowedFd<'_>, kind: u32, perm: u32) {
    let Ok(st) = crate::sys::fstat_raw(fd) else {
        return;
    };
    if st.st_mode & libc::S_IFMT != kind || st.st_mode & 0o777 == perm & 0o777 {
        return;
    }
    let mode = (st.st_mode & 0o7000) | (perm & 0o777);
    // Through the fd: an O_PATH one refuses fchmod, and the name may have moved.
    let through = format!("/proc/self/fd/{}", fd.as_raw_fd());
    if let Err(e) = rustix::fs::chmod(through.as_str(), Mode::from_raw_mode(mode)) {
        tracing::debug!("fakeroot: a new entry's mode not set: {e}");
    }
}

/// The parent dir of `path` for the caller, if the record can live there.
fn parent(c: &Creator<'_>, dirfd: i32, path: &CStr) -> Option<(OwnedFd, String)> {
    parent_of(c.n.pid as i32, dirfd, path)
}

/// The parent dir of `path` for process `pid` and the last name, if the record can live
/// there (the container's root file system).
pub(crate) fn parent_of(pid: i32, dirfd: i32, path: &CStr) -> Option<(OwnedFd, String)> {
    let (parent, name) = split(path)?;
    let t = Target {
        pid,
        dirfd,
        path: parent.as_deref(),
        follow: true,
    };
    let dir = record::resolve(&t).ok()?;
    match record::on_root_fs(pid, dir.as_fd()) {
        Ok(true) => Some((dir, name)),
        _ => None,
    }
}

/// The owner of an entry `owner` makes in `dir`, as the kernel gives it: in a
/// set-group-id dir the dir's group (its recorded one, else root's), not `owner`'s.
pub(crate) fn owner_in(dir: BorrowedFd<'_>, owner: (u32, u32)) -> (u32, u32) {
    match crate::sys::fstat_raw(dir) {
        Ok(st) if st.st_mode & libc::S_ISGID != 0 => {
            (owner.0, record::read(dir).map_or(0, |r| r.gid))
        }
        _ => owner,
    }
}

/// Record the owner of `fd`, new in `dir`.
fn record_new(c: &Creator<'_>, stats: &mut Stats, dir: BorrowedFd<'_>, fd: BorrowedFd<'_>) {
    let (uid, gid) = owner_in(dir, c.owner);
    let done = crate::sys::fstat_raw(fd).and_then(|st| record::write(fd, &st, uid, gid));
    match done {
        Ok(()) => stats.recorded += 1,
        Err(e) => tracing::debug!("fakeroot: owner of a new file not recorded: {e}"),
    }
}

fn to_nix(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// mkdir/mkdirat.
pub(crate) fn mkdir(
    c: &Creator<'_>,
    stats: &mut Stats,
    dirfd: i32,
    path: &CStr,
    mode: u32,
) -> Answer {
    let Some((dir, name)) = parent(c, dirfd, path) else {
        return Answer::Continue;
    };
    if !crate::sys::notif_id_valid(c.listener, c.n.id) {
        return Answer::Fail(Errno::ESRCH);
    }
    let perm = mode & 0o1777 & !umask(c.n.pid as i32);
    if let Err(e) = rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(perm)) {
        return Answer::Fail(to_nix(e));
    }
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if let Ok(fd) = rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty()) {
        // Before the record, which takes the mode it finds.
        undo_own_umask(fd.as_fd(), libc::S_IFDIR, perm);
        record_new(c, stats, dir.as_fd(), fd.as_fd());
    }
    Answer::Value(0)
}

/// open/openat/creat with O_CREAT in `flags`.
pub(crate) fn open(
    c: &Creator<'_>,
    stats: &mut Stats,
    dirfd: i32,
    path: &CStr,
    flags: i32,
    mode: u32,
) -> Answer {
    if flags & libc::O_CREAT == 0 || flags & libc::O_DIRECTORY != 0 {
        return Answer::Continue;
    }
    let Some((dir, name)) = parent(c, dirfd, path) else {
        return Answer::Continue;
    };
    match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => {}
        // It exists (or cannot be told): the open makes nothing.
        _ => return Answer::Continue,
    }
    if !crate::sys::notif_id_valid(c.listener, c.n.id) {
        return Answer::Fail(Errno::ESRCH);
    }
    let perm = mode & 0o7777 & !umask(c.n.pid as i32);
    let make = OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(made) = rustix::fs::openat(&dir, name.as_str(), make, Mode::from_raw_mode(perm)) else {
        // Made meanwhile, or refused: the caller's own open says what the kernel says.
        return Answer::Continue;
    };
    undo_own_umask(made.as_fd(), libc::S_IFREG, perm);
    record_new(c, stats, dir.as_fd(), made.as_fd());
    drop(made);
    if flags & libc::O_EXCL == 0 {
        return Answer::Continue;
    }
    // The caller's O_EXCL open would fail on the file just made: open it for the caller.
    let keep = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC);
    let want = OFlags::from_bits_retain(keep as u32) | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let handed = rustix::fs::openat(&dir, name.as_str(), want, Mode::empty())
        .map_err(to_nix)
        .and_then(|fd| {
            let cloexec = flags & libc::O_CLOEXEC != 0;
            crate::sys::notif_addfd_send(c.listener, c.n.id, fd.as_fd(), cloexec)
        });
    match handed {
        Ok(()) => Answer::Sent,
        Err(e) => {
            tracing::debug!("fakeroot: new file not handed over: {e}");
            // Undo, so that the caller's own open makes it (unrecorded) and fails or
            // succeeds as it would have; a failed unlink leaves it to report EEXIST.
            let undone = rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty());
            if undone.is_err() {
                return Answer::Fail(Errno::EEXIST);
            }
            Answer::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(p: &CStr) -> Option<(Option<String>, String)> {
        split(p).map(|(d, n)| (d.map(|d| d.into_string().unwrap()), n))
    }

    #[test]
    fn splits_the_last_name_off() {
        assert_eq!(s(c"f"), Some((None, "f".into())));
        assert_eq!(s(c"/f"), Some((Some("/".into()), "f".into())));
        assert_eq!(s(c"a/b/c//"), Some((Some("a/b".into()), "c".into())));
        assert_eq!(s(c"../x"), Some((Some("..".into()), "x".into())));
        for p in [c"/", c"", c".", c"a/..", c"//"] {
            assert_eq!(s(p), None, "{p:?}");
        }
    }
}
