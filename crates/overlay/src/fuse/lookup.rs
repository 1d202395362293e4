//! Merged lookup: which layer a name comes from, the directory stack of a merged
//! directory, where a node's host entry is, and its attributes.
//! Owns: the top-down scan (whiteouts in both forms, opaque dirs, a lower non-directory
//! under a directory ends the merge), rebuilding an evicted stack from the root down.
//! Never: changes a layer.

use std::ffi::{CStr, CString};
use std::hash::{Hash, Hasher};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use fuser::{FileAttr, FileType};
use rustix::fs::Stat;
use rustix::io::Errno;

use super::attr;
use super::inode::{Entry, Key, View, ROOT, UPPER};
use super::sys::{self, Res};
use super::FuseOverlay;

/// The open directories behind one merged directory, top first.
#[derive(Debug)]
pub(crate) struct Stack(pub Vec<(u16, OwnedFd)>);

impl Stack {
    /// The upper's directory, when the directory has one.
    pub fn upper(&self) -> Option<BorrowedFd<'_>> {
        self.0
            .first()
            .filter(|(l, _)| *l == UPPER)
            .map(|(_, fd)| fd.as_fd())
    }

    /// The directory in `layer`.
    pub fn at(&self, layer: u16) -> Option<BorrowedFd<'_>> {
        self.0
            .iter()
            .find(|(l, _)| *l == layer)
            .map(|(_, fd)| fd.as_fd())
    }

    /// The lower layers' directories, top first.
    pub fn lowers(&self) -> impl Iterator<Item = (u16, BorrowedFd<'_>)> {
        self.0
            .iter()
            .filter(|(l, _)| *l != UPPER)
            .map(|(l, fd)| (*l, fd.as_fd()))
    }

    pub fn has_lowers(&self) -> bool {
        self.0.iter().any(|(l, _)| *l != UPPER)
    }
}

/// What a scan of one name found.
pub(crate) struct Found {
    /// The topmost layer that has the name.
    pub layer: u16,
    pub st: Stat,
    /// For a directory: its dirs in the layers it merges, top first.
    pub dirs: Option<Vec<(u16, OwnedFd)>>,
}

impl Found {
    /// The host file's identity (the same for all its names).
    pub fn key(&self) -> Key {
        Key {
            layer: self.layer,
            dev: self.st.st_dev,
            ino: self.st.st_ino,
            alias: 0,
        }
    }

    /// The identity of this name of it: a hardlinked lower file's names are apart.
    pub fn key_in(&self, parent: u64, name: &CStr) -> Key {
        let mut k = self.key();
        if self.layer != UPPER && self.dirs.is_none() && self.st.st_nlink > 1 {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (parent, name.to_bytes()).hash(&mut h);
            k.alias = h.finish() | 1;
        }
        k
    }

    pub fn merged(&self) -> bool {
        self.dirs.as_ref().is_some_and(|d| d.len() > 1)
    }

    pub fn is_dir(&self) -> bool {
        self.dirs.is_some()
    }
}

/// Where a node's host entry is.
pub(crate) enum Loc {
    /// `name` in the directory of `layer` in `dir`.
    At {
        dir: Arc<Stack>,
        layer: u16,
        name: CString,
    },
    /// The root: the upper root directory itself.
    Root(Arc<Stack>),
    /// An unlinked file the kernel still holds (`O_PATH`).
    Orphan(Arc<OwnedFd>),
}

impl Loc {
    /// The directory holding the entry and its name (`None` for the root and orphans).
    pub fn dir(&self) -> Option<(BorrowedFd<'_>, &CStr)> {
        match self {
            Loc::At { dir, layer, name } => dir.at(*layer).map(|d| (d, name.as_c_str())),
            _ => None,
        }
    }

    /// An fd of the entry itself (root, orphan).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Loc::Root(s) => s.0.first().map(|(_, fd)| fd.as_fd()),
            Loc::Orphan(fd) => Some(fd.as_fd()),
            Loc::At { .. } => None,
        }
    }

    pub fn stat(&self) -> Res<Stat> {
        if let Some((d, n)) = self.dir() {
            return sys::stat_at(d, n)?.ok_or(Errno::NOENT);
        }
        rustix::fs::fstat(self.fd().ok_or(Errno::STALE)?)
    }
}

impl FuseOverlay {
    /// Find `name` in the directory whose layer dirs are `stack`.
    pub(crate) fn scan(&self, stack: &Stack, name: &CStr) -> Res<Option<Found>> {
        let count = stack.0.len();
        let mut top: Option<(u16, Stat)> = None;
        let mut dirs = Vec::new();
        for (i, (layer, dir)) in stack.0.iter().enumerate() {
            let last = i + 1 == count;
            let dir = dir.as_fd();
            let Some(st) = sys::stat_at(dir, name)? else {
                if !last && sys::exists(dir, &sys::wh_name(name)?)? {
                    break;
                }
                continue;
            };
            if sys::is_whiteout(&st) {
                break;
            }
            if sys::file_type(&st) != rustix::fs::FileType::Directory {
                // A non-directory ends the name's stack (under a directory, it is hidden).
                if top.is_none() {
                    top = Some((*layer, st));
                }
                break;
            }
            let fd = sys::open_dir(dir, name)?;
            if top.is_none() {
                top = Some((*layer, st));
            }
            // `.wh.NAME` next to a directory NAME (a tar that deleted, then re-added it):
            // the directory hides what is below, as an opaque one does.
            let opaque =
                !last && (sys::is_opaque(fd.as_fd())? || sys::exists(dir, &sys::wh_name(name)?)?);
            dirs.push((*layer, fd));
            if opaque {
                break;
            }
        }
        Ok(top.map(|(layer, st)| {
            let is_dir = sys::file_type(&st) == rustix::fs::FileType::Directory;
            Found {
                layer,
                st,
                dirs: is_dir.then_some(dirs),
            }
        }))
    }

    /// The name exists in a lower layer of `stack` (removing it needs a whiteout).
    pub(crate) fn in_lowers(&self, stack: &Stack, name: &CStr) -> Res<bool> {
        let lowers: Vec<_> = stack.lowers().collect();
        for (i, (_, dir)) in lowers.iter().enumerate() {
            if let Some(st) = sys::stat_at(*dir, name)? {
                return Ok(!sys::is_whiteout(&st));
            }
            if i + 1 < lowers.len() && sys::exists(*dir, &sys::wh_name(name)?)? {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// The layer dirs of directory `ino`, rebuilt from its ancestors when evicted.
    pub(crate) fn stack_of(&self, ino: u64) -> Res<Arc<Stack>> {
        let v = self.inodes.view(ino)?;
        self.stack_for(&v)
    }

    pub(crate) fn stack_for(&self, v: &View) -> Res<Arc<Stack>> {
        if let Some(s) = &v.stack {
            return Ok(s.clone());
        }
        // Walk up to the nearest ancestor with a cached stack, then down again.
        let mut chain = vec![v.clone()];
        let mut base = loop {
            let cur = chain.last().ok_or(Errno::STALE)?;
            if cur.kind != FileType::Directory {
                return Err(Errno::NOTDIR);
            }
            if cur.orphan.is_some() || cur.ino == ROOT {
                return Err(Errno::NOENT);
            }
            let parent = self.inodes.view(cur.parent)?;
            if let Some(s) = &parent.stack {
                break s.clone();
            }
            if chain.len() > 4096 {
                return Err(Errno::LOOP);
            }
            chain.push(parent);
        };
        for node in chain.iter().rev() {
            let found = self.scan(&base, &node.name)?.ok_or(Errno::NOENT)?;
            let dirs = found.dirs.ok_or(Errno::NOTDIR)?;
            let stack = Arc::new(Stack(dirs));
            self.inodes.set_stack(node.ino, stack.clone());
            base = stack;
        }
        Ok(base)
    }

    /// Look `name` up in directory `parent` and count the kernel's reference.
    pub(crate) fn lookup_in(&self, parent: u64, name: &CString) -> Res<Option<(u64, FileAttr)>> {
        if sys::reserved(name.to_bytes()) {
            return Ok(None);
        }
        let stack = self.stack_of(parent)?;
        let Some(found) = self.scan(&stack, name)? else {
            return Ok(None);
        };
        Ok(Some(self.remember(parent, name, found)))
    }

    /// Count a reference to what a scan found; its number and attributes.
    pub(crate) fn remember(&self, parent: u64, name: &CString, found: Found) -> (u64, FileAttr) {
        let (entry, st, merged) = entry_of(parent, name, found);
        let ino = self.inodes.remember(parent, name, entry);
        (ino, attr::attr(ino, &st, merged))
    }

    /// [`FuseOverlay::remember`] for several names in `parent`, under one table lock.
    pub(crate) fn remember_all(
        &self,
        parent: u64,
        found: Vec<(&CString, Found)>,
    ) -> Vec<(u64, FileAttr)> {
        let mut shown = Vec::with_capacity(found.len());
        let inos = self.inodes.remember_all(
            parent,
            found.into_iter().map(|(name, f)| {
                let (entry, st, merged) = entry_of(parent, name, f);
                shown.push((st, merged));
                (name, entry)
            }),
        );
        inos.into_iter()
            .zip(shown)
            .map(|(ino, (st, merged))| (ino, attr::attr(ino, &st, merged)))
            .collect()
    }

    /// Where the host entry of `v` is.
    pub(crate) fn locate(&self, v: &View) -> Res<Loc> {
        if let Some(o) = &v.orphan {
            return Ok(Loc::Orphan(o.clone()));
        }
        if v.ino == ROOT {
            return Ok(Loc::Root(self.stack_of(ROOT)?));
        }
        let dir = self.stack_of(v.parent)?;
        if dir.at(v.layer).is_none() {
            return Err(Errno::STALE);
        }
        Ok(Loc::At {
            dir,
            layer: v.layer,
            name: v.name.clone(),
        })
    }

    /// The attributes of `v` as they are on the host now.
    pub(crate) fn attr_of(&self, v: &View) -> Res<FileAttr> {
        let st = self.locate(v)?.stat()?;
        Ok(attr::attr(v.ino, &st, v.merged))
    }

    pub(crate) fn getattr_ino(&self, ino: u64) -> Res<FileAttr> {
        let v = self.inodes.view(ino)?;
        self.attr_of(&v)
    }
}

/// The table entry for what a scan of `name` in `parent` found; its stat and whether it
/// is a merged directory.
fn entry_of(parent: u64, name: &CStr, found: Found) -> (Entry, Stat, bool) {
    let merged = found.merged();
    let entry = Entry {
        key: found.key_in(parent, name),
        kind: attr::kind(&found.st).unwrap_or(FileType::RegularFile),
        layer: found.layer,
        merged,
        stack: found.dirs.map(|d| Arc::new(Stack(d))),
        fresh: false,
    };
    (entry, found.st, merged)
}
