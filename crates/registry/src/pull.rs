//! Pull: manifest (an index / manifest list is resolved to one platform), then config and
//! layers in parallel, each streamed into the store with its digest and size verified
//! before it is committed (download.rs). Blobs the store already has are skipped, and a
//! blob cut midway (even by a kill) resumes from the bytes its partial file holds. The
//! name is tagged last, so a failed pull leaves the store's names unchanged. Pulls of
//! one manifest into one store run one at a time (the store's keyed pull lock): the
//! first downloads, the others wait and reuse its blobs.
//!
//! Never: unpacks layers (the store does, on use), or prints (events.rs).

use std::path::Path;

use imago_oci::{BlobRef, Digest, Reference};
use imago_store::Store;

use crate::auth::Scope;
use crate::client::{authority_of, read_bounded, Body, BodyError, Client, Request};
use crate::download::fetch_blob;
use crate::error::RegistryError;
use crate::events::{Events, Outcome};
use crate::manifest::{self, Kind, Platform};
use crate::stall::describe;
use crate::transfer::run_parallel;
use crate::ConnectOptions;

/// Pull settings.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index (default: the host's).
    pub platform: Platform,
    /// Blobs fetched at once.
    pub jobs: usize,
    /// The name to tag in the store (default: the reference as given, normalised).
    pub tag_as: Option<String>,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            platform: Platform::host(),
            jobs: 4,
            tag_as: None,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name tagged in the store.
    pub name: String,
    /// The image manifest (for an index: the chosen platform's).
    pub manifest: BlobRef,
    /// The config digest (docker's image id).
    pub config: Digest,
    /// Blobs fetched, and blobs the store already had.
    pub fetched: usize,
    pub present: usize,
}

/// Fetch a manifest by tag or digest; returns (bytes, media type, digest), verified
/// against the digest when the reference names one.
pub fn fetch_manifest(
    client: &Client,
    repository: &str,
    reference: &str,
) -> Result<(Vec<u8>, String, Digest), RegistryError> {
    let scope = Scope::repository(repository, &["pull"]);
    let url = client.url(&format!("/v2/{repository}/manifests/{reference}"));
    let req = Request {
        method: "GET",
        url: url.clone(),
        headers: vec![("Accept", imago_oci::media_type::MANIFEST_ACCEPT.into())],
        body: Body::Empty,
        scope: &scope,
    };
    // A body that stalls or is cut midway is fetched again, like a blob: a stall once,
    // other connection errors up to the policy's attempts.
    let (mut attempt, mut stalls) = (0u32, 0u32);
    let (bytes, content_type, header_digest) = loop {
        let mut resp = client.send(&req)?;
        if resp.status().as_u16() != 200 {
            return Err(Client::error("GET", &url, resp));
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<Digest>().ok());
        let err = match read_bounded(&mut resp, manifest::MAX_BYTES, client.limits()) {
            Ok(bytes) => break (bytes, content_type, header_digest),
            Err(BodyError::TooLarge { limit }) => {
                return Err(RegistryError::TooLarge {
                    what: "manifest",
                    url: url.clone(),
                    limit,
                })
            }
            Err(BodyError::Stalled(stall)) => {
                stalls += 1;
                RegistryError::Stalled {
                    host: authority_of(&url).unwrap_or(&url).to_owned(),
                    doing: describe("GET", &url),
                    stall,
                }
            }
            Err(BodyError::Io(e)) => RegistryError::Transport {
                method: "GET".into(),
                url: url.clone(),
                source: Box::new(ureq::Error::Io(e)),
            },
        };
        attempt += 1;
        if attempt >= client.retry().attempts || stalls >= client.retry().stall_attempts.max(1) {
            return Err(err);
        }
        tracing::debug!(%err, "manifest body failed; retrying");
        std::thread::sleep(client.retry().backoff(attempt - 1));
    };
    let digest = Digest::of(&bytes);
    let merr = |reason: String| RegistryError::Manifest {
        reference: format!("{}/{repository}:{reference}", client.registry()),
        reason,
    };
    if let Ok(want) = reference.parse::<Digest>() {
        if want != digest {
            return Err(merr(format!(
                "content has digest {digest}, not the {want} asked for"
            )));
        }
    } else if let Some(h) = header_digest.filter(|h| *h != digest) {
        return Err(merr(format!(
            "content has digest {digest}, but the registry says {h}"
        )));
    }
    let parsed =
        manifest::parse(&bytes, content_type.as_deref()).map_err(|e| merr(e.to_string()))?;
    Ok((bytes, parsed.media_type, digest))
}

/// Pull `reference` into the store at `root` (made when missing): what `ipull` does.
/// The store is pinned for the whole pull, so a concurrent gc cannot collect the blobs
/// written before the manifest names them.
pub fn pull_into_root(
    root: &Path,
    reference: &Reference,
    connect: &ConnectOptions,
    opts: &PullOptions,
    events: &dyn Events,
) -> Result<Pulled, RegistryError> {
    let store = Store::open(root)?;
    let _pin = store.pin()?;
    let client = crate::connect_pull(reference, connect)?;
    pull(&client, &store, reference, opts, events)
}

/// Pull `reference` into `store`. Callers that may race a gc hold a [`Store::pin`].
pub fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
    events: &dyn Events,
) -> Result<Pulled, RegistryError> {
    let repo = reference.repository();
    let wanted = manifest::manifest_ref(reference);
    let (mut bytes, mut media_type, mut digest) = fetch_manifest(client, repo, &wanted)?;
    let mut parsed =
        manifest::parse(&bytes, Some(&media_type)).map_err(|e| RegistryError::Manifest {
            reference: reference.to_string(),
            reason: e.to_string(),
        })?;
    if parsed.kind == Kind::Index {
        let child = manifest::choose(&parsed, &opts.platform).map_err(|available| {
            RegistryError::Platform {
                reference: reference.to_string(),
                wanted: opts.platform.to_string(),
                available,
            }
        })?;
        let child_digest = child.digest.to_string();
        (bytes, media_type, digest) = fetch_manifest(client, repo, &child_digest)?;
        parsed =
            manifest::parse(&bytes, Some(&media_type)).map_err(|e| RegistryError::Manifest {
                reference: reference.to_string(),
                reason: e.to_string(),
            })?;
        if parsed.kind != Kind::Image {
            return Err(RegistryError::Manifest {
                reference: reference.to_string(),
                reason: "nested index".into(),
            });
        }
    }
    let config = parsed
        .config
        .clone()
        .ok_or_else(|| RegistryError::Manifest {
            reference: reference.to_string(),
            reason: "no config".into(),
        })?;
    // One download per image: processes pulling the same manifest into this store at
    // once (the ranks of a job on one node) wait here for the first, then find its blobs
    // present. Other images have other keys and go in parallel.
    let mut blobs: Vec<(BlobRef, &str)> = vec![(config.clone(), "config")];
    blobs.extend(parsed.children.iter().map(|(d, _)| (d.clone(), "layer")));
    // The other pull's progress: the bytes of these blobs in the store, whole or partial.
    let progress = || -> u64 {
        let len = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        blobs
            .iter()
            .map(|(b, _)| len(store.blob_path(&b.digest)) + len(store.partial_blob_path(&b.digest)))
            .sum()
    };
    let _job = store.pull_lock(&digest, imago_store::job_wait()?, &progress)?;
    let (fetched, present) = fetch_blobs(client, store, repo, &blobs, opts.jobs.max(1), events)?;
    crate::blobinfo::record(
        crate::blobinfo::state_dir(store).as_deref(),
        client.registry(),
        repo,
        blobs.iter().map(|(d, _)| &d.digest),
    );
    // Recorded (unnamed) only now that its config and layers are stored; named last.
    let stored = store.put_manifest(&bytes, &media_type)?;
    let desc = BlobRef {
        media_type,
        digest,
        size: bytes.len() as u64,
    };
    let name = opts.tag_as.clone().unwrap_or_else(|| reference.to_string());
    store.tag(&name, &stored)?;
    Ok(Pulled {
        name,
        manifest: desc,
        config: config.digest,
        fetched,
        present,
    })
}

fn fetch_blobs(
    client: &Client,
    store: &Store,
    repo: &str,
    blobs: &[(BlobRef, &str)],
    jobs: usize,
    events: &dyn Events,
) -> Result<(usize, usize), RegistryError> {
    let mut todo: Vec<&(BlobRef, &str)> = Vec::new();
    let mut present = 0;
    for b in blobs {
        // A shared read-only store's copy is copied, not downloaded.
        store.adopt_blobs(std::slice::from_ref(&b.0.digest))?;
        if store.has_blob(&b.0.digest) && store.blob_size(&b.0.digest)? == b.0.size {
            events.blob_done(&b.0.digest, &Outcome::Present);
            present += 1;
        } else if !todo.iter().any(|t| t.0.digest == b.0.digest) {
            todo.push(b);
        }
    }
    run_parallel(&todo, jobs, |item| {
        fetch_blob(client, store, repo, &item.0, item.1, events)
    })?;
    Ok((todo.len(), present))
}
