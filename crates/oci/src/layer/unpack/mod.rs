//! Extract one layer tar into an empty directory of its own (see docs/layers.md): the
//! options and report, the entry loop, and the dispatch of each entry by type to the
//! files beside this one.
//!
//! Owns: the order entries are applied in, the per-layer limits (entry count), which
//! entry types are extracted at all. Never: resolves a path by itself (tree.rs opens
//! every parent through [`Root`]), writes outside `dest`, or knows the store.

mod attrs;
mod files;
mod links;
mod meta;
mod special;
mod tree;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::Timespec;
use tar::EntryType;

use super::fsops::{self, Resolver, Root};
use super::path::{display, AbsolutePaths, CleanPath};
use super::whiteout::{self, Kind};
use super::{LayerError, OverlayXattrs, OwnerMode, Rule, WhiteoutFormat};

/// What [`unpack`] may do. `Default` is the safe, strict choice for real layers.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub owner: OwnerMode,
    pub whiteouts: WhiteoutFormat,
    pub overlay_xattrs: OverlayXattrs,
    /// Create character/block devices (needs CAP_MKNOD: real root outside a user
    /// namespace). Off by default.
    pub allow_devices: bool,
    /// Where devices are not allowed: skip them, counted in
    /// [`UnpackStats::devices_skipped`], rather than refuse the tar ([`Rule::Device`]).
    /// Off by default; the store turns it on for image layers (a rootless unpack cannot
    /// make device nodes, and a container's /dev is made at run time).
    pub skip_devices: bool,
    /// Cap on the layer's apparent size (sum of file sizes, sparse holes included).
    pub max_bytes: Option<u64>,
    /// Cap on the number of tar entries (default 2^21).
    pub max_entries: u64,
    pub absolute_paths: AbsolutePaths,
    pub resolver: Resolver,
    /// Apply `SCHILY.xattr.*` records (default on). Xattrs the file system or the
    /// namespace refuses (EPERM/ENOTSUP) are counted in `xattrs_skipped`, not fatal.
    pub xattrs: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            owner: OwnerMode::Real,
            whiteouts: WhiteoutFormat::Overlay,
            overlay_xattrs: OverlayXattrs::User,
            allow_devices: false,
            skip_devices: false,
            max_bytes: None,
            max_entries: 1 << 21,
            absolute_paths: AbsolutePaths::Refuse,
            resolver: Resolver::Auto,
            xattrs: true,
        }
    }
}

/// What [`unpack`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnpackStats {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    pub devices: u64,
    /// Character/block devices left out under `skip_devices`: the caller reports the
    /// count once per layer.
    pub devices_skipped: u64,
    pub fifos: u64,
    /// Apparent bytes of regular files.
    pub bytes: u64,
    pub xattrs_skipped: u64,
    /// Entries whose owner could not be recorded (Xattr mode: symlinks, fifos, devices).
    pub owners_lost: u64,
    /// True when paths were resolved with openat2 (else the O_NOFOLLOW walk).
    pub openat2: bool,
}

/// Extract the layer tar `reader` (uncompressed, gzip or zstd) into `dest`, an existing empty
/// directory. See the module docs and docs/layers.md for the rules.
pub fn unpack<R: Read>(
    reader: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, LayerError> {
    let root = Root::open(dest, opts.resolver)
        .map_err(|e| LayerError::fs("open layer dir", dest.display().to_string(), e))?;
    let names = fsops::list_dir(&root.fd)
        .map_err(|e| LayerError::fs("read layer dir", dest.display().to_string(), e))?;
    if !names.is_empty() {
        return Err(LayerError::DestNotEmpty {
            path: dest.display().to_string(),
        });
    }
    let mut u = Unpacker {
        root,
        opts,
        stats: UnpackStats::default(),
        cache: None,
        dirs: Vec::new(),
        buf: vec![0u8; files::BUF_SIZE],
    };
    u.stats.openat2 = u.root.uses_openat2();
    // Compressed blobs are accepted too (gzip/zstd, detected by magic bytes).
    let (_, reader) =
        crate::compress::auto_decompress(reader).map_err(|e| LayerError::ReadTar {
            after: String::new(),
            source: e,
        })?;
    let mut archive = tar::Archive::new(super::guard::TarGuard::new(reader));
    let entries = archive.entries().map_err(|e| LayerError::ReadTar {
        after: String::new(),
        source: e,
    })?;
    let mut last = String::from("(start of tar)");
    for entry in entries {
        let mut entry = entry.map_err(|e| LayerError::ReadTar {
            after: last.clone(),
            source: e,
        })?;
        u.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        if u.stats.entries > opts.max_entries {
            return Err(LayerError::refused(
                display(&raw),
                Rule::TooManyEntries(opts.max_entries),
            ));
        }
        u.entry(&mut entry, &raw)?;
        last = display(&raw);
    }
    u.finish_dirs()?;
    Ok(u.stats)
}

/// One unpack in progress; its methods live in the files beside this one, by job.
struct Unpacker<'o> {
    root: Root,
    opts: &'o UnpackOptions,
    stats: UnpackStats,
    /// The last parent directory opened, by components.
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    /// Directories whose mode and times are applied at the end, deepest first.
    dirs: Vec<(Vec<Vec<u8>>, u32, Timespec, Timespec)>,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<(), LayerError> {
        let shown = display(raw);
        let path = CleanPath::parse(raw, self.opts.absolute_paths)?;
        let mut kind = entry.header().entry_type();
        // Old tars mark directories by a trailing slash on a regular entry.
        if kind == EntryType::Regular && raw.ends_with(b"/") {
            kind = EntryType::Directory;
        }
        match kind {
            EntryType::XGlobalHeader => return Ok(()),
            EntryType::Directory => {}
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {
                if path.is_root() {
                    return Err(LayerError::refused(shown, Rule::ReplaceRoot));
                }
            }
            other => {
                return Err(LayerError::refused(
                    shown,
                    Rule::UnsupportedType(other.as_byte()),
                ))
            }
        }
        if path.is_root() {
            let meta = self.meta(entry, &shown)?;
            let fd = self.root_dir(&shown)?;
            self.apply_owner_fd(&fd, &meta, "dir", &shown)?;
            self.apply_xattrs_fd(&fd, &meta.xattrs);
            self.dirs
                .push((Vec::new(), meta.mode, meta.atime, meta.mtime));
            self.stats.dirs += 1;
            return Ok(());
        }
        let base = path.base().unwrap_or_default().to_vec();
        if self.opts.whiteouts == WhiteoutFormat::Overlay {
            match whiteout::classify(&base) {
                Kind::Plain => {}
                Kind::Meta => return Ok(()),
                Kind::Opaque => return self.opaque(&path, &shown),
                Kind::Whiteout(name) => {
                    let name = name.to_vec();
                    return self.whiteout(entry, &path, &name, &shown);
                }
            }
        }
        let meta = self.meta(entry, &shown)?;
        let dir = self.parent(&path, &shown)?;
        let name = fsops::cstr(&base).map_err(|e| LayerError::fs("create", shown.clone(), e))?;
        match kind {
            EntryType::Directory => self.dir(&dir, &name, &path, &meta, &shown),
            EntryType::Symlink => self.symlink(entry, &dir, &name, &meta, &shown),
            EntryType::Link => self.hardlink(entry, &dir, &name, &path, &shown),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.special(entry, kind, &dir, &name, &meta, &shown)
            }
            _ => self.file(entry, &dir, &name, &meta, &shown),
        }
    }
}
