//! Reading images: loading the image behind an index entry (an image index followed to
//! the host's platform), listing every image, and resolving what a user typed (name,
//! name@digest, id, id prefix, manifest digest).
//!
//! Owns: the resolution order and the damaged-versus-missing distinction. Never: writes
//! index.json or blobs.

use imago_oci::spec::{ImageConfiguration, ImageManifest};
use imago_oci::Digest;

use super::{is_index_type, is_manifest_type, parse_digest, Image, OCI_MANIFEST};
use crate::error::{Result, StoreError};
use crate::index::IndexFile;
use crate::names::{self, ImageName};
use crate::store::Store;

impl Store {
    /// Load the image behind one index entry (following an image index to the host's
    /// platform).
    pub(super) fn load_image(
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
            origin: None,
        })
    }

    /// Every image in index.json, one per index digest, with its names, then the images
    /// of the shared stores this one does not have (their [`Image::origin`] set). Entries
    /// whose blobs are missing or unreadable are skipped with a warning (`iimage fsck`
    /// reports them).
    pub fn list_images(&self) -> Result<Vec<Image>> {
        let mut out = self.list_images_here()?;
        for s in self.shared_stores() {
            for mut img in s.list_images_here()? {
                // A name an earlier store has is shadowed (resolve finds that one first);
                // an image listed already is listed again only for names it adds.
                let had_names = !img.names.is_empty();
                img.names.retain(|n| {
                    !out.iter()
                        .any(|i| i.names.iter().any(|m| m.ref_name == n.ref_name))
                });
                let listed = out.iter().any(|i| i.index_digest == img.index_digest);
                if img.names.is_empty() && (had_names || listed) {
                    continue;
                }
                img.origin = Some(s.root().to_path_buf());
                out.push(img);
            }
        }
        Ok(out)
    }

    /// The images of this store's own index.json only.
    pub(crate) fn list_images_here(&self) -> Result<Vec<Image>> {
        let idx = self.read_index()?;
        self.images_of(&idx)
    }

    /// Find the image `input` names ([`Store::resolve`]'s forms) in this store, else in
    /// the shared stores in order (the image's [`Image::origin`] says which).
    pub fn resolve(&self, input: &str) -> Result<Image> {
        let missing = match self.resolve_here(input) {
            Err(e @ StoreError::ImageNotFound { .. }) => e,
            found_or_failed => return found_or_failed,
        };
        for s in self.shared_stores() {
            match s.resolve_here(input) {
                Ok(mut img) => {
                    img.origin = Some(s.root().to_path_buf());
                    return Ok(img);
                }
                Err(StoreError::ImageNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(missing)
    }

    pub(crate) fn images_of(&self, idx: &IndexFile) -> Result<Vec<Image>> {
        let mut out = vec![];
        for (d, loaded) in self.load_grouped(idx) {
            match loaded {
                Ok(i) => out.push(i),
                Err(e) => tracing::warn!("skipping image {d}: {e}"),
            }
        }
        Ok(out)
    }

    /// Each image of `idx` (one per index digest, with all its names) as it loads or
    /// fails to: the caller decides whether a failure is worth a warning.
    fn load_grouped(&self, idx: &IndexFile) -> Vec<(Digest, Result<Image>)> {
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
        (groups.into_iter())
            .map(|(d, mt, mut names)| {
                names.sort_by(|a, b| a.ref_name.cmp(&b.ref_name));
                names.dedup();
                let loaded = self.load_image(&d, &mt, names);
                (d, loaded)
            })
            .collect()
    }

    /// Step 1 of [`Self::resolve_here`] without reading the whole store: the image of
    /// the first index entry (by its digest's first place in the index, as
    /// [`Self::images_of`] orders them) whose name matches `input`, loaded alone with all
    /// its names. None when no name matches or that image does not load: the full
    /// look-up then decides, and reports damage (warned about there, once). A start with
    /// a name otherwise read every manifest and config of the store.
    fn named_here(&self, idx: &IndexFile, input: &str) -> Option<Image> {
        let named: std::collections::HashSet<&Digest> = (idx.manifests.iter())
            .filter(|e| e.ref_name().is_some_and(|n| names::matches(n, input)))
            .map(|e| &e.digest)
            .collect();
        let first = idx
            .manifests
            .iter()
            .map(|e| &e.digest)
            .find(|d| named.contains(d))?;
        let alone = IndexFile {
            manifests: (idx.manifests.iter())
                .filter(|e| &e.digest == first)
                .cloned()
                .collect(),
            ..idx.clone()
        };
        let (_, loaded) = self.load_grouped(&alone).into_iter().next()?;
        loaded.ok()
    }

    /// Find the image `input` names in this store's own index: name[:tag],
    /// `name@digest`, full id, id prefix (unique, else [`StoreError::Ambiguous`]), or
    /// manifest digest.
    pub(crate) fn resolve_here(&self, input: &str) -> Result<Image> {
        let idx = self.read_index()?;
        if let Some(img) = self.named_here(&idx, input) {
            return Ok(img);
        }
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
}
