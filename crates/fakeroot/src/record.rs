//! The ownership record and the files it is about. A faked chown is written as the
//! `user.containers.override_stat` xattr (`uid:gid:0mode:type`) on the file itself,
//! the record the single mapping's layers already carry and the layer committer already
//! reads: it follows the inode through renames and hard links, and setting it through
//! the container's overlay copies the file up first, so the upper dir holds it.
//!
//! Paths come from the calling process and are resolved from the supervisor's side as
//! the kernel resolved them for it, never outside its root: absolute ones inside
//! `/proc/PID/root` (openat2 `RESOLVE_IN_ROOT`), relative ones beneath `/proc/PID/cwd`
//! or `/proc/PID/fd/N` (`RESOLVE_BENEATH`). A relative one that leaves its start dir
//! (`../x`, a link to an absolute path) is resolved again inside the root from the start
//! dir's path in the container (the link's text, checked to name the same dir: a dir
//! renamed meanwhile or outside the root gets no record). Magic links are never
//! followed. Records are written only on the container's root file system (the mount of
//! `/proc/PID/root`): never on a bind mount, a volume or an fd the container received
//! from outside.
//! Never: answers notifications (supervisor.rs), writes anything but this one xattr.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use imago_oci::layer::{OverrideStat, OVERRIDE_STAT_XATTR};
use nix::errno::Errno;
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Longest path read from a caller (PATH_MAX).
pub const MAX_PATH: usize = 4096;

/// A path argument, read from the caller's memory up to its NUL.
pub fn read_path(pid: i32, addr: u64) -> Result<CString, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_PATH {
        // Up to the page end: the next page may be unmapped.
        let room = 4096 - (at % 4096) as usize;
        let mut buf = vec![0u8; room.min(MAX_PATH - out.len())];
        let n = crate::sys::read_mem(pid, at, &mut buf)?;
        if n == 0 {
            return Err(Errno::EFAULT);
        }
        if let Some(end) = buf[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..end]);
            return CString::new(out).map_err(|_| Errno::EINVAL);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    Err(Errno::ENAMETOOLONG)
}

/// What a call names: a path from a dir fd, or the fd itself (`AT_EMPTY_PATH`, fstat).
pub struct Target<'a> {
    pub pid: i32,
    pub dirfd: i32,
    pub path: Option<&'a CStr>,
    pub follow: bool,
}

fn proc_open(path: &str) -> Result<OwnedFd, Errno> {
    // Following the magic link here is the point: it is the process's own file.
    rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(to_nix)
}

fn to_nix(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

fn start_dir(pid: i32, dirfd: i32) -> Result<OwnedFd, Errno> {
    if dirfd == libc::AT_FDCWD {
        proc_open(&format!("/proc/{pid}/cwd"))
    } else if dirfd >= 0 {
        proc_open(&format!("/proc/{pid}/fd/{dirfd}"))
    } else {
        Err(Errno::EBADF)
    }
}

/// Open what `t` names (O_PATH), resolved as described in the module doc.
pub fn resolve(t: &Target<'_>) -> Result<OwnedFd, Errno> {
    let path = match t.path {
        Some(p) if !p.is_empty() => p,
        _ => return start_dir(t.pid, t.dirfd),
    };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !t.follow {
        flags |= OFlags::NOFOLLOW;
    }
    if path.to_bytes().starts_with(b"/") {
        let root = proc_open(&format!("/proc/{}/root", t.pid))?;
        return open2(&root, path, flags, ResolveFlags::IN_ROOT);
    }
    let start = start_dir(t.pid, t.dirfd)?;
    match open2(&start, path, flags, ResolveFlags::BENEATH) {
        Err(Errno::EXDEV) => {
            let root = proc_open(&format!("/proc/{}/root", t.pid))?;
            let mut full = in_root_path(t, &root, &start)?.into_bytes();
            full.push(b'/');
            full.extend_from_slice(path.to_bytes());
            let full = CString::new(full).map_err(|_| Errno::EINVAL)?;
            open2(&root, &full, flags, ResolveFlags::IN_ROOT)
        }
        r => r,
    }
}

fn open2(start: &OwnedFd, path: &CStr, flags: OFlags, how: ResolveFlags) -> Result<OwnedFd, Errno> {
    let how = how | ResolveFlags::NO_MAGICLINKS;
    loop {
        match rustix::fs::openat2(start, path, flags, Mode::empty(), how) {
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(to_nix),
        }
    }
}

/// The path in the container of `dir` (the start dir of `t`, opened): the text of its
/// magic link, which the kernel writes relative to the container's root when the
/// supervisor's root cannot reach it, if that path leads from `root` to `dir` itself.
/// EXDEV otherwise (a dir deleted or renamed, a caller chrooted further in, a dir
/// outside the root): the caller records nothing.
fn in_root_path(t: &Target<'_>, root: &OwnedFd, dir: &OwnedFd) -> Result<String, Errno> {
    let link = match t.dirfd {
        libc::AT_FDCWD => format!("/proc/{}/cwd", t.pid),
        fd => format!("/proc/{}/fd/{fd}", t.pid),
    };
    let text = std::fs::read_link(&link).map_err(|_| Errno::EXDEV)?;
    let text = text.to_str().ok_or(Errno::EXDEV)?.to_string();
    if !text.starts_with('/') || text.ends_with(" (deleted)") {
        return Err(Errno::EXDEV);
    }
    let c = CString::new(text.as_str()).map_err(|_| Errno::EXDEV)?;
    let found = open2(
        root,
        &c,
        OFlags::PATH | OFlags::CLOEXEC,
        ResolveFlags::IN_ROOT,
    )?;
    match same_file(found.as_fd(), dir.as_fd()) {
        Ok(true) => Ok(text),
        _ => Err(Errno::EXDEV),
    }
}

/// Whether `path` (absolute, in the container), resolved without following its last
/// name inside `/proc/PID/root`, is the file `fd`.
pub(crate) fn names_in_root(pid: i32, path: &str, fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let root = proc_open(&format!("/proc/{pid}/root"))?;
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let found = open2(&root, &c, flags, ResolveFlags::IN_ROOT)?;
    same_file(found.as_fd(), fd)
}

/// Same inode on the same mount.
fn same_file(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<bool, Errno> {
    let id = |fd| -> Result<(u64, u64, u64), Errno> {
        let st = crate::sys::statx_raw(fd, 0, libc::STATX_INO | libc::STATX_MNT_ID)?;
        Ok((
            st.stx_ino,
            u64::from(st.stx_dev_major) << 32 | u64::from(st.stx_dev_minor),
            st.stx_mnt_id,
        ))
    };
    Ok(id(a)? == id(b)?)
}

/// The mount id of an open file (statx STATX_MNT_ID).
fn mount_id(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let st = crate::sys::statx_raw(fd, 0, libc::STATX_MNT_ID)?;
    Ok(st.stx_mnt_id)
}

/// True when `fd` is on the container's root file system (not a bind mount in it).
pub fn on_root_fs(pid: i32, fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let root = proc_open(&format!("/proc/{pid}/root"))?;
    Ok(mount_id(root.as_fd())? == mount_id(fd)?)
}

/// `/proc/self/fd/N` of an O_PATH fd: the xattr calls follow it to the file itself.
fn self_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Only regular files and dirs carry a record (user xattrs are refused on the rest).
pub fn can_carry(mode: u32) -> bool {
    matches!(mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR)
}

/// The record of `fd` (a regular file or dir), if any.
pub fn read(fd: BorrowedFd<'_>) -> Option<OverrideStat> {
    let mut buf = [0u8; 256];
    let n = rustix::fs::getxattr(self_path(fd).as_str(), OVERRIDE_STAT_XATTR, &mut buf).ok()?;
    OverrideStat::parse(&buf[..n])
}

/// Record `uid`/`gid` (`KEEP`: the recorded or real 0 stays) on `fd`, whose stat is `st`,
/// as chown would: the set-id bits of a regular file are cleared.
pub fn write(fd: BorrowedFd<'_>, st: &libc::stat, uid: u32, gid: u32) -> Result<(), Errno> {
    use crate::creds::KEEP;
    let old = read(fd);
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let mut mode = old.as_ref().map_or(st.st_mode & 0o7777, |o| o.mode);
    if !is_dir {
        mode &= !libc::S_ISUID;
        if mode & libc::S_IXGRP != 0 {
            mode &= !libc::S_ISGID;
        }
    }
    let pick = |new: u32, old: Option<u32>| if new == KEEP { old.unwrap_or(0) } else { new };
    let rec = OverrideStat {
        uid: pick(uid, old.as_ref().map(|o| o.uid)),
        gid: pick(gid, old.as_ref().map(|o| o.gid)),
        mode,
        kind: match old {
            // A plain file that stands for a device stays that device.
            Some(o) if !is_dir && o.device().is_some() => o.kind,
            _ => if is_dir { "dir" } else { "file" }.to_string(),
        },
    };
    put(fd, &rec)
}

/// Write `rec` as the record of `fd`.
pub(crate) fn put(fd: BorrowedFd<'_>, rec: &OverrideStat) -> Result<(), Errno> {
    rustix::fs::setxattr(
        self_path(fd).as_str(),
        OVERRIDE_STAT_XATTR,
        rec.format().as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(to_nix)
}

/// chmod of a recorded file: the record's mode follows (the committer takes the mode
/// from the record). Nothing when `fd` has no record.
pub fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    let Some(mut rec) = read(fd) else {
        return Ok(());
    };
    rec.mode = mode & 0o7777;
    put(fd, &rec)
}

/// What stat shows of a recorded file where it differs from the real one.
pub struct Shown {
    pub uid: u32,
    pub gid: u32,
    /// `(S_IFCHR or S_IFBLK, major, minor)` of a plain file recorded as a device.
    pub device: Option<(u32, u32, u32)>,
}

/// What to show for `fd` (stat `mode`) when it differs from the real file (root's, or a
/// plain file): its record's owner, and the device a plain file stands for.
pub fn shown(fd: BorrowedFd<'_>, mode: u32) -> Option<Shown> {
    if !can_carry(mode) {
        return None;
    }
    let rec = read(fd)?;
    let device = match mode & libc::S_IFMT {
        libc::S_IFREG => rec.device().map(|(is_char, major, minor)| {
            let t = if is_char {
                libc::S_IFCHR
            } else {
                libc::S_IFBLK
            };
            (t, major, minor)
        }),
        _ => None,
    };
    ((rec.uid, rec.gid) != (0, 0) || device.is_some()).then_some(Shown {
        uid: rec.uid,
        gid: rec.gid,
        device,
    })
}

/// [`resolve`], then the file's stat (from the supervisor's side: ids are host ids).
pub fn open_and_stat(t: &Target<'_>) -> Result<(OwnedFd, libc::stat), Errno> {
    let fd = resolve(t)?;
    let st = crate::sys::fstat_raw(fd.as_fd())?;
    Ok((fd, st))
}
