//! Where an entry goes: opening (and creating) its parent directory inside the layer
//! root without crossing a symlink, clearing what an entry replaces, and the final pass
//! that gives directories their mode and times.
//!
//! Owns: the parent-fd cache and the [`Rule::SymlinkInPath`] refusal. Never: opens a
//! path except through [`crate::layer::fsops::Root`] or `O_NOFOLLOW` child opens.

use std::ffi::CString;
use std::os::fd::OwnedFd;

use rustix::fs::{FileType, Mode, Timestamps};
use rustix::io::Errno;

use super::meta::{ts, Meta};
use super::Unpacker;
use crate::layer::fsops;
use crate::layer::path::{display, CleanPath};
use crate::layer::{LayerError, Rule};

impl Unpacker<'_> {
    pub(super) fn root_dir(&self, shown: &str) -> Result<OwnedFd, LayerError> {
        self.root
            .open_dir(&[])
            .map_err(|e| LayerError::fs("open layer root for", shown, e))
    }

    /// Open (creating missing directories 0755 root-owned, as docker does) the parent
    /// directory of `path`, never through a symlink.
    pub(super) fn parent(&mut self, path: &CleanPath, shown: &str) -> Result<OwnedFd, LayerError> {
        let parts = path.parent();
        if let Some((cached, fd)) = &self.cache {
            if cached.as_slice() == parts {
                return fd
                    .try_clone()
                    .map_err(|e| LayerError::fs("dup directory fd for", shown, e));
            }
        }
        let fd = match self.root.open_dir(parts) {
            Ok(fd) => fd,
            Err(e)
                if e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
                    || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
                    || e.raw_os_error() == Some(Errno::XDEV.raw_os_error()) =>
            {
                return Err(LayerError::refused(shown, Rule::SymlinkInPath));
            }
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                self.make_parents(parts, shown)?
            }
            Err(e) => return Err(LayerError::fs("open parent directory of", shown, e)),
        };
        let keep = fd
            .try_clone()
            .map_err(|e| LayerError::fs("dup directory fd for", shown, e))?;
        self.cache = Some((parts.to_vec(), keep));
        Ok(fd)
    }

    fn make_parents(&mut self, parts: &[Vec<u8>], shown: &str) -> Result<OwnedFd, LayerError> {
        let mut cur = self.root_dir(shown)?;
        for p in parts {
            let c = fsops::cstr(p).map_err(|e| LayerError::fs("create parent of", shown, e))?;
            let next = match fsops::open_child_dir(&cur, p) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                    rustix::fs::mkdirat(&cur, c.as_c_str(), Mode::from_raw_mode(0o700))
                        .map_err(|e| LayerError::fs("create parent directory of", shown, e))?;
                    let fd = fsops::open_child_dir(&cur, p)
                        .map_err(|e| LayerError::fs("open parent directory of", shown, e))?;
                    let meta = Meta {
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        mtime: ts(0, 0),
                        atime: ts(0, 0),
                        xattrs: Vec::new(),
                    };
                    self.apply_owner_fd(&fd, &meta, "dir", shown)?;
                    self.set_mode_fd(&fd, 0o755, true, shown)?;
                    self.stats.dirs += 1;
                    fd
                }
                Err(e)
                    if e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
                        || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) =>
                {
                    return Err(LayerError::refused(shown, Rule::SymlinkInPath));
                }
                Err(e) => return Err(LayerError::fs("open parent directory of", shown, e)),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Remove what exists at `name` unless both it and the new entry are directories.
    /// Returns true when a directory is kept.
    pub(super) fn remove_existing(
        &mut self,
        dir: &OwnedFd,
        name: &CString,
        new_is_dir: bool,
        shown: &str,
    ) -> Result<bool, LayerError> {
        let st = fsops::lstat_at(dir, name).map_err(|e| LayerError::fs("inspect", shown, e))?;
        let Some(st) = st else { return Ok(false) };
        if new_is_dir && fsops::file_type(&st) == FileType::Directory {
            return Ok(true);
        }
        // Something is replaced: a cached parent below it may now be stale.
        self.cache = None;
        fsops::remove_all_at(dir, name).map_err(|e| LayerError::fs("replace", shown, e))?;
        Ok(false)
    }

    /// Directory modes and times, deepest first (so writing into a dir never changes its
    /// final mtime, and a read-only dir is finished after its contents).
    pub(super) fn finish_dirs(&mut self) -> Result<(), LayerError> {
        self.cache = None;
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (parts, mode, atime, mtime) in dirs {
            let shown = display(&parts.join(&b'/'));
            // A later entry may have replaced the directory: then there is nothing to do.
            let Ok(fd) = self.root.open_dir(&parts) else {
                continue;
            };
            let m = self.disk_mode(mode, true);
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(m))
                .map_err(|e| LayerError::fs("set mode of", shown.clone(), e))?;
            rustix::fs::futimens(
                &fd,
                &Timestamps {
                    last_access: atime,
                    last_modification: mtime,
                },
            )
            .map_err(|e| LayerError::fs("set times of", shown, e))?;
        }
        Ok(())
    }
}
