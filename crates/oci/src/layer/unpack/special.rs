//! Entries that are not content: fifos, character and block devices, and the overlay
//! whiteouts (`.wh.NAME` → a 0:0 character device, `.wh..wh..opq` → the opaque xattr on
//! the directory) when the layer dir is in [`crate::layer::WhiteoutFormat::Overlay`].
//!
//! Owns: every `mknod` of the unpacker, and the device rule: devices are created with
//! `allow_devices`, skipped and counted with `skip_devices`, else refused
//! ([`Rule::Device`]). Never: creates a device the options did not allow.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, Mode};
use tar::EntryType;

use super::attrs::set_times_at;
use super::meta::Meta;
use super::Unpacker;
use crate::layer::fsops;
use crate::layer::path::CleanPath;
use crate::layer::{LayerError, Rule};

impl Unpacker<'_> {
    /// `dir/.wh..wh..opq`: mark `dir` opaque (lower layers' contents hidden).
    pub(super) fn opaque(&mut self, path: &CleanPath, shown: &str) -> Result<(), LayerError> {
        let dir = self.parent(path, shown)?;
        rustix::fs::fsetxattr(
            &dir,
            self.opts.overlay_xattrs.opaque(),
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| LayerError::fs("mark directory opaque for", shown, e))?;
        self.stats.opaque_dirs += 1;
        Ok(())
    }

    /// `dir/.wh.NAME`: replace `dir/NAME` with the overlay whiteout, a 0:0 char device.
    pub(super) fn whiteout<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &CleanPath,
        name: &[u8],
        shown: &str,
    ) -> Result<(), LayerError> {
        if name.is_empty() || name == b"." || name == b".." {
            return Err(LayerError::refused(shown, Rule::BadName));
        }
        let dir = self.parent(path, shown)?;
        let c = fsops::cstr(name).map_err(|e| LayerError::fs("create whiteout", shown, e))?;
        self.remove_existing(&dir, &c, false, shown)?;
        rustix::fs::mknodat(
            &dir,
            c.as_c_str(),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .map_err(|e| LayerError::Whiteout {
            path: shown.to_owned(),
            source: e.into(),
        })?;
        // The entry's mtime, so that packing the dir again is reproducible.
        let meta = self.meta(entry, shown)?;
        set_times_at(&dir, &c, &meta, shown)?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    /// A fifo, or a character or block device (`kind` says which).
    pub(super) fn special<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        dir: &OwnedFd,
        name: &CString,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        let (ft, dev) = match kind {
            EntryType::Fifo => (FileType::Fifo, 0),
            // Skipped like buildah and ch-image do: an unprivileged process (root in a
            // user namespace too) cannot make device nodes, and a container's /dev is
            // made at run time. The path was resolved already (tree.rs), so a device
            // aimed outside the root is still refused. Nothing is created or replaced.
            _ if !self.opts.allow_devices && self.opts.skip_devices => {
                self.stats.devices_skipped += 1;
                return Ok(());
            }
            _ if !self.opts.allow_devices => {
                return Err(LayerError::refused(shown, Rule::Device));
            }
            _ => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = if kind == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (ft, rustix::fs::makedev(major, minor))
            }
        };
        self.remove_existing(dir, name, false, shown)?;
        rustix::fs::mknodat(dir, name.as_c_str(), ft, Mode::from_raw_mode(0o600), dev)
            .map_err(|e| LayerError::fs("create special file", shown, e))?;
        self.apply_owner_at(dir, name, meta, shown)?;
        self.apply_xattrs_at(dir, name.as_bytes(), &meta.xattrs);
        let mode = self.disk_mode(meta.mode, false);
        rustix::fs::chmodat(
            dir,
            name.as_c_str(),
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )
        .map_err(|e| LayerError::fs("set mode of", shown, e))?;
        set_times_at(dir, name, meta, shown)?;
        if ft == FileType::Fifo {
            self.stats.fifos += 1;
        } else {
            self.stats.devices += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tar::{EntryType, Header};

    use crate::layer::{unpack, OwnerMode, Rule, UnpackOptions};

    fn entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, data: &[u8]) {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        if matches!(kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(5).expect("gnu header has device fields");
            h.set_device_minor(1).expect("gnu header has device fields");
        }
        b.append_data(&mut h, name, data).expect("tar entry");
    }

    #[test]
    fn skipped_devices_are_counted_fifos_and_the_rest_kept() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "./dev/", EntryType::Directory, b"");
        entry(&mut b, "./dev/console", EntryType::Char, b"");
        entry(&mut b, "./dev/sda", EntryType::Block, b"");
        entry(&mut b, "./dev/fifo", EntryType::Fifo, b"");
        // A device whose parent the tar never names: the parent is made as for a file.
        entry(&mut b, "./srv/dev/tty", EntryType::Char, b"");
        entry(&mut b, "./etc/hostname", EntryType::Regular, b"box\n");
        let tar = b.into_inner().expect("tar");
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = UnpackOptions {
            owner: OwnerMode::Xattr,
            skip_devices: true,
            ..UnpackOptions::default()
        };
        let stats = unpack(&tar[..], dir.path(), &opts).expect("unpack");
        assert_eq!((stats.devices_skipped, stats.devices), (3, 0), "{stats:?}");
        assert_eq!(stats.fifos, 1, "{stats:?}");
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("dev"))
            .expect("dev dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["fifo"]);
        assert!(dir.path().join("srv/dev").is_dir());
        assert!(!dir.path().join("srv/dev/tty").exists());
        assert_eq!(
            std::fs::read(dir.path().join("etc/hostname")).expect("file"),
            b"box\n"
        );
    }

    #[test]
    fn devices_are_refused_unless_allowed_or_skipped() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "ok", EntryType::Regular, b"x");
        entry(&mut b, "disk", EntryType::Block, b"");
        let tar = b.into_inner().expect("tar");
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = UnpackOptions {
            owner: OwnerMode::Xattr,
            ..UnpackOptions::default()
        };
        let e = unpack(&tar[..], dir.path(), &opts).expect_err("a device is refused");
        assert_eq!(e.rule(), Some(&Rule::Device), "{e}");
        assert!(!dir.path().join("disk").exists());
    }
}
