//! The inode table: FUSE inode numbers, what each one is in the layers, lookup counts.
//! Owns: the map (layer, host dev, host ino) → inode number (kept for the life of the
//! mount, so a number never changes: not on copy-up, not after the kernel forgets it),
//! the live nodes (parent and name, top layer, the cached directory fds of a merged dir
//! within an fd budget). Never: touches the host beyond closing cached fds.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fuser::FileType;
use rustix::io::Errno;

pub(crate) use super::lookup::Stack;
use super::sys::Res;

/// A map keyed by numbers this server or the host assigned (never names a layer
/// chose): a multiply-rotate hash instead of SipHash, on the hot path of every request.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
}

/// The upper's layer index (lowers are 1.., top first).
pub(crate) const UPPER: u16 = 0;
/// FUSE's root inode.
pub(crate) const ROOT: u64 = 1;

/// A host entry's identity within one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub layer: u16,
    pub dev: u64,
    pub ino: u64,
    /// Non-zero for one name of a hardlinked lower file: each name is its own inode, so
    /// copying one up never changes what the others show (kernel overlay without
    /// `index` does the same).
    pub alias: u64,
}

struct Node {
    parent: u64,
    name: CString,
    kind: FileType,
    layer: u16,
    merged: bool,
    lookups: u64,
    stack: Option<Arc<Stack>>,
    copied: Arc<AtomicBool>,
    orphan: Option<Arc<OwnedFd>>,
    /// The open host file reads and writes without a handle go to, and whether it is
    /// open for writing.
    file: Option<(Arc<OwnedFd>, bool)>,
    /// Made by this server and given no xattr since: it has no file capabilities.
    fresh: bool,
}

impl Node {
    /// The fds this node holds in the cache.
    fn held(&self) -> usize {
        self.stack.as_ref().map(|s| s.0.len()).unwrap_or(0) + usize::from(self.file.is_some())
    }

    /// The fds this node holds in the cache, taking them.
    fn drop_cached(&mut self) -> usize {
        let stack = self.stack.take().map(|s| s.0.len()).unwrap_or(0);
        stack + usize::from(self.file.take().is_some())
    }
}

/// A copy of what an operation needs to know about a node.
#[derive(Clone)]
pub(crate) struct View {
    pub ino: u64,
    pub parent: u64,
    pub name: CString,
    pub kind: FileType,
    /// The topmost layer holding the entry.
    pub layer: u16,
    /// A directory with lower parts below its top layer.
    pub merged: bool,
    pub stack: Option<Arc<Stack>>,
    /// Set once the node is copied up (handles opened on the lower re-open the upper).
    pub copied: Arc<AtomicBool>,
    /// An `O_PATH` fd of an unlinked entry the kernel still refers to.
    pub orphan: Option<Arc<OwnedFd>>,
    /// Made by this server and given no xattr since.
    pub fresh: bool,
}

/// What a lookup found, to be remembered.
pub(crate) struct Entry {
    pub key: Key,
    pub kind: FileType,
    pub layer: u16,
    pub merged: bool,
    pub stack: Option<Arc<Stack>>,
    /// Just made by this server (see [`View::fresh`]).
    pub fresh: bool,
}

struct Table {
    nodes: FastMap<u64, Node>,
    keys: FastMap<Key, u64>,
    next: u64,
    /// Directory fds held by cached stacks, and the order they were cached in.
    fds: usize,
    lru: VecDeque<u64>,
    budget: usize,
}

pub(crate) struct Inodes(RwLock<Table>);

impl Inodes {
    pub fn new(root_key: Key, root: Stack, budget: usize) -> Self {
        let merged = root.has_lowers();
        let fds = root.0.len();
        let node = Node {
            parent: ROOT,
            name: c".".to_owned(),
            kind: FileType::Directory,
            layer: UPPER,
            merged,
            lookups: 1,
            stack: Some(Arc::new(root)),
            copied: Arc::new(AtomicBool::new(true)),
            orphan: None,
            file: None,
            fresh: false,
        };
        Self(RwLock::new(Table {
            nodes: FastMap::from_iter([(ROOT, node)]),
            keys: FastMap::from_iter([(root_key, ROOT)]),
            next: ROOT + 1,
            fds,
            lru: VecDeque::new(),
            budget,
        }))
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn view(&self, ino: u64) -> Res<View> {
        let t = self.read();
        let n = t.nodes.get(&ino).ok_or(Errno::STALE)?;
        Ok(View {
            ino,
            parent: n.parent,
            name: n.name.clone(),
            kind: n.kind,
            layer: n.layer,
            merged: n.merged,
            stack: n.stack.clone(),
            copied: n.copied.clone(),
            orphan: n.orphan.clone(),
            fresh: n.fresh,
        })
    }

    /// The inode number of a key, assigning one (for readdir entries never looked up).
    pub fn numbers(&self, keys: &[Key]) -> Vec<u64> {
        let mut t = self.write();
        keys.iter().map(|k| t.number(*k)).collect()
    }

    /// The live node a key maps to, if the kernel holds one.
    pub fn live(&self, key: Key) -> Option<u64> {
        let t = self.read();
        t.keys
            .get(&key)
            .copied()
            .filter(|i| t.nodes.contains_key(i))
    }

    /// Count one kernel lookup of `entry` as `name` in `parent`; its inode number.
    pub fn remember(&self, parent: u64, name: &CString, entry: Entry) -> u64 {
        self.write().remember(parent, name, entry)
    }

    /// [`Inodes::remember`] for several names in `parent` under one lock (a listing's
    /// entries: the table's lock is the one place all workers meet).
    pub fn remember_all<'a>(
        &self,
        parent: u64,
        entries: impl IntoIterator<Item = (&'a CString, Entry)>,
    ) -> Vec<u64> {
        let mut t = self.write();
        entries
            .into_iter()
            .map(|(name, e)| t.remember(parent, name, e))
            .collect()
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        let gone = self.write().forget(ino, n);
        // Closing its fds happens outside the lock.
        drop(gone);
    }

    /// [`Inodes::forget`] for many `(ino, n)` under one lock.
    pub fn forget_all(&self, refs: impl IntoIterator<Item = (u64, u64)>) {
        let mut gone = Vec::new();
        {
            let mut t = self.write();
            gone.extend(refs.into_iter().filter_map(|(ino, n)| t.forget(ino, n)));
        }
        drop(gone);
    }

    /// Cache the directory fds of `ino` (evicting older ones beyond the budget).
    pub fn set_stack(&self, ino: u64, stack: Arc<Stack>) {
        let mut t = self.write();
        let n = stack.0.len();
        let Some(node) = t.nodes.get_mut(&ino) else {
            return;
        };
        let old = node.stack.replace(stack).map(|s| s.0.len()).unwrap_or(0);
        t.fds = t.fds.saturating_sub(old);
        t.cached(ino, n);
    }

    /// The cached host file of `ino`, if it is open (for writing, when `write`).
    pub fn file(&self, ino: u64, write: bool) -> Option<Arc<OwnedFd>> {
        let t = self.read();
        let (fd, rw) = t.nodes.get(&ino)?.file.as_ref()?;
        (*rw || !write).then(|| fd.clone())
    }

    /// Cache `fd`, opened on `layer`, as the host file of `ino` (`rw`: open for writing),
    /// unless the node moved to another layer meanwhile or has a writable one.
    pub fn set_file(&self, ino: u64, fd: Arc<OwnedFd>, rw: bool, layer: u16) {
        let mut t = self.write();
        let Some(node) = t.nodes.get_mut(&ino) else {
            return;
        };
        if node.layer != layer || node.file.as_ref().is_some_and(|(_, w)| *w && !rw) {
            return;
        }
        let old = usize::from(node.file.replace((fd, rw)).is_some());
        t.fds = t.fds.saturating_sub(old);
        t.cached(ino, 1);
    }

    /// Whether `ino` is a file this server just made (`true`), or may have xattrs.
    pub fn set_fresh(&self, ino: u64, fresh: bool) {
        if let Some(n) = self.write().nodes.get_mut(&ino) {
            n.fresh = fresh;
        }
    }

    /// `ino` now lives in the upper as `key`; it keeps its number.
    pub fn copied_up(&self, ino: u64, key: Key) {
        let mut t = self.write();
        t.keys.insert(key, ino);
        let held = match t.nodes.get_mut(&ino) {
            Some(n) => {
                n.layer = UPPER;
                n.merged |= n.kind == FileType::Directory;
                n.copied.store(true, Ordering::Release);
                n.drop_cached()
            }
            None => 0,
        };
        t.fds = t.fds.saturating_sub(held);
    }

    /// `ino` was renamed to `name` in `parent`.
    pub fn moved(&self, ino: u64, parent: u64, name: &CString) {
        let mut t = self.write();
        if let Some(n) = t.nodes.get_mut(&ino) {
            n.parent = parent;
            n.name.clone_from(name);
        }
    }

    /// `ino`'s name is gone. `last` is the upper key when it was the host file's last
    /// name (a later file may get the host inode number again); `orphan` keeps the file
    /// reachable for getattr while the kernel holds it.
    pub fn unlinked(&self, ino: u64, last: Option<Key>, orphan: Option<OwnedFd>) {
        let mut t = self.write();
        if let Some(k) = last {
            if t.keys.get(&k) == Some(&ino) {
                t.keys.remove(&k);
            }
        }
        let held = match t.nodes.get_mut(&ino) {
            Some(n) => {
                n.orphan = orphan.map(Arc::new);
                n.stack.take().map(|s| s.0.len()).unwrap_or(0)
            }
            None => 0,
        };
        t.fds = t.fds.saturating_sub(held);
    }
}

impl Table {
    fn remember(&mut self, parent: u64, name: &CString, entry: Entry) -> u64 {
        let ino = self.number(entry.key);
        let new_fds = entry.stack.as_ref().map(|s| s.0.len());
        let old_fds = match self.nodes.get_mut(&ino) {
            Some(n) => {
                n.lookups += 1;
                if ino != ROOT {
                    n.parent = parent;
                    n.name.clone_from(name);
                }
                // A racing lookup may have seen the lower just before a copy-up.
                if n.layer != UPPER {
                    n.layer = entry.layer;
                }
                n.merged |= entry.merged;
                n.fresh |= entry.fresh;
                n.orphan = None;
                match entry.stack {
                    Some(s) => n.stack.replace(s).map(|s| s.0.len()),
                    None => None,
                }
            }
            None => {
                let node = Node {
                    parent,
                    name: name.clone(),
                    kind: entry.kind,
                    layer: entry.layer,
                    merged: entry.merged,
                    lookups: 1,
                    stack: entry.stack,
                    copied: Arc::new(AtomicBool::new(entry.layer == UPPER)),
                    orphan: None,
                    file: None,
                    fresh: entry.fresh,
                };
                self.nodes.insert(ino, node);
                None
            }
        };
        self.fds = self.fds.saturating_sub(old_fds.unwrap_or(0));
        if let Some(n) = new_fds {
            self.cached(ino, n);
        }
        ino
    }

    /// Count `n` fewer kernel references to `ino`; the node when it is gone (the caller
    /// drops it, closing its fds, after releasing the table).
    fn forget(&mut self, ino: u64, n: u64) -> Option<Node> {
        if ino == ROOT {
            return None;
        }
        let node = self.nodes.get_mut(&ino)?;
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups != 0 {
            return None;
        }
        let node = self.nodes.remove(&ino)?;
        self.fds = self.fds.saturating_sub(node.held());
        Some(node)
    }

    fn number(&mut self, key: Key) -> u64 {
        let next = &mut self.next;
        *self.keys.entry(key).or_insert_with(|| {
            *next += 1;
            *next - 1
        })
    }

    fn cached(&mut self, ino: u64, n: usize) {
        self.fds += n;
        self.lru.push_back(ino);
        while self.fds > self.budget {
            let Some(old) = self.lru.pop_front() else {
                break;
            };
            if old == ROOT {
                continue;
            }
            let held = self.nodes.get_mut(&old).map(Node::drop_cached).unwrap_or(0);
            self.fds = self.fds.saturating_sub(held);
        }
        // Entries of nodes whose fds went another way pile up: keep only live ones.
        if self.lru.len() > 4 * self.budget.max(64) {
            let nodes = &self.nodes;
            let mut seen = std::collections::HashSet::new();
            self.lru.retain(|i| {
                nodes
                    .get(i)
                    .is_some_and(|n| n.stack.is_some() || n.file.is_some())
                    && seen.insert(*i)
            });
        }
    }
}
