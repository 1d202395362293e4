//! The tree a tar stream describes, built entry by entry while each file's data goes
//! out as compressed blocks at once (only metadata stays in memory).
//! Owns: path normalization (no `..`, no empty or over-long paths), implicit parent
//! dirs, replacement of an earlier entry of the same path, hardlinks (one node, more
//! names), OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) applied when present, the limits.
//! Never: writes tables (tables.rs) or chooses where the archive goes (mod.rs).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use super::{WriteError, WriteOptions};
use crate::codec::Compressor;
use crate::format::{encode_dev, DATA_UNCOMPRESSED};

/// Longest path accepted (PATH_MAX): it also bounds the tree's depth.
const MAX_PATH: usize = 4096;

/// What a node is.
#[derive(Debug)]
pub enum Kind {
    /// Children by name (byte order, as squashfs wants them).
    Dir(BTreeMap<Vec<u8>, usize>),
    /// Data at `start`, `blocks` on-disk sizes (0: a hole).
    File {
        /// Absolute offset of the first block.
        start: u64,
        /// Bytes.
        size: u64,
        /// Block size fields.
        blocks: Vec<u32>,
    },
    /// The target, as stored.
    Symlink(Vec<u8>),
    /// Encoded device number.
    Char(u32),
    /// Encoded device number.
    Block(u32),
    /// A named pipe (tar has no sockets).
    Fifo,
}

/// One inode.
#[derive(Debug)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Permission bits (0o7777).
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: u32,
    /// Names it has (hardlinks).
    pub nlink: u32,
}

/// The tree; node 0 is the root.
#[derive(Debug)]
pub struct Tree {
    /// Every node ever made (replaced ones stay, unreachable).
    pub nodes: Vec<Node>,
    /// Largest mtime seen.
    pub newest: u32,
    bytes: u64,
    entries: u64,
}

fn dir_node() -> Node {
    Node {
        kind: Kind::Dir(BTreeMap::new()),
        perm: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
        nlink: 1,
    }
}

/// Split a tar path into its components; `None` for one that climbs out (`..`) or is
/// too long. The root itself is an empty list.
fn components(path: &[u8]) -> Option<Vec<Vec<u8>>> {
    if path.len() > MAX_PATH {
        return None;
    }
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

impl Tree {
    /// Read `tar` to its end, writing file data to `out` (whose position is `*pos`).
    pub fn build(
        tar: impl Read,
        out: &mut impl Write,
        pos: &mut u64,
        opts: &WriteOptions,
    ) -> Result<Tree, WriteError> {
        let mut t = Tree {
            nodes: vec![dir_node()],
            newest: 0,
            bytes: 0,
            entries: 0,
        };
        let mut comp = Compressor::new()?;
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().map_err(WriteError::Tar)? {
            let mut entry = entry.map_err(WriteError::Tar)?;
            t.entries += 1;
            if t.entries > opts.max_entries {
                return Err(WriteError::TooMany(opts.max_entries));
            }
            t.add(&mut entry, out, pos, &mut comp, opts)?;
        }
        // A stream without an entry for the root (export writes none) dates it by its
        // newest file, not 1970; a reproducible choice either way.
        if t.nodes[0].mtime == 0 {
            t.nodes[0].mtime = t.newest;
        }
        Ok(t)
    }

    fn add<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        out: &mut impl Write,
        pos: &mut u64,
        comp: &mut Compressor,
        opts: &WriteOptions,
    ) -> Result<(), WriteError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let mut parts = components(&raw).ok_or_else(|| WriteError::BadPath(shown.clone()))?;
        let h = entry.header();
        let ty = h.entry_type();
        let mtime = u32::try_from(h.mtime().unwrap_or(0)).unwrap_or(u32::MAX);
        self.newest = self.newest.max(mtime);
        let meta = (
            u16::try_from(h.mode().unwrap_or(0o644) & 0o7777).unwrap_or(0o644),
            u32::try_from(h.uid().unwrap_or(0)).map_err(|_| WriteError::BadOwner(shown.clone()))?,
            u32::try_from(h.gid().unwrap_or(0)).map_err(|_| WriteError::BadOwner(shown.clone()))?,
        );
        let Some(name) = parts.pop() else {
            // The root's own entry: only its metadata counts.
            if ty.is_dir() {
                self.set_meta(0, meta, mtime);
            }
            return Ok(());
        };
        let parent = self.dir_at(&parts);
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            if hidden == b".wh..opq" {
                self.children(parent).clear();
            } else {
                self.children(parent).remove(hidden);
            }
            return Ok(());
        }
        let kind = match ty {
            t if t.is_dir() => {
                if let Some(&old) = self.children(parent).get(&name) {
                    if matches!(self.nodes[old].kind, Kind::Dir(_)) {
                        self.set_meta(old, meta, mtime);
                        return Ok(());
                    }
                }
                Kind::Dir(BTreeMap::new())
            }
            t if t.is_hard_link() => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| WriteError::BadLink(shown.clone()))?
                    .into_owned();
                let node = self
                    .find(&target)
                    .filter(|&n| !matches!(self.nodes[n].kind, Kind::Dir(_)))
                    .ok_or_else(|| WriteError::BadLink(shown.clone()))?;
                self.nodes[node].nlink += 1;
                self.link(parent, name, node);
                return Ok(());
            }
            t if t.is_symlink() => Kind::Symlink(
                entry
                    .link_name_bytes()
                    .ok_or_else(|| WriteError::BadLink(shown.clone()))?
                    .into_owned(),
            ),
            t if t.is_character_special() || t.is_block_special() => {
                let dev = encode_dev(
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                );
                if t.is_block_special() {
                    Kind::Block(dev)
                } else {
                    Kind::Char(dev)
                }
            }
            t if t.is_fifo() => Kind::Fifo,
            t if t.is_file() || t.is_contiguous() || t == tar::EntryType::GNUSparse => {
                self.write_data(entry, out, pos, comp, opts)?
            }
            // Metadata records (pax, GNU long names) are folded in by the tar reader.
            _ => return Ok(()),
        };
        let node = self.nodes.len();
        self.nodes.push(Node {
            kind,
            perm: meta.0,
            uid: meta.1,
            gid: meta.2,
            mtime,
            nlink: 1,
        });
        self.link(parent, name, node);
        Ok(())
    }

    fn set_meta(&mut self, node: usize, (perm, uid, gid): (u16, u32, u32), mtime: u32) {
        let n = &mut self.nodes[node];
        (n.perm, n.uid, n.gid, n.mtime) = (perm, uid, gid, mtime);
    }

    fn children(&mut self, dir: usize) -> &mut BTreeMap<Vec<u8>, usize> {
        match &mut self.nodes[dir].kind {
            Kind::Dir(c) => c,
            // dir_at only ever hands out directories.
            _ => unreachable_dir(),
        }
    }

    /// Put `node` at `name` in `parent`, replacing (and unlinking) what was there.
    fn link(&mut self, parent: usize, name: Vec<u8>, node: usize) {
        if let Some(old) = self.children(parent).insert(name, node) {
            let o = &mut self.nodes[old];
            o.nlink = o.nlink.saturating_sub(1);
        }
    }

    /// The dir at `parts`, made (0755, root-owned) where missing; a non-dir in the way
    /// is replaced, as a later layer replacing it would.
    fn dir_at(&mut self, parts: &[Vec<u8>]) -> usize {
        let mut at = 0;
        for p in parts {
            let found = self.children(at).get(p).copied();
            let next = match found {
                Some(n) if matches!(self.nodes[n].kind, Kind::Dir(_)) => n,
                _ => {
                    let n = self.nodes.len();
                    self.nodes.push(dir_node());
                    self.link(at, p.clone(), n);
                    n
                }
            };
            at = next;
        }
        at
    }

    /// The node at a path, following no symlinks.
    fn find(&self, path: &[u8]) -> Option<usize> {
        let mut at = 0;
        for p in components(path)? {
            match &self.nodes[at].kind {
                Kind::Dir(c) => at = *c.get(&p)?,
                _ => return None,
            }
        }
        Some(at)
    }

    /// Copy a file's data out as blocks: holes for all-zero blocks, zstd where smaller.
    fn write_data(
        &mut self,
        r: &mut impl Read,
        out: &mut impl Write,
        pos: &mut u64,
        comp: &mut Compressor,
        opts: &WriteOptions,
    ) -> Result<Kind, WriteError> {
        let bs = usize::try_from(opts.block_size).unwrap_or(131072);
        let start = *pos;
        let mut size = 0u64;
        let mut blocks = Vec::new();
        let mut buf = vec![0u8; bs];
        loop {
            let n = fill(r, &mut buf).map_err(WriteError::Tar)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            self.bytes += n as u64;
            if self.bytes > opts.max_bytes {
                return Err(WriteError::TooLarge(opts.max_bytes));
            }
            let block = &buf[..n];
            if block.iter().all(|b| *b == 0) {
                blocks.push(0);
                continue;
            }
            let (bytes, field) = match comp.compress(block)? {
                Some(c) => {
                    let len = u32::try_from(c.len()).unwrap_or(u32::MAX);
                    (c, len)
                }
                None => (block.to_vec(), n as u32 | DATA_UNCOMPRESSED),
            };
            out.write_all(&bytes).map_err(WriteError::Write)?;
            *pos += bytes.len() as u64;
            blocks.push(field);
            if n < bs {
                break;
            }
        }
        Ok(Kind::File {
            start,
            size,
            blocks,
        })
    }
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cold]
fn unreachable_dir() -> ! {
    // Every index handed to `children` comes from `dir_at` or is the root: a dir.
    unreachable!("a directory index that is not a directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_are_refused() {
        assert_eq!(
            components(b"./a//b/."),
            Some(vec![b"a".to_vec(), b"b".to_vec()])
        );
        assert_eq!(components(b"/"), Some(vec![]));
        assert_eq!(components(b"a/../../etc"), None);
        assert_eq!(components(&vec![b'a'; MAX_PATH + 1]), None);
    }
}
