//! `index.json`: the list of images, each a manifest descriptor; tags are
//! `org.opencontainers.image.ref.name` annotations (see names.rs for the mapping).
//!
//! One entry per (manifest, name); an image without a name keeps one entry without the
//! annotation so gc keeps it (docker's dangling `<none>` image). Updates are
//! read-modify-write under `imago/locks/index.lock`, written atomically. Unknown fields
//! (from skopeo, umoci) are kept as they are.
//! Never: reads or writes blobs.

use std::collections::BTreeMap;

use imago_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{Result, StoreError};
use crate::lock;
use crate::store::Store;

/// The annotation holding a tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// imago's own annotation on index entries: when the entry was added (RFC 3339).
pub const CREATED: &str = "dev.imago.added";

/// index.json as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexFile {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One manifest descriptor in index.json.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexEntry {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl IndexEntry {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            annotations: None,
            extra: BTreeMap::new(),
        }
    }

    /// The tag annotation, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.as_ref()?.get(REF_NAME).map(String::as_str)
    }

    pub fn set_ref_name(&mut self, name: Option<&str>) {
        let a = self.annotations.get_or_insert_with(BTreeMap::new);
        match name {
            Some(n) => {
                a.insert(REF_NAME.into(), n.into());
            }
            None => {
                a.remove(REF_NAME);
            }
        }
        if a.is_empty() {
            self.annotations = None;
        }
    }
}

impl IndexFile {
    /// Drop exact duplicates and untagged entries whose manifest also has a tagged entry.
    pub fn normalise(&mut self) {
        let tagged: std::collections::HashSet<Digest> = self
            .manifests
            .iter()
            .filter(|e| e.ref_name().is_some())
            .map(|e| e.digest.clone())
            .collect();
        let mut seen = Vec::<(Digest, Option<String>)>::new();
        self.manifests.retain(|e| {
            if e.ref_name().is_none() && tagged.contains(&e.digest) {
                return false;
            }
            let key = (e.digest.clone(), e.ref_name().map(str::to_owned));
            if seen.contains(&key) {
                return false;
            }
            seen.push(key);
            true
        });
    }
}

impl Store {
    /// Read index.json (no lock: it is always replaced atomically). A missing,
    /// unreadable or invalid file is [`StoreError::IndexDamaged`]; permission denied
    /// stays [`StoreError::Io`] (another user's store, not damage).
    pub fn read_index(&self) -> Result<IndexFile> {
        let p = self.layout.index();
        let damaged = |why: String| StoreError::IndexDamaged {
            path: p.clone(),
            why,
        };
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Store::open creates it in an empty store, so blobs without it are damage.
                return Err(damaged("it is missing".into()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(StoreError::io("read", &p, e))
            }
            Err(e) => return Err(damaged(format!("cannot read it: {e}"))),
        };
        serde_json::from_slice(&bytes).map_err(|e| damaged(format!("not a valid image index: {e}")))
    }

    /// Read-modify-write index.json under the index lock. `f` returns whether it
    /// changed anything (nothing is written otherwise) and a value.
    pub fn update_index<T>(
        &self,
        f: impl FnOnce(&mut IndexFile) -> Result<(bool, T)>,
    ) -> Result<T> {
        let _g = lock::exclusive(&self.layout.index_lock())?;
        let mut idx = self.read_index()?;
        let (changed, out) = f(&mut idx)?;
        if changed {
            idx.normalise();
            let bytes = serde_json::to_vec(&idx).map_err(|e| StoreError::Other {
                what: format!("encode index.json: {e}"),
            })?;
            atomic::write_file(&self.layout.tmp(), &self.layout.index(), &bytes)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive() {
        let d = Digest::of(b"m");
        let j = format!(
            r#"{{"schemaVersion":2,"x-extra":1,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":3,"platform":{{"os":"linux"}},"annotations":{{"org.opencontainers.image.ref.name":"x"}}}}]}}"#
        );
        let idx: IndexFile = serde_json::from_str(&j).unwrap();
        assert_eq!(idx.manifests[0].ref_name(), Some("x"));
        let back = serde_json::to_string(&idx).unwrap();
        assert!(
            back.contains("x-extra") && back.contains("platform"),
            "{back}"
        );
    }

    #[test]
    fn normalise_drops_redundant_untagged() {
        let d = Digest::of(b"m");
        let mut a = IndexEntry::new("t", d.clone(), 1);
        a.set_ref_name(Some("a"));
        let b = IndexEntry::new("t", d.clone(), 1);
        let mut idx = IndexFile {
            schema_version: 2,
            media_type: None,
            manifests: vec![b.clone(), a.clone(), a.clone(), b],
            extra: BTreeMap::new(),
        };
        idx.normalise();
        assert_eq!(idx.manifests, vec![a]);
    }
}
