//! Downloading one blob into the store: a `GET` (with `Range: bytes=N-` when the blob's
//! partial file already holds N bytes; resume.rs decides what the answer means), the body
//! streamed into the partial file, digest and size verified before it is committed.
//! Retries a connection cut midway (resuming after the bytes that arrived) and a stall
//! once; a digest mismatch is final, except once after a resumed download.
//!
//! Never: reads manifests or picks blobs (pull.rs), parses headers (resume.rs), or
//! writes files itself (the store's `PartialBlob` and `put_blob` do).

use std::cell::Cell;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use imago_oci::BlobRef;
use imago_store::PartialBlob;
use imago_store::{Store, StoreError};

use crate::auth::Scope;
use crate::client::{Body, Client, Request};
use crate::error::RegistryError;
use crate::events::{Events, Outcome};
use crate::resume::{self, Decision};
use crate::stall::Watch;

/// Fetch one blob into the store, retrying when the connection drops midway; a digest
/// mismatch is final, except once after a resumed download (the bytes kept from before
/// may be what is wrong: then the blob is fetched again from byte 0).
///
/// The bytes go to the store's partial file for the digest, which survives this
/// process: a retry, or the next pull after a kill, asks only for the rest
/// (`Range: bytes=N-`, resume.rs decides what the answer means). While another process
/// downloads the same blob, this one uses a temp file of its own (not resumable).
pub(crate) fn fetch_blob(
    client: &Client,
    store: &Store,
    repo: &str,
    desc: &BlobRef,
    kind: &str,
    events: &dyn Events,
) -> Result<(), RegistryError> {
    let scope = Scope::repository(repo, &["pull"]);
    let url = client.url(&format!("/v2/{repo}/blobs/{}", desc.digest));
    events.blob_start(&desc.digest, desc.size, kind);
    let mut partial = store.open_partial_blob(&desc.digest, desc.size)?;
    let mut resumed = false;
    let attempts = 5;
    let mut attempt = 0;
    let mut stalls = 0;
    loop {
        let from = partial.as_ref().map_or(0, PartialBlob::len);
        resumed |= from > 0;
        let result = if partial.is_some() && from == desc.size {
            // Every byte is here already: only the check and the commit are left.
            Ok(())
        } else {
            let req = Request {
                method: "GET",
                url: url.clone(),
                headers: resume::range_header(from).into_iter().collect(),
                body: Body::Empty,
                scope: &scope,
            };
            let mut resp = client.send(&req)?;
            let content_range = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = resp.status().as_u16();
            let start = match resume::decide(from, desc.size, status, content_range.as_deref()) {
                Decision::Append => from,
                Decision::FromZero => {
                    restart(partial.as_mut())?;
                    0
                }
                Decision::Again(why) => {
                    events.note(&format!(
                        "{}: cannot resume ({why}); downloading it again from the start",
                        desc.digest.short()
                    ));
                    restart(partial.as_mut())?;
                    attempt += 1;
                    if attempt >= attempts {
                        return Err(Client::error("GET", &url, resp));
                    }
                    continue;
                }
                Decision::Fail => return Err(Client::error("GET", &url, resp)),
            };
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
                    .limit((desc.size - start).saturating_add(1))
                    .reader(),
                client.limits(),
                false,
                &verdict,
            );
            let progress = |n: u64| events.blob_progress(&desc.digest, start + n);
            let result = match partial.as_mut() {
                Some(p) => streamed(&mut reader, &progress, |r| p.append(r)),
                None => streamed(&mut reader, &progress, |r| {
                    store.put_blob(r, Some((&desc.digest, desc.size))).map(drop)
                }),
            };
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
            result
        };
        let result = match (result, partial.take()) {
            (Ok(()), Some(p)) if p.len() != desc.size => {
                let actual = p.len();
                partial = Some(p);
                Err(PutError::Store(StoreError::BlobSize {
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual,
                }))
            }
            (Ok(()), Some(p)) => p.commit(store).map(drop).map_err(PutError::Store),
            (r, p) => {
                partial = p;
                r
            }
        };
        match result {
            Ok(()) => {
                events.blob_done(&desc.digest, &Outcome::Downloaded);
                return Ok(());
            }
            Err(PutError::Store(StoreError::BlobCorrupt { .. })) if resumed => {
                // The partial file was removed; the bytes kept from an earlier download
                // may be the bad ones, so the registry gets one more chance from byte 0.
                events.note(&format!(
                    "{}: the resumed download does not verify; downloading it again from the start",
                    desc.digest.short()
                ));
                resumed = false;
                partial = store.open_partial_blob(&desc.digest, desc.size)?;
                if let Some(p) = partial.as_mut() {
                    p.restart()?;
                }
            }
            Err(PutError::Store(StoreError::BlobCorrupt {
                expected,
                actual,
                size,
            })) => {
                return Err(RegistryError::BlobVerify {
                    digest: expected,
                    reason: format!(
                        "the registry sent {size} bytes with digest {actual}; nothing was stored"
                    ),
                })
            }
            Err(e @ (PutError::Source(_) | PutError::Store(StoreError::BlobSize { .. })))
                if attempt + 1 < attempts =>
            {
                events.note(&format!("{}: {e}; retrying", desc.digest.short()));
                std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
                attempt += 1;
            }
            Err(PutError::Store(StoreError::BlobSize {
                digest,
                expected,
                actual,
            })) => {
                return Err(RegistryError::BlobVerify {
                    digest,
                    reason: format!(
                        "expected {expected} bytes, the registry sent {actual}; nothing was stored"
                    ),
                })
            }
            Err(PutError::Source(e)) => {
                return Err(RegistryError::Transport {
                    method: "GET".into(),
                    url,
                    source: Box::new(ureq::Error::Io(e)),
                })
            }
            Err(PutError::Store(e)) => return Err(e.into()),
        }
    }
}

/// Empty the partial file, when there is one.
fn restart(partial: Option<&mut PartialBlob>) -> Result<(), RegistryError> {
    if let Some(p) = partial {
        p.restart()?;
    }
    Ok(())
}

/// Why a streamed blob did not reach the store: the registry's stream failed (worth
/// another try), or the store refused or failed it.
#[derive(Debug, thiserror::Error)]
enum PutError {
    #[error("read from the registry: {0}")]
    Source(io::Error),
    #[error(transparent)]
    Store(StoreError),
}

/// Counts bytes for progress and remembers whether a read error came from the source
/// (a dropped connection: worth a retry) rather than from the store's disk.
struct Watched<'a> {
    inner: &'a mut dyn Read,
    n: u64,
    progress: &'a dyn Fn(u64),
    failed: &'a AtomicBool,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(k) => {
                self.n += k as u64;
                (self.progress)(self.n);
                Ok(k)
            }
            Err(e) => {
                self.failed.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// Stream `src` into `sink` (the store, checking digest and size at EOF, or a partial
/// file), telling a failed read of the registry's stream from a store error.
/// `progress` gets the bytes so far.
fn streamed(
    src: &mut dyn Read,
    progress: &dyn Fn(u64),
    sink: impl FnOnce(Watched<'_>) -> Result<(), StoreError>,
) -> Result<(), PutError> {
    let failed = AtomicBool::new(false);
    let reader = Watched {
        inner: src,
        n: 0,
        progress,
        failed: &failed,
    };
    match sink(reader) {
        Ok(()) => Ok(()),
        Err(StoreError::Io { source, .. }) if failed.load(Ordering::Relaxed) => {
            Err(PutError::Source(source))
        }
        Err(e) => Err(PutError::Store(e)),
    }
}

/// Stream `src` into the store as `desc`: digest and size are checked at EOF and nothing
/// is committed on a mismatch.
#[cfg(test)]
fn put_streamed(
    store: &Store,
    desc: &BlobRef,
    src: &mut dyn Read,
    progress: &dyn Fn(u64),
) -> Result<(), PutError> {
    streamed(src, progress, |r| {
        store.put_blob(r, Some((&desc.digest, desc.size))).map(drop)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imago_oci::Digest;

    fn desc(bytes: &[u8]) -> BlobRef {
        BlobRef {
            media_type: imago_oci::media_type::OCI_LAYER_GZIP.into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }

    /// A source that gives some bytes, then fails like a dropped connection.
    struct Cut(Vec<u8>);

    impl Read for Cut {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::from(io::ErrorKind::ConnectionReset));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn streamed_puts_verify_and_tell_a_cut_stream_from_bad_content() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let good = desc(b"hello");
        let seen = std::sync::atomic::AtomicU64::new(0);
        put_streamed(&store, &good, &mut &b"hello"[..], &|n| {
            seen.store(n, Ordering::Relaxed)
        })
        .unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 5);
        assert!(store.has_blob(&good.digest));

        let other = desc(b"other");
        let e = put_streamed(&store, &other, &mut &b"hello"[..], &|_| {}).unwrap_err();
        assert!(
            matches!(e, PutError::Store(StoreError::BlobCorrupt { .. })),
            "{e}"
        );
        assert!(!store.has_blob(&other.digest));

        let long = desc(b"hello, world");
        let e = put_streamed(&store, &long, &mut Cut(b"hello".to_vec()), &|_| {}).unwrap_err();
        assert!(matches!(e, PutError::Source(_)), "{e}");
        assert!(!store.has_blob(&long.digest));

        let short = BlobRef {
            size: 4,
            ..desc(b"bytes")
        };
        let e = put_streamed(&store, &short, &mut &b"bytes"[..], &|_| {}).unwrap_err();
        assert!(
            matches!(e, PutError::Store(StoreError::BlobSize { .. })),
            "{e}"
        );
    }
}
