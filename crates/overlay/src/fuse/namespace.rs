//! Creating names: files, directories, device nodes, fifos, sockets, symlinks, hardlinks.
//! Owns: placing a new entry in the upper (its parent copied up first; over a whiteout
//! the entry is built in the work dir and exchanged with it, a directory made there is
//! opaque), its owner (the caller, or a setgid parent's group) and mode.
//! Never: creates a `.wh.` name, or a 0:0 character device (that is a whiteout).

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use fuser::FileAttr;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use super::inode::{Entry, Key, UPPER};
use super::sys::{self, Res};
use super::{attr, FuseOverlay};

/// A name to create.
pub(crate) struct New<'a> {
    pub parent: u64,
    pub name: &'a CString,
    pub dir: bool,
    /// Permission bits (the kernel's mode with its umask applied).
    pub perms: u32,
    /// The caller's uid and gid; `None` for a hardlink (it keeps its owner).
    pub owner: Option<(u32, u32)>,
}

impl FuseOverlay {
    /// Create `new` with `make(dir, name, perms)`. The caller holds the namespace lock.
    fn make_entry(
        &self,
        new: &New<'_>,
        make: impl Fn(BorrowedFd<'_>, &CStr, u32) -> Res<Option<OwnedFd>>,
    ) -> Res<Option<OwnedFd>> {
        if sys::reserved(new.name.to_bytes()) {
            return Err(Errno::INVAL);
        }
        self.copy_up(new.parent, true)?;
        let stack = self.stack_of(new.parent)?;
        let upper = stack.upper().ok_or(Errno::STALE)?;
        let wh_file = !self.forms.whiteout_chardev
            && stack.has_lowers()
            && sys::exists(upper, &sys::wh_name(new.name)?)?;
        let perms = new.perms & 0o7777;
        // The common case: the name is free in the upper.
        match make(upper, new.name, perms) {
            Ok(fd) => {
                let placed = self
                    .settle(new, (upper, new.name), fd.as_ref(), perms, (upper, true))
                    .and_then(|()| match new.dir && wh_file {
                        true => sys::set_opaque(upper, new.name, self.forms.opaque_xattr),
                        false => Ok(()),
                    });
                if let Err(e) = placed {
                    // Best effort: what was half made goes; the error is what counts.
                    let _ = sys::remove_all(upper, new.name);
                    return Err(e);
                }
                if wh_file {
                    sys::drop_wh_file(upper, new.name)?;
                }
                return Ok(fd);
            }
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        // Taken: only a whiteout may be replaced, by an entry built in the work dir (a
        // directory made there is opaque: what the whiteout hid stays hidden).
        match sys::stat_at(upper, new.name)? {
            Some(st) if sys::is_whiteout(&st) => {}
            _ => return Err(Errno::EXIST),
        }
        let (work, tmp) = (self.work.as_fd(), self.tmp_name());
        let sgid_dir = new.dir && rustix::fs::fstat(upper)?.st_mode & 0o2000 != 0;
        let perms = if sgid_dir { perms | 0o2000 } else { perms };
        let fd = make(work, &tmp, perms)?;
        let placed = self
            .settle(new, (work, &tmp), fd.as_ref(), perms, (upper, false))
            .and_then(|()| {
                if new.dir {
                    sys::set_opaque(work, &tmp, self.forms.opaque_xattr)?;
                }
                rustix::fs::renameat_with(work, &tmp, upper, new.name, RenameFlags::EXCHANGE)?;
                // The whiteout now sits at the temporary name.
                rustix::fs::unlinkat(work, &tmp, AtFlags::empty())
            });
        if let Err(e) = placed {
            // Best effort, as above.
            let _ = sys::remove_all(work, &tmp);
            return Err(e);
        }
        Ok(fd)
    }

    /// Give the entry `at` just made (its `fd` if open) its owner and exact mode. The
    /// group is a setgid parent's: `parent` is the upper dir it goes to, and whether the
    /// host already applied the parent's setgid rule (it was made in place).
    fn settle(
        &self,
        new: &New<'_>,
        (dir, name): (BorrowedFd<'_>, &CStr),
        fd: Option<&OwnedFd>,
        perms: u32,
        (parent, in_place): (BorrowedFd<'_>, bool),
    ) -> Res<()> {
        let Some((uid, mut gid)) = new.owner else {
            return Ok(());
        };
        let st = match fd {
            Some(fd) => rustix::fs::fstat(fd)?,
            None => sys::stat_at(dir, name)?.ok_or(Errno::NOENT)?,
        };
        if !in_place || st.st_gid != gid {
            let p = rustix::fs::fstat(parent)?;
            if p.st_mode & 0o2000 != 0 {
                gid = p.st_gid;
            }
        }
        // A directory made in a setgid one is setgid too (the host applied the rule).
        let perms = match new.dir && in_place {
            true => perms | (st.st_mode & 0o2000),
            false => perms,
        };
        let chowned = st.st_uid != uid || st.st_gid != gid;
        if chowned {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        let symlink = sys::file_type(&st) == FileType::Symlink;
        // chown clears setuid/setgid: set the mode again after it.
        if !symlink && ((chowned && perms & 0o6000 != 0) || st.st_mode & 0o7777 != perms) {
            match fd {
                Some(fd) => rustix::fs::fchmod(fd, Mode::from_raw_mode(perms))?,
                None => sys::chmod_at(dir, name, perms)?,
            }
        }
        Ok(())
    }

    /// Create and open a regular file; its inode, attributes and handle (0: none, with
    /// zero-message opens).
    pub(crate) fn create_in(&self, new: &New<'_>, flags: i32) -> Res<(u64, FileAttr, u64)> {
        let acc = OFlags::from_bits_retain(flags as u32) & OFlags::ACCMODE;
        // With zero-message opens the new file's fd becomes the inode's cached one (read
        // and write), and the reply carries no handle: once the kernel has seen OPEN
        // refused it sends no RELEASE for created files either (Linux 6.18), so a
        // handle would never be freed.
        let host_acc = if self.zero_open { OFlags::RDWR } else { acc };
        let host = host_acc | OFlags::CREATE | OFlags::EXCL;
        let _ns = self.lock_ns();
        let fd = self
            .make_entry(new, |d, n, perms| sys::open_at(d, n, host, perms).map(Some))?
            .ok_or(Errno::IO)?;
        let st = rustix::fs::fstat(&fd)?;
        let entry = Entry {
            key: Key {
                layer: UPPER,
                dev: st.st_dev,
                ino: st.st_ino,
                alias: 0,
            },
            kind: fuser::FileType::RegularFile,
            layer: UPPER,
            merged: false,
            stack: None,
            fresh: true,
        };
        let ino = self.inodes.remember(new.parent, new.name, entry);
        if self.zero_open {
            self.inodes.set_file(ino, Arc::new(fd), true, UPPER);
            return Ok((ino, attr::attr(ino, &st, false), 0));
        }
        let fh = self.add_handle(fd, ino, acc != OFlags::RDONLY, None);
        Ok((ino, attr::attr(ino, &st, false), fh))
    }

    /// mkdir, mknod or symlink, per `make`; the new entry looked up.
    fn make_and_lookup(
        &self,
        new: &New<'_>,
        make: impl Fn(BorrowedFd<'_>, &CStr, u32) -> Res<Option<OwnedFd>>,
    ) -> Res<(u64, FileAttr)> {
        let _ns = self.lock_ns();
        self.make_entry(new, make)?;
        self.lookup_in(new.parent, new.name)?.ok_or(Errno::NOENT)
    }

    pub(crate) fn mkdir_in(&self, new: &New<'_>) -> Res<(u64, FileAttr)> {
        self.make_and_lookup(new, |d, n, perms| {
            rustix::fs::mkdirat(d, n, Mode::from_raw_mode(perms)).map(|()| None)
        })
    }

    pub(crate) fn mknod_in(&self, new: &New<'_>, mode: u32, rdev: u32) -> Res<(u64, FileAttr)> {
        let kind = FileType::from_raw_mode(mode);
        if kind == FileType::CharacterDevice && rdev == 0 {
            // That is a whiteout on disk: it would delete the name instead.
            return Err(Errno::PERM);
        }
        self.make_and_lookup(new, |d, n, perms| {
            if kind == FileType::RegularFile {
                sys::open_at(d, n, OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY, perms)?;
                return Ok(None);
            }
            rustix::fs::mknodat(d, n, kind, Mode::from_raw_mode(perms), u64::from(rdev))
                .map(|()| None)
        })
    }

    pub(crate) fn symlink_in(&self, new: &New<'_>, target: &Path) -> Res<(u64, FileAttr)> {
        let target =
            CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| Errno::INVAL)?;
        self.make_and_lookup(new, |d, n, _| {
            rustix::fs::symlinkat(&target, d, n).map(|()| None)
        })
    }

    /// A new name for `ino` (copied up first: the link is made in the upper).
    pub(crate) fn link_in(&self, ino: u64, parent: u64, name: &CString) -> Res<(u64, FileAttr)> {
        let new = New {
            parent,
            name,
            dir: false,
            perms: 0,
            // A hardlink keeps the file's owner.
            owner: None,
        };
        let _ns = self.lock_ns();
        let v = self.copy_up(ino, true)?;
        if v.kind == fuser::FileType::Directory {
            return Err(Errno::PERM);
        }
        if v.layer != UPPER || v.orphan.is_some() {
            return Err(Errno::NOENT);
        }
        let loc = self.locate(&v)?;
        let (src, src_name) = loc.dir().ok_or(Errno::STALE)?;
        self.make_entry(&new, |d, n, _| {
            rustix::fs::linkat(src, src_name, d, n, AtFlags::empty()).map(|()| None)
        })?;
        self.lookup_in(parent, name)?.ok_or(Errno::NOENT)
    }
}
