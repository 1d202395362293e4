//! What pull and push need from a store ([`ImageStore`]), and [`OciLayout`], an
//! implementation on a plain OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`, tags as `org.opencontainers.image.ref.name` annotations), the format
//! DESIGN.md gives imago's store. `skopeo copy oci:DIR:NAME …` reads it as it is.
//!
//! `OciLayout` stands in until `imago-store` lands; an `impl ImageStore for Store` is all
//! the switch takes. Writes are atomic (temp file in `ingest/` + fsync + rename + dir
//! fsync); `index.json` changes under an exclusive `flock` of `index.json.lock`.
//!
//! Never: talks to a registry, or unpacks layers.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use imago_oci::{Digest, HashingReader};
use serde::{Deserialize, Serialize};

/// The annotation holding a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor (the fields pull and push use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    #[serde(with = "digest_serde")]
    pub digest: Digest,
    pub size: u64,
}

mod digest_serde {
    use imago_oci::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{what} `{path}`")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {expected}: content has digest {got} ({size} bytes); nothing was stored")]
    DigestMismatch {
        expected: Digest,
        got: Digest,
        size: u64,
    },
    #[error("blob {digest}: expected {expected} bytes, got {got}; nothing was stored")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        got: u64,
    },
    #[error("`{path}` is not a valid OCI index: {reason}")]
    BadIndex { path: PathBuf, reason: String },
    #[error("read blob {digest} from the source: {source}")]
    Source {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// What the registry code needs from a content store.
pub trait ImageStore: Sync {
    /// The size of a present blob, `None` when absent.
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, LayoutError>;
    /// The file of a present blob (uploads stream from it).
    fn blob_path(&self, digest: &Digest) -> PathBuf;
    /// A whole (small) blob: manifests, configs.
    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError>;
    /// Stream `src` into the store as `expected`; digest and size are checked at EOF and
    /// nothing is committed on a mismatch. `progress` gets bytes so far.
    /// Idempotent: Ok means the blob is present.
    fn put_blob(
        &self,
        expected: &Digest,
        size: Option<u64>,
        src: &mut dyn Read,
        progress: &dyn Fn(u64),
    ) -> Result<(), LayoutError>;
    /// Store new content whose digest is not known yet.
    fn add_blob(&self, src: &mut dyn Read) -> Result<(Digest, u64), LayoutError>;
    /// The manifest (or index) a name points at.
    fn resolve(&self, name: &str) -> Result<Option<Descriptor>, LayoutError>;
    /// Point `name` at the manifest `desc` (already stored as a blob, with its config and
    /// layers), replacing an older target.
    fn tag(&self, name: &str, desc: &Descriptor) -> Result<(), LayoutError>;
    /// A directory for the registry code's own state (the blob-source cache), if any.
    fn state_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl OciLayout {
    /// Open (creating when missing) the layout at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, LayoutError> {
        let root = root.into();
        for d in [root.join("blobs/sha256"), root.join("ingest")] {
            std::fs::create_dir_all(&d).map_err(|source| LayoutError::Io {
                what: "create directory",
                path: d.clone(),
                source,
            })?;
        }
        let marker = root.join("oci-layout");
        if !marker.exists() {
            atomic_write(
                &root.join("ingest"),
                &marker,
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let _lock = lock(&root)?;
            if !index.exists() {
                atomic_write(
                    &root.join("ingest"),
                    &index,
                    br#"{"schemaVersion":2,"manifests":[]}"#,
                )?;
            }
        }
        Ok(Self { root })
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn ingest_file(&self) -> Result<(PathBuf, File), LayoutError> {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let p = self
            .root
            .join("ingest")
            .join(format!("tmp-{}-{n}", std::process::id()));
        let f = File::create(&p).map_err(|source| LayoutError::Io {
            what: "create temp file",
            path: p.clone(),
            source,
        })?;
        Ok((p, f))
    }

    fn commit(&self, tmp: &Path, digest: &Digest) -> Result<(), LayoutError> {
        let dst = self.blob_path(digest);
        std::fs::rename(tmp, &dst).map_err(|source| LayoutError::Io {
            what: "commit blob",
            path: dst.clone(),
            source,
        })?;
        sync_dir(dst.parent().unwrap_or(&self.root))
    }

    fn read_index(&self) -> Result<serde_json::Value, LayoutError> {
        let p = self.root.join("index.json");
        let bytes = std::fs::read(&p).map_err(|source| LayoutError::Io {
            what: "read",
            path: p.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| LayoutError::BadIndex {
            path: p,
            reason: e.to_string(),
        })
    }
}

impl ImageStore for OciLayout {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, LayoutError> {
        match std::fs::metadata(self.blob_path(digest)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LayoutError::Io {
                what: "stat",
                path: self.blob_path(digest),
                source,
            }),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LayoutError> {
        let p = self.blob_path(digest);
        std::fs::read(&p).map_err(|source| LayoutError::Io {
            what: "read blob",
            path: p,
            source,
        })
    }

    fn put_blob(
        &self,
        expected: &Digest,
        size: Option<u64>,
        src: &mut dyn Read,
        progress: &dyn Fn(u64),
    ) -> Result<(), LayoutError> {
        let (tmp, mut f) = self.ingest_file()?;
        let result = (|| {
            let mut h = HashingReader::new(src);
            let mut buf = vec![0u8; 256 * 1024];
            let mut n = 0u64;
            loop {
                let k = match h.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(LayoutError::Source {
                            digest: expected.clone(),
                            source,
                        })
                    }
                };
                f.write_all(&buf[..k]).map_err(|source| LayoutError::Io {
                    what: "write",
                    path: tmp.clone(),
                    source,
                })?;
                n += k as u64;
                progress(n);
                if size.is_some_and(|s| n > s) {
                    return Err(LayoutError::SizeMismatch {
                        digest: expected.clone(),
                        expected: size.unwrap_or(0),
                        got: n,
                    });
                }
            }
            let (got, len) = h.finish();
            if let Some(s) = size.filter(|s| *s != len) {
                return Err(LayoutError::SizeMismatch {
                    digest: expected.clone(),
                    expected: s,
                    got: len,
                });
            }
            if &got != expected {
                return Err(LayoutError::DigestMismatch {
                    expected: expected.clone(),
                    got,
                    size: len,
                });
            }
            f.sync_all().map_err(|source| LayoutError::Io {
                what: "fsync",
                path: tmp.clone(),
                source,
            })?;
            self.commit(&tmp, expected)
        })();
        if result.is_err() {
            // The temp file is garbage either way; a failed unlink leaves only that.
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn add_blob(&self, src: &mut dyn Read) -> Result<(Digest, u64), LayoutError> {
        let (tmp, mut f) = self.ingest_file()?;
        let mut h = HashingReader::new(src);
        let copied = io::copy(&mut h, &mut f).and_then(|_| f.sync_all());
        if let Err(source) = copied {
            let _ = std::fs::remove_file(&tmp); // garbage either way
            return Err(LayoutError::Io {
                what: "write",
                path: tmp,
                source,
            });
        }
        let (d, n) = h.finish();
        self.commit(&tmp, &d)?;
        Ok((d, n))
    }

    fn resolve(&self, name: &str) -> Result<Option<Descriptor>, LayoutError> {
        let index = self.read_index()?;
        let found = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["annotations"][REF_NAME].as_str() == Some(name));
        match found {
            None => Ok(None),
            Some(m) => {
                serde_json::from_value(m.clone())
                    .map(Some)
                    .map_err(|e| LayoutError::BadIndex {
                        path: self.root.join("index.json"),
                        reason: e.to_string(),
                    })
            }
        }
    }

    fn state_dir(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }

    fn tag(&self, name: &str, desc: &Descriptor) -> Result<(), LayoutError> {
        let _lock = lock(&self.root)?;
        let mut index = self.read_index()?;
        let path = self.root.join("index.json");
        let list = index
            .get_mut("manifests")
            .and_then(|m| m.as_array_mut())
            .ok_or_else(|| LayoutError::BadIndex {
                path: path.clone(),
                reason: "no `manifests` array".into(),
            })?;
        list.retain(|m| m["annotations"][REF_NAME].as_str() != Some(name));
        let mut entry = serde_json::to_value(desc).map_err(|e| LayoutError::BadIndex {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        entry["annotations"] = serde_json::json!({ REF_NAME: name });
        list.push(entry);
        let bytes = serde_json::to_vec(&index).map_err(|e| LayoutError::BadIndex {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        atomic_write(&self.root.join("ingest"), &path, &bytes)
    }
}

/// An exclusive lock on the layout's index, released on drop.
fn lock(root: &Path) -> Result<File, LayoutError> {
    let p = root.join("index.json.lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|source| LayoutError::Io {
            what: "open lock",
            path: p.clone(),
            source,
        })?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
        LayoutError::Io {
            what: "lock",
            path: p,
            source: e.into(),
        }
    })?;
    Ok(f)
}

fn atomic_write(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = tmp_dir.join(format!("w-{}-{n}", std::process::id()));
    let io = |what, p: &Path| {
        let p = p.to_owned();
        move |source| LayoutError::Io {
            what,
            path: p,
            source,
        }
    };
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename into", path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), LayoutError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| LayoutError::Io {
            what: "fsync directory",
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_and_commits_only_good_content() {
        let t = tempfile::tempdir().unwrap();
        let l = OciLayout::open(t.path()).unwrap();
        let d = Digest::of(b"hello");
        l.put_blob(&d, Some(5), &mut &b"hello"[..], &|_| {})
            .unwrap();
        assert_eq!(l.blob_size(&d).unwrap(), Some(5));
        let bad = Digest::of(b"other");
        let e = l
            .put_blob(&bad, Some(5), &mut &b"hello"[..], &|_| {})
            .unwrap_err();
        assert!(e.to_string().contains(&bad.to_string()), "{e}");
        assert_eq!(l.blob_size(&bad).unwrap(), None);
        let e = l
            .put_blob(&d, Some(4), &mut &b"hello"[..], &|_| {})
            .unwrap_err();
        assert!(matches!(e, LayoutError::SizeMismatch { .. }));
        assert_eq!(
            std::fs::read_dir(t.path().join("ingest")).unwrap().count(),
            0
        );
    }

    #[test]
    fn tag_resolve_and_retag() {
        let t = tempfile::tempdir().unwrap();
        let l = OciLayout::open(t.path()).unwrap();
        let (d1, n1) = l.add_blob(&mut &b"{}"[..]).unwrap();
        let desc = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: d1,
            size: n1,
        };
        l.tag("reg:5000/a:1", &desc).unwrap();
        assert_eq!(l.resolve("reg:5000/a:1").unwrap(), Some(desc.clone()));
        let (d2, n2) = l.add_blob(&mut &b"{ }"[..]).unwrap();
        let desc2 = Descriptor {
            digest: d2,
            size: n2,
            ..desc
        };
        l.tag("reg:5000/a:1", &desc2).unwrap();
        assert_eq!(l.resolve("reg:5000/a:1").unwrap(), Some(desc2));
        assert_eq!(l.resolve("nope").unwrap(), None);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    }
}
