//! Symlinks and hardlinks. A symlink's target is stored as it is (it is never followed
//! while unpacking); a hardlink's target is cleaned by the same path rules as a name,
//! resolved without symlinks, and must be a regular file this layer already extracted.
//!
//! Owns: the [`Rule::HardlinkTarget`] refusals. Never: follows a link, or links to
//! anything outside the layer root.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType};
use rustix::io::Errno;

use super::attrs::set_times_at;
use super::meta::Meta;
use super::Unpacker;
use crate::layer::fsops;
use crate::layer::path::{display, CleanPath};
use crate::layer::{LayerError, Rule};

impl Unpacker<'_> {
    pub(super) fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: &OwnedFd,
        name: &CString,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        let target = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        if target.contains(&0) {
            return Err(LayerError::refused(shown, Rule::NulInName));
        }
        let target =
            fsops::cstr(&target).map_err(|e| LayerError::fs("create symlink", shown, e))?;
        self.remove_existing(dir, name, false, shown)?;
        rustix::fs::symlinkat(target.as_c_str(), dir, name.as_c_str())
            .map_err(|e| LayerError::fs("create symlink", shown, e))?;
        self.apply_owner_at(dir, name, meta, shown)?;
        self.apply_xattrs_at(dir, name.as_bytes(), &meta.xattrs);
        set_times_at(dir, name, meta, shown)?;
        self.stats.symlinks += 1;
        Ok(())
    }

    pub(super) fn hardlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: &OwnedFd,
        name: &CString,
        path: &CleanPath,
        shown: &str,
    ) -> Result<(), LayerError> {
        let raw = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let why = |s: String| LayerError::refused(shown, Rule::HardlinkTarget(s));
        let target = match CleanPath::parse(&raw, self.opts.absolute_paths) {
            Ok(t) => t,
            Err(LayerError::Refused { rule, .. }) => {
                return Err(why(format!("`{}`: {rule}", display(&raw))))
            }
            Err(e) => return Err(e),
        };
        if target.is_root() || target == *path {
            return Err(why(format!(
                "`{}` is the link itself or the layer root",
                display(&raw)
            )));
        }
        let tdir = match self.root.open_dir(target.parent()) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                return Err(why(format!(
                    "`{}` was not extracted before the link",
                    target.display()
                )))
            }
            Err(_) => return Err(why(format!("`{}` crosses a symlink", target.display()))),
        };
        let tname = fsops::cstr(target.base().unwrap_or_default())
            .map_err(|e| LayerError::fs("link", shown, e))?;
        match fsops::lstat_at(&tdir, &tname)
            .map_err(|e| LayerError::fs("inspect link target of", shown, e))?
        {
            None => {
                return Err(why(format!(
                    "`{}` was not extracted before the link",
                    target.display()
                )))
            }
            Some(st) if fsops::file_type(&st) != FileType::RegularFile => {
                return Err(why(format!("`{}` is not a regular file", target.display())))
            }
            Some(_) => {}
        }
        self.remove_existing(dir, name, false, shown)?;
        rustix::fs::linkat(
            &tdir,
            tname.as_c_str(),
            dir,
            name.as_c_str(),
            AtFlags::empty(),
        )
        .map_err(|e| LayerError::fs("create hardlink", shown, e))?;
        self.stats.hardlinks += 1;
        Ok(())
    }
}
