//! Extended attributes through the overlay: read from the entry's top layer, written
//! after a copy-up. A user's `user.overlay.X` is stored escaped as
//! `user.overlay.overlay.X` (as kernel overlay does since Linux 6.7), so overlay's own
//! markers are never shown nor forged; `trusted.overlay.*` and `user.fuseoverlayfs.*`
//! (markers imago's committer honours too) are refused with `EOPNOTSUPP`.
//! Owns: the `/proc/self/fd` path calls (`l*xattr` on a name in a directory fd: the entry
//! itself, never a symlink's target). Never: follows a symlink of a layer.

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::XattrFlags;
use rustix::io::Errno;

use super::lookup::Loc;
use super::sys::{self, Res};
use super::FuseOverlay;

/// An xattr reply: the size asked for, or the bytes.
pub(crate) enum Reply {
    Size(u32),
    Data(Vec<u8>),
}

fn sized(bytes: Vec<u8>, size: u32) -> Res<Reply> {
    let len = u32::try_from(bytes.len()).map_err(|_| Errno::TOOBIG)?;
    if size == 0 {
        Ok(Reply::Size(len))
    } else if len > size {
        Err(Errno::RANGE)
    } else {
        Ok(Reply::Data(bytes))
    }
}

/// The names of `path`'s xattrs (not following it).
pub(crate) fn list(path: &CStr) -> Res<Vec<CString>> {
    let raw = list_raw(path, false)?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|k| !k.is_empty())
        .filter_map(|k| CString::new(k).ok())
        .collect())
}

fn list_raw(path: &CStr, follow: bool) -> Res<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    loop {
        let r = if follow {
            rustix::fs::listxattr(path, &mut buf[..])
        } else {
            rustix::fs::llistxattr(path, &mut buf[..])
        };
        match r {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
}

/// One xattr of `path` (not following it); `None` when absent.
pub(crate) fn get(path: &CStr, key: &CStr) -> Res<Option<Vec<u8>>> {
    get_at(path, key, false)
}

/// [`get`], following `path` when `follow` (a `/proc/self/fd/N` link).
pub(crate) fn get_at(path: &CStr, key: &CStr, follow: bool) -> Res<Option<Vec<u8>>> {
    match get_raw(path, key, follow) {
        Ok(v) => Ok(Some(v)),
        Err(Errno::NODATA) | Err(Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e),
    }
}

fn get_raw(path: &CStr, key: &CStr, follow: bool) -> Res<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        let r = if follow {
            rustix::fs::getxattr(path, key, &mut buf[..])
        } else {
            rustix::fs::lgetxattr(path, key, &mut buf[..])
        };
        match r {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            // Xattr values are at most 64 KiB.
            Err(Errno::RANGE) if buf.len() < (1 << 17) => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// The path the xattr calls take for `loc`, and whether they follow it (the root and
/// orphans are fds: `/proc/self/fd/N` must be followed to reach the file).
fn path_of(loc: &Loc) -> Res<(CString, bool)> {
    if let Some((dir, name)) = loc.dir() {
        return Ok((sys::proc_at(dir, name)?, false));
    }
    Ok((sys::proc_fd(loc.fd().ok_or(Errno::STALE)?), true))
}

/// The host name of the xattr a user calls `name`.
fn key_of(name: &OsStr) -> Res<CString> {
    let n = name.as_bytes();
    if let Some(rest) = n.strip_prefix(sys::OVERLAY_XATTR) {
        let mut v = sys::ESCAPED_XATTR.to_vec();
        v.extend_from_slice(rest);
        return CString::new(v).map_err(|_| Errno::INVAL);
    }
    if sys::private_xattr(n) {
        return Err(Errno::OPNOTSUPP);
    }
    CString::new(n).map_err(|_| Errno::INVAL)
}

/// The name a user sees for a host xattr; `None` for overlay's own.
fn shown(host: &[u8]) -> Option<Vec<u8>> {
    if let Some(rest) = host.strip_prefix(sys::ESCAPED_XATTR) {
        let mut v = sys::OVERLAY_XATTR.to_vec();
        v.extend_from_slice(rest);
        return Some(v);
    }
    (!sys::private_xattr(host)).then(|| host.to_vec())
}

impl FuseOverlay {
    pub(crate) fn getxattr_ino(&self, ino: u64, name: &OsStr, size: u32) -> Res<Reply> {
        let key = key_of(name)?;
        let v = self.inodes.view(ino)?;
        // The kernel asks before every first write to a file: answer a new one at once.
        if v.fresh && key.as_bytes() == b"security.capability" {
            return Err(Errno::NODATA);
        }
        let (path, follow) = path_of(&self.locate(&v)?)?;
        sized(get_raw(&path, &key, follow)?, size)
    }

    pub(crate) fn listxattr_ino(&self, ino: u64, size: u32) -> Res<Reply> {
        let v = self.inodes.view(ino)?;
        let (path, follow) = path_of(&self.locate(&v)?)?;
        let raw = list_raw(&path, follow)?;
        let mut out = Vec::with_capacity(raw.len());
        for k in raw.split(|b| *b == 0).filter(|k| !k.is_empty()) {
            if let Some(name) = shown(k) {
                out.extend_from_slice(&name);
                out.push(0);
            }
        }
        sized(out, size)
    }

    pub(crate) fn setxattr_ino(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> Res<()> {
        let key = key_of(name)?;
        let flags = XattrFlags::from_bits(u32::try_from(flags).map_err(|_| Errno::INVAL)?)
            .ok_or(Errno::INVAL)?;
        let _ns = self.lock_ns();
        let v = self.copy_up(ino, true)?;
        self.inodes.set_fresh(ino, false);
        let (path, follow) = path_of(&self.locate(&v)?)?;
        if follow {
            rustix::fs::setxattr(&path, &key, value, flags)
        } else {
            rustix::fs::lsetxattr(&path, &key, value, flags)
        }
    }

    pub(crate) fn removexattr_ino(&self, ino: u64, name: &OsStr) -> Res<()> {
        let key = key_of(name)?;
        let _ns = self.lock_ns();
        // Nothing to remove: no copy-up for it.
        let v = self.inodes.view(ino)?;
        let (path, follow) = path_of(&self.locate(&v)?)?;
        get_raw(&path, &key, follow)?;
        let v = self.copy_up(ino, true)?;
        let (path, follow) = path_of(&self.locate(&v)?)?;
        if follow {
            rustix::fs::removexattr(&path, &key)
        } else {
            rustix::fs::lremovexattr(&path, &key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_names_are_escaped_and_markers_refused() {
        let k = |n: &str| key_of(OsStr::new(n)).map(|c| c.into_bytes());
        assert_eq!(k("user.foo").unwrap(), b"user.foo");
        assert_eq!(
            k("user.overlay.opaque").unwrap(),
            b"user.overlay.overlay.opaque"
        );
        assert_eq!(k("trusted.overlay.opaque"), Err(Errno::OPNOTSUPP));
        assert_eq!(k("user.fuseoverlayfs.opaque"), Err(Errno::OPNOTSUPP));
        assert_eq!(
            shown(b"user.overlay.overlay.opaque").unwrap(),
            b"user.overlay.opaque"
        );
        assert_eq!(shown(b"user.overlay.opaque"), None);
        assert_eq!(shown(b"trusted.overlay.origin"), None);
        assert_eq!(
            shown(b"security.capability").unwrap(),
            b"security.capability"
        );
    }
}
