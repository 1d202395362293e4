//! Inodes: the 16-byte header and each type's body, basic and extended, parsed from an
//! inode reference with every count bounded.
//! Never: reads file data (data.rs) or listings (dir.rs).

use super::{corrupt, Archive, ReadError};
use crate::format::{kind, Cursor, NO_FRAGMENT};

/// The most data blocks one file may list: 4 Mi (512 GiB at 128 KiB blocks); more would
/// make a forged inode cost memory in proportion to a number it claims.
const MAX_BLOCKS: u64 = 4 << 20;
/// Inodes of files with more blocks (over 64 MiB at 128 KiB) are parsed again for each
/// request rather than cached: the cache (8192 inodes) stays under 64 MiB.
const CACHED_BLOCKS: usize = 512;
/// The longest symlink target (PATH_MAX).
const MAX_TARGET: usize = 4096;

/// What an inode is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InodeKind {
    /// A directory: where its listing is and how long it is (without the 3 bytes squashfs
    /// counts for `.` and `..`).
    Dir {
        /// Block of the listing, relative to the directory table.
        block: u64,
        /// Offset in that block.
        offset: usize,
        /// Listing bytes.
        len: usize,
        /// Names: 2 + subdirectories.
        nlink: u32,
    },
    /// A regular file.
    File {
        /// Bytes.
        size: u64,
        /// Absolute offset of each full or partial data block, with its size field.
        blocks: Vec<(u64, u32)>,
        /// The tail's fragment (index, offset in the fragment block), if any.
        fragment: Option<(u32, u32)>,
        /// Names.
        nlink: u32,
    },
    /// A symlink and its target.
    Symlink(Vec<u8>),
    /// A block device (encoded number).
    Block(u32),
    /// A character device (encoded number).
    Char(u32),
    /// A FIFO.
    Fifo,
    /// A socket.
    Socket,
}

/// A parsed inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// What it is.
    pub kind: InodeKind,
    /// Permission bits.
    pub perm: u16,
    /// Owner (from the id table).
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: u32,
    /// squashfs's inode number.
    pub number: u32,
}

impl Archive {
    /// The inode at `r` (cached).
    pub fn inode(&self, r: u64) -> Result<std::sync::Arc<Inode>, ReadError> {
        let small = |i: &Inode| match &i.kind {
            InodeKind::File { blocks, .. } => blocks.len() <= CACHED_BLOCKS,
            _ => true,
        };
        self.inodes.get_or_if(r, || self.parse_inode(r), small)
    }

    fn parse_inode(&self, r: u64) -> Result<Inode, ReadError> {
        let sb = self.superblock();
        let block = sb.inode_table + (r >> 16);
        let off = (r & 0xffff) as usize;
        let end = sb.dir_table;
        let read = |at: usize, n: usize| self.meta_read(block, off + at, n, end);
        let head = read(0, 16)?;
        let h = Cursor::new(&head);
        let field16 = |at| h.u16(at).unwrap_or(0);
        let field32 = |at| h.u32(at).unwrap_or(0);
        let ty = field16(0);
        let (perm, uid, gid) = (
            field16(2) & 0o7777,
            self.id(field16(4))?,
            self.id(field16(6))?,
        );
        let (mtime, number) = (field32(8), field32(12));
        let b = |n: usize| read(16, n);
        let kind = match ty {
            kind::DIR => {
                let d = b(16)?;
                let c = Cursor::new(&d);
                InodeKind::Dir {
                    block: u64::from(c.u32(0).unwrap_or(0)),
                    nlink: c.u32(4).unwrap_or(0),
                    len: usize::from(c.u16(8).unwrap_or(0)).saturating_sub(3),
                    offset: usize::from(c.u16(10).unwrap_or(0)),
                }
            }
            t if t == kind::DIR + kind::EXTENDED => {
                let d = b(24)?;
                let c = Cursor::new(&d);
                InodeKind::Dir {
                    nlink: c.u32(0).unwrap_or(0),
                    len: (c.u32(4).unwrap_or(0) as usize).saturating_sub(3),
                    block: u64::from(c.u32(8).unwrap_or(0)),
                    offset: usize::from(c.u16(18).unwrap_or(0)),
                }
            }
            kind::FILE => {
                let d = b(16)?;
                let c = Cursor::new(&d);
                let (start, frag) = (c.u32(0).unwrap_or(0), c.u32(4).unwrap_or(0));
                let (foff, size) = (c.u32(8).unwrap_or(0), c.u32(12).unwrap_or(0));
                self.file(u64::from(start), u64::from(size), frag, foff, 1, |n| {
                    read(32, n)
                })?
            }
            t if t == kind::FILE + kind::EXTENDED => {
                let d = b(40)?;
                let c = Cursor::new(&d);
                let (start, size) = (c.u64(0).unwrap_or(0), c.u64(8).unwrap_or(0));
                let (nlink, frag) = (c.u32(24).unwrap_or(0), c.u32(28).unwrap_or(0));
                let foff = c.u32(32).unwrap_or(0);
                self.file(start, size, frag, foff, nlink, |n| read(56, n))?
            }
            t if t == kind::SYMLINK || t == kind::SYMLINK + kind::EXTENDED => {
                let d = b(8)?;
                let len = Cursor::new(&d).u32(4).unwrap_or(0) as usize;
                if len == 0 || len > MAX_TARGET {
                    return corrupt("symlink target length");
                }
                InodeKind::Symlink(read(24, len)?)
            }
            t if t == kind::BLOCK
                || t == kind::CHAR
                || t == kind::BLOCK + kind::EXTENDED
                || t == kind::CHAR + kind::EXTENDED =>
            {
                let d = b(8)?;
                let dev = Cursor::new(&d).u32(4).unwrap_or(0);
                if t == kind::BLOCK || t == kind::BLOCK + kind::EXTENDED {
                    InodeKind::Block(dev)
                } else {
                    InodeKind::Char(dev)
                }
            }
            t if t == kind::FIFO || t == kind::FIFO + kind::EXTENDED => InodeKind::Fifo,
            t if t == kind::SOCKET || t == kind::SOCKET + kind::EXTENDED => InodeKind::Socket,
            _ => return corrupt("inode type"),
        };
        Ok(Inode {
            kind,
            perm,
            uid,
            gid,
            mtime,
            number,
        })
    }

    /// A file's block list, each block's absolute start computed and checked.
    fn file(
        &self,
        start: u64,
        size: u64,
        frag: u32,
        frag_off: u32,
        nlink: u32,
        read_list: impl Fn(usize) -> Result<Vec<u8>, ReadError>,
    ) -> Result<InodeKind, ReadError> {
        let bs = u64::from(self.superblock().block_size);
        let fragment = (frag != NO_FRAGMENT).then_some((frag, frag_off));
        let count = if fragment.is_some() {
            size / bs
        } else {
            size.div_ceil(bs)
        };
        if count > MAX_BLOCKS {
            return corrupt("file larger than the reader's limit");
        }
        if let Some((i, _)) = fragment {
            if i as usize >= self.frags.len() {
                return corrupt("fragment index");
            }
        }
        let list = read_list(count as usize * 4)?;
        let mut blocks = Vec::with_capacity(count as usize);
        let mut at = start;
        for c in list.chunks_exact(4) {
            let field = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let on_disk = u64::from(field & !crate::format::DATA_UNCOMPRESSED);
            if on_disk > bs {
                return corrupt("data block size");
            }
            blocks.push((at, field));
            at = match at.checked_add(on_disk) {
                Some(a) if a <= self.superblock().bytes_used => a,
                _ => return corrupt("data block past the archive"),
            };
        }
        Ok(InodeKind::File {
            size,
            blocks,
            fragment,
            nlink,
        })
    }
}
