//! [`ImageStore`] for imago's own store (`imago_store::Store`): what the bins use.
//! Names go through the store's normalisation (docker's short form); pulled manifests
//! are recorded with `put_manifest` and named with `tag`; the blob-source and
//! recompression caches live in `ROOT/imago/registry/`.
//!
//! Never: bypasses the store's atomic writes or locks.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use imago_oci::Digest;
use imago_store::{Store, StoreError};

use crate::layout::{Descriptor, ImageStore, LayoutError};
use crate::manifest::OCI_INDEX;

fn backend(e: StoreError) -> LayoutError {
    match e {
        StoreError::BlobCorrupt {
            expected,
            actual,
            size,
        } => LayoutError::DigestMismatch {
            expected,
            got: actual,
            size,
        },
        StoreError::BlobSize {
            digest,
            expected,
            actual,
        } => LayoutError::SizeMismatch {
            digest,
            expected,
            got: actual,
        },
        other => LayoutError::Backend(Box::new(other)),
    }
}

/// Counts bytes for progress and remembers whether a read error came from the source
/// (a dropped connection: worth a retry) rather than from the store's disk.
struct Watched<'a> {
    inner: &'a mut dyn Read,
    n: u64,
    progress: &'a dyn Fn(u64),
    failed: &'a AtomicBool,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(k) => {
                self.n += k as u64;
                (self.progress)(self.n);
                Ok(k)
            }
            Err(e) => {
                self.failed.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

impl ImageStore for Store {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, LayoutError> {
        if !self.has_blob(digest) {
            return Ok(None);
        }
        Store::blob_size(self, digest).map(Some).map_err(backend)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        Store::blob_path(self, digest)
    }

    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        Store::read_blob(self, digest).map_err(backend)
    }

    fn put_blob(
        &self,
        expected: &Digest,
        size: Option<u64>,
        src: &mut dyn Read,
        progress: &dyn Fn(u64),
    ) -> Result<(), LayoutError> {
        let failed = AtomicBool::new(false);
        let reader = Watched {
            inner: src,
            n: 0,
            progress,
            failed: &failed,
        };
        let want = size.map(|s| (expected, s));
        match Store::put_blob(self, reader, want) {
            Ok(info) if &info.digest == expected => Ok(()),
            Ok(info) => Err(LayoutError::DigestMismatch {
                expected: expected.clone(),
                got: info.digest,
                size: info.size,
            }),
            Err(StoreError::Io { source, .. }) if failed.load(Ordering::Relaxed) => {
                Err(LayoutError::Source {
                    digest: expected.clone(),
                    source,
                })
            }
            Err(e) => Err(backend(e)),
        }
    }

    fn add_blob(&self, src: &mut dyn Read) -> Result<(Digest, u64), LayoutError> {
        Store::put_blob(self, src, None)
            .map(|i| (i.digest, i.size))
            .map_err(backend)
    }

    fn resolve(&self, name: &str) -> Result<Option<Descriptor>, LayoutError> {
        let image = match Store::resolve(self, name) {
            Ok(i) => i,
            Err(StoreError::ImageNotFound { .. }) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        if image.index_digest != image.manifest_digest {
            let bytes = Store::read_blob(self, &image.index_digest).map_err(backend)?;
            let mt = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
                .unwrap_or_else(|| OCI_INDEX.to_owned());
            return Ok(Some(Descriptor {
                media_type: mt,
                digest: image.index_digest,
                size: bytes.len() as u64,
            }));
        }
        Ok(Some(Descriptor {
            media_type: image.manifest_media_type.clone(),
            digest: image.manifest_digest.clone(),
            size: image.manifest_bytes.len() as u64,
        }))
    }

    fn tag(&self, name: &str, desc: &Descriptor) -> Result<(), LayoutError> {
        let bytes = Store::read_blob(self, &desc.digest).map_err(backend)?;
        let digest = self
            .put_manifest(&bytes, &desc.media_type)
            .map_err(backend)?;
        Store::tag(self, name, &digest).map(|_| ()).map_err(backend)
    }

    fn state_dir(&self) -> Option<PathBuf> {
        let d = self.layout().imago().join("registry");
        std::fs::create_dir_all(&d).ok().map(|()| d)
    }
}
