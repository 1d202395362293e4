//! Uploading one blob: the upload session (start, status, resume from the offset the
//! registry holds, saved after each acknowledged chunk: upload_session.rs), one `PUT`
//! or `PATCH` chunks, and which failures are worth a fresh session.
//!
//! Never: decides which blobs to push or mounts them (push.rs).

use super::*;

impl Ctx<'_> {
    fn start_session(&self, digest: &Digest) -> Result<(String, Option<u64>), RegistryError> {
        let scope = self.scope(&[]);
        let url = self
            .client
            .url(&format!("/v2/{}/blobs/uploads/", self.repo));
        let resp = self.client.send(&Request {
            method: "POST",
            url: url.clone(),
            headers: Vec::new(),
            body: Body::Empty,
            scope: &scope,
        })?;
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
        for _ in 0..3 {
            let (loc, min, start) = match (resume.take(), session.take()) {
                (Some((l, off)), _) => (l, None, off),
                (None, Some(l)) => (l, None, 0),
                (None, None) => {
                    let (l, min) = self.start_session(&b.digest)?;
                    (l, min, 0)
                }
            };
            let result = self.upload_in(b, &path, loc, min, start, saved.as_deref());
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
                Err(Retry::Fatal(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| self.upload_err(&b.digest, "upload failed")))
    }

    /// One `PUT` for small blobs; chunks (resumable) for the rest.
    fn monolithic(&self, b: &BlobRef) -> bool {
        b.size <= self.opts.monolithic_max && self.opts.chunk_size.is_none_or(|c| b.size <= c)
    }

    fn upload_in(
        &self,
        b: &BlobRef,
        path: &Path,
        mut loc: String,
        min: Option<u64>,
        start: u64,
        saved: Option<&Path>,
    ) -> Result<(), Retry> {
        let scope = self.scope(&[]);
        let progress = |n: u64| self.events.blob_progress(&b.digest, n);
        let octet = ("Content-Type", "application/octet-stream".to_owned());
        if self.monolithic(b) {
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
                s => Err(classify(s, Client::error("PUT", &url, resp))),
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
            .max(floor)
            .max(1);
        let mut offset = start;
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
                    let next = location(&loc, &resp);
                    offset = range_end(&resp).map(|e| e + 1).unwrap_or(offset + len);
                    if let Some(l) = next {
                        loc = l;
                    }
                    save(&loc, offset);
                }
                413 | 416 => {
                    // Too large, or out of order: smaller chunks, from where the registry is.
                    chunk = SMALL_CHUNK.max(floor).min(chunk.saturating_sub(1).max(1));
                    if let Some(l) = location(&loc, &resp) {
                        loc = l;
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
        let scope = self.scope(&[]);
        let resp = self.client.send(&Request {
            method: "GET",
            url: loc.to_owned(),
            headers: Vec::new(),
            body: Body::Empty,
            scope: &scope,
        })?;
        if resp.status().as_u16() != 204 {
            return Err(Client::error("GET", loc, resp));
        }
        let next = location(loc, &resp).unwrap_or_else(|| loc.to_owned());
        Ok((next, range_end(&resp).map(|e| e + 1).unwrap_or(0)))
    }
}

enum Retry {
    NewSession(RegistryError),
    Fatal(RegistryError),
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
    fn range_headers() {
        assert_eq!(parse_range_end("0-1023"), Some(1023));
        assert_eq!(parse_range_end("bytes=0-9"), Some(9));
        assert_eq!(parse_range_end("0-0"), None);
        assert_eq!(parse_range_end("junk"), None);
    }
}
