//! The merged copy: every entry of the lower layers as overlayfs would show it (the
//! topmost layer that has a name decides; 0:0 character devices and `.wh.NAME` files
//! hide a name below them; an opaque dir hides the layers below it), copied once into a
//! fresh tree with owner, mode, xattrs and times, hard links of a layer kept. File data
//! is reflinked (FICLONE) where the file system can, else copied with
//! copy_file_range (std's copy, which falls back to read/write).
//! Never: writes into a lower layer; follows a symlink of a layer.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::fsx::{self, WHITEOUT_PREFIX};
use super::manifest::{join, Manifest};
use super::{CopyError, CopyStats};

/// Directory fds the walk may keep open (layers × depth) before it closes a level
/// while a child is copied and reopens it after: a deep tree over many layers never
/// runs into RLIMIT_NOFILE (often a soft 1024).
const FD_BUDGET: usize = 256;

/// The copier of one merged tree.
pub(super) struct Copier {
    /// The layer roots, topmost first.
    roots: Vec<OwnedFd>,
    /// The destination root.
    dest: OwnedFd,
    held: usize,
    /// FICLONE still worth trying (the first refusal turns it off).
    reflink: bool,
    /// (dev, ino) of a source inode with several links → the paths copied for it.
    links: HashMap<(u64, u64), Vec<Vec<u8>>>,
    pub manifest: Manifest,
    pub stats: CopyStats,
}

fn err<'a>(op: &'static str, path: &'a [u8]) -> impl FnOnce(std::io::Error) -> CopyError + 'a {
    move |source| CopyError::Io {
        op,
        path: String::from_utf8_lossy(path).into_owned(),
        source,
    }
}

impl Copier {
    pub fn new(roots: Vec<OwnedFd>, dest: OwnedFd) -> Self {
        Self {
            roots,
            dest,
            held: 0,
            reflink: true,
            links: HashMap::new(),
            manifest: Manifest::default(),
            stats: CopyStats::default(),
        }
    }

    /// Copy the whole merged tree (the root dir's own metadata from the topmost layer).
    pub fn run(&mut self) -> Result<(), CopyError> {
        if self.roots.is_empty() {
            return Ok(());
        }
        let all: Vec<usize> = (0..self.roots.len()).collect();
        let dest = fsx::open_dir(self.dest.as_fd(), c".").map_err(err("open", b"."))?;
        self.dir(&all, b"", None, &dest)?;
        let st = rustix::fs::fstat(&self.roots[0]).map_err(|e| err("stat", b".")(e.into()))?;
        fsx::apply_meta(dest.as_fd(), &st, &[]).map_err(err("set metadata of", b"."))?;
        // The root as kernel overlay shows it: with the mode of the container's upper dir
        // (0755), not the layer dir's own (the store keeps those 0700).
        rustix::fs::fchmod(&dest, rustix::fs::Mode::from_raw_mode(0o755))
            .map_err(|e| err("set the mode of", b".")(e.into()))?;
        Ok(())
    }

    /// Open directory `rel` in each of `layers`.
    fn open_level(&self, layers: &[usize], rel: &[u8]) -> Result<Vec<OwnedFd>, CopyError> {
        layers
            .iter()
            .map(|&l| fsx::open_rel(self.roots[l].as_fd(), rel).map_err(err("open", rel)))
            .collect()
    }

    /// Copy the children of directory `rel`, shown by `layers` (topmost first), into
    /// the open destination dir `out`.
    fn dir(
        &mut self,
        layers: &[usize],
        rel: &[u8],
        opened: Option<Vec<OwnedFd>>,
        out: &OwnedFd,
    ) -> Result<(), CopyError> {
        let depth = rel.iter().filter(|b| **b == b'/').count();
        if depth >= super::diff::MAX_DEPTH {
            return Err(CopyError::TooDeep {
                path: String::from_utf8_lossy(rel).into_owned(),
                max: super::diff::MAX_DEPTH,
            });
        }
        let mut dirs = match opened {
            Some(d) => d,
            None => self.open_level(layers, rel)?,
        };
        self.held += dirs.len() + 1;
        let r = self.dir_open(layers, rel, &mut dirs, out);
        self.held = self.held.saturating_sub(dirs.len() + 1);
        r
    }

    fn dir_open(
        &mut self,
        layers: &[usize],
        rel: &[u8],
        dirs: &mut Vec<OwnedFd>,
        out: &OwnedFd,
    ) -> Result<(), CopyError> {
        let mut names = std::collections::BTreeSet::new();
        for d in dirs.iter() {
            for n in fsx::list(d.as_fd()).map_err(err("read directory", rel))? {
                // `.wh.` names are markers (a layer dir in the `Files` form), applied below.
                if !n.as_bytes().starts_with(WHITEOUT_PREFIX) {
                    names.insert(n);
                }
            }
        }
        for name in names {
            let path = join(rel, name.as_bytes());
            let Some((i, st)) = topmost(dirs, &name).map_err(err("inspect", &path))? else {
                continue;
            };
            if fsx::kind(&st) != FileType::Directory {
                self.leaf(dirs[i].as_fd(), &name, &st, out, &path)?;
                continue;
            }
            let top = fsx::open_dir(dirs[i].as_fd(), &name).map_err(err("open", &path))?;
            let xattrs = fsx::xattrs(top.as_fd()).map_err(err("read xattrs of", &path))?;
            let mut children = vec![(layers[i], top)];
            if !fsx::is_opaque(children[0].1.as_fd()) {
                for (k, lower) in dirs.iter().enumerate().skip(i + 1) {
                    match below(lower.as_fd(), &name).map_err(err("inspect", &path))? {
                        Below::Dir(fd) => {
                            let opaque = fsx::is_opaque(fd.as_fd());
                            children.push((layers[k], fd));
                            if opaque {
                                break;
                            }
                        }
                        Below::Nothing => continue,
                        Below::Hidden => break,
                    }
                }
            }
            rustix::fs::mkdirat(out, name.as_c_str(), Mode::from_raw_mode(0o700))
                .map_err(|e| err("create directory", &path)(e.into()))?;
            let sub = fsx::open_dir(out.as_fd(), &name).map_err(err("open", &path))?;
            let (child_layers, fds): (Vec<usize>, Vec<OwnedFd>) = children.into_iter().unzip();
            if self.held + fds.len() + 1 > FD_BUDGET {
                // Close this level while the child is copied; reopen it after.
                drop(fds);
                self.held = self.held.saturating_sub(dirs.len());
                dirs.clear();
                let r = self.dir(&child_layers, &path, None, &sub);
                *dirs = self.open_level(layers, rel)?;
                self.held += dirs.len();
                r?;
            } else {
                self.dir(&child_layers, &path, Some(fds), &sub)?;
            }
            self.stats.xattrs_skipped += fsx::apply_meta(sub.as_fd(), &st, &xattrs)
                .map_err(err("set metadata of", &path))?;
            self.stamp(sub.as_fd(), c".", path)?;
            self.stats.dirs += 1;
        }
        Ok(())
    }

    /// Copy one non-directory `name` of layer dir `src` into `out`.
    fn leaf(
        &mut self,
        src: BorrowedFd<'_>,
        name: &CStr,
        st: &rustix::fs::Stat,
        out: &OwnedFd,
        path: &[u8],
    ) -> Result<(), CopyError> {
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 && fsx::kind(st) != FileType::Directory {
            if let Some(first) = self.links.get(&key).and_then(|v| v.first()).cloned() {
                rustix::fs::linkat(
                    &self.dest,
                    fsx::cstr(&first).map_err(err("link", path))?.as_c_str(),
                    out,
                    name,
                    AtFlags::empty(),
                )
                .map_err(|e| err("link", path)(e.into()))?;
                self.stats.hardlinks += 1;
                let group = self.links.entry(key).or_default();
                group.push(path.to_vec());
                let group = group.clone();
                // A new link changes the inode's ctime: every name of it gets the new one.
                self.stamp(out.as_fd(), name, path.to_vec())?;
                if let Some(s) = self.manifest.get(path).copied() {
                    self.manifest.restamp(&group, s.ctime);
                }
                return Ok(());
            }
        }
        match fsx::kind(st) {
            FileType::RegularFile => self.file(src, name, st, out, path)?,
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())
                    .map_err(|e| err("read symlink", path)(e.into()))?;
                rustix::fs::symlinkat(target.as_c_str(), out, name)
                    .map_err(|e| err("create symlink", path)(e.into()))?;
                self.owner_and_times(out, name, st, path, false)?;
                self.stats.symlinks += 1;
            }
            FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice => {
                let made = rustix::fs::mknodat(
                    out,
                    name,
                    fsx::kind(st),
                    Mode::from_raw_mode(st.st_mode & 0o7777),
                    st.st_rdev as _,
                );
                match made {
                    Ok(()) => self.owner_and_times(out, name, st, path, true)?,
                    // A device node the namespace may not make: a container's /dev is
                    // made at run time anyway.
                    Err(Errno::PERM) if fsx::kind(st) != FileType::Fifo => {
                        self.stats.devices_skipped += 1;
                        return Ok(());
                    }
                    Err(e) => return Err(err("create", path)(e.into())),
                }
            }
            // Sockets have no place in an image (the packer skips them too).
            _ => return Ok(()),
        }
        if st.st_nlink > 1 {
            self.links.entry(key).or_default().push(path.to_vec());
        }
        self.stamp(out.as_fd(), name, path.to_vec())
    }

    fn file(
        &mut self,
        src: BorrowedFd<'_>,
        name: &CStr,
        st: &rustix::fs::Stat,
        out: &OwnedFd,
        path: &[u8],
    ) -> Result<(), CopyError> {
        let from = rustix::fs::openat(
            src,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open", path)(e.into()))?;
        let to = fsx::create_new(out.as_fd(), name).map_err(|e| err("create", path)(e.into()))?;
        let xattrs = fsx::xattrs(from.as_fd()).map_err(err("read xattrs of", path))?;
        let size = st.st_size as u64;
        if self.reflink && size > 0 {
            match rustix::fs::ioctl_ficlone(&to, &from) {
                Ok(()) => self.stats.reflinked += 1,
                // Not this file system (tmpfs, ext4), another one, or an old kernel:
                // copy from now on.
                Err(_) => self.reflink = false,
            }
        }
        if !self.reflink && size > 0 {
            let (mut r, mut w) = (
                File::from(from),
                File::from(to.try_clone().map_err(err("copy", path))?),
            );
            let n = std::io::copy(&mut r, &mut w).map_err(err("copy", path))?;
            if n != size {
                return Err(err("copy", path)(std::io::Error::other(format!(
                    "copied {n} of {size} bytes: the layer changed while copying"
                ))));
            }
        }
        self.stats.bytes += size;
        self.stats.files += 1;
        self.stats.xattrs_skipped +=
            fsx::apply_meta(to.as_fd(), st, &xattrs).map_err(err("set metadata of", path))?;
        Ok(())
    }

    /// Owner and times of a just-made symlink, fifo or device (and mode unless a symlink).
    fn owner_and_times(
        &self,
        out: &OwnedFd,
        name: &CStr,
        st: &rustix::fs::Stat,
        path: &[u8],
        mode: bool,
    ) -> Result<(), CopyError> {
        let io = |op| move |e: Errno| err(op, path)(e.into());
        rustix::fs::chownat(
            out,
            name,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io("set owner of"))?;
        if mode {
            rustix::fs::chmodat(
                out,
                name,
                Mode::from_raw_mode(st.st_mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(io("set mode of"))?;
        }
        rustix::fs::utimensat(out, name, &fsx::times(st), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io("set times of"))
    }

    /// Record `name` in `dir` (done) in the manifest.
    fn stamp(&mut self, dir: BorrowedFd<'_>, name: &CStr, path: Vec<u8>) -> Result<(), CopyError> {
        let Some(stamp) = fsx::stamp(dir, name).map_err(err("stat", &path))? else {
            return Err(err("stat", &path)(Errno::NOENT.into()));
        };
        self.manifest.insert(path, stamp);
        Ok(())
    }
}

/// What a layer below the one that decided shows at a directory's name.
enum Below {
    /// A directory that merges in.
    Dir(OwnedFd),
    /// Nothing: look further down.
    Nothing,
    /// A whiteout or a non-directory: the layers below are hidden.
    Hidden,
}

fn below(lower: BorrowedFd<'_>, name: &CStr) -> std::io::Result<Below> {
    match fsx::lstat(lower, name)? {
        Some(st) if fsx::kind(&st) == FileType::Directory => {
            Ok(Below::Dir(fsx::open_dir(lower, name)?))
        }
        Some(_) => Ok(Below::Hidden),
        None if fsx::exists(lower, &[WHITEOUT_PREFIX, name.to_bytes()].concat()) => {
            Ok(Below::Hidden)
        }
        None => Ok(Below::Nothing),
    }
}

/// The layer (index into `dirs`, topmost first) whose entry `name` shows, with its
/// stat; `None` when a whiteout hides it or no layer has it.
fn topmost(dirs: &[OwnedFd], name: &CStr) -> std::io::Result<Option<(usize, rustix::fs::Stat)>> {
    for (i, d) in dirs.iter().enumerate() {
        match fsx::lstat(d.as_fd(), name)? {
            Some(st) if fsx::is_whiteout(&st) => return Ok(None),
            Some(st) => return Ok(Some((i, st))),
            None if fsx::exists(d.as_fd(), &[WHITEOUT_PREFIX, name.to_bytes()].concat()) => {
                return Ok(None)
            }
            None => {}
        }
    }
    Ok(None)
}
