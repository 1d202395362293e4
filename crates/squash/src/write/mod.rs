//! Writing a `.sqsh`: a flattened root given as a tar stream (whiteouts already applied,
//! as `imago_store`'s export writes it) → a squashfs 4.0, zstd, no fragments, no
//! xattrs, 128 KiB blocks, with the image config as a trailer (trailer.rs).
//! Owns: the file's layout (superblock, data, inode, directory and id tables), the
//! atomic write (a temp file beside the target, fsync, rename; removed on any failure).
//! Never: unpacks layers or reads the store (the caller streams the tar).
//!
//! Why not the `backhand` crate: it needs Rust 1.90 (the workspace builds with 1.85 and a
//! static musl release), brings deku's proc macros and rayon to a 2-core CI build, builds
//! the whole tree in memory to write, and its reader loads every inode up front and
//! reads files only from their start, where a FUSE server needs any block of any file
//! at once, bounded. squashfs 4.0 without fragments and xattrs is small enough to own.

mod pipe;
mod tables;
mod tree;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::codec::{CodecError, Compressor};
use crate::format::{Super, COMP_ZSTD, FLAG_NO_FRAGMENTS, FLAG_NO_XATTRS, INVALID, SUPER_LEN};

/// Failures of writing a `.sqsh` (the target is then left as it was).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The tar stream is broken.
    #[error("read the image's files")]
    Tar(#[source] std::io::Error),
    /// A path climbs out of the root, or is too long.
    #[error("unsafe or too long path `{0}` in the image")]
    BadPath(String),
    /// A link has no target, or a hardlink's target is missing or a directory.
    #[error("bad link `{0}` in the image")]
    BadLink(String),
    /// An owner does not fit 32 bits.
    #[error("owner of `{0}` does not fit 32 bits")]
    BadOwner(String),
    /// More than 65535 distinct uids and gids.
    #[error("more than 65535 distinct owners")]
    TooManyIds,
    /// Over the entry limit.
    #[error("more than {0} entries")]
    TooMany(u64),
    /// Over the byte limit.
    #[error("more than {0} bytes of file data")]
    TooLarge(u64),
    /// Compressing failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Creating, writing or renaming the file failed.
    #[error("write the squashfs")]
    Write(#[source] std::io::Error),
    /// Whoever produced the tar stream failed.
    #[error("produce the image's files")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The producing thread panicked.
    #[error("the thread producing the image's files panicked")]
    SourcePanicked,
    /// The target's directory cannot be used.
    #[error("create a temporary file beside `{0}`")]
    Temp(PathBuf, #[source] std::io::Error),
}

/// How to write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Data block size: a power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// The most file data accepted (uncompressed).
    pub max_bytes: u64,
    /// The most tar entries accepted.
    pub max_entries: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            block_size: 128 << 10,
            max_bytes: 1 << 40,
            max_entries: 10_000_000,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Inodes in the archive.
    pub inodes: u32,
    /// Bytes of the file.
    pub bytes: u64,
}

/// A temp file removed on drop unless committed.
struct Temp {
    path: PathBuf,
    keep: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort on a failure path: the error being returned is what matters.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Write the root in `tar` with `config` (the image config JSON) to `to`, atomically.
pub fn write_tar(
    tar: impl Read,
    config: &[u8],
    to: &Path,
    opts: &WriteOptions,
) -> Result<Written, WriteError> {
    write_atomic(to, |f| write_into(f, tar, config, opts))
}

/// The error a tar producer may fail with.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// [`write_tar`] with the tar stream written by `produce`, on a thread of its own while
/// this one squashes: nothing is staged on disk. The file is committed only when both
/// sides succeeded.
pub fn write_from<F>(
    produce: F,
    config: &[u8],
    to: &Path,
    opts: &WriteOptions,
) -> Result<Written, WriteError>
where
    F: FnOnce(&mut dyn Write) -> Result<(), SourceError> + Send,
{
    write_atomic(to, |f| {
        let (w, mut r) = pipe::pipe();
        std::thread::scope(|s| {
            let producer = s.spawn(move || {
                let mut w = w;
                produce(&mut w)?;
                w.flush().map_err(|e| Box::new(e) as SourceError)
            });
            let wrote = write_into(f, &mut r, config, opts);
            // Read what the tar reader left (end blocks, padding) so the producer is
            // never stopped by a closed pipe after a good archive; on a failure, close
            // the pipe so it stops.
            if wrote.is_ok() {
                // An error here is the producer's too and comes back through its join.
                let _ = std::io::copy(&mut r, &mut std::io::sink());
            }
            drop(r);
            let produced = producer.join();
            // The first failure is the one to report: a producer that failed leaves a
            // cut tar behind (the writer's error is then a consequence), a writer that
            // failed leaves the producer a closed pipe.
            match (wrote, produced) {
                (_, Err(_)) => Err(WriteError::SourcePanicked),
                (Err(w), Ok(Err(p))) if broken_pipe(p.as_ref()) => Err(w),
                (_, Ok(Err(p))) => Err(WriteError::Source(p)),
                (Err(w), Ok(Ok(()))) => Err(w),
                (Ok(w), Ok(Ok(()))) => Ok(w),
            }
        })
    })
}

/// Whether `e` or one of its sources is a closed pipe.
fn broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        at = e.source();
    }
    false
}

/// Create a temp file beside `to`, let `fill` write it, then fsync and rename it over
/// `to`; on any failure the temp file is removed and `to` is untouched.
fn write_atomic(
    to: &Path,
    fill: impl FnOnce(&File) -> Result<Written, WriteError>,
) -> Result<Written, WriteError> {
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.unwrap_or_else(|| "image.sqsh".into()),
        std::process::id()
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| WriteError::Temp(to.to_path_buf(), e))?;
    let mut guard = Temp {
        path: tmp.clone(),
        keep: false,
    };
    let written = fill(&file)?;
    file.sync_all().map_err(WriteError::Write)?;
    drop(file);
    std::fs::rename(&tmp, to).map_err(WriteError::Write)?;
    guard.keep = true;
    // The rename is done; a failed directory sync only weakens durability on a crash.
    let _ = File::open(&dir).and_then(|d| d.sync_all());
    Ok(written)
}

fn write_into(
    file: &File,
    tar: impl Read,
    config: &[u8],
    opts: &WriteOptions,
) -> Result<Written, WriteError> {
    let bs = opts.block_size;
    if !bs.is_power_of_two() || !(4096..=1 << 20).contains(&bs) {
        return Err(WriteError::Write(std::io::Error::other(
            "block size must be a power of two from 4 KiB to 1 MiB",
        )));
    }
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&[0u8; SUPER_LEN])
        .map_err(WriteError::Write)?;
    let mut pos = SUPER_LEN as u64;
    let tree = tree::Tree::build(tar, &mut out, &mut pos, opts)?;
    let mut comp = Compressor::new()?;
    let t = tables::emit(&tree, &mut comp)?;
    let inode_table = pos;
    let dir_table = inode_table + t.inodes.len() as u64;
    let id_blocks_at = dir_table + t.dirs.len() as u64;
    let mut ids = tables::MetaWriter::default();
    for id in &t.ids {
        ids.write(&mut comp, &id.to_le_bytes())?;
    }
    let (id_blocks, starts) = ids.finish_blocks(&mut comp)?;
    let id_table = id_blocks_at + id_blocks.len() as u64;
    let mut index = Vec::new();
    for s in starts {
        index.extend_from_slice(&(id_blocks_at + s).to_le_bytes());
    }
    let bytes_used = id_table + index.len() as u64;
    for part in [&t.inodes, &t.dirs, &id_blocks, &index] {
        out.write_all(part).map_err(WriteError::Write)?;
    }
    let trailer_at = crate::trailer::offset(bytes_used);
    out.write_all(&vec![0u8; (trailer_at - bytes_used) as usize])
        .map_err(WriteError::Write)?;
    let trailer = crate::trailer::encode(config);
    out.write_all(&trailer).map_err(WriteError::Write)?;
    let sb = Super {
        inode_count: t.inode_count,
        mtime: tree.newest,
        block_size: bs,
        fragment_count: 0,
        compression: COMP_ZSTD,
        block_log: bs.trailing_zeros() as u16,
        flags: FLAG_NO_FRAGMENTS | FLAG_NO_XATTRS,
        id_count: u16::try_from(t.ids.len()).map_err(|_| WriteError::TooManyIds)?,
        root_inode: t.root,
        bytes_used,
        id_table,
        xattr_table: INVALID,
        inode_table,
        dir_table,
        // Where a fragment table would start, as mksquashfs writes it without fragments.
        fragment_table: id_blocks_at,
        export_table: INVALID,
    };
    out.seek(SeekFrom::Start(0)).map_err(WriteError::Write)?;
    out.write_all(&sb.encode()).map_err(WriteError::Write)?;
    out.flush().map_err(WriteError::Write)?;
    Ok(Written {
        inodes: t.inode_count,
        bytes: trailer_at + trailer.len() as u64,
    })
}
