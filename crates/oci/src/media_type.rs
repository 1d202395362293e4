//! Media types of OCI and Docker (schema 2) images, and what they say about a blob.
//!
//! Owns: the media type strings and their classification (manifest, index, config, layer
//! and its compression). Never: parses the blobs themselves.

use crate::compress::Compression;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Uncompressed Docker layers (containerd/buildkit write them; docker's registry docs do
/// not list them): read, never written.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// containerd's zstd Docker layer type: read, never written.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Layers (Windows base layers) that registries do not serve; we refuse to pull them.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1 (signed): obsolete; recognised only to refuse it by name.
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// The `Accept` header value for a registry manifest request (indexes and manifests,
/// OCI and Docker).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Which family of media types an image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestFormat {
    Oci,
    Docker,
}

impl ManifestFormat {
    pub fn manifest(self) -> &'static str {
        match self {
            Self::Oci => OCI_MANIFEST,
            Self::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn index(self) -> &'static str {
        match self {
            Self::Oci => OCI_INDEX,
            Self::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    pub fn config(self) -> &'static str {
        match self {
            Self::Oci => OCI_CONFIG,
            Self::Docker => DOCKER_CONFIG,
        }
    }

    /// The layer media type for a compression. Docker schema 2 has only gzip layers, so
    /// `None` there when asked for another.
    pub fn layer(self, c: Compression) -> Option<&'static str> {
        match (self, c) {
            (Self::Oci, Compression::None) => Some(OCI_LAYER_TAR),
            (Self::Oci, Compression::Gzip) => Some(OCI_LAYER_GZIP),
            (Self::Oci, Compression::Zstd) => Some(OCI_LAYER_ZSTD),
            (Self::Docker, Compression::Gzip) => Some(DOCKER_LAYER_GZIP),
            (Self::Docker, _) => None,
        }
    }

    /// The format a manifest or index media type belongs to.
    pub fn of(media_type: &str) -> Option<Self> {
        match media_type {
            OCI_MANIFEST | OCI_INDEX => Some(Self::Oci),
            DOCKER_MANIFEST | DOCKER_MANIFEST_LIST => Some(Self::Docker),
            _ => None,
        }
    }
}

/// An image manifest (OCI or Docker schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// An index / manifest list (OCI or Docker).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// An image configuration (OCI or Docker).
pub fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

/// Docker schema 1 manifests, which we refuse.
pub fn is_schema1(media_type: &str) -> bool {
    matches!(media_type, DOCKER_MANIFEST_V1 | DOCKER_MANIFEST_V1_SIGNED)
}

/// A layer (any compression, distributable or not, OCI or Docker, foreign included).
pub fn is_layer(media_type: &str) -> bool {
    layer_compression(media_type).is_some()
}

/// Layers the registry does not serve (Docker foreign, OCI non-distributable).
pub fn is_foreign_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        DOCKER_LAYER_FOREIGN_GZIP
            | OCI_LAYER_NONDIST_TAR
            | OCI_LAYER_NONDIST_GZIP
            | OCI_LAYER_NONDIST_ZSTD
    )
}

/// The compression a layer media type announces; `None` for anything not a layer.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR | DOCKER_LAYER_TAR => Some(Compression::None),
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
            Some(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD | DOCKER_LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// The equivalent layer type in the other family (Docker gzip ↔ OCI gzip), used when
/// converting an image between formats. `None` when there is no equivalent.
pub fn convert_layer(media_type: &str, to: ManifestFormat) -> Option<&'static str> {
    let c = layer_compression(media_type)?;
    if is_foreign_layer(media_type) {
        return match (to, c) {
            (ManifestFormat::Docker, Compression::Gzip) => Some(DOCKER_LAYER_FOREIGN_GZIP),
            (ManifestFormat::Oci, Compression::None) => Some(OCI_LAYER_NONDIST_TAR),
            (ManifestFormat::Oci, Compression::Gzip) => Some(OCI_LAYER_NONDIST_GZIP),
            (ManifestFormat::Oci, Compression::Zstd) => Some(OCI_LAYER_NONDIST_ZSTD),
            _ => None,
        };
    }
    to.layer(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert!(is_manifest(OCI_MANIFEST) && is_manifest(DOCKER_MANIFEST));
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_MANIFEST_LIST));
        assert!(!is_manifest(OCI_INDEX) && !is_index(OCI_MANIFEST));
        assert!(is_config(DOCKER_CONFIG) && is_config(OCI_CONFIG));
        assert!(is_schema1(DOCKER_MANIFEST_V1_SIGNED));
        assert_eq!(layer_compression(OCI_LAYER_ZSTD), Some(Compression::Zstd));
        assert_eq!(
            layer_compression(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(layer_compression(OCI_LAYER_TAR), Some(Compression::None));
        assert_eq!(layer_compression(OCI_CONFIG), None);
        assert_eq!(layer_compression(DOCKER_LAYER_TAR), Some(Compression::None));
        assert_eq!(
            layer_compression(DOCKER_LAYER_ZSTD),
            Some(Compression::Zstd)
        );
        assert!(is_foreign_layer(DOCKER_LAYER_FOREIGN_GZIP) && is_layer(DOCKER_LAYER_FOREIGN_GZIP));
        assert!(!is_layer("text/plain"));
    }

    #[test]
    fn formats_and_conversion() {
        assert_eq!(
            ManifestFormat::of(DOCKER_MANIFEST),
            Some(ManifestFormat::Docker)
        );
        assert_eq!(ManifestFormat::Docker.layer(Compression::Zstd), None);
        assert_eq!(
            convert_layer(OCI_LAYER_GZIP, ManifestFormat::Docker),
            Some(DOCKER_LAYER_GZIP)
        );
        assert_eq!(
            convert_layer(DOCKER_LAYER_GZIP, ManifestFormat::Oci),
            Some(OCI_LAYER_GZIP)
        );
        assert_eq!(convert_layer(OCI_LAYER_TAR, ManifestFormat::Docker), None);
        assert_eq!(
            convert_layer(DOCKER_LAYER_FOREIGN_GZIP, ManifestFormat::Oci),
            Some(OCI_LAYER_NONDIST_GZIP)
        );
        // The strings agree with oci-spec's.
        assert_eq!(
            oci_spec::image::MediaType::ImageLayerZstd.to_string(),
            OCI_LAYER_ZSTD
        );
        assert_eq!(
            oci_spec::image::MediaType::ImageIndex.to_string(),
            OCI_INDEX
        );
    }
}
