//! The side record: owners asked for the files that cannot carry the ownership xattr
//! (user xattrs are refused on symlinks, fifos and sockets), kept by the supervisor in
//! memory by the file's path in the container and handed to the owner of the container
//! when it ends, for the layer committer to apply to what it then finds at that path.
//! It never enters the image or the container. A path is a name, not an inode: such a
//! file renamed after its chown loses the record, and a new one of the same type made at
//! that name gets it.
//! A chown noted here also copies a lower layer's file up (a chown to the ids it has),
//! so that the committer finds it.
//! Never: resolves a caller's path (record.rs), writes anything but that copy-up.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use crate::creds::KEEP;

/// Owners by path in the container, without the leading `/` (as in a layer tar:
/// `usr/bin/x`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SideOwners(BTreeMap<String, (u32, u32)>);

impl SideOwners {
    /// The map: path as in a layer tar → (uid, gid).
    pub fn into_map(self) -> BTreeMap<String, (u32, u32)> {
        self.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn get(&self, path: &str) -> Option<(u32, u32)> {
        self.0.get(path).copied()
    }

    /// A chown of `path` to `uid`/`gid` (`KEEP`: the recorded or real 0 stays); 0:0
    /// drops the entry (root's is what the layer has without one).
    pub(crate) fn chown(&mut self, path: String, uid: u32, gid: u32) {
        let old = self.0.get(&path).copied().unwrap_or((0, 0));
        let ids = (
            if uid == KEEP { old.0 } else { uid },
            if gid == KEEP { old.1 } else { gid },
        );
        if ids == (0, 0) {
            self.0.remove(&path);
        } else {
            self.0.insert(path, ids);
        }
    }
}

/// Bring `fd`'s file into the container's upper dir if it is still a lower layer's (the
/// faked chown ran nothing, and the committer packs only the upper dir): a chown to the
/// ids it has from here, the supervisor's own (the container's one id), which both
/// overlays answer with a copy-up.
pub(crate) fn copy_up(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let uid = rustix::fs::Uid::from_raw(nix::unistd::geteuid().as_raw());
    let gid = rustix::fs::Gid::from_raw(nix::unistd::getegid().as_raw());
    rustix::fs::chownat(
        fd,
        c"",
        Some(uid),
        Some(gid),
        rustix::fs::AtFlags::EMPTY_PATH,
    )
    .map_err(|e| Errno::from_raw(e.raw_os_error()))
}

/// The path in the container of `fd` (opened by the supervisor inside the root of
/// process `pid`), as a layer tar names it: the text of its `/proc/self/fd` link, which
/// the kernel writes from the container's root (the supervisor's root cannot reach it),
/// checked to lead back to that same file from `/proc/PID/root`. EXDEV otherwise.
pub(crate) fn path_in_root(pid: i32, fd: BorrowedFd<'_>) -> Result<String, Errno> {
    let text = text_in_root(pid, fd)?;
    match &text[1..] {
        "" => Err(Errno::EXDEV),
        rel => Ok(rel.to_string()),
    }
}

/// The path in the container of `name` in dir `dir` (as [`path_in_root`]), whether or
/// not it exists.
pub(crate) fn path_of_name(pid: i32, dir: BorrowedFd<'_>, name: &str) -> Result<String, Errno> {
    let text = text_in_root(pid, dir)?;
    Ok(match &text[1..] {
        "" => name.to_string(),
        rel => format!("{rel}/{name}"),
    })
}

/// The absolute path in the container of `fd`, checked as [`path_in_root`] says.
fn text_in_root(pid: i32, fd: BorrowedFd<'_>) -> Result<String, Errno> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let text = std::fs::read_link(&link).map_err(|_| Errno::EXDEV)?;
    let text = text.to_str().ok_or(Errno::EXDEV)?;
    if !text.starts_with('/') || text.ends_with(" (deleted)") {
        return Err(Errno::EXDEV);
    }
    if !crate::record::names_in_root(pid, text, fd)? {
        return Err(Errno::EXDEV);
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_keeps_merges_and_drops_root() {
        let mut s = SideOwners::default();
        s.chown("usr/bin/l".into(), 33, KEEP);
        assert_eq!(s.get("usr/bin/l"), Some((33, 0)));
        s.chown("usr/bin/l".into(), KEEP, 44);
        assert_eq!(s.get("usr/bin/l"), Some((33, 44)));
        s.chown("usr/bin/l".into(), 0, 0);
        assert!(s.is_empty());
        s.chown("p".into(), 0, KEEP);
        assert!(s.is_empty(), "root's needs no entry");
    }
}
