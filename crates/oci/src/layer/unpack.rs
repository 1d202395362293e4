//! Extract one layer tar into an empty directory of its own (see docs/layers.md).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;
use tar::EntryType;

use super::fsops::{self, OverrideStat, Resolver, Root, OVERRIDE_STAT_XATTR};
use super::path::{display, AbsolutePaths, CleanPath};
use super::whiteout::{self, Kind};
use super::{LayerError, OverlayXattrs, OwnerMode, Rule, WhiteoutFormat};

/// What [`unpack`] may do. `Default` is the safe, strict choice for real layers.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub owner: OwnerMode,
    pub whiteouts: WhiteoutFormat,
    pub overlay_xattrs: OverlayXattrs,
    /// Create character/block devices (else refuse them). Off by default.
    pub allow_devices: bool,
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
    pub fifos: u64,
    /// Apparent bytes of regular files.
    pub bytes: u64,
    pub xattrs_skipped: u64,
    /// Entries whose owner could not be recorded (Xattr mode: symlinks, fifos, devices).
    pub owners_lost: u64,
    /// True when paths were resolved with openat2 (else the O_NOFOLLOW walk).
    pub openat2: bool,
}

/// Metadata of one entry, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    atime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
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
        buf: vec![0u8; BUF_SIZE],
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

/// Compared with `==` (memcmp, fast even in debug builds) to find holes.
static ZEROS: [u8; BUF_SIZE] = [0u8; BUF_SIZE];
const BUF_SIZE: usize = 128 * 1024;

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

fn ts(secs: i64, nsecs: i64) -> Timespec {
    Timespec {
        tv_sec: secs,
        tv_nsec: nsecs as _,
    }
}

/// Parse a PAX time (`1700000000.123456789`).
fn pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        nsec = format!("{digits:0<9}").parse().ok()?;
        if sec < 0 && nsec > 0 {
            return Some(ts(sec - 1, 1_000_000_000 - nsec));
        }
    }
    Some(ts(sec, nsec))
}

impl Unpacker<'_> {
    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<Meta, LayerError> {
        let h = entry.header();
        let bad = |what: &str, e: io::Error| LayerError::ReadTar {
            after: shown.to_owned(),
            source: io::Error::new(e.kind(), format!("bad {what} in header of `{shown}`: {e}")),
        };
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mut uid = h.uid().map_err(|e| bad("uid", e))?;
        let mut gid = h.gid().map_err(|e| bad("gid", e))?;
        let mtime_secs = h.mtime().map_err(|e| bad("mtime", e))?;
        let mut mtime = ts(i64::try_from(mtime_secs).unwrap_or(i64::MAX), 0);
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(|e| bad("pax records", e))? {
            for ext in exts {
                let ext = ext.map_err(|e| bad("pax record", e))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((name.to_vec(), value.to_vec()));
                } else {
                    match key {
                        b"uid" => {
                            uid = std::str::from_utf8(value)
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(uid)
                        }
                        b"gid" => {
                            gid = std::str::from_utf8(value)
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(gid)
                        }
                        b"mtime" => mtime = pax_time(value).unwrap_or(mtime),
                        b"atime" => atime = pax_time(value),
                        // PAX sparse files (GNU tar --sparse --format=posix) keep their map
                        // in the data; the tar crate would hand that out as content.
                        k if k.starts_with(b"GNU.sparse.") => {
                            return Err(LayerError::refused(shown, Rule::PaxSparse))
                        }
                        _ => {}
                    }
                }
            }
        }
        let id =
            |v: u64| u32::try_from(v).map_err(|_| LayerError::refused(shown, Rule::IdTooLarge(v)));
        Ok(Meta {
            mode,
            uid: id(uid)?,
            gid: id(gid)?,
            mtime,
            atime: atime.unwrap_or(mtime),
            xattrs,
        })
    }

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
                Kind::Opaque => {
                    let dir = self.parent(&path, &shown)?;
                    rustix::fs::fsetxattr(
                        &dir,
                        self.opts.overlay_xattrs.opaque(),
                        b"y",
                        rustix::fs::XattrFlags::empty(),
                    )
                    .map_err(|e| LayerError::fs("mark directory opaque for", shown, e))?;
                    self.stats.opaque_dirs += 1;
                    return Ok(());
                }
                Kind::Whiteout(name) => {
                    if name.is_empty() || name == b"." || name == b".." {
                        return Err(LayerError::refused(shown, Rule::BadName));
                    }
                    let name = name.to_vec();
                    let dir = self.parent(&path, &shown)?;
                    let c = fsops::cstr(&name)
                        .map_err(|e| LayerError::fs("create whiteout", shown.clone(), e))?;
                    self.remove_existing(&dir, &c, false, &shown)?;
                    rustix::fs::mknodat(
                        &dir,
                        c.as_c_str(),
                        FileType::CharacterDevice,
                        Mode::empty(),
                        0,
                    )
                    .map_err(|e| LayerError::Whiteout {
                        path: shown.clone(),
                        source: e.into(),
                    })?;
                    // The entry's mtime, so that packing the dir again is reproducible.
                    let meta = self.meta(entry, &shown)?;
                    let times = Timestamps {
                        last_access: meta.atime,
                        last_modification: meta.mtime,
                    };
                    rustix::fs::utimensat(&dir, c.as_c_str(), &times, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| LayerError::fs("set times of", shown, e))?;
                    self.stats.whiteouts += 1;
                    return Ok(());
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

    fn root_dir(&self, shown: &str) -> Result<OwnedFd, LayerError> {
        self.root
            .open_dir(&[])
            .map_err(|e| LayerError::fs("open layer root for", shown, e))
    }

    /// Open (creating missing directories 0755 root-owned, as docker does) the parent
    /// directory of `path`, never through a symlink.
    fn parent(&mut self, path: &CleanPath, shown: &str) -> Result<OwnedFd, LayerError> {
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
    fn remove_existing(
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

    fn dir(
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

    fn file<R: Read>(
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

    fn symlink<R: Read>(
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
        rustix::fs::utimensat(
            dir,
            name.as_c_str(),
            &Timestamps {
                last_access: meta.atime,
                last_modification: meta.mtime,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| LayerError::fs("set times of", shown, e))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    fn hardlink<R: Read>(
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

    fn special<R: Read>(
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
            _ => {
                if !self.opts.allow_devices {
                    return Err(LayerError::refused(shown, Rule::Device));
                }
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
        rustix::fs::utimensat(
            dir,
            name.as_c_str(),
            &Timestamps {
                last_access: meta.atime,
                last_modification: meta.mtime,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| LayerError::fs("set times of", shown, e))?;
        if ft == FileType::Fifo {
            self.stats.fifos += 1;
        } else {
            self.stats.devices += 1;
        }
        Ok(())
    }

    /// The mode written on disk: the tar's, except in Xattr mode, where setuid, setgid
    /// and sticky are dropped and the owner may always read and write (and search dirs).
    fn disk_mode(&self, mode: u32, is_dir: bool) -> u32 {
        match self.opts.owner {
            OwnerMode::Real => mode & 0o7777,
            OwnerMode::Xattr => (mode & 0o777) | if is_dir { 0o700 } else { 0o600 },
        }
    }

    fn set_mode_fd(
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

    fn apply_owner_fd(
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
            .map_err(|e| LayerError::Chown {
                path: shown.to_owned(),
                uid: meta.uid,
                gid: meta.gid,
                source: e.into(),
            }),
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

    fn apply_owner_at(
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
            .map_err(|e| LayerError::Chown {
                path: shown.to_owned(),
                uid: meta.uid,
                gid: meta.gid,
                source: e.into(),
            }),
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

    fn apply_xattrs_fd(&mut self, fd: &OwnedFd, xattrs: &[(Vec<u8>, Vec<u8>)]) {
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

    fn apply_xattrs_at(&mut self, dir: &OwnedFd, name: &[u8], xattrs: &[(Vec<u8>, Vec<u8>)]) {
        for (k, v) in xattrs {
            if !self.xattr_allowed(k) || fsops::set_xattr_at(dir, name, k, v).is_err() {
                self.stats.xattrs_skipped += 1;
            }
        }
    }

    /// Directory modes and times, deepest first (so writing into a dir never changes its
    /// final mtime, and a read-only dir is finished after its contents).
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
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
