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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};

use crate::compress::{self, Compression, Level};
use crate::digest::{Digest, Hasher, HashingReader, VerifyingReader};
use crate::media_type::{self as mt, ManifestFormat};
use crate::reference::Reference;

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

// ---------------------------------------------------------------------------------------
// Writing

/// A tar writer with deterministic headers.
struct TarOut<W: Write> {
    w: W,
    dirs: HashSet<String>,
}

impl<W: Write> TarOut<W> {
    fn header(name: &str, kind: tar::EntryType, size: u64) -> io::Result<tar::Header> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)?;
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h.set_cksum();
        Ok(h)
    }

    fn dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        if self.dirs.insert(name.to_owned()) {
            let werr = |e| ArchiveError::Write {
                entry: name.to_owned(),
                source: e,
            };
            let h = Self::header(name, tar::EntryType::Directory, 0).map_err(werr)?;
            self.w.write_all(h.as_bytes()).map_err(werr)?;
        }
        Ok(())
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
        self.stream(name, data.len() as u64, &mut &data[..])
    }

    /// Write an entry of exactly `size` bytes from `r` (shorter or longer input is an
    /// error: the archive would be corrupt).
    fn stream(&mut self, name: &str, size: u64, r: &mut dyn Read) -> Result<(), ArchiveError> {
        let werr = |e| ArchiveError::Write {
            entry: name.to_owned(),
            source: e,
        };
        let h = Self::header(name, tar::EntryType::Regular, size).map_err(werr)?;
        self.w.write_all(h.as_bytes()).map_err(werr)?;
        let n = io::copy(&mut r.take(size), &mut self.w).map_err(werr)?;
        if n != size {
            return Err(werr(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("content ended after {n} of {size} bytes"),
            )));
        }
        let mut extra = [0u8; 1];
        if r.read(&mut extra).map_err(werr)? != 0 {
            return Err(werr(io::Error::other(format!(
                "content is longer than {size} bytes"
            ))));
        }
        let rem = (size % 512) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; 512][..512 - rem]).map_err(werr)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<W, ArchiveError> {
        let werr = |e| ArchiveError::Write {
            entry: "(end of archive)".into(),
            source: e,
        };
        self.w.write_all(&[0u8; 1024]).map_err(werr)?;
        self.w.flush().map_err(werr)?;
        Ok(self.w)
    }
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

/// Write `images` as an archive of `format` on `w`. On error the output is partial:
/// the caller removes it.
pub fn write_archive<W: Write>(
    w: W,
    format: ArchiveFormat,
    src: &dyn BlobSource,
    images: &[SaveImage],
) -> Result<SaveStats, ArchiveError> {
    let mut out = TarOut {
        w,
        dirs: HashSet::new(),
    };
    let stats = match format {
        ArchiveFormat::OciArchive => write_oci(&mut out, src, images)?,
        ArchiveFormat::DockerArchive => write_docker(&mut out, src, images)?,
    };
    out.finish()?;
    Ok(stats)
}

const JSON_LIMIT: u64 = 16 << 20;

fn write_oci<W: Write>(
    out: &mut TarOut<W>,
    src: &dyn BlobSource,
    images: &[SaveImage],
) -> Result<SaveStats, ArchiveError> {
    let mut stats = SaveStats::default();
    let mut written: HashSet<Digest> = HashSet::new();
    let mut index = Vec::new();
    out.bytes("oci-layout", OCI_LAYOUT)?;
    out.dir("blobs/")?;
    out.dir("blobs/sha256/")?;
    for img in images {
        let raw = read_small(src, &img.manifest, "manifest", JSON_LIMIT)?;
        let m: ManifestView = json(&raw, &format!("manifest {}", img.manifest))?;
        let mut blobs = Vec::new();
        if let Some(children) = &m.manifests {
            // A multi-platform index: its manifests and their blobs go in too.
            for c in children {
                let cd = parse_digest(&c.digest, "index")?;
                let craw = read_small(src, &cd, "manifest", JSON_LIMIT)?;
                let cm: ManifestView = json(&craw, &format!("manifest {cd}"))?;
                blobs.extend(cm.config.iter().chain(&cm.layers).map(|d| d.digest.clone()));
                blobs.push(c.digest.clone());
            }
        } else {
            let Some(config) = &m.config else {
                return Err(ArchiveError::Unsupported(format!(
                    "manifest {} has no config",
                    img.manifest
                )));
            };
            blobs.push(config.digest.clone());
            blobs.extend(m.layers.iter().map(|d| d.digest.clone()));
        }
        blobs.push(img.manifest.to_string());
        for b in blobs {
            let d = parse_digest(&b, &format!("manifest {}", img.manifest))?;
            if !written.insert(d.clone()) {
                continue;
            }
            let (mut r, size) = open_verified(src, &d, &format!("blob of image {}", img.manifest))?;
            out.stream(&format!("blobs/sha256/{}", d.hex()), size, &mut r)?;
            stats.blobs += 1;
            stats.bytes += size;
        }
        let media_type = if m.media_type.is_empty() {
            mt::OCI_MANIFEST.to_owned()
        } else {
            m.media_type.clone()
        };
        let desc = |name: Option<&Reference>| Desc {
            media_type: media_type.clone(),
            digest: img.manifest.to_string(),
            size: raw.len() as u64,
            annotations: name
                .map(|n| {
                    BTreeMap::from([(crate::spec::ANNOTATION_REF_NAME.to_owned(), n.to_string())])
                })
                .unwrap_or_default(),
        };
        if img.names.is_empty() {
            index.push(desc(None));
        }
        for n in &img.names {
            index.push(desc(Some(n)));
        }
        stats.images += 1;
    }
    let idx = OciIndexOut {
        schema_version: 2,
        media_type: mt::OCI_INDEX,
        manifests: index,
    };
    let bytes = serde_json::to_vec(&idx).map_err(|e| ArchiveError::Json {
        file: "index.json".into(),
        source: e,
    })?;
    out.bytes("index.json", &bytes)?;
    Ok(stats)
}

fn write_docker<W: Write>(
    out: &mut TarOut<W>,
    src: &dyn BlobSource,
    images: &[SaveImage],
) -> Result<SaveStats, ArchiveError> {
    let mut stats = SaveStats::default();
    let mut written: HashSet<String> = HashSet::new();
    let mut items = Vec::new();
    for img in images {
        let raw = read_small(src, &img.manifest, "manifest", JSON_LIMIT)?;
        let m: ManifestView = json(&raw, &format!("manifest {}", img.manifest))?;
        if m.manifests.is_some() || mt::is_index(&m.media_type) {
            return Err(ArchiveError::Unsupported(format!(
                "image {} is a multi-platform index: docker-archive holds one platform; save a \
                 platform's manifest or use oci-archive",
                img.manifest
            )));
        }
        let Some(config) = &m.config else {
            return Err(ArchiveError::Unsupported(format!(
                "manifest {} has no config",
                img.manifest
            )));
        };
        let cd = parse_digest(&config.digest, "manifest")?;
        let craw = read_small(src, &cd, "config", JSON_LIMIT)?;
        let cv: ConfigView = json(&craw, &format!("config {cd}"))?;
        if cv.rootfs.diff_ids.len() != m.layers.len() {
            return Err(ArchiveError::Unsupported(format!(
                "image {}: {} layers but {} diff ids in its config",
                img.manifest,
                m.layers.len(),
                cv.rootfs.diff_ids.len()
            )));
        }
        let config_name = format!("{}.json", cd.hex());
        if written.insert(config_name.clone()) {
            out.bytes(&config_name, &craw)?;
            stats.blobs += 1;
            stats.bytes += craw.len() as u64;
        }
        let mut layers = Vec::new();
        for (l, diff) in m.layers.iter().zip(&cv.rootfs.diff_ids) {
            let ld = parse_digest(&l.digest, "manifest")?;
            let diff_id = parse_digest(diff, "config")?;
            let name = format!("{}.tar", diff_id.hex());
            layers.push(name.clone());
            if !written.insert(name.clone()) {
                continue;
            }
            let compression = mt::layer_compression(&l.media_type).ok_or_else(|| {
                ArchiveError::Unsupported(format!(
                    "layer {ld} has media type `{}`, not a layer",
                    l.media_type
                ))
            })?;
            let what = format!("layer of image {}", img.manifest);
            let size = if compression == Compression::None {
                l.size
            } else {
                // First pass: the uncompressed size, and the diff id checked.
                let (r, _) = open_verified(src, &ld, &what)?;
                let mut h =
                    HashingReader::new(compress::decompress(r, compression).map_err(|e| {
                        ArchiveError::Blob {
                            digest: ld.clone(),
                            what: what.clone(),
                            source: e,
                        }
                    })?);
                io::copy(&mut h, &mut io::sink()).map_err(|e| ArchiveError::Blob {
                    digest: ld.clone(),
                    what: what.clone(),
                    source: e,
                })?;
                let (actual, size) = h.finish();
                if actual != diff_id {
                    return Err(ArchiveError::DiffId {
                        layer: ld.to_string(),
                        expected: diff_id.to_string(),
                        actual,
                    });
                }
                size
            };
            let (r, _) = open_verified(src, &ld, &what)?;
            let mut data =
                compress::decompress(r, compression).map_err(|e| ArchiveError::Blob {
                    digest: ld.clone(),
                    what: what.clone(),
                    source: e,
                })?;
            out.stream(&name, size, &mut data)?;
            stats.blobs += 1;
            stats.bytes += size;
        }
        let tags: Vec<String> = img
            .names
            .iter()
            .filter(|n| n.tag().is_some())
            .map(|n| n.without_digest().to_string())
            .collect();
        items.push(DockerManifestItem {
            config: config_name,
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers,
        });
        stats.images += 1;
    }
    let bytes = serde_json::to_vec(&items).map_err(|e| ArchiveError::Json {
        file: "manifest.json".into(),
        source: e,
    })?;
    out.bytes("manifest.json", &bytes)?;
    Ok(stats)
}

// ---------------------------------------------------------------------------------------
// Reading

/// What the read pass learned about one regular file of the archive.
#[derive(Debug, Clone)]
struct Stored {
    digest: Digest,
    size: u64,
    compression: Compression,
    /// Known when the file was an uncompressed tar (its digest before compression).
    diff_id: Option<Digest>,
}

/// Clean an archive path lexically (`./a//b` → `a/b`; `..` pops, never above the root:
/// these are keys, never file system paths).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

const SMALL_FILES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];

/// Read an archive from `r` (either format, any entry order), putting every blob into
/// `sink`. Returns the images found, in archive order. A `.tar.gz`/zstd-compressed
/// archive is accepted too.
pub fn read_archive<R: Read, S: BlobSink + BlobSource>(
    r: R,
    sink: &mut S,
    opts: &LoadOptions,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let (_, r) = compress::auto_decompress(r).map_err(|e| ArchiveError::Read {
        at: "(start)".into(),
        source: e,
    })?;
    let mut archive = tar::Archive::new(crate::layer::guard::TarGuard::new(r));
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut stored: HashMap<String, Stored> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut blobs_seen: HashSet<Digest> = HashSet::new();
    let mut at = String::from("(start)");
    let entries = archive.entries().map_err(|e| ArchiveError::Read {
        at: at.clone(),
        source: e,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Read {
            at: at.clone(),
            source: e,
        })?;
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        at.clone_from(&path);
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    clean(&format!("{dir}/{target}"))
                } else {
                    clean(&target)
                };
                links.insert(path, resolved);
                continue;
            }
            t if t.is_file() => {}
            _ => continue,
        }
        if SMALL_FILES.contains(&path.as_str()) {
            if entry.size() > opts.max_json {
                return Err(ArchiveError::TooLarge {
                    file: path,
                    limit: opts.max_json,
                });
            }
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| ArchiveError::Read {
                    at: path.clone(),
                    source: e,
                })?;
            small.insert(path, buf);
            continue;
        }
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let expected = Digest::from_hex(hex).map_err(|_| {
                ArchiveError::Unsupported(format!(
                    "`{path}`: a blob name must be 64 lowercase hex digits"
                ))
            })?;
            let (d, size) =
                sink.put_blob(&mut entry, Some(&expected))
                    .map_err(|e| ArchiveError::Put {
                        file: path.clone(),
                        source: e,
                    })?;
            blobs_seen.insert(d.clone());
            stored.insert(
                path,
                Stored {
                    digest: d,
                    size,
                    compression: Compression::None,
                    diff_id: None,
                },
            );
            continue;
        }
        if path.starts_with("blobs/") {
            return Err(ArchiveError::Unsupported(format!(
                "`{path}`: only sha256 blobs are supported"
            )));
        }
        // A docker-archive file: a config, a layer, or legacy metadata.
        let s = put_docker_file(&mut entry, &path, sink, opts)?;
        stored.insert(path, s);
    }
    if let Some(index) = small.get("index.json") {
        load_oci(index, sink, &blobs_seen, opts)
    } else if let Some(manifest) = small.get("manifest.json") {
        load_docker(manifest, sink, &stored, &links, opts)
    } else {
        Err(ArchiveError::NotAnArchive)
    }
}

fn put_docker_file<R: Read, S: BlobSink>(
    r: &mut R,
    path: &str,
    sink: &mut S,
    opts: &LoadOptions,
) -> Result<Stored, ArchiveError> {
    let perr = |e| ArchiveError::Put {
        file: path.to_owned(),
        source: e,
    };
    // Peek 512 bytes: compression magic, or the ustar magic of an uncompressed tar.
    let mut head = Vec::with_capacity(512);
    r.by_ref()
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| ArchiveError::Read {
            at: path.to_owned(),
            source: e,
        })?;
    let compression = Compression::detect(&head);
    let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
    let mut chained = io::Cursor::new(head).chain(r);
    match (compression, is_tar, opts.compress_layers) {
        (Compression::None, true, Some((c, level))) if c != Compression::None => {
            let mut hashing = HashingReader::new(&mut chained);
            let (digest, size) = {
                let mut enc: Box<dyn Read> = match c {
                    Compression::Gzip => {
                        Box::new(flate2::GzBuilder::new().read(&mut hashing, gzip_level(level)))
                    }
                    _ => Box::new(
                        zstd::stream::read::Encoder::new(&mut hashing, zstd_level(level))
                            .map_err(perr)?,
                    ),
                };
                sink.put_blob(&mut enc, None).map_err(perr)?
            };
            let (diff_id, _) = hashing.finish();
            Ok(Stored {
                digest,
                size,
                compression: c,
                diff_id: Some(diff_id),
            })
        }
        _ => {
            let (digest, size) = sink.put_blob(&mut chained, None).map_err(perr)?;
            let diff_id = (compression == Compression::None && is_tar).then(|| digest.clone());
            Ok(Stored {
                digest,
                size,
                compression,
                diff_id,
            })
        }
    }
}

fn gzip_level(l: Level) -> flate2::Compression {
    match l {
        Level::Fast => flate2::Compression::new(1),
        Level::Default => flate2::Compression::new(6),
        Level::Best => flate2::Compression::new(9),
        Level::Exact(n) => flate2::Compression::new(n.clamp(0, 9) as u32),
    }
}

fn zstd_level(l: Level) -> i32 {
    match l {
        Level::Fast => 1,
        Level::Default => 3,
        Level::Best => 19,
        Level::Exact(n) => n.clamp(1, 22),
    }
}

/// The blob must be in the sink: from this archive, or already stored before.
fn require_blob<S: BlobSource>(
    sink: &S,
    seen: &HashSet<Digest>,
    d: &Digest,
    needed_by: &str,
) -> Result<(), ArchiveError> {
    if seen.contains(d) || sink.open_blob(d).is_ok() {
        Ok(())
    } else {
        Err(ArchiveError::Missing {
            file: format!("blobs/sha256/{}", d.hex()),
            needed_by: needed_by.to_owned(),
        })
    }
}

fn check_manifest<S: BlobSource>(
    sink: &S,
    seen: &HashSet<Digest>,
    d: &Digest,
    opts: &LoadOptions,
    depth: u32,
) -> Result<String, ArchiveError> {
    let raw = read_small(sink, d, "manifest", opts.max_json)?;
    let m: ManifestView = json(&raw, &format!("blobs/sha256/{}", d.hex()))?;
    if mt::is_schema1(&m.media_type) {
        return Err(ArchiveError::Unsupported(format!(
            "manifest {d} is Docker schema 1, which imago does not support"
        )));
    }
    if let Some(children) = m.manifests {
        if depth > 3 {
            return Err(ArchiveError::Unsupported(format!(
                "index {d} nests indexes too deeply"
            )));
        }
        for c in children {
            let cd = parse_digest(&c.digest, "index")?;
            require_blob(sink, seen, &cd, &format!("index {d}"))?;
            check_manifest(sink, seen, &cd, opts, depth + 1)?;
        }
        return Ok(if m.media_type.is_empty() {
            mt::OCI_INDEX.into()
        } else {
            m.media_type
        });
    }
    let Some(config) = m.config else {
        return Err(ArchiveError::Unsupported(format!(
            "manifest {d} has no config"
        )));
    };
    for b in std::iter::once(&config).chain(&m.layers) {
        if mt::is_foreign_layer(&b.media_type) {
            continue;
        }
        let bd = parse_digest(&b.digest, "manifest")?;
        require_blob(sink, seen, &bd, &format!("manifest {d}"))?;
    }
    Ok(if m.media_type.is_empty() {
        mt::OCI_MANIFEST.into()
    } else {
        m.media_type
    })
}

fn load_oci<S: BlobSink + BlobSource>(
    index: &[u8],
    sink: &mut S,
    seen: &HashSet<Digest>,
    opts: &LoadOptions,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let idx: IndexView = json(index, "index.json")?;
    let mut out: Vec<LoadedImage> = Vec::new();
    for desc in idx.manifests {
        let d = parse_digest(&desc.digest, "index.json")?;
        require_blob(sink, seen, &d, "index.json")?;
        let media_type = check_manifest(sink, seen, &d, opts, 0)?;
        // containerd's annotation holds the full name (docker >= 25 writes it beside a
        // bare-tag ref.name); prefer it.
        let names: Vec<String> = ["io.containerd.image.name", crate::spec::ANNOTATION_REF_NAME]
            .iter()
            .filter_map(|k| desc.annotations.get(*k).cloned())
            .take(1)
            .collect();
        // One image per manifest; several descriptors of it add names.
        if let Some(prev) = out.iter_mut().find(|i| i.digest == d) {
            for n in names {
                if !prev.names.contains(&n) {
                    prev.names.push(n);
                }
            }
        } else {
            out.push(LoadedImage {
                format: ArchiveFormat::OciArchive,
                media_type,
                digest: d,
                size: desc.size,
                names,
            });
        }
    }
    Ok(out)
}

fn load_docker<S: BlobSink + BlobSource>(
    manifest: &[u8],
    sink: &mut S,
    stored: &HashMap<String, Stored>,
    links: &HashMap<String, String>,
    opts: &LoadOptions,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let items: Vec<DockerManifestItem> = json(manifest, "manifest.json")?;
    let find = |p: &str| -> Result<&Stored, ArchiveError> {
        let mut p = clean(p);
        for _ in 0..16 {
            if let Some(s) = stored.get(&p) {
                return Ok(s);
            }
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(ArchiveError::Missing {
            file: p,
            needed_by: "manifest.json".into(),
        })
    };
    let mut out = Vec::new();
    for item in items {
        let config = find(&item.config)?;
        let craw = read_small(sink, &config.digest, "config", opts.max_json)?;
        let cv: ConfigView = json(&craw, &item.config)?;
        if cv.rootfs.diff_ids.len() != item.layers.len() {
            return Err(ArchiveError::Unsupported(format!(
                "`{}` lists {} layers but its config has {} diff ids",
                item.config,
                item.layers.len(),
                cv.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (path, diff) in item.layers.iter().zip(&cv.rootfs.diff_ids) {
            let s = find(path)?;
            if let Some(actual) = &s.diff_id {
                if actual.to_string() != *diff {
                    return Err(ArchiveError::DiffId {
                        layer: path.clone(),
                        expected: diff.clone(),
                        actual: actual.clone(),
                    });
                }
            }
            let media_type = ManifestFormat::Oci
                .layer(s.compression)
                .unwrap_or(mt::OCI_LAYER_TAR);
            layers.push(Desc {
                media_type: media_type.into(),
                digest: s.digest.to_string(),
                size: s.size,
                annotations: BTreeMap::new(),
            });
        }
        let m = OciManifestOut {
            schema_version: 2,
            media_type: mt::OCI_MANIFEST,
            config: Desc {
                media_type: mt::OCI_CONFIG.into(),
                digest: config.digest.to_string(),
                size: config.size,
                annotations: BTreeMap::new(),
            },
            layers,
        };
        let bytes = serde_json::to_vec(&m).map_err(|e| ArchiveError::Json {
            file: "manifest".into(),
            source: e,
        })?;
        let (digest, size) = sink
            .put_blob(&mut &bytes[..], Some(&Digest::of(&bytes)))
            .map_err(|e| ArchiveError::Put {
                file: format!("manifest of `{}`", item.config),
                source: e,
            })?;
        out.push(LoadedImage {
            format: ArchiveFormat::DockerArchive,
            media_type: mt::OCI_MANIFEST.into(),
            digest,
            size,
            names: item.repo_tags.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A [`BlobSource`] + [`BlobSink`] over a plain directory of `sha256/<hex>` files (an OCI
/// layout's `blobs/`): for tests and tools. Writes are temp file + rename, verified.
pub struct DirBlobs {
    pub dir: std::path::PathBuf,
}

impl DirBlobs {
    fn path(&self, d: &Digest) -> std::path::PathBuf {
        self.dir.join("sha256").join(d.hex())
    }
}

impl BlobSource for DirBlobs {
    fn open_blob(&self, digest: &Digest) -> io::Result<(Box<dyn Read + '_>, u64)> {
        let f = std::fs::File::open(self.path(digest))?;
        let len = f.metadata()?.len();
        Ok((Box::new(f), len))
    }
}

impl BlobSink for DirBlobs {
    fn put_blob(
        &mut self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
    ) -> io::Result<(Digest, u64)> {
        let dir = self.dir.join("sha256");
        std::fs::create_dir_all(&dir)?;
        let (mut f, tmp) = tempfile_in(&dir)?;
        let res = (|| {
            let mut h = Hasher::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                h.update(&buf[..n]);
                f.write_all(&buf[..n])?;
            }
            let len = h.len();
            let d = h.finish();
            if let Some(e) = expected {
                if *e != d {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("expected {e}, content hashes to {d}"),
                    ));
                }
            }
            f.sync_all()?;
            std::fs::rename(&tmp, self.path(&d))?;
            Ok((d, len))
        })();
        if res.is_err() {
            // The temp file is ours and unreferenced; failing to remove it leaves debris only.
            let _ignored = std::fs::remove_file(&tmp);
        }
        res
    }
}

fn tempfile_in(dir: &std::path::Path) -> io::Result<(std::fs::File, std::path::PathBuf)> {
    for i in 0..1000u32 {
        let p = dir.join(format!(".tmp-{}-{}", std::process::id(), i));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "no free temp name in {}",
        dir.display()
    )))
}
