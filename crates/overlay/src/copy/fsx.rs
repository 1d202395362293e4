//! The file-system calls of the copy driver, all relative to directory fds and never
//! following a symlink: opening child dirs, listing, lstat, xattrs, timestamps.
//! Never: resolves a path from `/` below a tree root (a container may have planted
//! symlinks in its copy).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps};
use rustix::io::Errno;

use super::manifest::Stamp;
use super::S_IFMT;

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::RDONLY);

/// xattr that marks an opaque dir in overlay, fuse-overlayfs and a layer dir.
const OPAQUE_XATTRS: [&CStr; 3] = [
    c"user.overlay.opaque",
    c"trusted.overlay.opaque",
    c"user.fuseoverlayfs.opaque",
];

/// The opaque marker file of the layer tar convention (also a layer dir's `Files` form).
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The prefix of a whiteout name.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// Open the directory at `path` (the tree root: a path the caller made, not one from a
/// container).
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Open the child directory `name` of `dir`, refusing a symlink.
pub fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?)
}

/// Open the directory `rel` (`a/b`, empty for the root) below `root`, one component at
/// a time, refusing symlinks on the way.
pub fn open_rel(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    let mut cur = open_dir(root, c".")?;
    for part in rel.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
        cur = open_dir(cur.as_fd(), &cstr(part)?)?;
    }
    Ok(cur)
}

/// Create the new file `name` in `dir` for writing, mode 0600 (never through a symlink,
/// never over an existing entry: EEXIST).
pub fn create_new(dir: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
}

/// A name as a C string (EINVAL for an inner NUL, which no directory entry has).
pub fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(Errno::INVAL))
}

/// The names in `dir` without `.` and `..`, sorted bytewise (a deterministic order).
pub fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let dup = open_dir(dir, c".")?;
    let mut d = rustix::fs::Dir::new(dup)?;
    let mut names = Vec::new();
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name();
        if n != c"." && n != c".." {
            names.push(n.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// lstat of `name` in `dir`; `None` when it does not exist.
pub fn lstat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The file type of a stat.
pub fn kind(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// `name` in `dir` as the manifest and the diff see it: file type, inode, change time
/// and birth time (statx; `(0, 0)` where the file system or kernel has none, then the
/// inode number alone tells a new file). `None` when it does not exist.
pub fn stamp(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Stamp>> {
    use rustix::fs::StatxFlags;
    let want = StatxFlags::TYPE | StatxFlags::INO | StatxFlags::CTIME | StatxFlags::BTIME;
    match rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, want) {
        Ok(x) => {
            let born = match x.stx_mask & StatxFlags::BTIME.bits() != 0 {
                true => (x.stx_btime.tv_sec, x.stx_btime.tv_nsec),
                false => (0, 0),
            };
            Ok(Some(Stamp {
                fmt: u32::from(x.stx_mode) & S_IFMT,
                ino: x.stx_ino,
                ctime: (x.stx_ctime.tv_sec, x.stx_ctime.tv_nsec),
                born,
            }))
        }
        Err(Errno::NOENT) => Ok(None),
        // Linux < 4.11: no statx.
        Err(Errno::NOSYS) => Ok(lstat(dir, name)?.map(|st| Stamp {
            fmt: st.st_mode & S_IFMT,
            ino: st.st_ino,
            ctime: ctime(&st),
            born: (0, 0),
        })),
        Err(e) => Err(e.into()),
    }
}

/// An overlay whiteout: a 0:0 character device.
pub fn is_whiteout(st: &Stat) -> bool {
    kind(st) == FileType::CharacterDevice && st.st_rdev == 0
}

/// Does `name` exist in `dir` (any type)?
pub fn exists(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    cstr(name)
        .ok()
        .and_then(|c| lstat(dir, &c).ok().flatten())
        .is_some()
}

/// The open directory hides the lower layers' entries: an opaque xattr set to `y`, or a
/// `.wh..wh..opq` marker file in it.
pub fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8];
    let xattr = OPAQUE_XATTRS
        .iter()
        .any(|k| matches!(rustix::fs::fgetxattr(dir, *k, &mut buf[..]), Ok(1) if buf[0] == b'y'));
    xattr || exists(dir, OPAQUE_MARKER)
}

/// Overlay and fuse-overlayfs bookkeeping: meaningless in a merged tree, never copied.
/// (The ownership record `user.containers.override_stat` is not bookkeeping here: it
/// is the file's owner in a single-id mapping and travels with the file.)
fn is_bookkeeping(key: &[u8]) -> bool {
    key.starts_with(b"user.overlay.")
        || key.starts_with(b"trusted.overlay.")
        || key.starts_with(b"user.fuseoverlayfs.")
        || key.starts_with(b"security.fuseoverlayfs.")
}

/// The xattrs of an open file or dir (bookkeeping left out); empty where the file system
/// has none.
pub fn xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let mut list = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::flistxattr(fd, &mut list[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let need = rustix::fs::flistxattr_query(fd)?;
                list.resize(need.max(list.len() * 2), 0);
            }
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for key in list[..n].split(|b| *b == 0).filter(|k| !k.is_empty()) {
        if is_bookkeeping(key) {
            continue;
        }
        let key = cstr(key)?;
        let mut buf = vec![0u8; 256];
        loop {
            match rustix::fs::fgetxattr(fd, key.as_c_str(), &mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    out.push((key, buf));
                    break;
                }
                Err(Errno::RANGE) => {
                    let need = rustix::fs::fgetxattr_query(fd, key.as_c_str())?;
                    buf.resize(need.max(buf.len() * 2), 0);
                }
                // Removed between list and get, or not ours to read: nothing to copy.
                Err(Errno::NODATA) | Err(Errno::NOTSUP) | Err(Errno::PERM) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Set `xattrs` on an open file; returns how many could not be set (a `security.*` or
/// `trusted.*` one the namespace may not write, a file system without user xattrs).
pub fn set_xattrs(fd: BorrowedFd<'_>, xattrs: &[(CString, Vec<u8>)]) -> u64 {
    let mut skipped = 0;
    for (k, v) in xattrs {
        if rustix::fs::fsetxattr(fd, k.as_c_str(), v, rustix::fs::XattrFlags::empty()).is_err() {
            skipped += 1;
        }
    }
    skipped
}

/// atime and mtime of a stat, for futimens/utimensat.
pub fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// The change time of a stat: it moves on every write and metadata change, and nothing
/// a process does can set it back.
pub fn ctime(st: &Stat) -> (i64, u32) {
    (st.st_ctime, st.st_ctime_nsec as u32)
}

/// Owner, permission bits, xattrs and times of `st` onto the open dir or file `fd`.
/// Returns the xattrs that could not be set.
pub fn apply_meta(fd: BorrowedFd<'_>, st: &Stat, xattrs: &[(CString, Vec<u8>)]) -> io::Result<u64> {
    apply(
        fd,
        (st.st_uid, st.st_gid),
        st.st_mode & 0o7777,
        &times(st),
        xattrs,
    )
}

/// Owner, mode, xattrs and times onto the open dir or file `fd` (chown first: it
/// clears setuid/setgid). Returns the xattrs that could not be set.
pub fn apply(
    fd: BorrowedFd<'_>,
    (uid, gid): (u32, u32),
    mode: u32,
    times: &Timestamps,
    xattrs: &[(CString, Vec<u8>)],
) -> io::Result<u64> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))?;
    let skipped = set_xattrs(fd, xattrs);
    rustix::fs::futimens(fd, times)?;
    Ok(skipped)
}
