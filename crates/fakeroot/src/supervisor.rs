//! The supervisor: answers the notification filter's calls for as long as a process of
//! the container runs. set*id/setgroups change the caller's fake credentials (table.rs)
//! and get*id/getgroups report them; chown & co write the ownership record
//! (files.rs, record.rs; for symlinks, fifos and sockets a side record by path,
//! side.rs); a process that believes it is another user gets its new
//! files and dirs recorded as that user's (create.rs), and its new symlinks and fifos
//! in the side record (special.rs); the stat family shows a recorded
//! owner (the supervisor stats the file itself and writes the struct into the caller);
//! mknod of a device makes a plain file recorded as that device (device.rs). Everything
//! it cannot tell about is let run as is (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
//! Owns: the loop, the dispatch, pid-reuse checks (NOTIF_ID_VALID before acting on what
//! was read from the caller). Never: follows a caller's path outside its root.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::creds::{Which, NGROUPS_MAX};
use crate::record::{self, Target};
use crate::side::SideOwners;
use crate::table::Table;
use crate::{create, device, files, special};

/// What the supervisor did, for the caller's debug log and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Notifications answered.
    pub calls: u64,
    /// Ownership records written.
    pub recorded: u64,
    /// stat results shown with a recorded owner.
    pub faked_stats: u64,
}

/// The answer to one call.
pub(crate) enum Answer {
    /// Return this value, the call not run.
    Value(i64),
    /// Fail with this errno, the call not run.
    Fail(Errno),
    /// Run the call as it is.
    Continue,
    /// Already answered (an fd handed over with SECCOMP_ADDFD_FLAG_SEND).
    Sent,
}

/// Serve `listener` until every process that uses it has ended.
pub fn serve(listener: BorrowedFd<'_>) -> Result<(Stats, SideOwners), Errno> {
    let mut table = Table::default();
    let mut stats = Stats::default();
    let mut side = SideOwners::default();
    let mut n = crate::sys::empty_notif();
    loop {
        let mut fds = [PollFd::new(listener, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let rev = fds[0].revents().unwrap_or(PollFlags::empty());
        if !rev.contains(PollFlags::POLLIN) {
            // POLLHUP: no process uses the filter any more.
            return Ok((stats, side));
        }
        match crate::sys::notif_recv(listener, &mut n) {
            // ENOENT: the caller was killed or interrupted before we read it.
            Err(Errno::EINTR) | Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        stats.calls += 1;
        let answer = answer(listener, &n, &mut table, (&mut stats, &mut side));
        let mut resp = libc::seccomp_notif_resp {
            id: n.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match answer {
            Answer::Value(v) => resp.val = v,
            Answer::Fail(e) => resp.error = -(e as i32),
            Answer::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            Answer::Sent => continue,
        }
        // ENOENT: the caller is gone (killed, or its call interrupted by a signal and
        // restarted as a new notification): nobody waits for this answer.
        match crate::sys::notif_send(listener, &resp) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
}

fn answer(
    listener: BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    table: &mut Table,
    (stats, side): (&mut Stats, &mut SideOwners),
) -> Answer {
    let pid = n.pid as i32;
    let a = n.data.args;
    let id = |i: usize| a[i] as u32;
    let set =
        |table: &mut Table, f: &dyn Fn(&mut crate::creds::Creds) -> Result<(), Errno>| match table
            .update(pid, f)
        {
            Ok(()) => Answer::Value(0),
            Err(e) => Answer::Fail(e),
        };
    let nr = n.data.nr as libc::c_long;
    match nr {
        libc::SYS_setuid => set(table, &|c| c.set_one(Which::Uid, id(0))),
        libc::SYS_setgid => set(table, &|c| c.set_one(Which::Gid, id(0))),
        libc::SYS_setreuid => set(table, &|c| c.set_re(Which::Uid, id(0), id(1))),
        libc::SYS_setregid => set(table, &|c| c.set_re(Which::Gid, id(0), id(1))),
        libc::SYS_setresuid => set(table, &|c| c.set_res(Which::Uid, [id(0), id(1), id(2)])),
        libc::SYS_setresgid => set(table, &|c| c.set_res(Which::Gid, [id(0), id(1), id(2)])),
        libc::SYS_setgroups => match read_groups(pid, a[0], a[1]) {
            Ok(list) if crate::sys::notif_id_valid(listener, n.id) => {
                set(table, &|c| c.set_groups(list.clone()))
            }
            Ok(_) => Answer::Fail(Errno::ESRCH),
            Err(e) => Answer::Fail(e),
        },
        libc::SYS_getuid | libc::SYS_geteuid | libc::SYS_getgid | libc::SYS_getegid => {
            match creds_of(table, pid) {
                Some(c) => Answer::Value(i64::from(match nr {
                    libc::SYS_getuid => c.uid[0],
                    libc::SYS_geteuid => c.uid[1],
                    libc::SYS_getgid => c.gid[0],
                    _ => c.gid[1],
                })),
                None => Answer::Continue,
            }
        }
        libc::SYS_getresuid | libc::SYS_getresgid => match creds_of(table, pid) {
            Some(c) => {
                let ids = if nr == libc::SYS_getresuid {
                    c.uid
                } else {
                    c.gid
                };
                let ok = (0..3).all(|i| put(listener, n, a[i], &ids[i].to_ne_bytes()));
                if ok {
                    Answer::Value(0)
                } else {
                    Answer::Fail(Errno::EFAULT)
                }
            }
            None => Answer::Continue,
        },
        libc::SYS_getgroups => match creds_of(table, pid).and_then(|c| c.groups) {
            Some(g) => get_groups(listener, n, &g),
            None => Answer::Continue,
        },
        libc::SYS_fchown => files::chown(
            listener,
            n,
            (stats, side),
            fd_target(pid, a[0]),
            id(1),
            id(2),
        ),
        libc::SYS_fchownat => match at_target(pid, a[0], a[1], a[4]) {
            Ok((t, p)) => files::chown(listener, n, (stats, side), t.with(&p), id(2), id(3)),
            Err(e) => Answer::Fail(e),
        },
        libc::SYS_mknodat => mknod(listener, n, table, (stats, side), &device::Mknod::at(&a)),
        libc::SYS_fchmod => files::chmod(listener, n, fd_target(pid, a[0]), id(1)),
        libc::SYS_fchmodat => match at_target(pid, a[0], a[1], 0) {
            Ok((t, p)) => files::chmod(listener, n, t.with(&p), id(2)),
            Err(_) => Answer::Continue,
        },
        crate::filter::SYS_FCHMODAT2 => match at_target(pid, a[0], a[1], a[3]) {
            Ok((t, p)) => files::chmod(listener, n, t.with(&p), id(2)),
            Err(_) => Answer::Continue,
        },
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_chmod => match record::read_path(pid, a[0]) {
            Ok(p) => {
                let t = cwd_target(pid, true);
                files::chmod(listener, n, t.with(&Some(p)), id(1))
            }
            Err(_) => Answer::Continue,
        },
        libc::SYS_fstat => files::stat(
            listener,
            n,
            (stats, &*side),
            fd_target(pid, a[0]),
            a[1],
            None,
        ),
        libc::SYS_newfstatat => match at_target(pid, a[0], a[1], a[3]) {
            Ok((t, p)) => files::stat(listener, n, (stats, &*side), t.with(&p), a[2], None),
            Err(_) => Answer::Continue,
        },
        libc::SYS_statx => match at_target(pid, a[0], a[1], a[2]) {
            Ok((t, p)) => files::stat(
                listener,
                n,
                (stats, &*side),
                t.with(&p),
                a[4],
                Some((a[2], a[3])),
            ),
            Err(_) => Answer::Continue,
        },
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_chown | libc::SYS_lchown => match record::read_path(pid, a[0]) {
            Ok(p) => {
                let t = cwd_target(pid, nr == libc::SYS_chown);
                files::chown(listener, n, (stats, side), t.with(&Some(p)), id(1), id(2))
            }
            Err(e) => Answer::Fail(e),
        },
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_mknod => mknod(listener, n, table, (stats, side), &device::Mknod::cwd(&a)),
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_stat | libc::SYS_lstat => match record::read_path(pid, a[0]) {
            Ok(p) => {
                let t = cwd_target(pid, nr == libc::SYS_stat);
                files::stat(listener, n, (stats, &*side), t.with(&Some(p)), a[1], None)
            }
            Err(_) => Answer::Continue,
        },
        _ => {
            let c = create::Creator {
                listener,
                n,
                owner: believed(table, pid),
            };
            creating(&c, (stats, side), nr, &a)
        }
    }
}

/// mknod/mknodat of a device (device.rs) or a fifo (special.rs), made as who the
/// caller believes it is.
fn mknod(
    listener: BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    table: &Table,
    (stats, side): (&mut Stats, &mut SideOwners),
    call: &device::Mknod,
) -> Answer {
    let owner = believed(table, n.pid as i32);
    if call.mode & libc::S_IFMT == libc::S_IFIFO {
        let c = create::Creator { listener, n, owner };
        return special::mkfifo(&c, (stats, side), call.dirfd, call.path, call.mode);
    }
    device::mknod(listener, n, stats, owner, call)
}

/// Who a process believes it is: (euid, egid), root's for one that never changed them.
fn believed(table: &Table, pid: i32) -> (u32, u32) {
    creds_of(table, pid).map_or((0, 0), |c| (c.uid[1], c.gid[1]))
}

/// The creating calls (filter.rs's `creating_calls`): files and dirs are recorded for a
/// process that is not root (create.rs), links for anyone (special.rs: root's drop a
/// side record left at their name).
fn creating(
    c: &create::Creator<'_>,
    (stats, side): (&mut Stats, &mut SideOwners),
    nr: libc::c_long,
    a: &[u64; 6],
) -> Answer {
    match nr {
        libc::SYS_symlinkat => return special::symlink(c, (stats, side), a[1] as i32, a[2], a[0]),
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_symlink => {
            return special::symlink(c, (stats, side), libc::AT_FDCWD, a[1], a[0]);
        }
        // Root's files and dirs need no record.
        _ if c.owner == (0, 0) => return Answer::Continue,
        _ => {}
    }
    let pid = c.n.pid as i32;
    let path_at = |i: usize| record::read_path(pid, a[i]);
    #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
    let cwd = libc::AT_FDCWD;
    let r = match nr {
        libc::SYS_openat => {
            path_at(1).map(|p| create::open(c, stats, a[0] as i32, &p, a[2] as i32, a[3] as u32))
        }
        libc::SYS_mkdirat => {
            path_at(1).map(|p| create::mkdir(c, stats, a[0] as i32, &p, a[2] as u32))
        }
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_open => {
            path_at(0).map(|p| create::open(c, stats, cwd, &p, a[1] as i32, a[2] as u32))
        }
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_creat => path_at(0).map(|p| {
            let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
            create::open(c, stats, cwd, &p, flags, a[1] as u32)
        }),
        #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
        libc::SYS_mkdir => path_at(0).map(|p| create::mkdir(c, stats, cwd, &p, a[1] as u32)),
        _ => Ok(Answer::Continue),
    };
    // An unreadable path: the kernel's own call says EFAULT.
    r.unwrap_or(Answer::Continue)
}

/// A target before its path is attached (the path is owned by the caller's frame).
struct PathTarget {
    pid: i32,
    dirfd: i32,
    follow: bool,
}

impl PathTarget {
    fn with<'a>(&self, p: &'a Option<std::ffi::CString>) -> Target<'a> {
        Target {
            pid: self.pid,
            dirfd: self.dirfd,
            path: p.as_deref(),
            follow: self.follow,
        }
    }
}

/// A path call without a dir fd (chown, stat, chmod): relative to the cwd.
#[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
fn cwd_target(pid: i32, follow: bool) -> PathTarget {
    PathTarget {
        pid,
        dirfd: libc::AT_FDCWD,
        follow,
    }
}

fn fd_target(pid: i32, fd: u64) -> Target<'static> {
    Target {
        pid,
        dirfd: fd as i32,
        path: None,
        follow: true,
    }
}

/// (dirfd, path, flags) of an *at call: the path unless AT_EMPTY_PATH with "".
fn at_target(
    pid: i32,
    dirfd: u64,
    path: u64,
    flags: u64,
) -> Result<(PathTarget, Option<std::ffi::CString>), Errno> {
    let flags = flags as i32;
    let p = record::read_path(pid, path)?;
    let p = match p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        true => None,
        false => Some(p),
    };
    let t = PathTarget {
        pid,
        dirfd: dirfd as i32,
        follow: flags & libc::AT_SYMLINK_NOFOLLOW == 0,
    };
    Ok((t, p))
}

fn creds_of(table: &Table, pid: i32) -> Option<crate::creds::Creds> {
    match table.is_empty() {
        true => None,
        false => table.get(pid),
    }
}

/// Write `bytes` at `addr` of the caller, if it is still the one that asked.
pub(crate) fn put(
    listener: BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    addr: u64,
    bytes: &[u8],
) -> bool {
    addr != 0
        && crate::sys::notif_id_valid(listener, n.id)
        && crate::sys::write_mem(n.pid as i32, addr, bytes) == Ok(bytes.len())
}

fn read_groups(pid: i32, size: u64, addr: u64) -> Result<Vec<u32>, Errno> {
    let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; size * 4];
    if size > 0 && crate::sys::read_mem(pid, addr, &mut buf)? != buf.len() {
        return Err(Errno::EFAULT);
    }
    Ok(buf
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn get_groups(listener: BorrowedFd<'_>, n: &libc::seccomp_notif, g: &[u32]) -> Answer {
    let size = n.data.args[0] as i32;
    if size == 0 {
        return Answer::Value(g.len() as i64);
    }
    if size < 0 || (size as usize) < g.len() {
        return Answer::Fail(Errno::EINVAL);
    }
    let bytes: Vec<u8> = g.iter().flat_map(|v| v.to_ne_bytes()).collect();
    if g.is_empty() || put(listener, n, n.data.args[1], &bytes) {
        Answer::Value(g.len() as i64)
    } else {
        Answer::Fail(Errno::EFAULT)
    }
}
