//! Image archives: write and read docker-archive (`docker save` / `podman save`) and
//! oci-archive (a tar of an OCI image layout), streaming — a layer is never held in
//! memory. Decoupled from the store by two traits: [`BlobSource`] (read blobs to save)
//! and [`BlobSink`] (store blobs while loading).
//!
//! Written docker-archive: `<config-hex>.json`, one UNCOMPRESSED `<diff-id-hex>.tar` per
//! layer (what `docker load`/`podman load` expect; compressed blobs are decompressed
//! twice, once to learn the size and verify the diff id, once to write), and
//! `manifest.json` (`Config`, `RepoTags` as full normalised names — podman names short
//! ones `localhost/…`, docker accepts both —, `Layers`). No legacy
//! `<id>/json` dirs and no `repositories` file (only pre-1.10 docker needs them).
//! Written oci-archive: `oci-layout`, `index.json` (one descriptor per name, the full
//! normalised reference in `org.opencontainers.image.ref.name`), `blobs/sha256/*` as they
//! are in the store. Entries have mtime 0, uid/gid 0: the same images give the same bytes.
//!
//! Read: the format is detected by content (`index.json` → OCI, else `manifest.json` →
//! docker), in any entry order. Every file is streamed into the sink as it comes;
//! `blobs/sha256/<hex>` are verified against their name; uncompressed docker-archive
//! layers are (optionally) compressed on the way in, and their diff ids are checked
//! against the config. A docker-archive image becomes an OCI manifest written to the sink.
//!
//! Never: knows the store's layout, tags images (the caller gets the names), or unpacks
//! layers.

use std::collections::BTreeMap;
use std::io::{self, Read};

use crate::compress::{Compression, Level};
use crate::digest::{Digest, VerifyingReader};
use crate::reference::Reference;

mod dir_blobs;
mod read;
mod write;

pub use dir_blobs::DirBlobs;
pub use read::read_archive;
pub use write::write_archive;

/// Where [`write_archive`] reads blobs from (the store implements it).
pub trait BlobSource {
    /// Open a blob and give its size. A missing blob is `io::ErrorKind::NotFound`.
    fn open_blob(&self, digest: &Digest) -> io::Result<(Box<dyn Read + '_>, u64)>;
}

/// Where [`read_archive`] puts blobs (the store implements it).
pub trait BlobSink {
    /// Store the bytes of `r` as a blob and return its digest and size. With `expected`,
    /// the content must hash to it, else an `InvalidData` error and nothing is stored.
    /// Idempotent: Ok means the blob is present, not that this call wrote it.
    fn put_blob(
        &mut self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> io::Result<(Digest, u64)>;
}

/// The two archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ArchiveFormat {
    DockerArchive,
    OciArchive,
}

impl std::str::FromStr for ArchiveFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker-archive" | "docker" => Ok(Self::DockerArchive),
            "oci-archive" | "oci" => Ok(Self::OciArchive),
            _ => Err(format!(
                "unknown archive format `{s}`: use docker-archive or oci-archive"
            )),
        }
    }
}

/// One image to save: its manifest (a single-platform manifest, OCI or Docker) and the
/// names to record (none is fine).
#[derive(Debug, Clone)]
pub struct SaveImage {
    pub manifest: Digest,
    pub names: Vec<Reference>,
}

/// What [`write_archive`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SaveStats {
    pub images: u64,
    pub blobs: u64,
    /// Bytes of blob content written (uncompressed layer bytes for docker-archive).
    pub bytes: u64,
}

/// How [`read_archive`] treats what it reads.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compress uncompressed docker-archive layers on the way into the sink (default
    /// gzip, fast level). `None` keeps them as uncompressed OCI layers. OCI archive
    /// blobs are always kept as they are (their digests are referenced).
    pub compress_layers: Option<(Compression, Level)>,
    /// Largest JSON file kept in memory (manifest.json, index.json, configs read back).
    pub max_json: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            compress_layers: Some((Compression::Gzip, Level::Fast)),
            max_json: 16 << 20,
        }
    }
}

/// An image found in an archive, its blobs all in the sink.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadedImage {
    pub format: ArchiveFormat,
    /// The manifest (or index, for a multi-platform oci-archive entry).
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// The names as the archive gives them (`RepoTags`, or `ref.name` annotations, which
    /// may be a bare tag like `latest`): the caller decides how to normalise them.
    pub names: Vec<String>,
}

/// An archive could not be written or read; variants name the file or blob.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("read image archive (at `{at}`)")]
    Read {
        at: String,
        #[source]
        source: io::Error,
    },
    #[error("write image archive (entry `{entry}`)")]
    Write {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "not an image archive: it has neither index.json (oci-archive) nor manifest.json \
         (docker-archive)"
    )]
    NotAnArchive,
    #[error("parse `{file}` in the image archive")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{file}` in the image archive is larger than {limit} bytes")]
    TooLarge { file: String, limit: u64 },
    #[error("image archive lacks `{file}` (needed by {needed_by})")]
    Missing { file: String, needed_by: String },
    #[error("store `{file}` from the image archive")]
    Put {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("read blob {digest} ({what})")]
    Blob {
        digest: Digest,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("blob {expected} has changed: its content hashes to {actual}")]
    Corrupt { expected: Digest, actual: Digest },
    #[error("layer `{layer}` does not match its diff id: expected {expected}, got {actual}")]
    DiffId {
        layer: String,
        expected: String,
        actual: Digest,
    },
    #[error("{0}")]
    Unsupported(String),
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

// ---------------------------------------------------------------------------------------
// Minimal JSON views (only the fields we need; unknown fields are kept in the raw bytes).

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct Desc {
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, serde::Deserialize)]
struct ManifestView {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    config: Option<Desc>,
    #[serde(default)]
    layers: Vec<Desc>,
    manifests: Option<Vec<Desc>>,
}

#[derive(Debug, serde::Deserialize)]
struct IndexView {
    #[serde(default)]
    manifests: Vec<Desc>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct RootFsView {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct ConfigView {
    #[serde(default)]
    rootfs: RootFsView,
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct DockerManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(serde::Serialize)]
struct OciManifestOut<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Desc,
    layers: Vec<Desc>,
}

#[derive(serde::Serialize)]
struct OciIndexOut {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<Desc>,
}

fn parse_digest(s: &str, file: &str) -> Result<Digest, ArchiveError> {
    s.parse().map_err(|e: crate::digest::DigestError| {
        ArchiveError::Unsupported(format!("`{file}` holds an unusable digest: {e}"))
    })
}

type Verified<'a> = VerifyingReader<Box<dyn Read + 'a>>;

fn open_verified<'a>(
    src: &'a dyn BlobSource,
    d: &Digest,
    what: &str,
) -> Result<(Verified<'a>, u64), ArchiveError> {
    let (r, size) = src.open_blob(d).map_err(|e| ArchiveError::Blob {
        digest: d.clone(),
        what: what.to_owned(),
        source: e,
    })?;
    Ok((VerifyingReader::new(r, d.clone(), Some(size)), size))
}

fn read_small(
    src: &dyn BlobSource,
    d: &Digest,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, ArchiveError> {
    let (r, size) = open_verified(src, d, what)?;
    if size > limit {
        return Err(ArchiveError::TooLarge {
            file: format!("{what} {d}"),
            limit,
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    let mut r = r;
    r.read_to_end(&mut buf).map_err(|e| ArchiveError::Blob {
        digest: d.clone(),
        what: what.to_owned(),
        source: e,
    })?;
    Ok(buf)
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], file: &str) -> Result<T, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|e| ArchiveError::Json {
        file: file.to_owned(),
        source: e,
    })
}
