//! Reading a squashfs (ours, or mksquashfs's with zstd or gzip) for the FUSE server:
//! the superblock, the id and fragment tables, metadata blocks, inodes, directory
//! listings and any byte range of a file, from any thread (`pread`, small caches).
//! Owns: every bound on what a hostile file may make us read or allocate — table
//! positions checked against the file, metadata blocks of at most 8 KiB, data blocks of
//! at most the block size, listings, block lists and symlink targets capped, names with
//! `/`, NUL, `.` or `..` dropped. A bad archive gives [`ReadError`], never a panic.
//! Never: follows symlinks (the kernel resolves them, inside the container's root).

mod data;
mod dir;
mod inode;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use dir::Entry;
pub use inode::{Inode, InodeKind};

use crate::codec::{Codec, CodecError};
use crate::format::{Cursor, Super, INVALID, META_SIZE, META_UNCOMPRESSED, SUPER_LEN};

/// Failures of reading an archive.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading the file failed.
    #[error("read `{path}`")]
    Io {
        /// The archive.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a squashfs 4.0.
    #[error("`{0}` is not a squashfs 4.0 file")]
    NotSquashfs(String),
    /// A structure is out of bounds or inconsistent.
    #[error("damaged squashfs: {0}")]
    Corrupt(&'static str),
    /// A block does not decompress.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The embedded config is damaged.
    #[error(transparent)]
    Trailer(#[from] crate::trailer::TrailerError),
}

/// Shorthand for a corruption error.
pub(crate) fn corrupt<T>(what: &'static str) -> Result<T, ReadError> {
    Err(ReadError::Corrupt(what))
}

/// A tiny bounded cache: cleared whole when full (reads of an image are local, and a
/// miss costs one decompression).
pub(crate) struct Cache<V> {
    map: Mutex<std::collections::HashMap<u64, Arc<V>>>,
    cap: usize,
}

impl<V> Cache<V> {
    pub(crate) fn new(cap: usize) -> Self {
        Cache {
            map: Mutex::new(std::collections::HashMap::new()),
            cap,
        }
    }

    pub(crate) fn get_or(
        &self,
        key: u64,
        make: impl FnOnce() -> Result<V, ReadError>,
    ) -> Result<Arc<V>, ReadError> {
        self.get_or_if(key, make, |_| true)
    }

    /// [`Cache::get_or`], keeping the value only when `keep` says so (large values are
    /// made again rather than held: a forged archive must not fill memory).
    pub(crate) fn get_or_if(
        &self,
        key: u64,
        make: impl FnOnce() -> Result<V, ReadError>,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<Arc<V>, ReadError> {
        if let Some(v) = self.lock().get(&key) {
            return Ok(v.clone());
        }
        let v = Arc::new(make()?);
        if !keep(&v) {
            return Ok(v);
        }
        let mut m = self.lock();
        if m.len() >= self.cap {
            m.clear();
        }
        m.insert(key, v.clone());
        Ok(v)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Arc<V>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An open archive.
pub struct Archive {
    file: File,
    path: String,
    len: u64,
    sb: Super,
    codec: Codec,
    ids: Vec<u32>,
    /// Fragment blocks: (start, size field).
    frags: Vec<(u64, u32)>,
    /// Where the directory table ends (the next table's start).
    dir_end: u64,
    meta: Cache<(Vec<u8>, u64)>,
    blocks: Cache<Vec<u8>>,
    inodes: Cache<Inode>,
    dirs: Cache<Vec<Entry>>,
    config: Option<Vec<u8>>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("path", &self.path)
            .field("super", &self.sb)
            .finish_non_exhaustive()
    }
}

impl Archive {
    /// Open and check `path`: superblock, tables, the embedded config.
    pub fn open(path: &Path) -> Result<Archive, ReadError> {
        let shown = path.display().to_string();
        let io = |source| ReadError::Io {
            path: shown.clone(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = [0u8; SUPER_LEN];
        if len < SUPER_LEN as u64 {
            return Err(ReadError::NotSquashfs(shown));
        }
        file.read_exact_at(&mut head, 0).map_err(io)?;
        let sb = Super::decode(&head).ok_or_else(|| ReadError::NotSquashfs(shown.clone()))?;
        let bs = sb.block_size;
        if !bs.is_power_of_two()
            || !(4096..=1 << 20).contains(&bs)
            || u32::from(sb.block_log) != bs.trailing_zeros()
        {
            return corrupt("block size");
        }
        let codec = Codec::of(sb.compression)?;
        if sb.bytes_used > len
            || sb.inode_table < SUPER_LEN as u64
            || sb.inode_table >= sb.dir_table
            || sb.dir_table > sb.id_table
            || sb.id_table >= sb.bytes_used
        {
            return corrupt("table positions");
        }
        let mut a = Archive {
            file,
            path: shown,
            len,
            sb,
            codec,
            ids: Vec::new(),
            frags: Vec::new(),
            dir_end: sb.id_table,
            meta: Cache::new(1024),
            blocks: Cache::new(64),
            inodes: Cache::new(8192),
            dirs: Cache::new(256),
            config: None,
        };
        a.ids = a
            .table(sb.id_table, usize::from(sb.id_count), 4)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if sb.fragment_count > 0 && sb.fragment_table != INVALID {
            let raw = a.table(sb.fragment_table, sb.fragment_count as usize, 16)?;
            a.frags = raw
                .chunks_exact(16)
                .map(|c| {
                    let c = Cursor::new(c);
                    (c.u64(0).unwrap_or(0), c.u32(8).unwrap_or(0))
                })
                .collect();
            a.dir_end = a.dir_end.min(sb.fragment_table);
        }
        for t in [sb.export_table, sb.xattr_table] {
            if t != INVALID && t > sb.dir_table {
                a.dir_end = a.dir_end.min(t);
            }
        }
        a.config = crate::trailer::read(&a.file, crate::trailer::offset(sb.bytes_used), len)?;
        Ok(a)
    }

    /// The superblock.
    pub fn superblock(&self) -> &Super {
        &self.sb
    }

    /// The embedded image config, if the archive has one.
    pub fn config(&self) -> Option<&[u8]> {
        self.config.as_deref()
    }

    /// The root directory's inode reference.
    pub fn root(&self) -> u64 {
        self.sb.root_inode
    }

    /// `buf.len()` bytes at `at`, which must lie within the archive.
    fn pread(&self, buf: &mut [u8], at: u64) -> Result<(), ReadError> {
        match at.checked_add(buf.len() as u64) {
            Some(end) if end <= self.len => {}
            _ => return corrupt("a read past the end of the file"),
        }
        self.file
            .read_exact_at(buf, at)
            .map_err(|source| ReadError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The metadata block at `at`: its bytes and where the next block starts.
    fn meta_block(&self, at: u64) -> Result<Arc<(Vec<u8>, u64)>, ReadError> {
        self.meta.get_or(at, || {
            let mut h = [0u8; 2];
            self.pread(&mut h, at)?;
            let h = u16::from_le_bytes(h);
            let size = usize::from(h & !META_UNCOMPRESSED);
            if size == 0 || size > META_SIZE {
                return corrupt("metadata block size");
            }
            let mut raw = vec![0u8; size];
            self.pread(&mut raw, at + 2)?;
            let data = if h & META_UNCOMPRESSED != 0 {
                raw
            } else {
                self.codec.decompress(&raw, META_SIZE)?
            };
            Ok((data, at + 2 + size as u64))
        })
    }

    /// `len` bytes of metadata starting at byte `offset` of the block at `block`, read
    /// across blocks that must all start before `end`.
    fn meta_read(
        &self,
        block: u64,
        offset: usize,
        len: usize,
        end: u64,
    ) -> Result<Vec<u8>, ReadError> {
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let (mut at, mut off) = (block, offset);
        while out.len() < len {
            if at >= end {
                return corrupt("metadata runs past its table");
            }
            let b = self.meta_block(at)?;
            let data = &b.0;
            if off > data.len() {
                return corrupt("metadata offset");
            }
            let take = (len - out.len()).min(data.len() - off);
            out.extend_from_slice(&data[off..off + take]);
            if out.len() < len && b.1 <= at {
                return corrupt("metadata chain");
            }
            (at, off) = (b.1, 0);
        }
        Ok(out)
    }

    /// A lookup table (ids, fragments): `count` entries of `size` bytes in metadata
    /// blocks whose positions are listed (u64 each) at `index`.
    fn table(&self, index: u64, count: usize, size: usize) -> Result<Vec<u8>, ReadError> {
        let total = count * size;
        // Each entry takes bytes of the file (metadata compresses, but never below a
        // few bytes a block): a count beyond the file is forged.
        if total as u64 > self.len {
            return corrupt("lookup table larger than the file");
        }
        let blocks = total.div_ceil(META_SIZE);
        let mut idx = vec![0u8; blocks * 8];
        self.pread(&mut idx, index)?;
        let mut out = Vec::with_capacity(total);
        for (i, p) in idx.chunks_exact(8).enumerate() {
            let at = u64::from_le_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
            let want = (total - i * META_SIZE).min(META_SIZE);
            let b = self.meta_block(at)?;
            if b.0.len() < want {
                return corrupt("short lookup table block");
            }
            out.extend_from_slice(&b.0[..want]);
        }
        Ok(out)
    }

    /// The uid or gid at index `i` of the id table.
    pub(crate) fn id(&self, i: u16) -> Result<u32, ReadError> {
        match self.ids.get(usize::from(i)) {
            Some(v) => Ok(*v),
            None => corrupt("id index"),
        }
    }
}
