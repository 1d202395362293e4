//! Host file-system calls of the FUSE overlay, always relative to a trusted directory fd
//! and one name (never a path with `/`), never following a symlink at that name.
//! Owns: the open flags, the `/proc/self/fd` paths the `l*xattr` and chmod calls go
//! through, whiteout and opaque detection on disk, recursive removal in the work dir.
//! Never: resolves a multi-component path inside a layer.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use imago_oci::layer::whiteout;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

pub(crate) type Res<T> = Result<T, Errno>;

/// A directory of a layer, opened for listing and xattr reads.
pub(crate) const DIR: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// A name as the kernel sent it: one component, not `.`/`..`, no NUL.
pub(crate) fn name(n: &OsStr) -> Res<CString> {
    let b = n.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(Errno::INVAL);
    }
    CString::new(b).map_err(|_| Errno::INVAL)
}

/// True for names this overlay keeps for itself (`.wh.*`).
pub(crate) fn reserved(n: &[u8]) -> bool {
    n.starts_with(whiteout::PREFIX.as_bytes())
}

/// `.wh.NAME` for NAME.
pub(crate) fn wh_name(n: &CStr) -> Res<CString> {
    let mut v = whiteout::PREFIX.as_bytes().to_vec();
    v.extend_from_slice(n.to_bytes());
    CString::new(v).map_err(|_| Errno::INVAL)
}

pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// A 0:0 character device: overlay's whiteout.
pub(crate) fn is_whiteout(st: &Stat) -> bool {
    file_type(st) == FileType::CharacterDevice && st.st_rdev == 0
}

/// lstat of `name` in `dir`; `None` when it is missing (or `dir` stopped being one).
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Res<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::NAMETOOLONG) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn exists(dir: BorrowedFd<'_>, name: &CStr) -> Res<bool> {
    Ok(stat_at(dir, name)?.is_some())
}

/// Open the directory `name` of `dir` (refusing a symlink).
pub(crate) fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> Res<OwnedFd> {
    rustix::fs::openat(dir, name, DIR, Mode::empty())
}

/// Open `name` of `dir` with `flags`, refusing a symlink.
pub(crate) fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: OFlags, mode: u32) -> Res<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
}

/// `/proc/self/fd/DIR/NAME`: lets path-only calls act on the entry itself.
pub(crate) fn proc_at(dir: BorrowedFd<'_>, name: &CStr) -> Res<CString> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.to_bytes());
    CString::new(p).map_err(|_| Errno::INVAL)
}

/// `/proc/self/fd/FD`: the file `fd` refers to (following the magic link).
pub(crate) fn proc_fd(fd: BorrowedFd<'_>) -> CString {
    // Digits only: never contains NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// The prefix overlay's own xattrs have in this (`userxattr`) overlay.
pub(crate) const OVERLAY_XATTR: &[u8] = b"user.overlay.";
/// Where a user's own `user.overlay.*` xattr is stored (escaped, as kernel overlay
/// does since Linux 6.7): `user.overlay.overlay.*`.
pub(crate) const ESCAPED_XATTR: &[u8] = b"user.overlay.overlay.";

/// True for the xattrs overlays keep for themselves: never shown, never copied up
/// (escaped user xattrs are the user's).
pub(crate) fn private_xattr(n: &[u8]) -> bool {
    (n.starts_with(OVERLAY_XATTR) && !n.starts_with(ESCAPED_XATTR))
        || n.starts_with(b"trusted.overlay.")
        || n.starts_with(b"user.fuseoverlayfs.")
}

/// The opaque xattrs this overlay honours.
const OPAQUE_XATTRS: [&str; 3] = [
    whiteout::USER_OPAQUE_XATTR,
    whiteout::TRUSTED_OPAQUE_XATTR,
    whiteout::FUSE_OPAQUE_XATTR,
];

/// The directory `fd` (an open layer dir) hides the layers below it: an opaque xattr
/// set to `y`, or a `.wh..wh..opq` file inside.
pub(crate) fn is_opaque(fd: BorrowedFd<'_>) -> Res<bool> {
    let mut list = [0u8; 1024];
    // `None`: too many xattrs for the stack buffer; ask for each marker directly.
    let listed: Option<&[u8]> = match rustix::fs::flistxattr(fd, &mut list[..]) {
        Ok(n) => Some(list.get(..n).unwrap_or_default()),
        Err(Errno::RANGE) => None,
        Err(Errno::NOTSUP) => Some(&[]),
        Err(e) => return Err(e),
    };
    for key in OPAQUE_XATTRS {
        if listed.is_none_or(|l| l.split(|b| *b == 0).any(|k| k == key.as_bytes())) {
            let mut v = [0u8; 8];
            if let Ok(n) = rustix::fs::fgetxattr(fd, key, &mut v[..]) {
                if v.get(..n) == Some(b"y") {
                    return Ok(true);
                }
            }
        }
    }
    exists(fd, c".wh..wh..opq")
}

/// Remove `name` from `dir`, recursively (work-dir leftovers, an emptied upper dir).
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &CStr) -> Res<()> {
    let Some(st) = stat_at(dir, name)? else {
        return Ok(());
    };
    if file_type(&st) != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
    let child = open_dir(dir, name)?;
    for n in list(child.as_fd())? {
        remove_all(child.as_fd(), &n)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// The names in `dir`, without `.` and `..`.
pub(crate) fn list(dir: BorrowedFd<'_>) -> Res<Vec<CString>> {
    let mut d = rustix::fs::Dir::read_from(dir)?;
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let e = e?;
        let n = e.file_name();
        if n != c"." && n != c".." {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

/// Make a whiteout called `name` in `dir`: a 0:0 char device, or `.wh.NAME`.
pub(crate) fn make_whiteout(dir: BorrowedFd<'_>, name: &CStr, chardev: bool) -> Res<()> {
    if chardev {
        rustix::fs::mknodat(dir, name, FileType::CharacterDevice, Mode::empty(), 0)
    } else {
        let fd = open_at(dir, &wh_name(name)?, OFlags::CREATE | OFlags::WRONLY, 0o600)?;
        drop(fd);
        Ok(())
    }
}

/// Mark the directory `name` of `dir` opaque in the chosen form.
pub(crate) fn set_opaque(dir: BorrowedFd<'_>, name: &CStr, xattr: bool) -> Res<()> {
    if xattr {
        rustix::fs::lsetxattr(
            proc_at(dir, name)?.as_c_str(),
            whiteout::USER_OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
    } else {
        let d = open_dir(dir, name)?;
        let fd = open_at(
            d.as_fd(),
            c".wh..wh..opq",
            OFlags::CREATE | OFlags::WRONLY,
            0o600,
        )?;
        drop(fd);
        Ok(())
    }
}

/// Remove a `.wh.NAME` file in `dir` if there is one (a new NAME replaces it).
pub(crate) fn drop_wh_file(dir: BorrowedFd<'_>, name: &CStr) -> Res<()> {
    match rustix::fs::unlinkat(dir, wh_name(name)?.as_c_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) | Err(Errno::NAMETOOLONG) => Ok(()),
        Err(e) => Err(e),
    }
}

/// chmod `name` in `dir` (not a symlink): through an `O_PATH` fd, as fchmod takes none.
pub(crate) fn chmod_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Res<()> {
    let fd = open_at(dir, name, OFlags::PATH, 0)?;
    if file_type(&rustix::fs::fstat(&fd)?) == FileType::Symlink {
        return Err(Errno::OPNOTSUPP);
    }
    rustix::fs::chmod(proc_fd(fd.as_fd()).as_c_str(), Mode::from_raw_mode(mode))
}

/// pwrite all of `buf` at `off`.
pub(crate) fn write_all_at(fd: BorrowedFd<'_>, mut buf: &[u8], mut off: u64) -> Res<()> {
    while !buf.is_empty() {
        match rustix::io::pwrite(fd, buf, off) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => {
                buf = buf.get(n..).unwrap_or_default();
                off += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_kernel_are_one_component() {
        for bad in ["", ".", "..", "a/b", "/"] {
            assert_eq!(name(OsStr::new(bad)), Err(Errno::INVAL), "{bad:?}");
        }
        assert_eq!(name(OsStr::new("a b")).unwrap().as_bytes(), b"a b");
        assert!(reserved(b".wh.x") && reserved(b".wh..wh..opq") && !reserved(b"wh.x"));
        assert_eq!(wh_name(c"x").unwrap().as_bytes(), b".wh.x");
        assert!(private_xattr(b"user.overlay.opaque") && !private_xattr(b"user.overlay.overlay.x"));
    }
}
