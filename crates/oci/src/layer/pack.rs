//! Pack a directory into a layer tar, and flatten a stack of layer dirs into one tar.
//! Deterministic: names sorted bytewise, directories before their contents, numeric
//! owners only, no atime/ctime, PAX records only where ustar cannot hold a value.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use tar::{EntryType, Header};

use super::fsops::{self, OverrideStat, Resolver, Root, OVERRIDE_STAT_XATTR};
use super::whiteout::{self, FUSE_OPAQUE_XATTR, TRUSTED_OPAQUE_XATTR, USER_OPAQUE_XATTR};
use super::{LayerError, OwnerMode, WhiteoutFormat};

/// How [`pack`] and [`flatten`] read ownership and shape the tar.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// `Real`: uid/gid/mode from stat. `Xattr`: from `user.containers.override_stat`
    /// when present, else `default_owner` (or stat) and the on-disk mode.
    pub owner: OwnerMode,
    /// Owner for entries without an override record in Xattr mode (`Some((0, 0))` when
    /// packing outside the single-id namespace, where stat shows the host user).
    pub default_owner: Option<(u32, u32)>,
    /// Clamp mtimes to at most this (SOURCE_DATE_EPOCH).
    pub mtime_clamp: Option<i64>,
    /// Emit xattrs as `SCHILY.xattr.*` PAX records (bookkeeping xattrs never are).
    pub xattrs: bool,
    /// The whiteout form found on disk (pack turns overlay ones into `.wh.` entries).
    pub whiteouts: WhiteoutFormat,
    /// Paths left out with everything below them, relative to the packed dir and
    /// written as in the tar (`etc/hosts`): a container's mount points, which are not
    /// its changes.
    pub skip: Vec<String>,
    /// In Xattr mode, owners of symlinks and fifos (which cannot carry the record) by
    /// path as in the tar (`usr/bin/x`): the recording fakeroot's side record. Applied
    /// to a symlink or fifo found at that path; anything else there ignores it.
    pub side_owners: std::collections::BTreeMap<String, (u32, u32)>,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            owner: OwnerMode::Real,
            default_owner: None,
            mtime_clamp: None,
            xattrs: true,
            whiteouts: WhiteoutFormat::Overlay,
            skip: Vec::new(),
            side_owners: Default::default(),
        }
    }
}

/// What [`pack`] / [`flatten`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PackStats {
    pub entries: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// Bytes of the tar stream.
    pub tar_bytes: u64,
    pub hardlinks: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    /// Sockets are not representable in a layer and are skipped (as docker does).
    pub sockets_skipped: u64,
}

/// Pack `dir` into an uncompressed tar on `w` (the diff form: overlay whiteouts and
/// opaque dirs become `.wh.` entries). The root directory itself gets no entry.
pub fn pack<W: Write>(dir: &Path, w: W, opts: &PackOptions) -> Result<PackStats, LayerError> {
    let root = open_root(dir)?;
    let mut p = Packer::new(w, opts, false, vec![root]);
    p.walk(&[0], b"", None)?;
    p.finish()
}

/// Write the merged view of `layers` (lowest first, overlay format) as one tar: what a
/// container started from them sees at its root. Whiteouts and opaque dirs are applied,
/// never emitted. Streams: nothing is copied to a temp tree.
pub fn flatten<W: Write, P: AsRef<Path>>(
    layers: &[P],
    w: W,
    opts: &PackOptions,
) -> Result<PackStats, LayerError> {
    let mut roots = Vec::with_capacity(layers.len());
    for l in layers.iter().rev() {
        roots.push(open_root(l.as_ref())?);
    }
    let all: Vec<usize> = (0..roots.len()).collect();
    let mut p = Packer::new(w, opts, true, roots);
    p.walk(&all, b"", None)?;
    p.finish()
}

fn open_root(dir: &Path) -> Result<OwnedFd, LayerError> {
    Root::open(dir, Resolver::Walk)
        .map(|r| r.fd)
        .map_err(|e| LayerError::fs("open directory to pack", dir.display().to_string(), e))
}

struct CountingWriter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Directory fds the walk may keep open across a recursion (layers × depth); beyond
/// it, a level's fds are closed while a child is walked and reopened after, so a deep
/// tree over many layers never runs into RLIMIT_NOFILE (often a soft 1024).
const FD_BUDGET: usize = 256;

struct Packer<'o, W: Write> {
    /// The layer roots, topmost first.
    roots: Vec<OwnedFd>,
    /// Directory fds currently held by the walk.
    held: usize,
    w: CountingWriter<W>,
    opts: &'o PackOptions,
    flatten: bool,
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: PackStats,
    buf: Vec<u8>,
}

/// What one entry will be written as.
struct Item {
    kind: EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    size: u64,
    link: Option<Vec<u8>>,
    dev: (u32, u32),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn is_whiteout(st: &rustix::fs::Stat) -> bool {
    fsops::file_type(st) == FileType::CharacterDevice && st.st_rdev == 0
}

impl<'o, W: Write> Packer<'o, W> {
    fn new(w: W, opts: &'o PackOptions, flatten: bool, roots: Vec<OwnedFd>) -> Self {
        Self {
            roots,
            held: 0,
            w: CountingWriter { inner: w, n: 0 },
            opts,
            flatten,
            links: HashMap::new(),
            stats: PackStats::default(),
            buf: vec![0u8; 128 * 1024],
        }
    }

    /// Open directory `prefix` (a tar prefix: empty or `a/b/`) in each of `layers`,
    /// never through a symlink.
    fn open_level(&self, layers: &[usize], prefix: &[u8]) -> Result<Vec<OwnedFd>, LayerError> {
        let shown = || String::from_utf8_lossy(prefix).into_owned();
        let mut out = Vec::with_capacity(layers.len());
        for &l in layers {
            let mut cur = fsops::open_child_dir(&self.roots[l], b".")
                .map_err(|e| LayerError::fs("open directory", shown(), e))?;
            for part in prefix.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
                cur = fsops::open_child_dir(&cur, part)
                    .map_err(|e| LayerError::fs("open directory", shown(), e))?;
            }
            out.push(cur);
        }
        Ok(out)
    }

    fn finish(mut self) -> Result<PackStats, LayerError> {
        self.w
            .write_all(&[0u8; 1024])
            .and_then(|()| self.w.flush())
            .map_err(|e| LayerError::WriteTar {
                path: "(end of tar)".into(),
                source: e,
            })?;
        self.stats.tar_bytes = self.w.n;
        Ok(self.stats)
    }

    /// The directory `name` in `dir` hides lower layers: the overlay xattrs, or (flatten
    /// of the Files format) a `.wh..wh..opq` file inside it (pack emits that file as is).
    fn opaque(&self, dir: &OwnedFd, name: &[u8]) -> bool {
        let xattr = [USER_OPAQUE_XATTR, TRUSTED_OPAQUE_XATTR, FUSE_OPAQUE_XATTR].iter().any(|k| {
            matches!(fsops::get_xattr_at(dir, name, k.as_bytes()), Ok(Some(v)) if v == b"y")
        });
        xattr
            || (self.flatten
                && self.opts.whiteouts == WhiteoutFormat::Files
                && fsops::open_child_dir(dir, name)
                    .map(|d| self.has_marker(&d, whiteout::OPAQUE.as_bytes()))
                    .unwrap_or(false))
    }

    fn has_marker(&self, dir: &OwnedFd, marker: &[u8]) -> bool {
        fsops::cstr(marker)
            .ok()
            .and_then(|m| fsops::lstat_at(dir, &m).ok().flatten())
            .is_some()
    }

    /// Emit the children of the directory whose layers (topmost first) are `dirs`, under
    /// the tar prefix `prefix` (empty or ending in `/`).
    fn walk(
        &mut self,
        layers: &[usize],
        prefix: &[u8],
        opened: Option<Vec<OwnedFd>>,
    ) -> Result<(), LayerError> {
        let mut dirs = match opened {
            Some(d) => d,
            None => self.open_level(layers, prefix)?,
        };
        self.held += dirs.len();
        let r = self.walk_open(layers, &mut dirs, prefix);
        self.held = self.held.saturating_sub(dirs.len());
        r
    }

    /// `walk` with the level's fds open (`dirs[k]` is layer `layers[k]`).
    fn walk_open(
        &mut self,
        layers: &[usize],
        dirs: &mut Vec<OwnedFd>,
        prefix: &[u8],
    ) -> Result<(), LayerError> {
        let shown_dir = || String::from_utf8_lossy(prefix).into_owned();
        let mut names = BTreeSet::new();
        for d in dirs.iter() {
            for n in
                fsops::list_dir(d).map_err(|e| LayerError::fs("read directory", shown_dir(), e))?
            {
                names.insert(n.into_bytes());
            }
        }
        for name in names {
            let mut path = prefix.to_vec();
            path.extend_from_slice(&name);
            if self.opts.skip.iter().any(|s| s.as_bytes() == path) {
                continue;
            }
            let shown = String::from_utf8_lossy(&path).into_owned();
            let c = CString::new(name.clone())
                .map_err(|e| LayerError::fs("read", shown.clone(), io::Error::other(e)))?;
            // The topmost layer that has the name decides.
            let files_format = self.flatten && self.opts.whiteouts == WhiteoutFormat::Files;
            if files_format && whiteout::classify(&name) != whiteout::Kind::Plain {
                continue; // markers are applied below, never emitted
            }
            let mut found = None;
            for (i, d) in dirs.iter().enumerate() {
                if let Some(st) = fsops::lstat_at(d, &c)
                    .map_err(|e| LayerError::fs("inspect", shown.clone(), e))?
                {
                    found = Some((i, st));
                    break;
                }
                // `.wh.NAME` as a plain file in this layer hides NAME below it.
                if files_format
                    && self.has_marker(d, &[whiteout::PREFIX.as_bytes(), &name].concat())
                {
                    break;
                }
            }
            let Some((i, st)) = found else { continue };
            let top = &dirs[i];
            if is_whiteout(&st) {
                if !self.flatten {
                    let mut wh = prefix.to_vec();
                    wh.extend_from_slice(whiteout::PREFIX.as_bytes());
                    wh.extend_from_slice(&name);
                    let item = Item {
                        kind: EntryType::Regular,
                        mode: 0o600,
                        uid: 0,
                        gid: 0,
                        mtime: self.clamp(st.st_mtime),
                        size: 0,
                        link: None,
                        dev: (0, 0),
                        xattrs: Vec::new(),
                    };
                    self.emit(&wh, &item, None)?;
                    self.stats.whiteouts += 1;
                }
                continue;
            }
            match fsops::file_type(&st) {
                FileType::Directory => {
                    let item = self.item(top, &name, &st, EntryType::Directory, &shown)?;
                    let mut dpath = path.clone();
                    dpath.push(b'/');
                    self.emit(&dpath, &item, None)?;
                    let opaque = self.opaque(top, &name);
                    let mut children = vec![layers[i]];
                    if !self.flatten && opaque {
                        let mut o = dpath.clone();
                        o.extend_from_slice(whiteout::OPAQUE.as_bytes());
                        let marker = Item {
                            kind: EntryType::Regular,
                            mode: item.mode & 0o777,
                            uid: item.uid,
                            gid: item.gid,
                            mtime: item.mtime,
                            size: 0,
                            link: None,
                            dev: (0, 0),
                            xattrs: Vec::new(),
                        };
                        self.emit(&o, &marker, None)?;
                        self.stats.opaque_dirs += 1;
                    }
                    if self.flatten && !opaque {
                        // Lower layers' directories of this name show through, down to an
                        // opaque one or to a layer where something else (a file, a
                        // whiteout, a `.wh.` marker) hides them. A layer without the name
                        // hides nothing: overlay looks further down.
                        for (k, lower) in dirs.iter().enumerate().skip(i + 1) {
                            match fsops::lstat_at(lower, &c)
                                .map_err(|e| LayerError::fs("inspect", shown.clone(), e))?
                            {
                                Some(lst) if fsops::file_type(&lst) == FileType::Directory => {
                                    children.push(layers[k]);
                                    if self.opaque(lower, &name) {
                                        break;
                                    }
                                }
                                None if !(files_format
                                    && self.has_marker(
                                        lower,
                                        &[whiteout::PREFIX.as_bytes(), &name].concat(),
                                    )) => {}
                                _ => break,
                            }
                        }
                    }
                    if self.held + children.len() > FD_BUDGET {
                        // Close this level while the child is walked; reopen after.
                        self.held = self.held.saturating_sub(dirs.len());
                        dirs.clear();
                        let r = self.walk(&children, &dpath, None);
                        *dirs = self.open_level(layers, prefix)?;
                        self.held += dirs.len();
                        r?;
                    } else {
                        // Open the children from this level's fds (cheaper than from the roots).
                        let mut fds = Vec::with_capacity(children.len());
                        for l in &children {
                            let k = layers.iter().position(|x| x == l).unwrap_or(i);
                            fds.push(
                                fsops::open_child_dir(&dirs[k], &name).map_err(|e| {
                                    LayerError::fs("open directory", shown.clone(), e)
                                })?,
                            );
                        }
                        self.walk(&children, &dpath, Some(fds))?;
                    }
                }
                FileType::RegularFile => {
                    let key = (st.st_dev, st.st_ino);
                    if st.st_nlink > 1 {
                        if let Some(first) = self.links.get(&key).cloned() {
                            let mut item = self.item(top, &name, &st, EntryType::Link, &shown)?;
                            item.size = 0;
                            item.link = Some(first);
                            item.xattrs.clear();
                            self.emit(&path, &item, None)?;
                            self.stats.hardlinks += 1;
                            continue;
                        }
                        self.links.insert(key, path.clone());
                    }
                    let item = self.item(top, &name, &st, EntryType::Regular, &shown)?;
                    let fd = rustix::fs::openat(
                        top,
                        c.as_c_str(),
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| LayerError::fs("open file", shown.clone(), e))?;
                    self.emit(&path, &item, Some(File::from(fd)))?;
                    self.stats.bytes += item.size;
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(top, c.as_c_str(), Vec::new())
                        .map_err(|e| LayerError::fs("read symlink", shown.clone(), e))?;
                    let mut item = self.item(top, &name, &st, EntryType::Symlink, &shown)?;
                    item.link = Some(target.into_bytes());
                    item.mode = 0o777;
                    self.emit(&path, &item, None)?;
                }
                FileType::Fifo => {
                    let item = self.item(top, &name, &st, EntryType::Fifo, &shown)?;
                    self.emit(&path, &item, None)?;
                }
                FileType::CharacterDevice | FileType::BlockDevice => {
                    let kind = if fsops::file_type(&st) == FileType::CharacterDevice {
                        EntryType::Char
                    } else {
                        EntryType::Block
                    };
                    let mut item = self.item(top, &name, &st, kind, &shown)?;
                    item.dev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                    self.emit(&path, &item, None)?;
                }
                _ => self.stats.sockets_skipped += 1,
            }
        }
        Ok(())
    }

    fn clamp(&self, mtime: i64) -> i64 {
        let m = match self.opts.mtime_clamp {
            Some(c) => mtime.min(c),
            None => mtime,
        };
        m.max(0)
    }

    fn item(
        &self,
        dir: &OwnedFd,
        name: &[u8],
        st: &rustix::fs::Stat,
        kind: EntryType,
        shown: &str,
    ) -> Result<Item, LayerError> {
        let mut uid = st.st_uid;
        let mut gid = st.st_gid;
        let mut mode = st.st_mode & 0o7777;
        let (mut kind, mut dev) = (kind, (0, 0));
        let mut xattrs = Vec::new();
        let all = if self.opts.xattrs || self.opts.owner == OwnerMode::Xattr {
            fsops::xattrs_at(dir, name).map_err(|e| LayerError::fs("read xattrs of", shown, e))?
        } else {
            Vec::new()
        };
        if self.opts.owner == OwnerMode::Xattr {
            let over = all
                .iter()
                .find(|(k, _)| k == OVERRIDE_STAT_XATTR.as_bytes())
                .and_then(|(_, v)| OverrideStat::parse(v));
            match over {
                Some(o) => {
                    uid = o.uid;
                    gid = o.gid;
                    mode = o.mode;
                    // A plain file recorded as a device (a rootless mknod): the device.
                    if let (EntryType::Regular, Some((is_char, major, minor))) = (kind, o.device())
                    {
                        kind = if is_char {
                            EntryType::Char
                        } else {
                            EntryType::Block
                        };
                        dev = (major, minor);
                    }
                }
                None => {
                    let side = match kind {
                        EntryType::Symlink | EntryType::Fifo => self.opts.side_owners.get(shown),
                        _ => None,
                    };
                    if let Some(&(u, g)) = side.or(self.opts.default_owner.as_ref()) {
                        uid = u;
                        gid = g;
                    }
                }
            }
        }
        if self.opts.xattrs {
            xattrs = all
                .into_iter()
                .filter(|(k, _)| !whiteout::is_bookkeeping_xattr(k))
                .collect();
        }
        Ok(Item {
            kind,
            mode,
            uid,
            gid,
            mtime: self.clamp(st.st_mtime),
            size: if kind == EntryType::Regular {
                st.st_size as u64
            } else {
                0
            },
            link: None,
            dev,
            xattrs,
        })
    }

    /// Write one entry: PAX records when needed, the ustar header, the data (exactly
    /// `size` bytes: a file that changed size while packing is an error).
    fn emit(&mut self, path: &[u8], item: &Item, data: Option<File>) -> Result<(), LayerError> {
        let shown = String::from_utf8_lossy(path).into_owned();
        let werr = |e: io::Error| LayerError::WriteTar {
            path: shown.clone(),
            source: e,
        };
        let mut h = Header::new_ustar();
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if !set_ustar_name(&mut h, path) {
            pax.push(("path".into(), path.to_vec()));
            let cut = path.len().min(100);
            if let Some(u) = h.as_ustar_mut() {
                u.name[..cut].copy_from_slice(&path[..cut]);
            }
        }
        if let Some(link) = &item.link {
            if link.len() > 100 {
                pax.push(("linkpath".into(), link.clone()));
                h.as_old_mut().linkname.copy_from_slice(&link[..100]);
            } else {
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            }
        }
        const USTAR_ID_MAX: u32 = 0o7777777;
        if item.uid > USTAR_ID_MAX {
            pax.push(("uid".into(), item.uid.to_string().into_bytes()));
        }
        if item.gid > USTAR_ID_MAX {
            pax.push(("gid".into(), item.gid.to_string().into_bytes()));
        }
        for (k, v) in &item.xattrs {
            pax.push((
                format!("SCHILY.xattr.{}", String::from_utf8_lossy(k)),
                v.clone(),
            ));
        }
        h.set_entry_type(item.kind);
        h.set_mode(item.mode);
        h.set_uid(u64::from(item.uid.min(USTAR_ID_MAX)));
        h.set_gid(u64::from(item.gid.min(USTAR_ID_MAX)));
        h.set_mtime(item.mtime as u64);
        h.set_size(item.size);
        if matches!(item.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(item.dev.0).map_err(werr)?;
            h.set_device_minor(item.dev.1).map_err(werr)?;
        }
        h.set_cksum();
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut ph = Header::new_ustar();
            let mut pname = b"PaxHeaders.0/".to_vec();
            let base = path
                .rsplit(|b| *b == b'/')
                .find(|s| !s.is_empty())
                .unwrap_or(b"x");
            pname.extend_from_slice(&base[..base.len().min(80)]);
            set_ustar_name(&mut ph, &pname);
            ph.set_entry_type(EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_size(records.len() as u64);
            ph.set_mtime(0);
            ph.set_cksum();
            self.w.write_all(ph.as_bytes()).map_err(werr)?;
            self.w.write_all(&records).map_err(werr)?;
            self.pad(records.len() as u64).map_err(werr)?;
        }
        self.w.write_all(h.as_bytes()).map_err(werr)?;
        if let Some(f) = data {
            let mut r = f.take(item.size);
            let mut n: u64 = 0;
            loop {
                let k = match r.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(LayerError::fs("read file", shown, e)),
                };
                self.w.write_all(&self.buf[..k]).map_err(werr)?;
                n += k as u64;
            }
            if n != item.size {
                return Err(LayerError::fs(
                    "read file",
                    shown,
                    io::Error::other(format!(
                        "it shrank while packing ({n} of {} bytes)",
                        item.size
                    )),
                ));
            }
            self.pad(n).map_err(werr)?;
        }
        self.stats.entries += 1;
        Ok(())
    }

    fn pad(&mut self, n: u64) -> io::Result<()> {
        let rem = (n % 512) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }
}

/// Put `path` into the ustar name (and prefix) fields; false when it does not fit.
fn set_ustar_name(h: &mut Header, path: &[u8]) -> bool {
    let Some(u) = h.as_ustar_mut() else {
        return false;
    };
    if path.len() <= 100 {
        u.name[..path.len()].copy_from_slice(path);
        return true;
    }
    // Split at a '/' so that prefix <= 155 and name <= 100 (and name not empty).
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    for (i, b) in trimmed.iter().enumerate().rev() {
        if *b != b'/' {
            continue;
        }
        let (prefix, name) = (&path[..i], &path[i + 1..]);
        if name.len() > 100 {
            return false;
        }
        if prefix.len() <= 155 && !name.is_empty() {
            u.prefix[..prefix.len()].copy_from_slice(prefix);
            u.name[..name.len()].copy_from_slice(name);
            return true;
        }
    }
    false
}

/// PAX extended header records: `"%d %s=%s\n"`, the length counting itself.
fn pax_records(pax: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pax {
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[("path".into(), b"a".to_vec())]);
        assert_eq!(r, b"9 path=a\n");
        let long = vec![b'x'; 95];
        let r = pax_records(&[("path".into(), long)]);
        assert!(
            r.starts_with(b"105 path="),
            "{}",
            String::from_utf8_lossy(&r[..10])
        );
        assert_eq!(r.len(), 105);
    }

    #[test]
    fn ustar_names_split_at_a_slash() {
        let mut h = Header::new_ustar();
        let p = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        assert!(set_ustar_name(&mut h, p.as_bytes()));
        assert_eq!(h.path_bytes().as_ref(), p.as_bytes());
        let mut h = Header::new_ustar();
        assert!(!set_ustar_name(&mut h, "x".repeat(101).as_bytes()));
    }
}
