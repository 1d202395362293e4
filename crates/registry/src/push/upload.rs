//! Uploading one blob: the upload session (start, status, resume from the offset the
//! registry holds, saved after each acknowledged chunk: upload_session.rs), one `PUT`
//! or `PATCH` chunks, the way down from a refused `PUT` to chunks and from a refused
//! chunk to smaller ones (shared by the whole push), and which failures are worth a
//! fresh session.
//!
//! Never: decides which blobs to push or mounts them (push.rs).

use super::*;

impl Ctx<'_> {
    fn start_session(&self, digest: &Digest) -> Result<(String, Option<u64>), RegistryError> {
        let url = self
            .client
            .url(&format!("/v2/{}/blobs/uploads/", self.repo));
        let resp = self.send_empty("POST", &url, &[])?;
        if resp.status().as_u16() != 202 {
            return Err(Client::error("POST", &url, resp));
        }
        let min = resp
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let loc = location(&url, &resp)
            .ok_or_else(|| self.upload_err(digest, "202 without a Location header"))?;
        Ok((loc, min))
    }

    fn upload_err(&self, d: &Digest, reason: &str) -> RegistryError {
        RegistryError::Upload {
            digest: d.clone(),
            repository: self.repo.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Upload with up to three sessions. A chunked upload saves its session after every
    /// chunk (upload_session.rs); a saved session the registry still knows is resumed
    /// from the offset the registry reports.
    pub(super) fn upload(
        &self,
        b: &BlobRef,
        mut session: Option<String>,
    ) -> Result<(), RegistryError> {
        let path = self.store.blob_path(&b.digest);
        self.events.blob_start(&b.digest, b.size, "blob");
        let saved = upload_session::file(
            state_dir(self.store).as_deref(),
            self.client.registry(),
            &self.repo,
            &b.digest,
        );
        let mut resume = None;
        if session.is_none() && !self.monolithic(b) {
            if let Some(s) = saved.as_deref().and_then(upload_session::load) {
                match self.upload_status(&s.location) {
                    Ok((loc, off)) if off <= b.size => {
                        self.events.note(&format!(
                            "{}: resuming the interrupted upload at byte {off} of {}",
                            b.digest.short(),
                            b.size
                        ));
                        resume = Some((loc, off));
                    }
                    Ok(_) | Err(_) => {
                        self.events.note(&format!(
                            "{}: the interrupted upload session is gone; starting a new one",
                            b.digest.short()
                        ));
                    }
                }
            }
        }
        if resume.is_none() {
            if let Some(p) = &saved {
                upload_session::forget(p);
            }
        }
        let mut last_err = None;
        // Set once the registry refused this blob in one request: its chunks from then on.
        let mut chunk_limit = None;
        for _ in 0..3 {
            let open = match (resume.take(), session.take()) {
                (Some((location, offset)), _) => Session {
                    location,
                    min_chunk: None,
                    offset,
                },
                (None, Some(location)) => Session {
                    location,
                    min_chunk: None,
                    offset: 0,
                },
                (None, None) => {
                    let (location, min_chunk) = self.start_session(&b.digest)?;
                    Session {
                        location,
                        min_chunk,
                        offset: 0,
                    }
                }
            };
            let result = self.upload_in(b, &path, open, saved.as_deref(), chunk_limit);
            if !matches!(result, Err(Retry::Fatal(_))) {
                if let Some(p) = &saved {
                    upload_session::forget(p);
                }
            }
            match result {
                Ok(()) => return Ok(()),
                Err(Retry::NewSession(e)) => {
                    self.events.note(&format!(
                        "{}: {e}; starting a new upload session",
                        b.digest.short()
                    ));
                    last_err = Some(e);
                }
                Err(Retry::Chunked(e, limit)) => {
                    chunk_limit = limit.or(chunk_limit);
                    self.events.note(&format!(
                        "{}: the registry refused the blob in one request ({e}); uploading it in chunks",
                        b.digest.short()
                    ));
                    last_err = Some(e);
                }
                Err(Retry::Fatal(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| self.upload_err(&b.digest, "upload failed")))
    }

    /// One `PUT` for blobs up to `monolithic_max`; chunks (resumable) for the rest, and
    /// for every blob once the registry refused a single-request upload, or one larger
    /// than the largest body it refused to take.
    fn monolithic(&self, b: &BlobRef) -> bool {
        self.single_put.load(Ordering::Relaxed)
            && b.size <= self.opts.monolithic_max
            && b.size <= self.chunk_cap.load(Ordering::Relaxed)
            && self.opts.chunk_size.is_none_or(|c| b.size <= c)
    }

    /// The registry answered 413 to a body of `len` bytes: this blob's chunks from now on
    /// are half of it, at most [`SMALL_CHUNK`] and at least `floor` (the registry's
    /// `OCI-Chunk-Min-Length`), and so are the bodies of every later blob of the push,
    /// though never under [`MIN_SHARED_CAP`]. `None` when that is no smaller than `len`:
    /// no chunk size is left to try.
    fn refused_body(&self, len: u64, floor: u64) -> Option<u64> {
        let smaller = smaller_body(len, floor)?;
        self.chunk_cap
            .fetch_min(shared_cap(smaller), Ordering::Relaxed);
        Some(smaller)
    }

    /// The blob `b` (stored at `path`) through the upload `session`, saving it to
    /// `saved` after each acknowledged chunk; chunks of at most `chunk_limit` once the
    /// registry refused the blob in one request.
    fn upload_in(
        &self,
        b: &BlobRef,
        path: &Path,
        session: Session,
        saved: Option<&Path>,
        chunk_limit: Option<u64>,
    ) -> Result<(), Retry> {
        let Session {
            location: mut loc,
            min_chunk: min,
            offset: start,
        } = session;
        let scope = self.scope(&[]);
        let progress = |n: u64| self.events.blob_progress(&b.digest, n);
        let octet = ("Content-Type", "application/octet-stream".to_owned());
        if chunk_limit.is_none() && self.monolithic(b) {
            let url = with_query(&loc, "digest", &b.digest.to_string());
            let body = Body::File {
                path,
                offset: 0,
                len: b.size,
                progress: Some(&progress),
            };
            let resp = self
                .client
                .send(&Request {
                    method: "PUT",
                    url: url.clone(),
                    headers: vec![octet],
                    body,
                    scope: &scope,
                })
                .map_err(session_lost)?;
            return match resp.status().as_u16() {
                201 | 204 => Ok(()),
                s => {
                    let e = Client::error("PUT", &url, resp);
                    let smaller = (s == 413).then(|| self.refused_body(b.size, 0)).flatten();
                    if let Some(smaller) = smaller {
                        Err(Retry::Chunked(e, Some(smaller)))
                    } else if single_put_unsupported(s, &e) {
                        self.single_put.store(false, Ordering::Relaxed);
                        Err(Retry::Chunked(e, None))
                    } else {
                        Err(classify(s, e))
                    }
                }
            };
        }
        let floor = min.unwrap_or(0);
        let default_chunk = if b.size > 2 * RESUME_CHUNK {
            RESUME_CHUNK
        } else {
            b.size
        };
        let mut chunk = self
            .opts
            .chunk_size
            .unwrap_or(default_chunk)
            .min(self.chunk_cap.load(Ordering::Relaxed))
            .min(chunk_limit.unwrap_or(u64::MAX))
            .max(floor)
            .max(1);
        let mut offset = start;
        // 413s and 416s in a row: each one sends no data the registry keeps, so a
        // registry that answers nothing else must not keep the push going round.
        let mut refusals = 0;
        let save = |loc: &str, offset: u64| {
            let Some(p) = saved else { return };
            let s = upload_session::Saved {
                location: loc.to_owned(),
                offset,
            };
            if let Err(e) = upload_session::save(p, &s) {
                tracing::debug!(%e, "upload session not saved; a rerun starts over");
            }
        };
        while offset < b.size {
            let len = chunk.min(b.size - offset);
            let range = format!("{}-{}", offset, offset + len - 1);
            let body = Body::File {
                path,
                offset,
                len,
                progress: Some(&progress),
            };
            let headers = vec![octet.clone(), ("Content-Range", range)];
            let resp = self
                .client
                .send(&Request {
                    method: "PATCH",
                    url: loc.clone(),
                    headers,
                    body,
                    scope: &scope,
                })
                .map_err(session_lost)?;
            let status = resp.status().as_u16();
            match status {
                202 | 204 => {
                    refusals = 0;
                    let next = location(&loc, &resp);
                    offset = range_end(&resp).map(|e| e + 1).unwrap_or(offset + len);
                    if let Some(l) = next {
                        loc = l;
                    }
                    save(&loc, offset);
                }
                413 | 416 if refusals < MAX_REFUSALS => {
                    refusals += 1;
                    if let Some(l) = location(&loc, &resp) {
                        loc = l;
                    }
                    if status == 413 {
                        // Too large: smaller chunks, down to what the registry takes.
                        let Some(smaller) = self.refused_body(len, floor) else {
                            return Err(Retry::Fatal(Client::error("PATCH", &loc, resp)));
                        };
                        chunk = smaller;
                    } else {
                        // Out of order: carry on from where the registry is.
                        chunk = chunk.min(SMALL_CHUNK).max(floor);
                    }
                    let (l, off) = self.upload_status(&loc).map_err(session_lost)?;
                    loc = l;
                    offset = off;
                    save(&loc, offset);
                    self.events.note(&format!("{}: registry answered {status}; continuing at {offset} in chunks of {chunk}", b.digest.short()));
                }
                s => return Err(classify(s, Client::error("PATCH", &loc, resp))),
            }
        }
        let url = with_query(&loc, "digest", &b.digest.to_string());
        let resp = self
            .client
            .send(&Request {
                method: "PUT",
                url: url.clone(),
                headers: vec![octet],
                body: Body::Empty,
                scope: &scope,
            })
            .map_err(session_lost)?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            s => Err(classify(s, Client::error("PUT", &url, resp))),
        }
    }

    /// `GET <location>`: the session's Location and how many bytes it holds.
    fn upload_status(&self, loc: &str) -> Result<(String, u64), RegistryError> {
        let resp = self.send_empty("GET", loc, &[])?;
        if resp.status().as_u16() != 204 {
            return Err(Client::error("GET", loc, resp));
        }
        let next = location(loc, &resp).unwrap_or_else(|| loc.to_owned());
        Ok((next, range_end(&resp).map(|e| e + 1).unwrap_or(0)))
    }
}

/// An upload session, where the blob's bytes go from `offset` on.
struct Session {
    /// The latest `Location` of the session.
    location: String,
    /// The registry's `OCI-Chunk-Min-Length` (only a fresh session's `POST` says it).
    min_chunk: Option<u64>,
    /// The bytes the session already holds: 0, or what a resumed session reported.
    offset: u64,
}

/// 413s and 416s in a row that one chunked upload takes before it gives up its session.
const MAX_REFUSALS: u32 = 8;

enum Retry {
    NewSession(RegistryError),
    /// The single-request upload was refused: a new session, in chunks (of at most this
    /// size, after a 413).
    Chunked(RegistryError, Option<u64>),
    Fatal(RegistryError),
}

/// An answer to a single-request upload that says the registry does not take blobs
/// that way (rather than refusing this blob): the push goes on in chunks.
fn single_put_unsupported(status: u16, e: &RegistryError) -> bool {
    matches!(status, 405 | 501) || e.api_errors().is_some_and(|a| a.has("UNSUPPORTED"))
}

/// A failed exchange in an upload session: worth a fresh session, except a stall, which
/// the client has already retried; three more sessions would only multiply the wait.
fn session_lost(e: RegistryError) -> Retry {
    match e {
        RegistryError::Stalled { .. } => Retry::Fatal(e),
        e => Retry::NewSession(e),
    }
}

/// Upload-session errors worth a fresh session; others end the push.
fn classify(status: u16, e: RegistryError) -> Retry {
    let session_lost = e
        .api_errors()
        .is_some_and(|a| a.has("BLOB_UPLOAD_INVALID") || a.has("BLOB_UPLOAD_UNKNOWN"));
    if session_lost || status == 404 || status == 416 || crate::client::is_retryable_status(status)
    {
        Retry::NewSession(e)
    } else {
        Retry::Fatal(e)
    }
}

/// The least a 413 lowers the bodies of the push's other blobs to: a 413 to a config of
/// a few hundred bytes must not send every later layer in pieces of that size (a
/// thousand requests per MiB). A registry that takes even less refuses those too, and
/// each blob halves its own chunks from there.
const MIN_SHARED_CAP: u64 = 64 << 10;

/// The cap on other blobs' bodies after this blob's were cut to `smaller`.
fn shared_cap(smaller: u64) -> u64 {
    smaller.max(MIN_SHARED_CAP)
}

/// The body to try after a 413 to `len` bytes: half, at most [`SMALL_CHUNK`], at least
/// `floor`; `None` when that is not smaller (or is nothing).
fn smaller_body(len: u64, floor: u64) -> Option<u64> {
    let smaller = (len / 2).min(SMALL_CHUNK).max(floor);
    (smaller > 0 && smaller < len).then_some(smaller)
}

/// The inclusive end of a `Range: 0-N` (or `bytes=0-N`) header.
fn range_end(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("range")?.to_str().ok()?;
    parse_range_end(v)
}

fn parse_range_end(v: &str) -> Option<u64> {
    let v = v.trim().trim_start_matches("bytes=");
    let (start, end) = v.split_once('-')?;
    let (start, end) = (
        start.trim().parse::<u64>().ok()?,
        end.trim().parse::<u64>().ok()?,
    );
    // distribution answers "0-0" for an empty session; that is "no bytes yet".
    (end > start || start > 0).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_bodies_shrink_to_an_end() {
        assert_eq!(smaller_body(100 << 20, 0), Some(SMALL_CHUNK));
        assert_eq!(smaller_body(SMALL_CHUNK, 0), Some(SMALL_CHUNK / 2));
        assert_eq!(smaller_body(10 << 20, 5 << 20), Some(5 << 20));
        assert_eq!(smaller_body(5 << 20, 5 << 20), None);
        assert_eq!(smaller_body(1, 0), None);
        assert_eq!(smaller_body(0, 0), None);
        // From the largest body down: a few dozen tries at most, never a loop.
        let (mut len, mut tries) = (u64::MAX, 0);
        while let Some(s) = smaller_body(len, 0) {
            assert!(s < len);
            (len, tries) = (s, tries + 1);
        }
        assert!(tries <= 24, "{tries}");
    }

    #[test]
    fn a_413_to_a_small_body_leaves_other_blobs_usable_chunks() {
        assert_eq!(shared_cap(204), MIN_SHARED_CAP);
        assert_eq!(shared_cap(SMALL_CHUNK), SMALL_CHUNK);
    }

    #[test]
    fn range_headers() {
        assert_eq!(parse_range_end("0-1023"), Some(1023));
        assert_eq!(parse_range_end("bytes=0-9"), Some(9));
        assert_eq!(parse_range_end("0-0"), None);
        assert_eq!(parse_range_end("junk"), None);
    }
}
