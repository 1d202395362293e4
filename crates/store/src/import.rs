//! Bringing content in: a layer tar stored and unpacked in one pass
//! ([`Store::import_layer`]), and the archive traits of imago_oci
//! ([`imago_oci::archive::BlobSource`]/[`imago_oci::archive::BlobSink`]) for
//! `iimage save`/`load`.
//! Never: parses archives or tar entries itself (imago_oci does).

use std::io::{self, BufWriter, Read, Write};

use imago_oci::layer::remove_tree;
use imago_oci::{BlobRef, Digest, Hasher, HashingReader};

use crate::atomic;
use crate::error::{IoCtx, Result, StoreError};
use crate::images::OCI_LAYER_GZIP;
use crate::layers::{LayerMeta, OwnerMode, UnpackLimits};
use crate::store::Store;

/// A reader that copies everything it reads into a writer.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What [`Store::import_layer`] made.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImportedLayer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
    pub chain_id: Digest,
    /// The newest mtime (seconds) of a non-directory in the layer (0 when none): a
    /// deterministic `created` for imports.
    pub newest_mtime: i64,
}

impl ImportedLayer {
    pub fn layer_ref(&self) -> BlobRef {
        BlobRef {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
        }
    }
}

fn newest_mtime(dir: &std::path::Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    let mut newest = 0i64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(m) = e.path().symlink_metadata() {
                // Directories the tar does not list get the current time from the
                // unpacker: only non-directories count, so the result is deterministic.
                if m.is_dir() {
                    todo.push(e.path());
                } else {
                    newest = newest.max(m.mtime());
                }
            }
        }
    }
    newest
}

impl Store {
    /// Store an UNCOMPRESSED layer tar as a gzip (fast) blob and unpack it, in one pass
    /// over `tar`: the unpacker's safety rules decide whether it is accepted (a refused
    /// entry fails the import, nothing is stored). `parent` is the chain id of the layer
    /// below (None for a bottom layer). Rootless with Real, call inside the namespace.
    pub fn import_layer(
        &self,
        tar: impl Read,
        parent: Option<&Digest>,
        mode: OwnerMode,
        limits: &UnpackLimits,
    ) -> Result<ImportedLayer> {
        let (file, blob_tmp) = atomic::create_temp(&self.layout.tmp(), "blob")?;
        let dir_tmp = self.temp_path("layer");
        let diff = dir_tmp.join("diff");
        let r = (|| {
            std::fs::create_dir_all(&diff).ctx("create directory", &diff)?;
            let hw = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                hasher: Hasher::new(),
            };
            let enc = imago_oci::Compressor::new(
                hw,
                imago_oci::Compression::Gzip,
                imago_oci::Level::Fast,
            )
            .map_err(|e| StoreError::io("start compressing", &blob_tmp, e))?;
            let mut tee = Tee {
                inner: HashingReader::new(tar),
                copy: enc,
            };
            let stats = imago_oci::layer::unpack(&mut tee, &diff, &limits.unpack_options(mode))
                .map_err(|e| StoreError::Other {
                    what: format!("import layer: {}", chain(&e)),
                })?;
            io::copy(&mut tee, &mut io::sink())
                .map_err(|e| StoreError::io("read layer tar into", &blob_tmp, e))?;
            let Tee { inner, copy } = tee;
            let (diff_id, _) = inner.finish();
            let hw = copy
                .finish()
                .map_err(|e| StoreError::io("finish compressing", &blob_tmp, e))?;
            let size = hw.hasher.len();
            let digest = hw.hasher.finish();
            crate::layers::warn_skipped_devices(&stats, &digest);
            let file = hw
                .inner
                .into_inner()
                .map_err(|e| StoreError::io("write", &blob_tmp, e.into_error()))?;
            let to = self.layout.blob(&digest);
            if to.exists() {
                // Already stored under its digest; a copy left in tmp/ is gc's.
                let _ = std::fs::remove_file(&blob_tmp);
            } else {
                atomic::commit(file, &blob_tmp, &to)?;
            }
            let chain_id = match parent {
                None => diff_id.clone(),
                Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
            };
            let newest = newest_mtime(&diff);
            if self.layer_dir(&chain_id).is_none() {
                self.ensure_mode_pub(mode)?;
                let meta = LayerMeta {
                    chain_id: chain_id.clone(),
                    diff_id: diff_id.clone(),
                    digest: digest.clone(),
                    mode,
                };
                let bytes = serde_json::to_vec(&meta).map_err(|e| StoreError::Other {
                    what: e.to_string(),
                })?;
                atomic::write_file(&self.layout.tmp(), &dir_tmp.join("layer.json"), &bytes)?;
                atomic::sync_dir(&dir_tmp)?;
                let dest = self.layout.layer(&chain_id);
                if std::fs::rename(&dir_tmp, &dest).is_ok() {
                    atomic::sync_dir(&self.layout.layers())?;
                }
            }
            Ok(ImportedLayer {
                digest,
                size,
                media_type: OCI_LAYER_GZIP.into(),
                diff_id,
                chain_id,
                newest_mtime: newest,
            })
        })();
        // Both are gone on success (committed or renamed); leftovers in tmp/ are gc's.
        let _ = std::fs::remove_file(&blob_tmp);
        let _ = remove_tree(&dir_tmp);
        r
    }
}

impl Store {
    /// Store an UNCOMPRESSED layer tar as a gzip (fast level) blob, in one pass: returns
    /// the blob (compressed digest and size, media type `…tar+gzip`) and the diff id (the
    /// digest of the uncompressed tar). Hold a [`Store::pin`] until the image is recorded.
    pub fn put_layer_tar(&self, tar: impl Read) -> Result<(BlobRef, Digest)> {
        let (file, tmp) = atomic::create_temp(&self.layout.tmp(), "layer")?;
        let r = (|| {
            let hw = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                hasher: Hasher::new(),
            };
            let mut enc = imago_oci::Compressor::new(
                hw,
                imago_oci::Compression::Gzip,
                imago_oci::Level::Fast,
            )
            .map_err(|e| StoreError::io("start compressing", &tmp, e))?;
            let mut hr = HashingReader::new(tar);
            io::copy(&mut hr, &mut enc)
                .map_err(|e| StoreError::io("compress layer into", &tmp, e))?;
            let hw = enc
                .finish()
                .map_err(|e| StoreError::io("finish compressing", &tmp, e))?;
            let (diff_id, _) = hr.finish();
            let size = hw.hasher.len();
            let digest = hw.hasher.finish();
            let file = hw
                .inner
                .into_inner()
                .map_err(|e| StoreError::io("write", &tmp, e.into_error()))?;
            let to = self.layout.blob(&digest);
            if to.exists() {
                // Already stored under its digest; a copy left in tmp/ is gc's.
                let _ = std::fs::remove_file(&tmp);
            } else {
                atomic::commit(file, &tmp, &to)?;
            }
            Ok((
                BlobRef {
                    media_type: OCI_LAYER_GZIP.into(),
                    digest,
                    size,
                },
                diff_id,
            ))
        })();
        if r.is_err() {
            // The error that matters is `r`; a temp file left in tmp/ is gc's.
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl imago_oci::archive::BlobSource for Store {
    fn open_blob(&self, digest: &Digest) -> io::Result<(Box<dyn Read + '_>, u64)> {
        match Store::open_blob(self, digest) {
            Ok(r) => {
                let size = r.size();
                Ok((Box::new(r), size))
            }
            Err(StoreError::BlobMissing { digest }) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {digest} is missing from the store"),
            )),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

impl imago_oci::archive::BlobSink for Store {
    fn put_blob(
        &mut self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> io::Result<(Digest, u64)> {
        let res = match expected {
            Some(d) if self.has_blob(d) => {
                // Present already: consume the stream (the archive reader expects that)
                // and keep ours, which put_blob verified when it was written.
                io::copy(r, &mut io::sink())?;
                let size = self.blob_size(d).map_err(io::Error::other)?;
                return Ok((d.clone(), size));
            }
            _ => Store::put_blob(self, r, None),
        };
        match res {
            Ok(info) => {
                if let Some(d) = expected {
                    if &info.digest != d {
                        // put_blob(None) stored it under its real digest; that blob is
                        // unreferenced and gc removes it.
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            StoreError::BlobCorrupt {
                                expected: d.clone(),
                                actual: info.digest,
                                size: info.size,
                            },
                        ));
                    }
                }
                Ok((info.digest, info.size))
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }
}
