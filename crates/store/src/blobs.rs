//! Content-addressed blobs under `blobs/sha256/`: written through a temp file while
//! hashing (hashed_copy.rs), checked against the expected digest and size, fsynced,
//! renamed into place; read back through a reader that verifies the digest and size at
//! EOF. Partial (resumable) downloads are partial.rs's.
//!
//! Never: parses blob content (images.rs does), deletes blobs (gc.rs does).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use imago_oci::{Digest, Hasher};

use crate::atomic;
use crate::error::{IoCtx, Result, StoreError};
use crate::hashed_copy::{copy_hashed, Stop};
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
        mut file: File,
        tmp: &std::path::Path,
    ) -> Result<BlobInfo> {
        let mut hasher = Hasher::new();
        let limit = expected.map_or(u64::MAX, |(_, size)| size);
        match copy_hashed(&mut reader, &mut hasher, limit, &mut |b: &[u8]| {
            file.write_all(b)
        }) {
            Ok(()) => {}
            Err(Stop::Read(e)) => return Err(StoreError::io("read blob source for", tmp, e)),
            Err(Stop::Sink(e)) => return Err(StoreError::io("write", tmp, e)),
            Err(Stop::TooLong(actual)) => {
                let (digest, expected) = match expected {
                    Some((d, size)) => (d.clone(), size),
                    // Without an expected size the limit is u64::MAX, which no stream
                    // reaches; named all the same rather than unwrapped.
                    None => (hasher.finish(), u64::MAX),
                };
                return Err(StoreError::BlobSize {
                    digest,
                    expected,
                    actual,
                });
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
pub(crate) mod tests {
    use super::*;

    /// An empty store in a temp dir (also partial.rs's tests').
    pub(crate) fn store() -> (tempfile::TempDir, Store) {
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
    fn missing_blob_is_named() {
        let (_d, s) = store();
        let d = Digest::of(b"nope");
        assert!(matches!(
            s.open_blob(&d),
            Err(StoreError::BlobMissing { .. })
        ));
    }
}
