//! fsck: every blob's digest, every reference index → manifest → config/layers, every
//! unpacked layer's marker. Read-only; reports problems, fixes nothing (gc removes
//! debris; a corrupt blob needs the image again).
//! Never: writes to the store.

use std::collections::HashSet;

use imago_oci::Digest;

use crate::index::IndexEntry;
use crate::layers::OwnerMode;

use crate::error::{IoCtx, Result, StoreError};
use crate::store::Store;

/// One thing fsck found wrong.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// What it is about (`blob sha256:…`, `index.json entry busybox`, `layer <chain>`).
    pub object: String,
    pub what: String,
}

/// fsck's findings.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub images_checked: usize,
    pub layers_checked: usize,
    /// Entries in imago/tmp left by processes that are gone (`iimage gc` removes them):
    /// not a problem, the store is consistent without them. A partial download counts
    /// only once it is stale (partial.rs, `PARTIAL_STALE_AGE`): until then a rerun resumes it.
    pub temp_debris: usize,
    pub problems: Vec<Problem>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
    fn problem(&mut self, object: impl Into<String>, what: impl Into<String>) {
        self.problems.push(Problem {
            object: object.into(),
            what: what.into(),
        });
    }
}

impl Store {
    /// Check the whole store; see the module doc.
    pub fn fsck(&self) -> Result<FsckReport> {
        self.fsck_trusting(&HashSet::new())
    }

    /// [`Self::fsck`], taking the blobs in `verified` as hashed already: repair's final
    /// check, right after it hashed every blob (a blob is written once, by rename, and
    /// never changes in place), would otherwise read the whole store a second time.
    pub(crate) fn fsck_trusting(&self, verified: &HashSet<Digest>) -> Result<FsckReport> {
        let mut r = FsckReport::default();
        // 1. Blobs.
        let blobs = self.layout.blobs();
        for e in std::fs::read_dir(&blobs).ctx("read directory", &blobs)? {
            let e = e.ctx("read directory", &blobs)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(d) = Digest::from_hex(&name) else {
                r.problem(format!("blobs/sha256/{name}"), "not a sha256 blob name");
                continue;
            };
            r.blobs_checked += 1;
            if verified.contains(&d) {
                continue;
            }
            if let Some(what) = self.blob_problem(&d) {
                r.problem(format!("blob {d}"), what);
            }
        }
        // 2. References.
        let idx = match self.read_index() {
            Ok(i) => i,
            Err(StoreError::IndexDamaged { why, .. }) => {
                r.problem("index.json", format!("damaged: {why}"));
                return Ok(r);
            }
            Err(e) => {
                r.problem("index.json", e.to_string());
                return Ok(r);
            }
        };
        for e in &idx.manifests {
            let label = match e.ref_name() {
                Some(n) => format!("image {n} ({})", e.digest),
                None => format!("image {}", e.digest),
            };
            if let Some(what) = self.entry_problem(e) {
                r.problem(&label, what);
            }
        }
        self.images_checked(&idx, &mut r);
        // 3. Unpacked layers.
        let mode = self.owner_mode().unwrap_or(None);
        for chain in self.unpacked_layers()? {
            r.layers_checked += 1;
            let label = format!("unpacked layer {chain}");
            for what in self.layer_problems(&chain, mode) {
                r.problem(&label, what);
            }
        }
        for e in
            std::fs::read_dir(self.layout.layers()).ctx("read directory", &self.layout.layers())?
        {
            let e = e.ctx("read directory", &self.layout.layers())?;
            let n = e.file_name().to_string_lossy().into_owned();
            if n != "MODE" && Digest::from_hex(&n).is_err() {
                r.problem(format!("imago/layers/{n}"), "unexpected entry");
            }
        }
        // 4. Debris.
        let tmp = self.layout.tmp();
        // Partial downloads a rerun may resume are not debris until they go stale.
        for e in std::fs::read_dir(&tmp).ctx("read directory", &tmp)? {
            let e = e.ctx("read directory", &tmp)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !matches!(
                self.partial_state(&name, &e.path()),
                crate::partial::PartialState::Keep
            ) {
                r.temp_debris += 1;
            }
        }
        Ok(r)
    }

    fn images_checked(&self, idx: &crate::index::IndexFile, r: &mut FsckReport) {
        let mut seen = std::collections::HashSet::new();
        for e in &idx.manifests {
            if !seen.insert(e.digest.clone()) || !self.has_blob(&e.digest) {
                continue;
            }
            r.images_checked += 1;
            let label = format!("image {}", e.digest);
            for what in self.image_problems(e) {
                r.problem(&label, what);
            }
        }
    }

    /// What is wrong with blob `d`, if anything: its content does not hash to its name,
    /// or it cannot be read.
    pub(crate) fn blob_problem(&self, d: &Digest) -> Option<String> {
        match self.verify_blob(d) {
            Ok(_) => None,
            Err(StoreError::BlobDamaged { actual, size, .. }) => Some(format!(
                "damaged: its content hashes to {actual} ({size} bytes)"
            )),
            Err(err) => Some(err.to_string()),
        }
    }

    /// What is wrong with index entry `e` itself: its blob is missing or of another size.
    pub(crate) fn entry_problem(&self, e: &IndexEntry) -> Option<String> {
        match self.blob_size(&e.digest) {
            Ok(s) if s != e.size => Some(format!(
                "index.json says {} bytes, the blob has {s}",
                e.size
            )),
            Ok(_) => None,
            Err(err) => Some(err.to_string()),
        }
    }

    /// What is wrong with the image of entry `e` (whose blob exists): a manifest or
    /// config that is missing or unreadable, layers missing or of other sizes.
    pub(crate) fn image_problems(&self, e: &IndexEntry) -> Vec<String> {
        let mut out = Vec::new();
        let img = match self.images_of(&crate::index::IndexFile {
            schema_version: 2,
            media_type: None,
            manifests: vec![e.clone()],
            extra: Default::default(),
        }) {
            Ok(v) if v.len() == 1 => v.into_iter().next(),
            _ => None,
        };
        let Some(img) = img else {
            out.push("manifest or config missing or unreadable".to_owned());
            return out;
        };
        match (img.layers(), img.diff_ids()) {
            (Ok(l), Ok(d)) => {
                if l.len() != d.len() {
                    out.push(format!("{} layers but {} diff ids", l.len(), d.len()));
                }
                for layer in l {
                    match self.blob_size(&layer.digest) {
                        Ok(s) if s != layer.size => out.push(format!(
                            "layer {} has {s} bytes, the manifest says {}",
                            layer.digest, layer.size
                        )),
                        Ok(_) => {}
                        Err(err) => out.push(err.to_string()),
                    }
                }
            }
            (Err(err), _) | (_, Err(err)) => out.push(err.to_string()),
        }
        if self.blob_size(&img.config_digest).ok() != Some(img.manifest.config().size()) {
            out.push(format!(
                "config {} size differs from the manifest",
                img.config_digest
            ));
        }
        out
    }

    /// What is wrong with unpacked layer `chain`, the store's ownership mode being
    /// `mode`.
    pub(crate) fn layer_problems(&self, chain: &Digest, mode: Option<OwnerMode>) -> Vec<String> {
        let mut out = Vec::new();
        match self.layer_meta(chain) {
            Ok(m) => {
                if &m.chain_id != chain {
                    out.push(format!("layer.json names chain id {}", m.chain_id));
                }
                if Some(m.mode) != mode {
                    out.push(format!(
                        "unpacked with {} ownership, the store's MODE says {:?}",
                        m.mode.as_str(),
                        mode.map(|m| m.as_str())
                    ));
                }
                if !self.layout.layer_diff(chain).is_dir() {
                    out.push("diff/ is missing".to_owned());
                }
            }
            Err(err) => out.push(format!("no valid layer.json: {err}")),
        }
        out
    }
}
