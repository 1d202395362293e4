//! Partial downloads: `tmp/partial-sha256-<hex>`, a name fixed by the digest, so a
//! download killed midway is found again and resumed by the next one. One process at a
//! time appends to it (an flock on the file, the inode re-checked after locking); it is
//! committed like any blob, only when its digest and size verify. gc keeps one while it
//! is locked or was written in the last [`PARTIAL_STALE_AGE`].
//!
//! Never: downloads (the registry crate hands it a reader), deletes stale ones (gc.rs,
//! after asking [`Store::partial_state`]), or stores a blob that does not verify.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

use imago_oci::{Digest, Hasher};

use crate::atomic;
use crate::blobs::BlobInfo;
use crate::error::{IoCtx, Result, StoreError};
use crate::hashed_copy::{copy_hashed, Stop, BUF};
use crate::store::Store;

/// The name prefix of partial downloads in the store's tmp dir.
pub const PARTIAL_PREFIX: &str = "partial-sha256-";

/// A partial download not written to for this long is stale: gc removes it (and fsck
/// counts it as debris). Younger ones are kept so a rerun can resume them.
pub const PARTIAL_STALE_AGE: Duration = Duration::from_secs(24 * 3600);

/// Appended bytes between two `fdatasync`s of a partial download: a crash of the
/// machine loses at most this much (a torn tail fails the digest, then restarts).
const PARTIAL_SYNC_EVERY: u64 = 32 << 20;

/// A blob being downloaded into `tmp/partial-sha256-<hex>`, locked by this process.
/// The bytes in the file and the running hash always agree, so it can be appended to
/// across retries and resumed by a later process (which hashes the file again).
pub struct PartialBlob {
    file: File,
    path: PathBuf,
    digest: Digest,
    size: u64,
    hasher: Hasher,
    unsynced: u64,
}

impl Store {
    /// Where the partial download of `d` lives.
    pub fn partial_blob_path(&self, d: &Digest) -> PathBuf {
        self.layout
            .tmp()
            .join(format!("{PARTIAL_PREFIX}{}", d.hex()))
    }

    /// Open (or start) the partial download of `d`, `size` bytes in all, and hash the
    /// bytes it already holds (a file longer than `size` is emptied). `Ok(None)` when
    /// another process is downloading it: the caller uses a temp file of its own.
    pub fn open_partial_blob(&self, d: &Digest, size: u64) -> Result<Option<PartialBlob>> {
        let path = self.partial_blob_path(d);
        // The holder may commit (rename) or discard (remove) the file between our open
        // and our lock: then the path names another inode, or none, and we open again.
        let file = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .ctx("open partial download", &path)?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => {
                    return Err(StoreError::Lock {
                        path,
                        source: e.into(),
                    })
                }
            }
            let held = file.metadata().ctx("stat", &path)?;
            match std::fs::metadata(&path) {
                Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => break file,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("stat", path, e)),
            }
        };
        let mut p = PartialBlob {
            file,
            path,
            digest: d.clone(),
            size,
            hasher: Hasher::new(),
            unsynced: 0,
        };
        let len = p.file.metadata().ctx("stat", &p.path)?.len();
        if len > size {
            p.restart()?;
            return Ok(Some(p));
        }
        let mut buf = vec![0u8; BUF];
        loop {
            let n = match p.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io("read", &p.path, e)),
            };
            p.hasher.update(&buf[..n]);
        }
        // Appends go after what was hashed, whatever the read position says.
        p.file
            .seek(SeekFrom::Start(p.hasher.len()))
            .ctx("seek", &p.path)?;
        Ok(Some(p))
    }

    /// What gc makes of the tmp entry `name` at `path`: not a partial download, one to
    /// keep (a download holds it, or it was written within [`PARTIAL_STALE_AGE`]), or a
    /// stale one, returned locked so nobody resumes it while gc removes it.
    pub(crate) fn partial_state(&self, name: &str, path: &Path) -> PartialState {
        if !name.starts_with(PARTIAL_PREFIX) {
            return PartialState::NotPartial;
        }
        let Ok(file) = File::open(path) else {
            // Gone already (committed or discarded): nothing to keep.
            return PartialState::Keep;
        };
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            return PartialState::Keep;
        }
        let young = file
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < PARTIAL_STALE_AGE);
        if young {
            PartialState::Keep
        } else {
            PartialState::Stale(file)
        }
    }
}

/// See [`Store::partial_state`].
#[derive(Debug)]
pub(crate) enum PartialState {
    NotPartial,
    Keep,
    /// Stale; the file is held locked until dropped.
    Stale(File),
}

impl std::fmt::Debug for PartialBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartialBlob")
            .field("path", &self.path)
            .field("held", &self.hasher.len())
            .field("size", &self.size)
            .finish()
    }
}

impl PartialBlob {
    /// Bytes held (and hashed) so far: a resumed download asks for the rest from here.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// True when nothing is held yet.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Forget the bytes held: the download starts again from byte 0.
    pub fn restart(&mut self) -> Result<()> {
        self.hasher = Hasher::new();
        self.unsynced = 0;
        self.file.set_len(0).ctx("truncate", &self.path)?;
        self.file.seek(SeekFrom::Start(0)).ctx("seek", &self.path)?;
        Ok(())
    }

    /// Append `reader` until its EOF. What arrived before a read error is kept (a
    /// retry resumes after it); more bytes than the blob's size are refused.
    pub fn append(&mut self, mut reader: impl Read) -> Result<()> {
        let (file, unsynced) = (&mut self.file, &mut self.unsynced);
        let mut sink = |bytes: &[u8]| -> std::result::Result<(), (&'static str, io::Error)> {
            file.write_all(bytes).map_err(|e| ("write", e))?;
            *unsynced += bytes.len() as u64;
            if *unsynced >= PARTIAL_SYNC_EVERY {
                file.sync_data().map_err(|e| ("fsync", e))?;
                *unsynced = 0;
            }
            Ok(())
        };
        match copy_hashed(&mut reader, &mut self.hasher, self.size, &mut sink) {
            Ok(()) => Ok(()),
            Err(Stop::Read(e)) => Err(StoreError::io("read blob source for", &self.path, e)),
            Err(Stop::TooLong(actual)) => Err(StoreError::BlobSize {
                digest: self.digest.clone(),
                expected: self.size,
                actual,
            }),
            Err(Stop::Sink((op, e))) => {
                // File and hash may disagree now (a failed fsync may have lost pages
                // too): start over rather than resume from that. Best effort; the
                // write error is the one to report.
                let _ = self.restart();
                // Restarted: the whole blob must fit again.
                Err(StoreError::io(op, &self.path, e).with_needed(self.size))
            }
        }
    }

    /// Verify size and digest and move the file into `blobs/`. Too few bytes: an error,
    /// and the file is kept to resume; the wrong digest: the file is removed.
    pub fn commit(self, store: &Store) -> Result<BlobInfo> {
        let size = self.hasher.len();
        if size != self.size {
            return Err(StoreError::BlobSize {
                digest: self.digest.clone(),
                expected: self.size,
                actual: size,
            });
        }
        let actual = self.hasher.clone().finish();
        if actual != self.digest {
            let err = StoreError::BlobCorrupt {
                expected: self.digest.clone(),
                actual,
                size,
            };
            self.discard()?;
            return Err(err);
        }
        let digest = self.digest.clone();
        let to = store.layout.blob(&digest);
        if to.exists() {
            self.discard()?;
        } else {
            // Renamed while still locked, so no other process can take the lock on the
            // inode that is now the stored blob and still find it at the partial path.
            self.file.sync_all().ctx("fsync", &self.path)?;
            std::fs::rename(&self.path, &to).ctx("rename into place", &to)?;
            if let Some(dir) = to.parent() {
                atomic::sync_dir(dir)?;
            }
        }
        Ok(BlobInfo { digest, size })
    }

    /// Remove the partial file (while still holding its lock).
    pub fn discard(self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", &self.path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::tests::store;

    #[test]
    fn a_partial_download_resumes_across_opens_and_verifies_on_commit() {
        let (_d, s) = store();
        let content = b"0123456789abcdef".repeat(1000);
        let d = Digest::of(&content);
        let size = content.len() as u64;
        let mut p = s.open_partial_blob(&d, size).unwrap().unwrap();
        // Held: a second opener gets None and uses a temp file of its own.
        assert!(s.open_partial_blob(&d, size).unwrap().is_none());
        // A cut stream keeps what arrived.
        let e = p.append((&content[..7000]).chain(Dropped)).unwrap_err();
        assert!(matches!(e, StoreError::Io { .. }), "{e:?}");
        assert_eq!(p.len(), 7000);
        drop(p);
        // Another "process": the bytes are hashed again and the rest appended.
        let mut p = s.open_partial_blob(&d, size).unwrap().unwrap();
        assert_eq!(p.len(), 7000);
        p.append(&content[7000..]).unwrap();
        let info = p.commit(&s).unwrap();
        assert_eq!(info.size, size);
        assert_eq!(s.read_blob(&d).unwrap(), content);
        assert!(!s.partial_blob_path(&d).exists());

        // Too many bytes are refused; a flipped byte fails the digest and is discarded.
        let other = b"other content".to_vec();
        let od = Digest::of(&other);
        let mut p = s.open_partial_blob(&od, 13).unwrap().unwrap();
        let e = p.append(&b"other content!"[..]).unwrap_err();
        assert!(matches!(e, StoreError::BlobSize { .. }), "{e:?}");
        p.restart().unwrap();
        p.append(&b"other cOntent"[..]).unwrap();
        let e = p.commit(&s).unwrap_err();
        assert!(matches!(e, StoreError::BlobCorrupt { .. }), "{e:?}");
        assert!(!s.has_blob(&od) && !s.partial_blob_path(&od).exists());

        // A file longer than the blob is emptied on open.
        std::fs::write(s.partial_blob_path(&od), vec![1u8; 40]).unwrap();
        let p = s.open_partial_blob(&od, 13).unwrap().unwrap();
        assert!(p.is_empty());
    }

    #[test]
    fn gc_keeps_young_or_held_partials_and_reclaims_stale_ones() {
        let (_d, s) = store();
        let d = Digest::of(b"x");
        let p = s.open_partial_blob(&d, 1).unwrap().unwrap();
        let path = s.partial_blob_path(&d);
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let old = std::time::SystemTime::now() - PARTIAL_STALE_AGE - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(matches!(s.partial_state(&name, &path), PartialState::Keep));
        drop(p);
        assert!(matches!(
            s.partial_state(&name, &path),
            PartialState::Stale(_)
        ));
        let r = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(r.temp_removed, 1);
        assert!(!path.exists());
        // A young one stays, and is not debris to fsck.
        drop(s.open_partial_blob(&d, 1).unwrap().unwrap());
        assert!(matches!(s.partial_state(&name, &path), PartialState::Keep));
        assert_eq!(s.gc(&crate::GcOptions::default()).unwrap().temp_removed, 0);
        assert!(path.exists());
        assert!(matches!(
            s.partial_state("1.abc-blob", &path),
            PartialState::NotPartial
        ));
    }

    /// A source that fails like a dropped connection.
    struct Dropped;

    impl Read for Dropped {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::ConnectionReset))
        }
    }
}
