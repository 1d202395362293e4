//! The store's error type: one variant per failed step, the object in fields, the cause
//! in `#[source]`, and a `hint()` telling the user what to do.
//! Never: prints anything (the bins report errors through imago_cli).

use std::path::PathBuf;

use imago_oci::Digest;

/// Everything the store can fail at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} `{}`", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lock `{}`", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not an OCI image layout: {why}", root.display())]
    NotALayout { root: PathBuf, why: String },
    #[error("blob {digest} is missing from the store")]
    BlobMissing { digest: Digest },
    #[error("blob {expected} is corrupt: its content hashes to {actual} ({size} bytes)")]
    BlobCorrupt {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("blob {digest} has size {actual}, expected {expected}")]
    BlobSize {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("parse {what} {digest}")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("parse `{}`", path.display())]
    IndexJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("image `{input}` not found")]
    ImageNotFound { input: String },
    #[error("image id prefix `{input}` is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        input: String,
        candidates: Vec<String>,
    },
    #[error("invalid image name `{input}`: {why}")]
    InvalidName { input: String, why: String },
    #[error("manifest {digest} has unsupported media type `{media_type}`")]
    UnsupportedManifest { digest: Digest, media_type: String },
    #[error("image {id} is referenced by {} names ({}); remove them one by one or force", names.len(), names.join(", "))]
    ImageHasNames { id: String, names: Vec<String> },
    #[error(
        "the unpacked layers of this store use {existing} ownership, this run uses {requested}"
    )]
    OwnerModeMismatch {
        existing: &'static str,
        requested: &'static str,
    },
    #[error("unpack layer {digest} (chain id {chain_id})")]
    Unpack {
        digest: Digest,
        chain_id: Digest,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{what}")]
    Other { what: String },
}

impl StoreError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Lock { .. } => Some(
                "is the store root on NFS or another file system without flock()? use a local directory (--root)".into(),
            ),
            StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => Some(
                "the store belongs to another user? pick your own with --root or $IMAGO_ROOT".into(),
            ),
            StoreError::BlobCorrupt { .. } | StoreError::BlobSize { .. } => {
                Some("run `iimage fsck`; remove the image and pull/load it again".into())
            }
            StoreError::BlobMissing { .. } => Some("run `iimage fsck`; pull or load the image again".into()),
            StoreError::ImageNotFound { .. } => Some("`iimage ls` lists the images in this store".into()),
            StoreError::Ambiguous { .. } => Some("give more digits of the image id".into()),
            StoreError::ImageHasNames { .. } => Some("pass -f to remove the image and all its names".into()),
            StoreError::OwnerModeMismatch { .. } => Some(
                "run `iimage gc --layers` to drop every unpacked layer (they are unpacked again when needed)".into(),
            ),
            StoreError::NotALayout { .. } => Some("point --root at an empty directory or an imago store".into()),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Short for `Result<T, StoreError>`.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// `.ctx("open", path)` on io results.
pub(crate) trait IoCtx<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoCtx<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| StoreError::io(op, path, e))
    }
}
