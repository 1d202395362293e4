//! Merged directory listings with stable offsets.
//! Owns: the snapshot a directory handle lists (taken at offset 0: every layer of the
//! directory's stack, top first, names deduplicated, whiteouts of both forms and opaque
//! markers applied and hidden; entry `i` has offset `i + 1`, so a listing of any size
//! continues exactly where the kernel's last call stopped), readdir and readdirplus.
//! Never: changes a layer.

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use fuser::{FileAttr, FileType, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus};
use rustix::fs::Stat;
use rustix::io::Errno;

use super::inode::{FastMap, Key, Stack, ROOT};
use super::lookup::Found;
use super::sys::{self, Res};
use super::{attr, FuseOverlay};

/// One entry of a merged listing.
pub(crate) struct DirEnt {
    pub name: CString,
    pub kind: FileType,
    pub ino: u64,
    /// The layer the name comes from.
    pub layer: u16,
}

struct DirHandle {
    ino: u64,
    entries: Mutex<Option<Arc<Vec<DirEnt>>>>,
    /// What readdirplus statted ahead after its last reply (see [`Ahead`]).
    ahead: Mutex<Option<Ahead>>,
}

/// The host stats of the entries a listing's next readdirplus will likely want, taken
/// by the worker that sent the previous part right after sending it: while the kernel
/// links that part's entries, the next part's stats are taken on another CPU.
struct Ahead {
    /// The listing and the index of the first entry statted.
    listing: Arc<Vec<DirEnt>>,
    from: usize,
    /// [`FuseOverlay::changes`] before the first stat: any change since makes these stale.
    changes: u64,
    /// Per entry: its stat, `None` for a directory or one that could not be statted.
    stats: Vec<Option<Stat>>,
}

impl Ahead {
    /// The stats taken ahead in `listing` if they are still good. The kernel may ask
    /// from an earlier entry than expected (its caller's buffer filled in the middle of a
    /// reply): entries outside them are statted as they come.
    fn take_for(
        slot: &mut Option<Ahead>,
        listing: &Arc<Vec<DirEnt>>,
        changes: u64,
    ) -> Option<Ahead> {
        slot.take()
            .filter(|a| a.changes == changes && Arc::ptr_eq(&a.listing, listing))
    }

    fn get(&self, i: usize) -> Option<Option<&Stat>> {
        let k = i.checked_sub(self.from)?;
        self.stats.get(k).map(Option::as_ref)
    }
}

/// The open directory handles.
#[derive(Default)]
pub(crate) struct DirHandles {
    map: RwLock<FastMap<u64, Arc<DirHandle>>>,
    next: AtomicU64,
}

impl DirHandles {
    fn get(&self, fh: u64) -> Res<Arc<DirHandle>> {
        let m = self.map.read().unwrap_or_else(|p| p.into_inner());
        m.get(&fh).cloned().ok_or(Errno::BADF)
    }
}

impl FuseOverlay {
    pub(crate) fn opendir_ino(&self, ino: u64) -> Res<u64> {
        let v = self.inodes.view(ino)?;
        if v.kind != FileType::Directory {
            return Err(Errno::NOTDIR);
        }
        let fh = self.dirs.next.fetch_add(1, Ordering::Relaxed) + 1;
        let h = Arc::new(DirHandle {
            ino,
            entries: Mutex::new(None),
            ahead: Mutex::new(None),
        });
        let mut m = self.dirs.map.write().unwrap_or_else(|p| p.into_inner());
        m.insert(fh, h);
        Ok(fh)
    }

    pub(crate) fn releasedir_fh(&self, fh: u64) {
        let mut m = self.dirs.map.write().unwrap_or_else(|p| p.into_inner());
        m.remove(&fh);
    }

    /// The listing of handle `fh`: a fresh snapshot at offset 0, the same one after.
    fn listing(&self, fh: u64, offset: u64) -> Res<(u64, Arc<Vec<DirEnt>>)> {
        let h = self.dirs.get(fh)?;
        self.listing_of(&h, offset)
    }

    fn listing_of(&self, h: &DirHandle, offset: u64) -> Res<(u64, Arc<Vec<DirEnt>>)> {
        let mut cur = h.entries.lock().unwrap_or_else(|p| p.into_inner());
        match cur.as_ref() {
            Some(e) if offset != 0 => Ok((h.ino, e.clone())),
            _ => {
                let e = Arc::new(self.snapshot(h.ino)?);
                *cur = Some(e.clone());
                Ok((h.ino, e))
            }
        }
    }

    /// Every visible name of directory `ino`, `.` and `..` first.
    fn snapshot(&self, ino: u64) -> Res<Vec<DirEnt>> {
        let v = self.inodes.view(ino)?;
        let stack = self.stack_for(&v)?;
        let mut found: Vec<(CString, FileType, Key)> = Vec::new();
        self.visible(&stack.0, |n, kind, key| {
            found.push((n.to_owned(), kind, key));
            true
        })?;
        let keys: Vec<Key> = found.iter().map(|(_, _, k)| *k).collect();
        let inos = self.inodes.numbers(&keys);
        let parent = if v.ino == ROOT { v.ino } else { v.parent };
        let mut out = Vec::with_capacity(found.len() + 2);
        out.push(DirEnt {
            name: c".".to_owned(),
            kind: FileType::Directory,
            ino: v.ino,
            layer: v.layer,
        });
        out.push(DirEnt {
            name: c"..".to_owned(),
            kind: FileType::Directory,
            ino: parent,
            layer: v.layer,
        });
        for ((name, kind, key), ino) in found.into_iter().zip(inos) {
            out.push(DirEnt {
                name,
                kind,
                ino,
                layer: key.layer,
            });
        }
        Ok(out)
    }

    /// The merged directory with these layer dirs shows nothing (rmdir, rename over it).
    pub(crate) fn is_empty(&self, layers: &[(u16, OwnedFd)]) -> Res<bool> {
        let mut empty = true;
        self.visible(layers, |_, _, _| {
            empty = false;
            false
        })?;
        Ok(empty)
    }

    /// Call `each(name, kind, key)` for every visible name of the merged directory with
    /// these layer dirs (top first), until it returns false.
    fn visible(
        &self,
        layers: &[(u16, OwnedFd)],
        mut each: impl FnMut(&CStr, FileType, Key) -> bool,
    ) -> Res<()> {
        let single = layers.len() == 1;
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut hidden: HashSet<Vec<u8>> = HashSet::new();
        for (layer, dir) in layers {
            let dir = dir.as_fd();
            let dev = rustix::fs::fstat(dir)?.st_dev;
            let mut here = Vec::new();
            let mut d = rustix::fs::Dir::read_from(dir)?;
            while let Some(e) = d.read() {
                let e = e?;
                let n = e.file_name();
                let b = n.to_bytes();
                if b == b"." || b == b".." {
                    continue;
                }
                if let Some(rest) = b.strip_prefix(b".wh.") {
                    // `.wh.NAME` hides NAME below; `.wh..wh.*` is aufs bookkeeping.
                    if !rest.starts_with(b".wh.") {
                        here.push(rest.to_vec());
                    }
                    continue;
                }
                if !single && (seen.contains(b) || hidden.contains(b)) {
                    continue;
                }
                let mut t = e.file_type();
                if matches!(
                    t,
                    rustix::fs::FileType::Unknown | rustix::fs::FileType::CharacterDevice
                ) {
                    let Some(st) = sys::stat_at(dir, n)? else {
                        continue;
                    };
                    if sys::is_whiteout(&st) {
                        here.push(b.to_vec());
                        continue;
                    }
                    t = sys::file_type(&st);
                }
                let Some(kind) = attr::kind_of(t) else {
                    continue;
                };
                if !single {
                    seen.insert(b.to_vec());
                }
                let key = Key {
                    layer: *layer,
                    dev,
                    ino: e.ino(),
                    alias: 0,
                };
                if !each(n, kind, key) {
                    return Ok(());
                }
            }
            hidden.extend(here);
        }
        Ok(())
    }

    pub(crate) fn readdir_fh(&self, fh: u64, offset: u64, mut reply: ReplyDirectory) {
        let entries = match self.listing(fh, offset) {
            Ok((_, e)) => e,
            Err(e) => return reply.error(attr::errno(e)),
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, e) in entries.iter().enumerate().skip(start) {
            let name = OsStr::from_bytes(e.name.to_bytes());
            if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, name) {
                break;
            }
        }
        reply.ok();
    }

    /// Look up listed entries for readdirplus, in order (`None`: gone since the listing).
    /// A non-directory is what its layer holds (the listing applied whiteouts already):
    /// one stat, no scan of the other layers, and all of them counted under one lock.
    /// `ahead`: stats taken earlier for entries from index `first` on.
    fn plus_entries(
        &self,
        dir: u64,
        stack: &Stack,
        (first, ents): (usize, &[DirEnt]),
        ahead: Option<&Ahead>,
    ) -> Vec<Option<(u64, FileAttr)>> {
        let mut out = vec![None; ents.len()];
        let mut plain = Vec::new();
        let mut at = Vec::new();
        for (i, e) in ents.iter().enumerate() {
            if e.kind != FileType::Directory {
                let st = match ahead.and_then(|a| a.get(first + i)) {
                    Some(st) => st.copied(),
                    None => plain_stat(stack, e),
                };
                if let Some(st) = st {
                    let kind = sys::file_type(&st);
                    if !sys::is_whiteout(&st) && kind != rustix::fs::FileType::Directory {
                        plain.push((
                            &e.name,
                            Found {
                                layer: e.layer,
                                st,
                                dirs: None,
                            },
                        ));
                        at.push(i);
                        continue;
                    }
                }
            }
            out[i] = self.lookup_in(dir, &e.name).ok().flatten();
        }
        for (i, r) in at.into_iter().zip(self.remember_all(dir, plain)) {
            out[i] = Some(r);
        }
        out
    }

    pub(crate) fn readdirplus_fh(&self, fh: u64, offset: u64, reply: ReplyDirectoryPlus) {
        let h = match self.dirs.get(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(attr::errno(e)),
        };
        let (dir, entries, stack) = match self
            .listing_of(&h, offset)
            .and_then(|(d, e)| Ok((d, e, self.stack_of(d)?)))
        {
            Ok(x) => x,
            Err(e) => return reply.error(attr::errno(e)),
        };
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        // Held until the next part is statted: the request for it waits here for that.
        let mut slot = h.ahead.lock().unwrap_or_else(|p| p.into_inner());
        let changes = self.changes.load(Ordering::Acquire);
        let ahead = Ahead::take_for(&mut slot, &entries, changes);
        let Some(next) = self.plus_reply(dir, &stack, &entries, from, ahead.as_ref(), reply) else {
            return;
        };
        // The part just sent again, from where it stopped (the kernel's buffer size).
        let want = next.saturating_sub(from).clamp(16, 4 * PLUS_CHUNK);
        let ents = entries.get(next..entries.len().min(next + want));
        let Some(ents) = ents.filter(|e| !e.is_empty()) else {
            return;
        };
        let changes = self.changes.load(Ordering::Acquire);
        let stats = ents.iter().map(|e| plain_stat(&stack, e)).collect();
        *slot = Some(Ahead {
            listing: entries.clone(),
            from: next,
            changes,
            stats,
        });
    }

    /// Answer a readdirplus from entry `i` on; the index of the first entry that did not
    /// fit, if any.
    fn plus_reply(
        &self,
        dir: u64,
        stack: &Stack,
        entries: &[DirEnt],
        mut i: usize,
        ahead: Option<&Ahead>,
        mut reply: ReplyDirectoryPlus,
    ) -> Option<usize> {
        let mut want = 16;
        while let Some(e) = entries.get(i) {
            if i < 2 {
                // `.` and `..`: the kernel takes no reference for them.
                let name = OsStr::from_bytes(e.name.to_bytes());
                i += 1;
                let Ok(a) = self.getattr_ino(e.ino) else {
                    continue;
                };
                if reply.add(INodeNo(e.ino), i as u64, name, &self.ttl, &a, Generation(0)) {
                    reply.ok();
                    return Some(i - 1);
                }
                continue;
            }
            // A chunk at a time: one table lock per chunk. Chunks grow from 16 to
            // PLUS_CHUNK, so when the kernel's buffer fills (a page on older kernels)
            // no more entries were looked up for nothing than were sent.
            let chunk = entries
                .get(i..entries.len().min(i + want))
                .unwrap_or_default();
            want = (want * 2).min(PLUS_CHUNK);
            let found = self.plus_entries(dir, stack, (i, chunk), ahead);
            for (k, (e, f)) in chunk.iter().zip(&found).enumerate() {
                let off = (i + k) as u64 + 1;
                let name = OsStr::from_bytes(e.name.to_bytes());
                // `None`: gone since the snapshot; left out.
                let Some((ino, a)) = f else { continue };
                if reply.add(INodeNo(*ino), off, name, &self.ttl, a, Generation(0)) {
                    // Not sent, nor what follows: the kernel holds no reference for them.
                    let unsent = found.iter().skip(k).flatten().map(|(ino, _)| (*ino, 1));
                    self.inodes.forget_all(unsent);
                    reply.ok();
                    return Some(i + k);
                }
            }
            i += chunk.len();
        }
        reply.ok();
        None
    }
}

/// Readdirplus entries looked up at a time, at most.
const PLUS_CHUNK: usize = 128;

/// The host stat of a listed non-directory in its layer (`None` for a directory: a
/// merged one needs a full lookup).
fn plain_stat(stack: &Stack, e: &DirEnt) -> Option<Stat> {
    if e.kind == FileType::Directory {
        return None;
    }
    stack
        .at(e.layer)
        .and_then(|d| sys::stat_at(d, &e.name).ok()?)
}
