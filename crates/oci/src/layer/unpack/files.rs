//! Directories and regular files: creating them, filling a file from the tar (holes kept
//! as holes, the size cap counted while writing, truncated data refused) and applying
//! owner, xattrs, mode and times.
//!
//! Owns: the content of regular files. Never: opens anything but the final component,
//! relative to a parent fd tree.rs resolved (`O_CREAT | O_EXCL | O_NOFOLLOW`).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags, Timestamps};

use super::meta::Meta;
use super::Unpacker;
use crate::layer::fsops;
use crate::layer::path::CleanPath;
use crate::layer::{LayerError, Rule};

/// The copy buffer's size: one read of entry data at a time.
pub(super) const BUF_SIZE: usize = 128 * 1024;
/// Compared with `==` (memcmp, fast even in debug builds) to find holes.
static ZEROS: [u8; BUF_SIZE] = [0u8; BUF_SIZE];

impl Unpacker<'_> {
    pub(super) fn dir(
        &mut self,
        dir: &OwnedFd,
        name: &CString,
        path: &CleanPath,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        if !self.remove_existing(dir, name, true, shown)? {
            rustix::fs::mkdirat(dir, name.as_c_str(), Mode::from_raw_mode(0o700))
                .map_err(|e| LayerError::fs("create directory", shown, e))?;
        }
        let fd = fsops::open_child_dir(dir, name.as_bytes())
            .map_err(|e| LayerError::fs("open directory", shown, e))?;
        self.apply_owner_fd(&fd, meta, "dir", shown)?;
        self.apply_xattrs_fd(&fd, &meta.xattrs);
        // Writable while we fill it; the real mode comes at the end.
        self.set_mode_fd(&fd, 0o700, true, shown)?;
        self.dirs
            .push((path.parts.clone(), meta.mode, meta.atime, meta.mtime));
        self.stats.dirs += 1;
        Ok(())
    }

    pub(super) fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dir: &OwnedFd,
        name: &CString,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        let size = entry.size();
        if let Some(cap) = self.opts.max_bytes {
            if self.stats.bytes.saturating_add(size) > cap {
                return Err(LayerError::refused(shown, Rule::SizeCap(cap)));
            }
        }
        self.remove_existing(dir, name, false, shown)?;
        let fd = rustix::fs::openat(
            dir,
            name.as_c_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| LayerError::fs("create file", shown, e))?;
        let mut f = File::from(fd);
        let mut written: u64 = 0;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(LayerError::ReadTar {
                        after: shown.to_owned(),
                        source: io::Error::new(
                            e.kind(),
                            format!("data of `{shown}` is truncated or unreadable: {e}"),
                        ),
                    })
                }
            };
            written += n as u64;
            if let Some(cap) = self.opts.max_bytes {
                if self.stats.bytes + written > cap {
                    return Err(LayerError::refused(shown, Rule::SizeCap(cap)));
                }
            }
            let chunk = &self.buf[..n];
            // Keep holes: runs of zeros become seeks (sparse files stay sparse).
            if chunk == &ZEROS[..n] {
                f.seek(SeekFrom::Current(n as i64))
                    .map_err(|e| LayerError::fs("write file", shown, e))?;
            } else {
                f.write_all(chunk)
                    .map_err(|e| LayerError::fs("write file", shown, e))?;
            }
        }
        if written != size {
            return Err(LayerError::ReadTar {
                after: shown.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("data of `{shown}` is truncated: {written} of {size} bytes"),
                ),
            });
        }
        f.set_len(written)
            .map_err(|e| LayerError::fs("write file", shown, e))?;
        self.stats.bytes += written;
        self.stats.files += 1;
        let fd = OwnedFd::from(f);
        self.apply_owner_fd(&fd, meta, "file", shown)?;
        self.apply_xattrs_fd(&fd, &meta.xattrs);
        self.set_mode_fd(&fd, meta.mode, false, shown)?;
        rustix::fs::futimens(
            &fd,
            &Timestamps {
                last_access: meta.atime,
                last_modification: meta.mtime,
            },
        )
        .map_err(|e| LayerError::fs("set times of", shown, e))?;
        Ok(())
    }
}
