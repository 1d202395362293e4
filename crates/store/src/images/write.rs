//! Writing images: storing a manifest (its blobs checked), an image from a config and
//! its layers, a compressed layer blob, and naming an image (tag, untag) in index.json.
//!
//! Owns: the index entries these add or rename. Never: removes an image (remove.rs) or
//! a blob (gc.rs).

use std::collections::BTreeMap;

use imago_oci::spec::ImageConfiguration;
use imago_oci::{BlobRef, Digest};

use super::{is_index_type, is_manifest_type, now_rfc3339, parse_digest, OCI_CONFIG, OCI_MANIFEST};
use crate::blobs::BlobInfo;
use crate::error::{Result, StoreError};
use crate::index::{IndexEntry, CREATED};
use crate::names::{self, ImageName};
use crate::store::Store;

/// Parse the manifest `bytes` (whose digest is `digest`) as JSON.
pub(crate) fn manifest_json(bytes: &[u8], digest: &Digest) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Json {
        what: "manifest",
        digest: digest.to_string(),
        source: e,
    })
}

/// The blobs an image manifest refers to: its config, then its layers.
pub(crate) fn manifest_blobs(m: &serde_json::Value) -> Result<Vec<Digest>> {
    let mut need = vec![];
    if let Some(c) = m.pointer("/config/digest").and_then(|v| v.as_str()) {
        need.push(parse_digest(c, "config digest")?);
    }
    for l in m
        .get("layers")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(d) = l.get("digest").and_then(|v| v.as_str()) {
            need.push(parse_digest(d, "layer digest")?);
        }
    }
    Ok(need)
}

impl Store {
    /// Store a manifest (its config and layers must already be stored) and record it in
    /// index.json without a name (use [`Store::tag`] to name it). Returns its digest.
    pub fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let m = manifest_json(bytes, &digest)?;
        if is_index_type(media_type) {
            // An index's children may be absent (one platform copied): nothing to check.
        } else if is_manifest_type(media_type) {
            let need = manifest_blobs(&m)?;
            // A build FROM an image of a shared store refers to its blobs: copy them in.
            self.adopt_blobs(&need)?;
            if let Some(missing) = need.into_iter().find(|d| !self.has_blob(d)) {
                return Err(StoreError::BlobMissing { digest: missing });
            }
        } else {
            return Err(StoreError::UnsupportedManifest {
                digest,
                media_type: media_type.into(),
            });
        }
        let info = self.put_blob_bytes(bytes)?;
        self.update_index(|idx| {
            if idx.manifests.iter().any(|e| e.digest == info.digest) {
                return Ok((false, ()));
            }
            let mut e = IndexEntry::new(media_type, info.digest.clone(), info.size);
            e.annotations = Some(BTreeMap::from([(CREATED.to_owned(), now_rfc3339())]));
            idx.manifests.push(e);
            Ok((true, ()))
        })?;
        Ok(info.digest)
    }

    /// Store `config` and an OCI manifest over `layers` (already stored, bottom to top)
    /// and record the image (unnamed). Returns the manifest digest. The config's
    /// `rootfs.diff_ids` must match the layers; the caller builds it.
    pub fn put_image(&self, config: &ImageConfiguration, layers: &[BlobRef]) -> Result<Digest> {
        let config_bytes = serde_json::to_vec(config).map_err(|e| StoreError::Other {
            what: format!("encode config: {e}"),
        })?;
        self.put_image_raw(&config_bytes, layers)
    }

    /// Like [`Store::put_image`] with the config as JSON bytes (kept byte for byte).
    pub fn put_image_raw(&self, config_bytes: &[u8], layers: &[BlobRef]) -> Result<Digest> {
        let cfg = self.put_blob_bytes(config_bytes)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": cfg.digest, "size": cfg.size },
            "layers": layers.iter().map(|l| serde_json::json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| StoreError::Other {
            what: format!("encode manifest: {e}"),
        })?;
        self.put_manifest(&bytes, OCI_MANIFEST)
    }

    /// Store a layer tar blob given its compressed bytes' reader (already compressed),
    /// for callers that have one; same contract as [`Store::put_blob`].
    pub fn put_layer(&self, reader: impl std::io::Read, media_type: &str) -> Result<BlobRef> {
        let BlobInfo { digest, size } = self.put_blob(reader, None)?;
        Ok(BlobRef {
            media_type: media_type.into(),
            digest,
            size,
        })
    }

    /// Give the image with manifest (or index) digest `manifest` the name `name`
    /// (normalised, see names.rs); the name moves away from any other image. Returns
    /// the stored name.
    pub fn tag(&self, name: &str, manifest: &Digest) -> Result<ImageName> {
        let (_r, ref_name) = names::ref_name_for(name)?;
        // A name for an image of a shared store: the image is copied in first, so that
        // this store's index never names what this store lacks.
        self.adopt_image(manifest)?;
        // Media type: from an existing entry, else from the blob.
        let known = self
            .read_index()?
            .manifests
            .into_iter()
            .find(|e| &e.digest == manifest);
        let (media_type, size) = match known {
            Some(e) => (e.media_type, e.size),
            None => {
                let bytes = self.read_blob(manifest)?;
                let v = manifest_json(&bytes, manifest)?;
                let mt = v
                    .get("mediaType")
                    .and_then(|v| v.as_str())
                    .unwrap_or(OCI_MANIFEST)
                    .to_owned();
                (mt, bytes.len() as u64)
            }
        };
        self.update_index(|idx| {
            if idx
                .manifests
                .iter()
                .any(|e| &e.digest == manifest && e.ref_name() == Some(ref_name.as_str()))
            {
                return Ok((false, ()));
            }
            for e in idx.manifests.iter_mut() {
                if e.ref_name().is_some_and(|n| names::matches(n, &ref_name)) {
                    e.set_ref_name(None);
                }
            }
            let mut e = IndexEntry::new(&media_type, manifest.clone(), size);
            e.annotations = Some(BTreeMap::from([
                (CREATED.to_owned(), now_rfc3339()),
                (crate::index::REF_NAME.to_owned(), ref_name.clone()),
            ]));
            idx.manifests.push(e);
            Ok((true, ()))
        })?;
        Ok(ImageName::from_ref_name(&ref_name))
    }

    /// Remove the name `name`; the image stays (unnamed when it was its last name).
    /// Returns the manifest digest it named.
    pub fn untag(&self, name: &str) -> Result<Digest> {
        self.update_index(|idx| {
            let Some(e) = idx
                .manifests
                .iter_mut()
                .find(|e| e.ref_name().is_some_and(|n| names::matches(n, name)))
            else {
                return Err(StoreError::ImageNotFound { input: name.into() });
            };
            e.set_ref_name(None);
            Ok((true, e.digest.clone()))
        })
    }
}
