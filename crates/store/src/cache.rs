//! Build cache entries: small values under a key, each keeping a list of blobs alive
//! for gc. `imago/cache/<key>` holds the value, `imago/cache/<key>.refs` the JSON list
//! of digests it keeps (written first, so a value never exists without its refs).
//! gc keeps the blobs of entries whose refs are all present, drops entries with a
//! missing ref, and drops every entry with [`crate::GcOptions::build_cache`].
//! Never: interprets values (the build engine owns their format).

use imago_oci::Digest;

use crate::atomic;
use crate::error::{IoCtx, Result, StoreError};
use crate::store::Store;

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Store {
    fn cache_paths(&self, key: &str) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
        if !valid_key(key) {
            return Err(StoreError::Other {
                what: format!("invalid cache key `{key}`: use 1-128 of [A-Za-z0-9_-]"),
            });
        }
        let dir = self.layout.cache();
        Ok((dir.join(key), dir.join(format!("{key}.refs"))))
    }

    /// Store `value` under `key` (atomically replacing an older one); the entry keeps
    /// `refs` alive through gc. Hold a [`Store::pin`] from the blobs' writing until this
    /// returns if gc may run at the same time.
    pub fn cache_put(&self, key: &str, value: &[u8], refs: &[Digest]) -> Result<()> {
        let (v, r) = self.cache_paths(key)?;
        let dir = self.layout.cache();
        std::fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        let refs = serde_json::to_vec(refs).map_err(|e| StoreError::Other {
            what: e.to_string(),
        })?;
        atomic::write_file(&self.layout.tmp(), &r, &refs)?;
        atomic::write_file(&self.layout.tmp(), &v, value)
    }

    /// The value under `key`, if any.
    pub fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (v, _) = self.cache_paths(key)?;
        match std::fs::read(&v) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", v, e)),
        }
    }

    /// Every cache key with its refs (entries without a readable refs file are skipped).
    pub fn cache_entries(&self) -> Result<Vec<(String, Vec<Digest>)>> {
        let dir = self.layout.cache();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(StoreError::io("read directory", dir, e)),
        };
        let mut out = vec![];
        for e in rd {
            let e = e.ctx("read directory", &dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".refs") else {
                continue;
            };
            let Ok(bytes) = std::fs::read(e.path()) else {
                continue;
            };
            let Ok(refs) = serde_json::from_slice::<Vec<Digest>>(&bytes) else {
                continue;
            };
            out.push((key.to_owned(), refs));
        }
        out.sort();
        Ok(out)
    }

    /// Remove one cache entry (missing is fine).
    pub fn cache_remove(&self, key: &str) -> Result<()> {
        let (v, r) = self.cache_paths(key)?;
        for p in [v, r] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", p, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_gc_keeps_refs() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        let kept = s.put_blob_bytes(b"kept").unwrap().digest;
        let lost = s.put_blob_bytes(b"lost").unwrap().digest;
        s.cache_put("k1", b"value", std::slice::from_ref(&kept))
            .unwrap();
        assert_eq!(s.cache_get("k1").unwrap().as_deref(), Some(&b"value"[..]));
        assert_eq!(s.cache_get("nope").unwrap(), None);
        assert!(s.cache_put("../x", b"", &[]).is_err());
        let r = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(r.blobs_removed, vec![lost]);
        assert!(s.has_blob(&kept));
        // An entry whose ref is gone is dropped.
        s.cache_put("k2", b"v", &[Digest::of(b"absent")]).unwrap();
        s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(s.cache_get("k2").unwrap(), None);
        assert!(s.cache_get("k1").unwrap().is_some());
        // build_cache drops them all, then their blobs.
        let r = s
            .gc(&crate::GcOptions {
                build_cache: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(r.cache_removed, 1);
        assert!(!s.has_blob(&kept));
    }
}
