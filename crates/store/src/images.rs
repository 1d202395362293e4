//! Images: the [`Image`] model (manifest, config, names) and what the image files share:
//! media types, chain ids, digest parsing, index times. The work on images lives beside
//! this file, one job each: images/write.rs stores manifests and images and names them
//! (tag, untag), images/read.rs loads, lists and resolves what a user typed,
//! images/remove.rs removes images (docker rmi).
//!
//! Identity: the image id is the config digest (docker's); a user names an image by
//! name[:tag] (see names.rs), by a full id (`sha256:…` or 64 hex), by a unique id prefix,
//! by a manifest digest (`sha256:…`), or by `name@sha256:<manifest digest>`.
//! Never: unpacks layers (layers.rs), deletes blobs (gc.rs).

mod read;
mod remove;
pub(crate) mod write;

#[cfg(test)]
mod tests;

use imago_oci::spec::{ImageConfiguration, ImageManifest};
use imago_oci::{BlobRef, Digest};

use crate::error::{Result, StoreError};
use crate::names::ImageName;

pub use remove::Removed;

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
    /// The shared read-only store it was found in; `None`: the user's own store.
    pub origin: Option<std::path::PathBuf>,
}

impl Image {
    /// The image id (config digest), docker's identity.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// The layers, bottom to top.
    pub fn layers(&self) -> Result<Vec<BlobRef>> {
        self.manifest
            .layers()
            .iter()
            .map(|l| {
                Ok(BlobRef {
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
