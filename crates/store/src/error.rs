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
    /// The store's file system is full (ENOSPC) or the user's disk quota is used up
    /// (EDQUOT): said apart from other io errors because the fix is the user's (free
    /// space, move the store), with what is free and, where the caller knows it, what
    /// the write needed.
    #[error("no space left on the store's file system: {op} `{}`{}", path.display(), space_note(*needed, *available))]
    NoSpace {
        op: &'static str,
        path: PathBuf,
        /// Bytes the write needed in all (the blob's size), when known.
        needed: Option<u64>,
        /// Bytes free for this user on that file system when the write failed.
        available: Option<u64>,
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
    /// Incoming content (a pull, a load, an expected digest) that does not hash to the
    /// digest it was announced with. Nothing was stored.
    #[error("blob {expected} is corrupt: its content hashes to {actual} ({size} bytes)")]
    BlobCorrupt {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    /// A stored blob whose content no longer hashes to its name (damaged on disk).
    #[error("blob {digest} in the store is damaged: its content hashes to {actual} ({size} bytes), not to its name; run `iimage fsck`")]
    BlobDamaged {
        digest: Digest,
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
    /// A JSON file of the store other than index.json and blobs (`layer.json`).
    #[error("parse `{}`", path.display())]
    FileJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// index.json is missing (while blobs exist), unreadable or not a valid image
    /// index: distinct from [`StoreError::ImageNotFound`], which only a readable index
    /// can tell.
    #[error("the store's index `{}` is damaged: {why}; run `iimage fsck`", path.display())]
    IndexDamaged { path: PathBuf, why: String },
    /// An image whose name (or digest) index.json has, but whose manifest or config
    /// cannot be read.
    #[error("image `{input}` is damaged; run `iimage fsck`")]
    ImageDamaged {
        input: String,
        #[source]
        source: Box<StoreError>,
    },
    /// gc found damage that makes it blind to what some images reference; it deleted
    /// nothing.
    #[error("the store is damaged, so gc would delete blobs the damaged images still reference ({}); run `iimage fsck`", problems.join("; "))]
    StoreDamaged { problems: Vec<String> },
    /// gc waited this long for writers that keep the store (builds, imports, loads,
    /// pulls) and gave up; it deleted nothing.
    #[error("the store is busy: writers (builds, imports, loads, pulls) still hold it after {} s", waited.as_secs())]
    StoreBusy { waited: std::time::Duration },
    /// Another process doing the same job (pull an image, unpack a layer) made no
    /// progress for longer than we were willing to wait.
    #[error("gave up waiting for another imago process that is still {job}: no progress in {} s", waited.as_secs())]
    JobWait {
        job: String,
        waited: std::time::Duration,
    },
    /// A bad setting (environment variable, config key) the store reads.
    /// `setting` names the value and where it came from (``additional store `x` from
    /// $IMAGO_ADDITIONAL_STORES``).
    #[error("{setting}: {why}")]
    Setting { setting: String, why: String },
    /// A write asked of an image that lives in a shared read-only store.
    #[error("image `{input}` is in the shared read-only store `{}`: imago never changes a shared store", store.display())]
    SharedReadOnly { input: String, store: PathBuf },
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
    /// A directory given to import could not be packed into a layer tar.
    #[error("pack directory `{}`", path.display())]
    PackDir {
        path: PathBuf,
        #[source]
        source: imago_oci::layer::LayerError,
    },
    #[error("export {id}")]
    Export {
        id: String,
        #[source]
        source: imago_oci::layer::LayerError,
    },
    /// Writing (save) or reading (load) an image archive failed.
    #[error("{op} image archive")]
    Archive {
        op: &'static str,
        #[source]
        source: imago_oci::archive::ArchiveError,
    },
    #[error("{what}")]
    Other { what: String },
}

impl StoreError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::NoSpace { .. } => Some(
                "free space on that file system (`iimage gc` removes what no image uses), or keep the store on a bigger one (--root, $IMAGO_ROOT)".into(),
            ),
            StoreError::Lock { .. } => Some(
                "is the store root on NFS or another file system without flock()? use a local directory (--root)".into(),
            ),
            StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => Some(
                "the store belongs to another user? pick your own with --root or $IMAGO_ROOT".into(),
            ),
            StoreError::BlobCorrupt { .. } | StoreError::BlobSize { .. } => {
                Some("the source sent other content than it announced: pull or load it again".into())
            }
            StoreError::BlobDamaged { .. } => {
                Some("remove the images that use it (`iimage rm`), then pull or load them again".into())
            }
            StoreError::BlobMissing { .. } => Some("run `iimage fsck`; pull or load the image again".into()),
            StoreError::IndexDamaged { .. } => Some(
                "restore index.json from a backup, or start a new store (--root); `iimage fsck` lists what the blobs still hold".into(),
            ),
            StoreError::ImageDamaged { .. } => Some("remove the image (`iimage rm`), then pull or load it again".into()),
            StoreError::StoreDamaged { .. } => Some(
                "remove the damaged images (`iimage rm`) or load/pull them again, then gc; `iimage gc --force` collects anyway".into(),
            ),
            StoreError::StoreBusy { .. } => Some(
                "run gc again when they finish, or let it wait longer: `iimage gc --wait SECONDS`".into(),
            ),
            StoreError::ImageNotFound { .. } => Some("`iimage ls` lists the images in this store".into()),
            StoreError::JobWait { .. } => Some(
                "it may still finish: run again later, or wait longer with IMAGO_PULL_WAIT=SECONDS".into(),
            ),
            StoreError::SharedReadOnly { .. } => Some(
                "ask the store's owner to remove it, or stop using that store (--additional-store, IMAGO_ADDITIONAL_STORES, `additional_stores` in the config file)".into(),
            ),
            StoreError::Ambiguous { .. } => Some("give more digits of the image id".into()),
            StoreError::ImageHasNames { .. } => Some("pass -f to remove the image and all its names".into()),
            StoreError::OwnerModeMismatch { .. } => Some(
                "run `iimage gc --layers` to drop every unpacked layer (they are unpacked again when needed)".into(),
            ),
            StoreError::NotALayout { .. } => Some("point --root at an empty directory or an imago store".into()),
            _ => None,
        }
    }

    /// An io error on `path` during `op`; a full file system (ENOSPC, EDQUOT) becomes
    /// [`StoreError::NoSpace`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if is_no_space(&source) {
            let available = free_bytes(&path);
            return StoreError::NoSpace {
                op,
                path,
                needed: None,
                available,
                source,
            };
        }
        StoreError::Io { op, path, source }
    }

    /// Record what the failed write needed in all (a blob's size), on a
    /// [`StoreError::NoSpace`]; other errors pass unchanged.
    pub fn with_needed(self, bytes: u64) -> Self {
        match self {
            StoreError::NoSpace {
                op,
                path,
                available,
                source,
                ..
            } => StoreError::NoSpace {
                op,
                path,
                needed: Some(bytes),
                available,
                source,
            },
            other => other,
        }
    }
}

/// The full-file-system io error somewhere in `e`'s chain of causes (an error that
/// wraps it, e.g. a layer packer's, would hide it from [`StoreError::io`]).
pub fn no_space_in(e: &(dyn std::error::Error + 'static)) -> Option<std::io::Error> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if is_no_space(io) {
                return io.raw_os_error().map(std::io::Error::from_raw_os_error);
            }
        }
        cur = c.source();
    }
    None
}

/// ENOSPC or EDQUOT.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(c) if c == rustix::io::Errno::NOSPC.raw_os_error() || c == rustix::io::Errno::DQUOT.raw_os_error()
    )
}

/// Bytes free for unprivileged writers on the file system of `path` (or of its nearest
/// existing parent: the path itself may be a temp file that was never made).
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let st = path.ancestors().find_map(|p| rustix::fs::statvfs(p).ok())?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

fn space_note(needed: Option<u64>, available: Option<u64>) -> String {
    match (needed, available) {
        (Some(n), Some(a)) => format!(" ({n} bytes needed, {a} free)"),
        (Some(n), None) => format!(" ({n} bytes needed)"),
        (None, Some(a)) => format!(" ({a} bytes free)"),
        (None, None) => String::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_system_names_the_path_and_the_bytes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("imago/tmp/x-blob");
        let full = || std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
        let e = StoreError::io("write", &p, full()).with_needed(1234);
        let text = e.to_string();
        assert!(
            matches!(
                e,
                StoreError::NoSpace {
                    needed: Some(1234),
                    available: Some(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(text.contains("no space left") && text.contains(&p.display().to_string()));
        assert!(text.contains("1234 bytes needed"), "{text}");
        assert!(e.hint().is_some());
        // Other io errors stay what they were, and so does their needed size.
        let other = StoreError::io("write", &p, std::io::ErrorKind::Other.into()).with_needed(1);
        assert!(matches!(other, StoreError::Io { .. }), "{other:?}");
        // Found under a wrapper (a layer packer's error).
        let wrapped = StoreError::Other { what: "x".into() };
        assert!(no_space_in(&wrapped).is_none());
        let io = std::io::Error::other(StoreError::io("write", &p, full()));
        assert!(no_space_in(&io).is_some());
    }
}
