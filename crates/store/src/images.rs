//! Images: writing manifests and configs, naming (tag/untag), resolving user input,
//! listing, removing.
//!
//! Identity: the image id is the config digest (docker's); a user names an image by
//! name[:tag] (see names.rs), by a full id (`sha256:…` or 64 hex), by a unique id prefix,
//! by a manifest digest (`sha256:…`), or by `name@sha256:<manifest digest>`.
//! Never: unpacks layers (layers.rs), deletes blobs (gc.rs).

use std::collections::BTreeMap;

use imago_oci::spec::{ImageConfiguration, ImageManifest};
use imago_oci::Digest;

use crate::blobs::BlobInfo;
use crate::error::{Result, StoreError};
use crate::index::{IndexEntry, IndexFile, CREATED};
use crate::names::{self, ImageName};
use crate::store::Store;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type (what the store writes).
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A layer as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerRef {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// An image in the store: its manifest, config and names.
#[derive(Debug, Clone)]
pub struct Image {
    /// The digest recorded in index.json (an image index for multi-platform entries).
    pub index_digest: Digest,
    /// The digest of the image manifest itself.
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
    /// The image id.
    pub config_digest: Digest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfiguration,
    /// Its names, sorted.
    pub names: Vec<ImageName>,
}

impl Image {
    /// The image id (config digest), docker's identity.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// The layers, bottom to top.
    pub fn layers(&self) -> Result<Vec<LayerRef>> {
        self.manifest
            .layers()
            .iter()
            .map(|l| {
                Ok(LayerRef {
                    media_type: l.media_type().to_string(),
                    digest: parse_digest(l.digest().as_ref(), "layer digest")?,
                    size: l.size(),
                })
            })
            .collect()
    }

    /// The uncompressed layer digests from the config, bottom to top.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| parse_digest(d, "diff id"))
            .collect()
    }

    /// The chain ids of the layers, bottom to top.
    pub fn chain_ids(&self) -> Result<Vec<Digest>> {
        Ok(chain_ids(&self.diff_ids()?))
    }

    /// Stored size: config + compressed layers.
    pub fn size(&self) -> u64 {
        self.manifest.config().size() + self.manifest.layers().iter().map(|l| l.size()).sum::<u64>()
    }

    /// The config's `created` time (RFC 3339), when set.
    pub fn created(&self) -> Option<&str> {
        self.config.created().as_deref()
    }
}

/// Chain ids from diff ids: `c0 = d0`, `cN = sha256(c(N-1) + " " + dN)`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn parse_digest(s: &str, what: &str) -> Result<Digest> {
    s.parse().map_err(|e| StoreError::Other {
        what: format!("bad {what} `{s}`: {e}"),
    })
}

fn is_manifest_type(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

fn is_index_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}

/// Now, as RFC 3339 UTC to the second (index.json `created` annotations).
fn now_rfc3339() -> String {
    rfc3339_at(jiff::Timestamp::now().as_second())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC); beyond year 9999 it clamps.
pub fn rfc3339(secs: u64) -> String {
    rfc3339_at(i64::try_from(secs).unwrap_or(i64::MAX))
}

fn rfc3339_at(secs: i64) -> String {
    let max = jiff::Timestamp::MAX.as_second();
    // In range by the clamp, so the fallback is never taken.
    jiff::Timestamp::from_second(secs.clamp(0, max))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

/// What `remove_image` did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Removed {
    /// Names removed (ref.names).
    pub untagged: Vec<String>,
    /// Image ids deleted from the index (their blobs go at the next gc).
    pub deleted: Vec<Digest>,
}

impl Store {
    /// Store a manifest (its config and layers must already be stored) and record it in
    /// index.json without a name (use [`Store::tag`] to name it). Returns its digest.
    pub fn put_manifest(&self, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let m: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| StoreError::Json {
            what: "manifest",
            digest: digest.to_string(),
            source: e,
        })?;
        if is_index_type(media_type) {
            // An index's children may be absent (one platform copied): nothing to check.
        } else if is_manifest_type(media_type) {
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
    pub fn put_image(&self, config: &ImageConfiguration, layers: &[LayerRef]) -> Result<Digest> {
        let config_bytes = serde_json::to_vec(config).map_err(|e| StoreError::Other {
            what: format!("encode config: {e}"),
        })?;
        self.put_image_raw(&config_bytes, layers)
    }

    /// Like [`Store::put_image`] with the config as JSON bytes (kept byte for byte).
    pub fn put_image_raw(&self, config_bytes: &[u8], layers: &[LayerRef]) -> Result<Digest> {
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

    /// Give the image with manifest (or index) digest `manifest` the name `name`
    /// (normalised, see names.rs); the name moves away from any other image. Returns
    /// the stored name.
    pub fn tag(&self, name: &str, manifest: &Digest) -> Result<ImageName> {
        let (_r, ref_name) = names::ref_name_for(name)?;
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
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Json {
                        what: "manifest",
                        digest: manifest.to_string(),
                        source: e,
                    })?;
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

    /// docker rmi: by name, remove that name and delete the image when it was its last
    /// name; by id/digest, delete the image, refused when it has more than one name
    /// unless `force`. Blobs go at the next gc. A damaged image (its manifest or config
    /// unreadable) is removed by name or manifest digest: its index entries go, so gc
    /// no longer refuses the store and the image can be pulled or loaded again.
    pub fn remove_image(&self, input: &str, force: bool) -> Result<Removed> {
        let img = match self.resolve(input) {
            Ok(img) => img,
            Err(StoreError::ImageDamaged { .. }) => return self.remove_damaged(input),
            Err(e) => return Err(e),
        };
        let by_name = img
            .names
            .iter()
            .find(|n| names::matches(&n.ref_name, input))
            .cloned();
        let id = img.id().clone();
        let all = self.list_images()?;
        let same_id: Vec<&Image> = all.iter().filter(|i| i.id() == &id).collect();
        let total_names: Vec<String> = same_id
            .iter()
            .flat_map(|i| i.names.iter().map(|n| n.ref_name.clone()))
            .collect();
        let mut removed = Removed::default();
        if let Some(n) = by_name {
            if total_names.len() > 1 {
                self.untag(&n.ref_name)?;
                removed.untagged.push(n.ref_name);
                return Ok(removed);
            }
        } else if total_names.len() > 1 && !force {
            return Err(StoreError::ImageHasNames {
                id: id.short().into(),
                names: total_names,
            });
        }
        let digests: Vec<Digest> = same_id.iter().map(|i| i.index_digest.clone()).collect();
        self.update_index(|idx| {
            idx.manifests.retain(|e| !digests.contains(&e.digest));
            Ok((true, ()))
        })?;
        removed.untagged = total_names;
        removed.deleted.push(id);
        Ok(removed)
    }

    /// Drop the index entries of a damaged image named by `input` (a name: that entry,
    /// and the image's unnamed entry; a manifest digest: every entry of it).
    fn remove_damaged(&self, input: &str) -> Result<Removed> {
        let hex = input.rsplit_once('@').map_or(input, |(_, d)| d);
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        let by_digest = Digest::from_hex(hex).ok();
        self.update_index(|idx| {
            let named = idx
                .manifests
                .iter()
                .find(|e| e.ref_name().is_some_and(|n| names::matches(n, input)))
                .map(|e| e.digest.clone());
            let Some(digest) = named.clone().or(by_digest) else {
                return Err(StoreError::ImageNotFound {
                    input: input.into(),
                });
            };
            let mut removed = Removed::default();
            idx.manifests.retain(|e| {
                let goes = e.digest == digest
                    && (named.is_none() || e.ref_name().is_none_or(|n| names::matches(n, input)));
                if goes {
                    removed.untagged.extend(e.ref_name().map(str::to_owned));
                }
                !goes
            });
            // The image goes with its last entry; its id (config) is unreadable, so the
            // manifest digest stands for it.
            if !idx.manifests.iter().any(|e| e.digest == digest) {
                removed.deleted.push(digest);
            }
            Ok((true, removed))
        })
    }

    /// Load the image behind one index entry (following an image index to the host's
    /// platform).
    fn load_image(
        &self,
        digest: &Digest,
        media_type: &str,
        names: Vec<ImageName>,
    ) -> Result<Image> {
        let mut manifest_digest = digest.clone();
        let mut media_type = media_type.to_owned();
        let mut bytes = self.read_blob(digest)?;
        if is_index_type(&media_type) {
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Json {
                    what: "image index",
                    digest: digest.to_string(),
                    source: e,
                })?;
            let children: Vec<&serde_json::Value> = v
                .get("manifests")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
                .collect();
            let pick = children
                .iter()
                .filter(|c| {
                    c.get("digest")
                        .and_then(|d| d.as_str())
                        .and_then(|d| d.parse::<Digest>().ok())
                        .is_some_and(|d| self.has_blob(&d))
                })
                .max_by_key(|c| {
                    let arch = c.pointer("/platform/architecture").and_then(|a| a.as_str());
                    u8::from(arch == Some(imago_oci::platform::host_arch()))
                })
                .ok_or_else(|| StoreError::Other {
                    what: format!("image index {digest} has no manifest in the store"),
                })?;
            manifest_digest = parse_digest(
                pick.get("digest").and_then(|d| d.as_str()).unwrap_or(""),
                "manifest digest",
            )?;
            media_type = pick
                .get("mediaType")
                .and_then(|m| m.as_str())
                .unwrap_or(OCI_MANIFEST)
                .to_owned();
            bytes = self.read_blob(&manifest_digest)?;
        }
        if !is_manifest_type(&media_type) {
            return Err(StoreError::UnsupportedManifest {
                digest: manifest_digest,
                media_type,
            });
        }
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Json {
                what: "manifest",
                digest: manifest_digest.to_string(),
                source: e,
            })?;
        let config_digest = parse_digest(manifest.config().digest().as_ref(), "config digest")?;
        let config_bytes = self.read_blob(&config_digest)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|e| StoreError::Json {
                what: "config",
                digest: config_digest.to_string(),
                source: e,
            })?;
        Ok(Image {
            index_digest: digest.clone(),
            manifest_digest,
            manifest_media_type: media_type,
            manifest_bytes: bytes,
            manifest,
            config_digest,
            config_bytes,
            config,
            names,
        })
    }

    /// Every image in index.json, one per index digest, with its names. Entries whose
    /// blobs are missing or unreadable are skipped with a warning (`iimage fsck` reports
    /// them).
    pub fn list_images(&self) -> Result<Vec<Image>> {
        let idx = self.read_index()?;
        self.images_of(&idx)
    }

    pub(crate) fn images_of(&self, idx: &IndexFile) -> Result<Vec<Image>> {
        let mut groups: Vec<(Digest, String, Vec<ImageName>)> = vec![];
        for e in &idx.manifests {
            let pos = match groups.iter().position(|g| g.0 == e.digest) {
                Some(p) => p,
                None => {
                    groups.push((e.digest.clone(), e.media_type.clone(), vec![]));
                    groups.len() - 1
                }
            };
            if let Some(n) = e.ref_name() {
                groups[pos].2.push(ImageName::from_ref_name(n));
            }
        }
        let mut out = vec![];
        for (d, mt, mut names) in groups {
            names.sort_by(|a, b| a.ref_name.cmp(&b.ref_name));
            names.dedup();
            match self.load_image(&d, &mt, names) {
                Ok(i) => out.push(i),
                Err(e) => tracing::warn!("skipping image {d}: {e}"),
            }
        }
        Ok(out)
    }

    /// Find the image `input` names: name[:tag], `name@digest`, full id, id prefix
    /// (unique, else [`StoreError::Ambiguous`]), or manifest digest.
    pub fn resolve(&self, input: &str) -> Result<Image> {
        let idx = self.read_index()?;
        let images = self.images_of(&idx)?;
        let not_found = || StoreError::ImageNotFound {
            input: input.into(),
        };
        // 1. A name (raw ref.name or normalised).
        if let Some(i) = images
            .iter()
            .find(|i| i.names.iter().any(|n| names::matches(&n.ref_name, input)))
        {
            return Ok(i.clone());
        }
        // The index names it (or has its digest) but the image did not load: say it is
        // damaged, not missing (a build would otherwise try to pull it).
        let hex = input.rsplit_once('@').map_or(input, |(_, d)| d);
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        let digest = Digest::from_hex(hex).ok();
        if let Some(e) = idx.manifests.iter().find(|e| {
            e.ref_name().is_some_and(|n| names::matches(n, input))
                || digest.as_ref() == Some(&e.digest)
        }) {
            if !images.iter().any(|i| i.index_digest == e.digest) {
                if let Err(err) = self.load_image(&e.digest, &e.media_type, vec![]) {
                    return Err(StoreError::ImageDamaged {
                        input: input.into(),
                        source: Box::new(err),
                    });
                }
            }
        }
        // 2. name@digest: the digest decides.
        if let Some((_, d)) = input.rsplit_once('@') {
            let d: Digest = d.parse().map_err(|_| not_found())?;
            return images
                .iter()
                .find(|i| i.manifest_digest == d || i.index_digest == d)
                .cloned()
                .ok_or_else(not_found);
        }
        // 3. A full digest: manifest digest or id.
        let hex = input.strip_prefix("sha256:").unwrap_or(input);
        if let Ok(d) = Digest::from_hex(hex) {
            if let Some(i) = images
                .iter()
                .find(|i| i.manifest_digest == d || i.index_digest == d || i.config_digest == d)
            {
                return Ok(i.clone());
            }
            return Err(not_found());
        }
        // 4. An id prefix.
        if !hex.is_empty()
            && hex.len() < 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let mut ids: Vec<&Image> = images
                .iter()
                .filter(|i| i.config_digest.hex().starts_with(hex))
                .collect();
            ids.sort_by(|a, b| a.config_digest.cmp(&b.config_digest));
            let mut distinct: Vec<String> = ids
                .iter()
                .map(|i| i.config_digest.short().to_owned())
                .collect();
            distinct.dedup();
            return match (ids.first(), distinct.len()) {
                (Some(i), 1) => Ok((*i).clone()),
                (None, _) => Err(not_found()),
                _ => Err(StoreError::Ambiguous {
                    input: input.into(),
                    candidates: distinct,
                }),
            };
        }
        Err(not_found())
    }

    /// Store a layer tar blob given its compressed bytes' reader (already compressed),
    /// for callers that have one; same contract as [`Store::put_blob`].
    pub fn put_layer(&self, reader: impl std::io::Read, media_type: &str) -> Result<LayerRef> {
        let BlobInfo { digest, size } = self.put_blob(reader, None)?;
        Ok(LayerRef {
            media_type: media_type.into(),
            digest,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert!(
            rfc3339(u64::MAX).starts_with("9999-"),
            "{}",
            rfc3339(u64::MAX)
        );
        assert!(now_rfc3339().ends_with('Z') && !now_rfc3339().contains('.'));
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        (d, s)
    }

    /// An image with one fake layer; `salt` makes configs differ.
    fn image(s: &Store, salt: &str) -> (Digest, Digest) {
        let layer = s
            .put_blob_bytes(format!("layer {salt}").as_bytes())
            .unwrap();
        let diff = Digest::of(salt.as_bytes());
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Env": [format!("SALT={salt}")]},
            "rootfs": {"type": "layers", "diff_ids": [diff]},
        });
        let bytes = serde_json::to_vec(&config).unwrap();
        let m = s
            .put_image_raw(
                &bytes,
                &[LayerRef {
                    media_type: OCI_LAYER_GZIP.into(),
                    digest: layer.digest,
                    size: layer.size,
                }],
            )
            .unwrap();
        (m, Digest::of(&bytes))
    }

    #[test]
    fn tag_resolve_by_every_handle() {
        let (_d, s) = store();
        let (m, id) = image(&s, "a");
        s.tag("busybox", &m).unwrap();
        s.tag("localhost:5000/x:1", &m).unwrap();
        for input in [
            "busybox".to_owned(),
            "busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
            "localhost:5000/x:1".into(),
            id.to_string(),
            id.hex().into(),
            id.hex()[..5].into(),
            m.to_string(),
            format!("busybox@{m}"),
        ] {
            assert_eq!(s.resolve(&input).unwrap().id(), &id, "{input}");
        }
        assert!(matches!(
            s.resolve("nope"),
            Err(StoreError::ImageNotFound { .. })
        ));
        assert!(matches!(
            s.resolve("busybox:2"),
            Err(StoreError::ImageNotFound { .. })
        ));
        let idx = s.read_index().unwrap();
        let names: Vec<_> = idx.manifests.iter().filter_map(|e| e.ref_name()).collect();
        assert_eq!(names, ["busybox", "localhost:5000/x:1"]);
    }

    #[test]
    fn a_name_moves_and_the_old_image_stays_unnamed() {
        let (_d, s) = store();
        let (m1, id1) = image(&s, "one");
        let (m2, _) = image(&s, "two");
        s.tag("app", &m1).unwrap();
        s.tag("app", &m2).unwrap();
        let imgs = s.list_images().unwrap();
        assert_eq!(imgs.len(), 2);
        let old = imgs.iter().find(|i| i.id() == &id1).unwrap();
        assert!(old.names.is_empty());
        assert_eq!(s.resolve("app").unwrap().manifest_digest, m2);
    }

    #[test]
    fn ambiguous_prefix_lists_candidates() {
        let (_d, s) = store();
        let (_, first) = image(&s, "0");
        let mut n = 1;
        loop {
            let (_, id) = image(&s, &n.to_string());
            if id.hex()[..1] == first.hex()[..1] {
                break;
            }
            n += 1;
        }
        let e = s.resolve(&first.hex()[..1]).unwrap_err();
        assert!(
            matches!(e, StoreError::Ambiguous { ref candidates, .. } if candidates.len() >= 2),
            "{e:?}"
        );
    }

    #[test]
    fn remove_like_docker_rmi() {
        let (_d, s) = store();
        let (m, id) = image(&s, "x");
        s.tag("a", &m).unwrap();
        s.tag("b", &m).unwrap();
        assert!(matches!(
            s.remove_image(id.hex(), false),
            Err(StoreError::ImageHasNames { .. })
        ));
        let r = s.remove_image("a", false).unwrap();
        assert_eq!((r.untagged, r.deleted.len()), (vec!["a".to_owned()], 0));
        let r = s.remove_image("b", false).unwrap();
        assert_eq!(r.deleted, vec![id]);
        assert!(s.list_images().unwrap().is_empty());
        // gc now takes all three blobs; fsck stays clean.
        let g = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(g.blobs_removed.len(), 3);
        assert!(s.fsck().unwrap().is_clean());
    }

    #[test]
    fn fsck_reports_corruption_and_missing_blobs() {
        let (_d, s) = store();
        let (m, _) = image(&s, "f");
        s.tag("f", &m).unwrap();
        assert!(s.fsck().unwrap().is_clean());
        let img = s.resolve("f").unwrap();
        let layer = &img.layers().unwrap()[0];
        std::fs::write(s.blob_path(&layer.digest), b"tampered").unwrap();
        let r = s.fsck().unwrap();
        assert!(
            r.problems
                .iter()
                .any(|p| p.object.contains(&layer.digest.to_string())),
            "{r:?}"
        );
        std::fs::remove_file(s.blob_path(&layer.digest)).unwrap();
        let r = s.fsck().unwrap();
        assert!(
            r.problems.iter().any(|p| p.what.contains("missing")),
            "{r:?}"
        );
    }

    #[test]
    fn put_manifest_requires_its_blobs() {
        let (_d, s) = store();
        let missing = Digest::of(b"absent");
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": missing, "size": 1}, "layers": [],
        });
        let e = s
            .put_manifest(&serde_json::to_vec(&m).unwrap(), OCI_MANIFEST)
            .unwrap_err();
        assert!(matches!(e, StoreError::BlobMissing { .. }));
        assert!(s.read_index().unwrap().manifests.is_empty());
    }

    #[test]
    fn gc_removes_debris_of_dead_processes_only() {
        let (_d, s) = store();
        let tmp = s.layout().tmp();
        // pid 0x7fffffff does not exist; our own pid does.
        let host = crate::atomic::host_tag();
        std::fs::create_dir_all(tmp.join(format!("2147483647.{host}-1-0-layer/diff/d"))).unwrap();
        std::fs::write(
            tmp.join(format!("{}.{host}-1-0-blob", std::process::id())),
            b"mine",
        )
        .unwrap();
        // Another host's entry (a shared store): young, so kept.
        std::fs::write(tmp.join("2147483647.00000000-1-0-blob"), b"theirs").unwrap();
        // Not ours at all: removed.
        std::fs::write(tmp.join("junk"), b"?").unwrap();
        let g = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(g.temp_removed, 2);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 2);
    }
}
