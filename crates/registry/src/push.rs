//! Push: an image (or an index and its images) from the store to a repository.
//!
//! Per blob, in parallel: `HEAD` (skip when present) → cross-repository mount from a
//! repository of the same registry known to hold it (blobinfo.rs) → upload. Uploads
//! (push/upload.rs) are one `POST` and one `PUT ?digest=` with the whole blob up to
//! 128 MiB; `PATCH` chunks for larger ones (64 MiB; at least `OCI-Chunk-Min-Length`),
//! always following the latest `Location`. A registry that refuses the single request
//! (413, 405, 501, `UNSUPPORTED`) gets the blob in chunks from a new session, and a 413
//! halves the chunks (≤ 4 MiB) for the rest of the push, resuming from the `Range` the
//! registry reports. Every acknowledged chunk saves the session (upload_session.rs): a
//! push killed midway resumes it from the offset the registry reports, where the
//! registry still knows it. A fresh upload session after
//! `BLOB_UPLOAD_INVALID`/`UNKNOWN` or a session lost to connection errors.
//! Every blob is confirmed with `HEAD` before the manifest `PUT` with its exact media
//! type; the registry's `Docker-Content-Digest` is checked against the bytes sent.
//!
//! `--format` / `--compression`: the manifest is rewritten (media types; layers
//! recompressed through imago-oci, results cached by source digest) and stored as a blob.
//!
//! Never: reads credentials (the caller built the `Client`), prints (events.rs).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use imago_oci::compress::auto_decompress;
use imago_oci::media_type::layer_compression;
use imago_oci::{BlobRef, Compression, Compressor, Digest, Level, ManifestFormat, Reference};
use imago_store::{Store, StoreError};

use crate::auth::Scope;
use crate::blobinfo::state_dir;
use crate::client::{resolve_location, with_query, Body, Client, Request};
use crate::error::RegistryError;
use crate::events::{Events, Outcome};
use crate::manifest::{self, Kind};
use crate::transfer::run_parallel;
use crate::upload_session;
use crate::ConnectOptions;

mod upload;

/// The largest chunk after a registry refused a bigger one (GHCR's limit).
pub const SMALL_CHUNK: u64 = 4 << 20;

/// Blobs over twice this size go in chunks of this size (unless `--chunk-size` says
/// otherwise): each acknowledged chunk is a point a killed push resumes from.
pub const RESUME_CHUNK: u64 = 64 << 20;

/// Blobs up to this size go in one `PUT` (after the `POST` that opens the session): the
/// largest that would otherwise be one `PATCH`, which resumes no better when cut, and
/// costs the registry a saved hash state and one more round trip.
pub const MONOLITHIC_MAX: u64 = 2 * RESUME_CHUNK;

/// Push settings.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Layer compression to push (`None`: as stored).
    pub compression: Option<Compression>,
    /// Manifest format to push (`None`: as stored).
    pub format: Option<ManifestFormat>,
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Blobs up to this size go in one `PUT`.
    pub monolithic_max: u64,
    /// Chunk size for larger blobs (`None`: one streamed `PATCH`).
    pub chunk_size: Option<u64>,
    /// Try cross-repository mounts.
    pub mount: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            compression: None,
            format: None,
            jobs: 4,
            monolithic_max: MONOLITHIC_MAX,
            chunk_size: None,
            mount: true,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// The digest of the manifest (or index) pushed.
    pub digest: Option<Digest>,
    pub uploaded: usize,
    pub mounted: usize,
    pub existed: usize,
}

struct Ctx<'a> {
    client: &'a Client,
    store: &'a Store,
    repo: String,
    opts: &'a PushOptions,
    events: &'a dyn Events,
    stats: Mutex<Pushed>,
    /// False once the registry refused a single-request upload as unsupported.
    single_put: AtomicBool,
    /// The largest request body to send: lowered after each 413 (push/upload.rs).
    chunk_cap: AtomicU64,
}

/// Connect to `dest`'s registry and push the image `source` (a name or id) of `store`
/// there: what `ipush` does, with the store it already opened to find `source`.
pub fn push_from_store(
    store: &Store,
    source: &str,
    dest: &Reference,
    connect: &ConnectOptions,
    opts: &PushOptions,
    events: &dyn Events,
) -> Result<Pushed, RegistryError> {
    let client = crate::connect(dest, connect)?;
    push(&client, store, source, dest, opts, events)
}

/// Push the store image `source` (a store name) to `dest`.
pub fn push(
    client: &Client,
    store: &Store,
    source: &str,
    dest: &Reference,
    opts: &PushOptions,
    events: &dyn Events,
) -> Result<Pushed, RegistryError> {
    let desc =
        resolve(store, source)?.ok_or_else(|| RegistryError::NotInStore(source.to_owned()))?;
    let ctx = Ctx {
        client,
        store,
        repo: dest.repository().to_owned(),
        opts,
        events,
        stats: Mutex::new(Pushed::default()),
        single_put: AtomicBool::new(true),
        chunk_cap: AtomicU64::new(u64::MAX),
    };
    client.authorize(&ctx.scope(&[]))?;
    let target = manifest::manifest_ref(dest);
    let digest = ctx.push_manifest(&desc, &target, 0)?;
    let mut out = ctx.stats.into_inner().unwrap_or_else(|p| p.into_inner());
    out.digest = Some(digest);
    Ok(out)
}

impl Ctx<'_> {
    fn scope(&self, mount_from: &[&str]) -> Scope {
        let mut s = Scope::repository(&self.repo, &["pull", "push"]);
        for m in mount_from {
            s.union(&Scope::repository(m, &["pull"]));
        }
        s
    }

    /// Push a manifest (recursively for an index) and return the digest pushed.
    fn push_manifest(
        &self,
        desc: &BlobRef,
        target: &str,
        depth: u32,
    ) -> Result<Digest, RegistryError> {
        let bytes = self.store.read_blob(&desc.digest)?;
        let merr = |reason: String| RegistryError::Manifest {
            reference: format!("{} ({})", target, desc.digest),
            reason,
        };
        let parsed =
            manifest::parse(&bytes, Some(&desc.media_type)).map_err(|e| merr(e.to_string()))?;
        let (bytes, media_type, blobs) = match parsed.kind {
            Kind::Index => {
                if depth > 0 {
                    return Err(merr("nested index".into()));
                }
                if self.opts.format.is_some() || self.opts.compression.is_some() {
                    return Err(RegistryError::Unsupported(
                        "--format/--compression on a multi-platform image is not supported; push one platform".into(),
                    ));
                }
                for (child, _) in &parsed.children {
                    if !self.store.has_blob(&child.digest) {
                        return Err(merr(format!(
                            "child manifest {} is not in the store (pulled for one platform only?)",
                            child.digest
                        )));
                    }
                    self.push_manifest(child, &child.digest.to_string(), depth + 1)?;
                }
                (bytes, parsed.media_type, Vec::new())
            }
            Kind::Image => self.convert(bytes, parsed)?,
        };
        self.push_blobs(&blobs)?;
        self.put_manifest(target, &bytes, &media_type)
    }

    /// Apply `--format`/`--compression`; returns the manifest to push and its blobs.
    fn convert(
        &self,
        bytes: Vec<u8>,
        parsed: manifest::Parsed,
    ) -> Result<(Vec<u8>, String, Vec<BlobRef>), RegistryError> {
        let config = parsed
            .config
            .clone()
            .ok_or_else(|| RegistryError::Unsupported("manifest without config".into()))?;
        let layers: Vec<BlobRef> = parsed.children.iter().map(|(d, _)| d.clone()).collect();
        let from = ManifestFormat::of(&parsed.media_type).unwrap_or(ManifestFormat::Oci);
        let to = self.opts.format.unwrap_or(from);
        let needs = |l: &BlobRef| {
            let cur = layer_compression(&l.media_type);
            self.opts.compression.is_some_and(|c| Some(c) != cur) || (to != from)
        };
        if to == from && !layers.iter().any(needs) {
            let mut blobs = vec![config];
            blobs.extend(layers);
            return Ok((bytes, parsed.media_type, blobs));
        }
        let mut doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Unsupported(format!("manifest is not JSON: {e}")))?;
        doc["mediaType"] = to.manifest().into();
        doc["config"]["mediaType"] = to.config().into();
        let mut new_layers = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let cur = layer_compression(&l.media_type).ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "layer {} has media type {}, which cannot be converted",
                    l.digest, l.media_type
                ))
            })?;
            let want = self.opts.compression.unwrap_or(cur);
            let mt = to.layer(want).ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "the {to:?} format has no {want} layers; use --format oci for zstd"
                ))
            })?;
            let (digest, size) = if want == cur {
                (l.digest.clone(), l.size)
            } else {
                self.recompress(l, want)?
            };
            let nd = BlobRef {
                media_type: mt.to_owned(),
                digest,
                size,
            };
            doc["layers"][i]["mediaType"] = nd.media_type.clone().into();
            doc["layers"][i]["digest"] = nd.digest.to_string().into();
            doc["layers"][i]["size"] = nd.size.into();
            new_layers.push(nd);
        }
        let out =
            serde_json::to_vec(&doc).map_err(|e| RegistryError::Unsupported(e.to_string()))?;
        self.store.put_blob_bytes(&out)?;
        let mut blobs = vec![BlobRef {
            media_type: to.config().into(),
            ..config
        }];
        blobs.extend(new_layers);
        Ok((out, to.manifest().to_owned(), blobs))
    }

    /// Recompress a stored layer; the result is stored and remembered by source digest.
    fn recompress(&self, layer: &BlobRef, to: Compression) -> Result<(Digest, u64), RegistryError> {
        let state = state_dir(self.store);
        if let Some(hit) = cached_conversion(state.as_deref(), &layer.digest, to) {
            if self.store.has_blob(&hit) {
                if let Ok(size) = self.store.blob_size(&hit) {
                    return Ok((hit, size));
                }
            }
        }
        self.events.note(&format!(
            "recompressing layer {} to {to}",
            layer.digest.short()
        ));
        let src = self.store.blob_path(&layer.digest);
        let ioerr = |path: &Path| {
            let path = path.to_owned();
            move |source| RegistryError::Io { path, source }
        };
        let tmp_dir = state.clone().unwrap_or_else(std::env::temp_dir);
        let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(ioerr(&tmp_dir))?;
        {
            let f = std::fs::File::open(&src).map_err(ioerr(&src))?;
            let (_, mut plain) = auto_decompress(BufReader::new(f)).map_err(ioerr(&src))?;
            let out = std::io::BufWriter::new(tmp.as_file());
            let mut c = Compressor::new(out, to, Level::Default).map_err(ioerr(tmp.path()))?;
            std::io::copy(&mut plain, &mut c).map_err(ioerr(&src))?;
            let w = c.finish().map_err(ioerr(tmp.path()))?;
            w.into_inner().map_err(|e| RegistryError::Io {
                path: tmp.path().to_owned(),
                source: e.into_error(),
            })?;
        }
        let f = std::fs::File::open(tmp.path()).map_err(ioerr(tmp.path()))?;
        let stored = self.store.put_blob(f, None)?;
        remember_conversion(state.as_deref(), &layer.digest, to, &stored.digest);
        Ok((stored.digest, stored.size))
    }

    fn push_blobs(&self, blobs: &[BlobRef]) -> Result<(), RegistryError> {
        let mut todo: Vec<&BlobRef> = Vec::new();
        for b in blobs {
            if !todo.iter().any(|t| t.digest == b.digest) {
                todo.push(b);
            }
        }
        // Largest first: the big layers start at once and the config fills a gap later,
        // instead of one layer waiting behind it for a free job.
        todo.sort_by_key(|b| std::cmp::Reverse(b.size));
        // Each job confirms what it uploaded or mounted with a HEAD of its own before the
        // manifest names it (MANIFEST_BLOB_UNKNOWN otherwise, and a registry that lost a
        // blob shows here), so the confirmations overlap the other uploads.
        run_parallel(&todo, self.opts.jobs, |b| {
            if self.push_blob(b)? && !self.head(&b.digest)? {
                return Err(RegistryError::Upload {
                    digest: b.digest.clone(),
                    repository: self.repo.clone(),
                    reason: "the registry does not have it after the upload".into(),
                });
            }
            Ok::<_, RegistryError>(())
        })?;
        crate::blobinfo::record(
            state_dir(self.store).as_deref(),
            self.client.registry(),
            &self.repo,
            blobs.iter().map(|b| &b.digest),
        );
        Ok(())
    }

    /// A request without a body or extra headers, in this push's scope (plus pull on
    /// the repositories a mount comes from).
    fn send_empty(
        &self,
        method: &'static str,
        url: &str,
        mount_from: &[&str],
    ) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
        self.client.send(&Request {
            method,
            url: url.to_owned(),
            headers: Vec::new(),
            body: Body::Empty,
            scope: &self.scope(mount_from),
        })
    }

    fn head(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self
            .client
            .url(&format!("/v2/{}/blobs/{digest}", self.repo));
        let resp = self.send_empty("HEAD", &url, &[])?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(Client::error("HEAD", &url, resp)),
        }
    }

    fn stat(&self, f: impl FnOnce(&mut Pushed)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// One blob; Ok(true) when it was uploaded or mounted (to be confirmed).
    fn push_blob(&self, b: &BlobRef) -> Result<bool, RegistryError> {
        if self.head(&b.digest)? {
            self.events.blob_done(&b.digest, &Outcome::Exists);
            self.stat(|s| s.existed += 1);
            return Ok(false);
        }
        let mut session = None;
        if self.opts.mount {
            let state = state_dir(self.store);
            for from in crate::blobinfo::sources(
                state.as_deref(),
                &b.digest,
                self.client.registry(),
                &self.repo,
            )
            .iter()
            .take(3)
            {
                match self.try_mount(b, from)? {
                    Mount::Done => {
                        self.events
                            .blob_done(&b.digest, &Outcome::Mounted { from: from.clone() });
                        self.stat(|s| s.mounted += 1);
                        return Ok(true);
                    }
                    Mount::Session(loc) => {
                        session = Some(loc);
                        break;
                    }
                    Mount::Failed => {}
                }
            }
        }
        self.upload(b, session)?;
        self.events.blob_done(&b.digest, &Outcome::Uploaded);
        self.stat(|s| s.uploaded += 1);
        Ok(true)
    }

    fn try_mount(&self, b: &BlobRef, from: &str) -> Result<Mount, RegistryError> {
        let base = self
            .client
            .url(&format!("/v2/{}/blobs/uploads/", self.repo));
        let url = with_query(
            &with_query(&base, "mount", &b.digest.to_string()),
            "from",
            from,
        );
        let resp = self.send_empty("POST", &url, &[from])?;
        match resp.status().as_u16() {
            201 => Ok(Mount::Done),
            202 => Ok(location(&url, &resp)
                .map(Mount::Session)
                .unwrap_or(Mount::Failed)),
            s => {
                self.events.note(&format!(
                    "mount of {} from {from} refused ({s}); uploading",
                    b.digest.short()
                ));
                Ok(Mount::Failed)
            }
        }
    }

    fn put_manifest(
        &self,
        target: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let scope = self.scope(&[]);
        let url = self
            .client
            .url(&format!("/v2/{}/manifests/{target}", self.repo));
        let digest = Digest::of(bytes);
        self.events
            .blob_start(&digest, bytes.len() as u64, "manifest");
        let headers = vec![("Content-Type", media_type.to_owned())];
        let resp = self.client.send(&Request {
            method: "PUT",
            url: url.clone(),
            headers,
            body: Body::Bytes(bytes),
            scope: &scope,
        })?;
        if !matches!(resp.status().as_u16(), 200..=202) {
            return Err(Client::error("PUT", &url, resp));
        }
        if let Some(h) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if h.parse::<Digest>().ok().as_ref() != Some(&digest) {
                return Err(RegistryError::Manifest {
                    reference: format!("{}/{}:{target}", self.client.registry(), self.repo),
                    reason: format!(
                        "the registry stored digest {h}, but the bytes sent have {digest}"
                    ),
                });
            }
        }
        self.events.blob_done(&digest, &Outcome::Uploaded);
        Ok(digest)
    }
}

/// The manifest (or index) a store name points at; `None` when the store has no such
/// image.
fn resolve(store: &Store, name: &str) -> Result<Option<BlobRef>, StoreError> {
    let image = match store.resolve(name) {
        Ok(i) => i,
        Err(StoreError::ImageNotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if image.index_digest != image.manifest_digest {
        let bytes = store.read_blob(&image.index_digest)?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_else(|| imago_oci::media_type::OCI_INDEX.to_owned());
        return Ok(Some(BlobRef {
            media_type,
            digest: image.index_digest,
            size: bytes.len() as u64,
        }));
    }
    Ok(Some(BlobRef {
        media_type: image.manifest_media_type.clone(),
        size: image.manifest_bytes.len() as u64,
        digest: image.manifest_digest,
    }))
}

enum Mount {
    Done,
    Session(String),
    Failed,
}

fn location(request_url: &str, resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    let l = resp.headers().get("location")?.to_str().ok()?;
    Some(resolve_location(request_url, l))
}

fn conversion_file(dir: &Path) -> PathBuf {
    dir.join("registry-recompressed")
}

fn cached_conversion(dir: Option<&Path>, src: &Digest, to: Compression) -> Option<Digest> {
    let text = std::fs::read_to_string(conversion_file(dir?)).ok()?;
    let (s, t) = (src.to_string(), to.to_string());
    text.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() == 3 && f[0] == s && f[1] == t)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

fn remember_conversion(dir: Option<&Path>, src: &Digest, to: Compression, out: &Digest) {
    use std::io::Write;
    let Some(dir) = dir else { return };
    let line = format!("{src} {to} {out}\n");
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(conversion_file(dir))
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = r {
        tracing::debug!(%e, "recompression cache not updated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_resolve_to_their_manifest() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let layer = store
            .put_layer(
                &b"not really a tar"[..],
                imago_oci::media_type::OCI_LAYER_GZIP,
            )
            .unwrap();
        let m = store
            .put_image_raw(
                br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}}"#,
                &[layer],
            )
            .unwrap();
        store.tag("reg.example:5000/a:1", &m).unwrap();
        let d = resolve(&store, "reg.example:5000/a:1").unwrap().unwrap();
        assert_eq!(d.digest, m);
        assert_eq!(d.media_type, imago_oci::media_type::OCI_MANIFEST);
        assert_eq!(d.size, store.blob_size(&m).unwrap());
        assert_eq!(resolve(&store, "reg.example:5000/nope:1").unwrap(), None);
    }

    #[test]
    fn conversion_cache_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        assert_eq!(
            cached_conversion(Some(t.path()), &a, Compression::Zstd),
            None
        );
        remember_conversion(Some(t.path()), &a, Compression::Zstd, &b);
        assert_eq!(
            cached_conversion(Some(t.path()), &a, Compression::Zstd),
            Some(b)
        );
        assert_eq!(
            cached_conversion(Some(t.path()), &a, Compression::Gzip),
            None
        );
    }
}
