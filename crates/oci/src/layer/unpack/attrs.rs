//! What an entry carries besides its content: the mode written on disk, the owner (real
//! chown, or the `user.containers.override_stat` record in Xattr mode) and the tar's
//! xattrs.
//!
//! Owns: the ownership model of docs/layers.md as applied while unpacking, and the rule
//! that bookkeeping xattrs are never taken from a tar. Never: creates or removes files.

use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, Gid, Mode, Timestamps, Uid};
use rustix::io::Errno;

use super::meta::Meta;
use super::Unpacker;
use crate::layer::fsops::{self, OverrideStat, OVERRIDE_STAT_XATTR};
use crate::layer::whiteout;
use crate::layer::{LayerError, OwnerMode};

fn chown_error(meta: &Meta, shown: &str, e: Errno) -> LayerError {
    LayerError::Chown {
        path: shown.to_owned(),
        uid: meta.uid,
        gid: meta.gid,
        source: e.into(),
    }
}

/// The entry's access and modification times on `dir/name` itself (a symlink's own).
pub(super) fn set_times_at(
    dir: &OwnedFd,
    name: &CStr,
    meta: &Meta,
    shown: &str,
) -> Result<(), LayerError> {
    let times = Timestamps {
        last_access: meta.atime,
        last_modification: meta.mtime,
    };
    rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| LayerError::fs("set times of", shown, e))
}

impl Unpacker<'_> {
    /// The mode written on disk: the tar's, except in Xattr mode, where setuid, setgid
    /// and sticky are dropped and the owner may always read and write (and search dirs).
    pub(super) fn disk_mode(&self, mode: u32, is_dir: bool) -> u32 {
        match self.opts.owner {
            OwnerMode::Real => mode & 0o7777,
            OwnerMode::Xattr => (mode & 0o777) | if is_dir { 0o700 } else { 0o600 },
        }
    }

    pub(super) fn set_mode_fd(
        &self,
        fd: &OwnedFd,
        mode: u32,
        is_dir: bool,
        shown: &str,
    ) -> Result<(), LayerError> {
        let m = if is_dir && mode == 0o700 {
            0o700
        } else {
            self.disk_mode(mode, is_dir)
        };
        rustix::fs::fchmod(fd, Mode::from_raw_mode(m))
            .map_err(|e| LayerError::fs("set mode of", shown, e))
    }

    pub(super) fn apply_owner_fd(
        &mut self,
        fd: &OwnedFd,
        meta: &Meta,
        kind: &str,
        shown: &str,
    ) -> Result<(), LayerError> {
        match self.opts.owner {
            OwnerMode::Real => rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| chown_error(meta, shown, e)),
            OwnerMode::Xattr => {
                let v = OverrideStat {
                    uid: meta.uid,
                    gid: meta.gid,
                    mode: meta.mode,
                    kind: kind.to_owned(),
                }
                .format();
                rustix::fs::fsetxattr(
                    fd,
                    OVERRIDE_STAT_XATTR,
                    v.as_bytes(),
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| {
                    LayerError::fs("record owner (user.containers.override_stat) of", shown, e)
                })
            }
        }
    }

    pub(super) fn apply_owner_at(
        &mut self,
        dir: &OwnedFd,
        name: &CString,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        match self.opts.owner {
            OwnerMode::Real => rustix::fs::chownat(
                dir,
                name.as_c_str(),
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| chown_error(meta, shown, e)),
            OwnerMode::Xattr => {
                // User xattrs are not allowed on symlinks, fifos and devices.
                if meta.uid != 0 || meta.gid != 0 {
                    self.stats.owners_lost += 1;
                }
                Ok(())
            }
        }
    }

    fn xattr_allowed(&self, key: &[u8]) -> bool {
        self.opts.xattrs && !whiteout::is_bookkeeping_xattr(key)
    }

    pub(super) fn apply_xattrs_fd(&mut self, fd: &OwnedFd, xattrs: &[(Vec<u8>, Vec<u8>)]) {
        for (k, v) in xattrs {
            if !self.xattr_allowed(k) {
                self.stats.xattrs_skipped += 1;
                continue;
            }
            let ok = fsops::cstr(k)
                .ok()
                .map(|k| {
                    rustix::fs::fsetxattr(fd, k.as_c_str(), v, rustix::fs::XattrFlags::empty())
                        .is_ok()
                })
                .unwrap_or(false);
            if !ok {
                self.stats.xattrs_skipped += 1;
            }
        }
    }

    pub(super) fn apply_xattrs_at(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) {
        for (k, v) in xattrs {
            if !self.xattr_allowed(k) || fsops::set_xattr_at(dir, name, k, v).is_err() {
                self.stats.xattrs_skipped += 1;
            }
        }
    }
}
