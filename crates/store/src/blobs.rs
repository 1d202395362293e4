//! Content-addressed blobs under `blobs/sha256/`: written through a temp file while
//! hashing, checked against the expected digest and size, fsynced, renamed into place;
//! read back through a reader that verifies the digest and size at EOF.
//!
//! Partial downloads ([`PartialBlob`]) live in `tmp/partial-sha256-<hex>`: a name fixed
//! by the digest, so a download killed midway is found again and resumed by the next
//! one. One process at a time appends to it (an flock on the file, the inode re-checked
//! after locking); it is committed like any blob, only when its digest and size verify.
//! gc keeps one while it is locked or was written in the last [`PARTIAL_STALE_AGE`].
//!
//! Never: parses blob content (images.rs does), deletes blobs (gc.rs does).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

use imago_oci::{Digest, Hasher};

use crate::atomic;
use crate::error::{IoCtx, Result, StoreError};
use crate::store::Store;

/// A stored blob: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

impl Store {
    /// Store the bytes of `reader` as a blob. With `expected`, the content must hash to
    /// that digest and have that size, else nothing is stored and the error says so.
    /// Idempotent: an existing blob with the same digest is kept (a nil error means the
    /// content is stored, not necessarily by this call). Hold a [`Store::pin`] until the
    /// blob is referenced from index.json if gc may run at the same time.
    pub fn put_blob(
        &self,
        reader: impl Read,
        expected: Option<(&Digest, u64)>,
    ) -> Result<BlobInfo> {
        if let Some((d, size)) = expected {
            if self.has_blob(d) {
                // Drain nothing: the caller may pass a stream it doesn't need any more.
                let actual = self.blob_size(d)?;
                if actual == size {
                    return Ok(BlobInfo {
                        digest: d.clone(),
                        size,
                    });
                }
            }
        }
        let tmp_dir = self.layout.tmp();
        let (file, tmp) = atomic::create_temp(&tmp_dir, "blob")?;
        let r = self
            .put_blob_inner(reader, expected, file, &tmp)
            .map_err(|e| match expected {
                Some((_, size)) => e.with_needed(size),
                None => e,
            });
        if r.is_err() {
            // The error that matters is `r`; a temp file left in tmp/ is gc's.
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    fn put_blob_inner(
        &self,
        mut reader: impl Read,
        expected: Option<(&Digest, u64)>,
        file: File,
        tmp: &std::path::Path,
    ) -> Result<BlobInfo> {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io("read blob source for", tmp, e)),
            };
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n]).ctx("write", tmp)?;
            if let Some((d, size)) = expected {
                if hasher.len() > size {
                    return Err(StoreError::BlobSize {
                        digest: d.clone(),
                        expected: size,
                        actual: hasher.len(),
                    });
                }
            }
        }
        let size = hasher.len();
        let digest = hasher.finish();
        if let Some((d, esize)) = expected {
            if size != esize {
                return Err(StoreError::BlobSize {
                    digest: d.clone(),
                    expected: esize,
                    actual: size,
                });
            }
            if &digest != d {
                return Err(StoreError::BlobCorrupt {
                    expected: d.clone(),
                    actual: digest,
                    size,
                });
            }
        }
        let file = w
            .into_inner()
            .map_err(|e| StoreError::io("write", tmp, e.into_error()))?;
        let to = self.layout.blob(&digest);
        if to.exists() {
            // Already stored under its digest, so ours is a copy; one left in tmp/ is gc's.
            let _ = std::fs::remove_file(tmp);
        } else {
            atomic::commit(file, tmp, &to)?;
        }
        Ok(BlobInfo { digest, size })
    }

    /// Store `bytes` as a blob.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<BlobInfo> {
        self.put_blob(bytes, None)
    }

    /// Where the blob lives (it may not exist). Readers that need no verification (e.g.
    /// sendfile to a registry after a fsck) may open it directly.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.layout.blob(d)
    }

    /// Whether the blob is present (not verified).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.layout.blob(d).is_file()
    }

    /// The size of a stored blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64> {
        let p = self.layout.blob(d);
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobMissing { digest: d.clone() })
            }
            Err(e) => Err(StoreError::io("stat", p, e)),
        }
    }

    /// Open a blob for reading; the reader fails at EOF (io error wrapping
    /// [`StoreError::BlobDamaged`]) when the content does not hash to `d`.
    /// A blob this store lacks is read from the first shared store that has it.
    pub fn open_blob(&self, d: &Digest) -> Result<BlobReader> {
        let own = self.layout.blob(d);
        let p = if own.is_file() {
            own
        } else {
            self.shared_blob(d).unwrap_or(own)
        };
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobMissing { digest: d.clone() })
            }
            Err(e) => return Err(StoreError::io("open", p, e)),
        };
        let size = f.metadata().ctx("stat", &p)?.len();
        Ok(BlobReader {
            inner: f,
            hasher: Hasher::new(),
            expected: d.clone(),
            size,
            done: false,
        })
    }

    /// Read a whole (small) blob, verified.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut r = self.open_blob(d)?;
        let mut v = Vec::with_capacity(usize::try_from(r.size()).unwrap_or(0).min(64 << 20));
        r.read_to_end(&mut v)
            .map_err(|e| unwrap_io(e, d, &self.layout.blob(d)))?;
        Ok(v)
    }

    /// Hash a stored blob fully; Ok when it matches its name.
    pub fn verify_blob(&self, d: &Digest) -> Result<u64> {
        let mut r = self.open_blob(d)?;
        io::copy(&mut r, &mut io::sink()).map_err(|e| unwrap_io(e, d, &self.layout.blob(d)))
    }
}

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
        let mut buf = vec![0u8; 1 << 20];
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
        let mut buf = vec![0u8; 1 << 20];
        let mut filled = 0;
        let result = loop {
            let n = match reader.read(&mut buf[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(StoreError::io("read blob source for", &self.path, e)),
            };
            let total = self.hasher.len() + (filled + n) as u64;
            if total > self.size {
                break Err(StoreError::BlobSize {
                    digest: self.digest.clone(),
                    expected: self.size,
                    actual: total,
                });
            }
            filled += n;
            if filled == buf.len() {
                self.write_out(&buf[..filled])?;
                filled = 0;
            }
        };
        self.write_out(&buf[..filled])?;
        result
    }

    fn write_out(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(bytes) {
            // File and hash may disagree now: start over rather than resume from that.
            let _ = self.restart(); // best effort; the write error is the one to report
                                    // Restarted: the whole blob must fit again.
            return Err(StoreError::io("write", &self.path, e).with_needed(self.size));
        }
        self.hasher.update(bytes);
        self.unsynced += bytes.len() as u64;
        if self.unsynced >= PARTIAL_SYNC_EVERY {
            self.file.sync_data().ctx("fsync", &self.path)?;
            self.unsynced = 0;
        }
        Ok(())
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

/// Turn an io error from a [`BlobReader`] back into the store error it carries.
pub(crate) fn unwrap_io(e: io::Error, d: &Digest, path: &std::path::Path) -> StoreError {
    if e.get_ref().is_some_and(|i| i.is::<StoreError>()) {
        if let Ok(inner) = e.into_inner().expect("checked").downcast::<StoreError>() {
            return *inner;
        }
        return StoreError::BlobMissing { digest: d.clone() };
    }
    StoreError::io("read", path, e)
}

/// A verified blob reader: hashes while reading, fails at EOF on a digest mismatch.
pub struct BlobReader {
    inner: File,
    hasher: Hasher,
    expected: Digest,
    size: u64,
    done: bool,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.expected)
            .field("size", &self.size)
            .finish()
    }
}

impl BlobReader {
    /// The blob's size on disk.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The digest it must match.
    pub fn digest(&self) -> &Digest {
        &self.expected
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
            let h = std::mem::take(&mut self.hasher);
            let size = h.len();
            let actual = h.finish();
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    StoreError::BlobDamaged {
                        digest: self.expected.clone(),
                        actual,
                        size,
                    },
                ));
            }
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        (d, s)
    }

    #[test]
    fn put_then_read_verifies() {
        let (_d, s) = store();
        let b = s.put_blob_bytes(b"hello").unwrap();
        assert_eq!(b.digest, Digest::of(b"hello"));
        assert_eq!(s.read_blob(&b.digest).unwrap(), b"hello");
        // Corrupt it on disk: reading fails, naming the digest.
        std::fs::write(s.blob_path(&b.digest), b"hellO").unwrap();
        let e = s.read_blob(&b.digest).unwrap_err();
        assert!(matches!(e, StoreError::BlobDamaged { .. }), "{e:?}");
        assert!(e.to_string().contains("iimage fsck"), "{e}");
    }

    #[test]
    fn expected_digest_and_size_are_enforced() {
        let (_d, s) = store();
        let good = Digest::of(b"abc");
        let e = s.put_blob(&b"abd"[..], Some((&good, 3))).unwrap_err();
        assert!(matches!(e, StoreError::BlobCorrupt { .. }));
        let e = s.put_blob(&b"abcd"[..], Some((&good, 3))).unwrap_err();
        assert!(matches!(e, StoreError::BlobSize { .. }));
        assert!(!s.has_blob(&good));
        s.put_blob(&b"abc"[..], Some((&good, 3))).unwrap();
        assert!(s.has_blob(&good));
        // No temp debris left behind.
        assert_eq!(std::fs::read_dir(s.layout().tmp()).unwrap().count(), 0);
    }

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

    #[test]
    fn missing_blob_is_named() {
        let (_d, s) = store();
        let d = Digest::of(b"nope");
        assert!(matches!(
            s.open_blob(&d),
            Err(StoreError::BlobMissing { .. })
        ));
    }
}
