//! Pull: manifest (an index / manifest list is resolved to one platform), then config and
//! layers in parallel, each streamed into the store with its digest and size verified
//! before it is committed. Blobs the store already has are skipped, so an interrupted pull
//! resumes from what it committed. The name is tagged last, so a failed pull leaves the
//! store's names unchanged.
//!
//! Never: unpacks layers (the store does, on use), or prints (events.rs).

use std::cell::Cell;
use std::sync::Mutex;

use imago_oci::{Digest, Reference};

use crate::auth::Scope;
use crate::client::{authority_of, read_bounded, Body, BodyError, Client, Request};
use crate::error::RegistryError;
use crate::events::{Events, Outcome};
use crate::layout::{Descriptor, ImageStore, LayoutError};
use crate::manifest::{self, Kind, Platform};
use crate::stall::{describe, Watch};

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
    pub manifest: Descriptor,
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
        headers: vec![("Accept", manifest::ACCEPT.into())],
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

/// Pull `reference` into `store`.
pub fn pull(
    client: &Client,
    store: &dyn ImageStore,
    reference: &Reference,
    opts: &PullOptions,
    events: &dyn Events,
) -> Result<Pulled, RegistryError> {
    let repo = reference.repository();
    let wanted = reference
        .digest()
        .map(|d| d.to_string())
        .or_else(|| reference.tag().map(str::to_owned))
        .unwrap_or_else(|| "latest".into());
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
    let mut blobs: Vec<(Descriptor, &str)> = vec![(config.clone(), "config")];
    blobs.extend(parsed.children.iter().map(|(d, _)| (d.clone(), "layer")));
    let (fetched, present) = fetch_blobs(client, store, repo, &blobs, opts.jobs.max(1), events)?;
    crate::blobinfo::record(
        store.state_dir().as_deref(),
        client.registry(),
        repo,
        blobs.iter().map(|(d, _)| &d.digest),
    );
    store.put_blob(
        &digest,
        Some(bytes.len() as u64),
        &mut bytes.as_slice(),
        &|_| {},
    )?;
    let desc = Descriptor {
        media_type,
        digest,
        size: bytes.len() as u64,
    };
    let name = opts.tag_as.clone().unwrap_or_else(|| reference.to_string());
    store.tag(&name, &desc)?;
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
    store: &dyn ImageStore,
    repo: &str,
    blobs: &[(Descriptor, &str)],
    jobs: usize,
    events: &dyn Events,
) -> Result<(usize, usize), RegistryError> {
    let mut todo: Vec<&(Descriptor, &str)> = Vec::new();
    let mut present = 0;
    for b in blobs {
        if store.blob_size(&b.0.digest)?.is_some_and(|s| s == b.0.size) {
            events.blob_done(&b.0.digest, &Outcome::Present);
            present += 1;
        } else if !todo.iter().any(|t| t.0.digest == b.0.digest) {
            todo.push(b);
        }
    }
    let fetched = todo.len();
    let queue = Mutex::new(todo.into_iter().rev().collect::<Vec<_>>());
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(fetched.max(1)) {
            s.spawn(|| loop {
                if first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some()
                {
                    return;
                }
                let Some(item) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                    return;
                };
                if let Err(e) = fetch_blob(client, store, repo, &item.0, item.1, events) {
                    first_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                    return;
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok((fetched, present)),
    }
}

/// Fetch one blob into the store, retrying when the connection drops midway (the
/// store discards the partial file); a digest mismatch is final.
fn fetch_blob(
    client: &Client,
    store: &dyn ImageStore,
    repo: &str,
    desc: &Descriptor,
    kind: &str,
    events: &dyn Events,
) -> Result<(), RegistryError> {
    let scope = Scope::repository(repo, &["pull"]);
    let url = client.url(&format!("/v2/{repo}/blobs/{}", desc.digest));
    events.blob_start(&desc.digest, desc.size, kind);
    let attempts = 5;
    let mut attempt = 0;
    let mut stalls = 0;
    loop {
        let req = Request {
            method: "GET",
            url: url.clone(),
            headers: Vec::new(),
            body: Body::Empty,
            scope: &scope,
        };
        let mut resp = client.send(&req)?;
        if resp.status().as_u16() != 200 {
            return Err(Client::error("GET", &url, resp));
        }
        // The host sending the bytes: a redirect may have led to a CDN.
        let host = {
            use ureq::ResponseExt;
            resp.get_uri()
                .authority()
                .map_or_else(|| client.registry().to_owned(), |a| a.to_string())
        };
        let verdict = Cell::new(None);
        let mut reader = Watch::new(
            resp.body_mut()
                .with_config()
                .limit(desc.size.saturating_add(1))
                .reader(),
            client.limits(),
            false,
            &verdict,
        );
        let progress = |n: u64| events.blob_progress(&desc.digest, n);
        let result = store.put_blob(&desc.digest, Some(desc.size), &mut reader, &progress);
        if let (Err(_), Some(stall)) = (&result, verdict.take()) {
            let e = RegistryError::Stalled {
                host,
                doing: format!("downloading blob {}", desc.digest),
                stall,
            };
            stalls += 1;
            if stalls >= client.retry().stall_attempts.max(1) || attempt + 1 >= attempts {
                return Err(e);
            }
            events.note(&format!("{e}; retrying"));
            std::thread::sleep(client.retry().backoff(attempt));
            attempt += 1;
            continue;
        }
        match result {
            Ok(()) => {
                events.blob_done(&desc.digest, &Outcome::Downloaded);
                return Ok(());
            }
            Err(LayoutError::DigestMismatch {
                expected,
                got,
                size,
            }) => {
                return Err(RegistryError::BlobVerify {
                    digest: expected,
                    reason: format!(
                        "the registry sent {size} bytes with digest {got}; nothing was stored"
                    ),
                })
            }
            Err(e @ (LayoutError::Source { .. } | LayoutError::SizeMismatch { .. }))
                if attempt + 1 < attempts =>
            {
                events.note(&format!("{}: {e}; retrying", desc.digest.short()));
                std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
                attempt += 1;
            }
            Err(LayoutError::SizeMismatch {
                digest,
                expected,
                got,
            }) => {
                return Err(RegistryError::BlobVerify {
                    digest,
                    reason: format!(
                        "expected {expected} bytes, the registry sent {got}; nothing was stored"
                    ),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
}
