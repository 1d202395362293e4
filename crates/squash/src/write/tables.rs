//! The tree's metadata as squashfs tables: inodes (children before their directory, so
//! each listing can name its entries' inode references), directory listings, the id
//! table; metadata blocks of 8 KiB, zstd where smaller.
//! Never: reads tar or writes the file (mod.rs places what this returns).

use super::tree::{Kind, Node, Tree};
use super::WriteError;
use crate::codec::Compressor;
use crate::format::{kind, META_SIZE, META_UNCOMPRESSED, NO_FRAGMENT, NO_XATTR};

/// Longest entry name squashfs can store.
const MAX_NAME: usize = 256;
/// Entries one directory header may carry.
const HEADER_ENTRIES: usize = 256;

/// A table being cut into metadata blocks.
#[derive(Debug, Default)]
pub struct MetaWriter {
    out: Vec<u8>,
    cur: Vec<u8>,
    starts: Vec<u64>,
}

impl MetaWriter {
    /// Where the next byte goes: (its block's offset in the table, offset in the block).
    pub fn pos(&self) -> (u64, u16) {
        (self.out.len() as u64, self.cur.len() as u16)
    }

    /// Append bytes, closing full blocks.
    pub fn write(&mut self, comp: &mut Compressor, b: &[u8]) -> Result<(), WriteError> {
        self.cur.extend_from_slice(b);
        while self.cur.len() >= META_SIZE {
            let rest = self.cur.split_off(META_SIZE);
            self.close_block(comp)?;
            self.cur = rest;
        }
        Ok(())
    }

    fn close_block(&mut self, comp: &mut Compressor) -> Result<(), WriteError> {
        let block = std::mem::take(&mut self.cur);
        self.starts.push(self.out.len() as u64);
        match comp.compress(&block)? {
            Some(c) => {
                self.out.extend_from_slice(&(c.len() as u16).to_le_bytes());
                self.out.extend_from_slice(&c);
            }
            None => {
                let h = block.len() as u16 | META_UNCOMPRESSED;
                self.out.extend_from_slice(&h.to_le_bytes());
                self.out.extend_from_slice(&block);
            }
        }
        Ok(())
    }

    /// The table's bytes.
    pub fn finish(self, comp: &mut Compressor) -> Result<Vec<u8>, WriteError> {
        Ok(self.finish_blocks(comp)?.0)
    }

    /// The table's bytes and where each of its blocks starts in them.
    pub fn finish_blocks(
        mut self,
        comp: &mut Compressor,
    ) -> Result<(Vec<u8>, Vec<u64>), WriteError> {
        if !self.cur.is_empty() {
            self.close_block(comp)?;
        }
        Ok((self.out, self.starts))
    }
}

/// The tables of a tree.
#[derive(Debug)]
pub struct Tables {
    /// The inode table.
    pub inodes: Vec<u8>,
    /// The directory table.
    pub dirs: Vec<u8>,
    /// The root's inode reference.
    pub root: u64,
    /// Inodes written.
    pub inode_count: u32,
    /// Distinct uids and gids, by index.
    pub ids: Vec<u32>,
}

struct Emit<'a> {
    tree: &'a Tree,
    comp: &'a mut Compressor,
    inodes: MetaWriter,
    dirs: MetaWriter,
    ino: Vec<u32>,
    names: Vec<u32>,
    refs: Vec<Option<u64>>,
    ids: Vec<u32>,
    count: u32,
}

/// Number every reachable node, count its names, then write inodes and listings.
pub fn emit(tree: &Tree, comp: &mut Compressor) -> Result<Tables, WriteError> {
    let n = tree.nodes.len();
    let mut e = Emit {
        tree,
        comp,
        inodes: MetaWriter::default(),
        dirs: MetaWriter::default(),
        ino: vec![0; n],
        names: vec![0; n],
        refs: vec![None; n],
        ids: Vec::new(),
        count: 0,
    };
    let mut stack = vec![0usize];
    e.count = 1;
    e.ino[0] = 1;
    while let Some(d) = stack.pop() {
        if let Kind::Dir(children) = &tree.nodes[d].kind {
            for &c in children.values() {
                e.names[c] += 1;
                if e.ino[c] == 0 {
                    e.count += 1;
                    e.ino[c] = e.count;
                    stack.push(c);
                }
            }
        }
    }
    let root_parent = e.count + 1;
    let root = e.node(0, root_parent)?;
    Ok(Tables {
        inodes: e.inodes.finish(e.comp)?,
        dirs: e.dirs.finish(e.comp)?,
        root,
        inode_count: e.count,
        ids: e.ids,
    })
}

fn basic_type(k: &Kind) -> u16 {
    match k {
        Kind::Dir(_) => kind::DIR,
        Kind::File { .. } => kind::FILE,
        Kind::Symlink(_) => kind::SYMLINK,
        Kind::Block(_) => kind::BLOCK,
        Kind::Char(_) => kind::CHAR,
        Kind::Fifo => kind::FIFO,
    }
}

impl Emit<'_> {
    fn id(&mut self, v: u32) -> Result<u16, WriteError> {
        let i = match self.ids.iter().position(|x| *x == v) {
            Some(i) => i,
            None => {
                self.ids.push(v);
                self.ids.len() - 1
            }
        };
        u16::try_from(i).map_err(|_| WriteError::TooManyIds)
    }

    /// Write node `n` (and first, for a dir, its children); returns its reference.
    fn node(&mut self, n: usize, parent: u32) -> Result<u64, WriteError> {
        if let Some(r) = self.refs[n] {
            return Ok(r);
        }
        let node: &Node = &self.tree.nodes[n];
        let mut body = Vec::new();
        let ty = match &node.kind {
            Kind::Dir(children) => {
                let mut entries = Vec::with_capacity(children.len());
                let mut subdirs = 0u32;
                for (name, &c) in children {
                    if name.len() > MAX_NAME {
                        return Err(WriteError::BadPath(String::from_utf8_lossy(name).into()));
                    }
                    let r = self.node(c, self.ino[n])?;
                    let t = basic_type(&self.tree.nodes[c].kind);
                    subdirs += u32::from(t == kind::DIR);
                    entries.push((name.as_slice(), r, self.ino[c], t));
                }
                let (block, offset) = self.dirs.pos();
                let listing = listing(&entries);
                self.dirs.write(self.comp, &listing)?;
                let size = listing.len() as u64 + 3;
                let block = u32::try_from(block).map_err(|_| WriteError::TooMany(u64::MAX))?;
                let links = 2 + subdirs;
                match u16::try_from(size) {
                    Ok(size) => {
                        put32(&mut body, &[block, links]);
                        body.extend_from_slice(&size.to_le_bytes());
                        body.extend_from_slice(&offset.to_le_bytes());
                        put32(&mut body, &[parent]);
                        kind::DIR
                    }
                    Err(_) => {
                        let size = u32::try_from(size).map_err(|_| WriteError::TooMany(size))?;
                        put32(&mut body, &[links, size, block, parent]);
                        body.extend_from_slice(&0u16.to_le_bytes());
                        body.extend_from_slice(&offset.to_le_bytes());
                        put32(&mut body, &[NO_XATTR]);
                        kind::DIR + kind::EXTENDED
                    }
                }
            }
            Kind::File {
                start,
                size,
                blocks,
            } => {
                let links = self.names[n].max(1);
                match (u32::try_from(*start), u32::try_from(*size)) {
                    (Ok(s), Ok(z)) if links == 1 => {
                        put32(&mut body, &[s, NO_FRAGMENT, 0, z]);
                        put32(&mut body, blocks);
                        kind::FILE
                    }
                    _ => {
                        for v in [*start, *size, 0] {
                            body.extend_from_slice(&v.to_le_bytes());
                        }
                        put32(&mut body, &[links, NO_FRAGMENT, 0, NO_XATTR]);
                        put32(&mut body, blocks);
                        kind::FILE + kind::EXTENDED
                    }
                }
            }
            Kind::Symlink(target) => {
                if target.len() > 4096 {
                    return Err(WriteError::BadLink(String::from_utf8_lossy(target).into()));
                }
                put32(&mut body, &[self.names[n].max(1), target.len() as u32]);
                body.extend_from_slice(target);
                kind::SYMLINK
            }
            Kind::Block(dev) | Kind::Char(dev) => {
                put32(&mut body, &[self.names[n].max(1), *dev]);
                basic_type(&node.kind)
            }
            Kind::Fifo => {
                put32(&mut body, &[self.names[n].max(1)]);
                basic_type(&node.kind)
            }
        };
        let (uid, gid) = (self.id(node.uid)?, self.id(node.gid)?);
        let (block, offset) = self.inodes.pos();
        let r = (block << 16) | u64::from(offset);
        let mut head = Vec::with_capacity(16 + body.len());
        for v in [ty, node.perm, uid, gid] {
            head.extend_from_slice(&v.to_le_bytes());
        }
        put32(&mut head, &[node.mtime, self.ino[n]]);
        head.extend_from_slice(&body);
        self.inodes.write(self.comp, &head)?;
        self.refs[n] = Some(r);
        Ok(r)
    }
}

fn put32(b: &mut Vec<u8>, vs: &[u32]) {
    for v in vs {
        b.extend_from_slice(&v.to_le_bytes());
    }
}

/// A directory's listing: runs of entries whose inodes share a metadata block and lie
/// within an i16 of the run's first inode number, at most 256 a run.
fn listing(entries: &[(&[u8], u64, u32, u16)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let (block, base) = (entries[i].1 >> 16, i64::from(entries[i].2));
        let mut j = i;
        while j < entries.len()
            && j - i < HEADER_ENTRIES
            && entries[j].1 >> 16 == block
            && i16::try_from(i64::from(entries[j].2) - base).is_ok()
        {
            j += 1;
        }
        put32(&mut out, &[(j - i - 1) as u32, block as u32, base as u32]);
        for (name, r, ino, t) in &entries[i..j] {
            let delta = (i64::from(*ino) - base) as i16;
            out.extend_from_slice(&((r & 0xffff) as u16).to_le_bytes());
            out.extend_from_slice(&delta.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&((name.len() - 1) as u16).to_le_bytes());
            out.extend_from_slice(name);
        }
        i = j;
    }
    out
}
