//! One registry endpoint: the scheme probe (`GET /v2/`), authenticated requests with the
//! challenge → token dance, and retries with backoff on connection errors, 5xx, 408 and
//! 429 (honouring `Retry-After`). Shared by threads (`&Client` is `Sync`); tokens are
//! fetched under one lock, so parallel layers ask the realm once. A stalled or too-slow
//! exchange (stall.rs) is retried once, then fails naming the host and what stalled. A
//! request whose connection broke while its body went out is retried with `Expect:
//! 100-continue`, so a registry that refuses a body before reading it (413, then close)
//! is heard as its status rather than as a broken pipe.
//!
//! `Authorization` goes only to the registry's own host: an upload `Location` or a blob
//! redirect on another host (a CDN, S3) gets no credentials.
//!
//! Never: knows manifests or blobs (pull.rs / push.rs), reads credential files (the
//! caller passes `Credentials`).

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::Response;
use ureq::{Agent, Body as RespBody, SendBody};

use crate::auth::token::fetch_token;
use crate::auth::{Challenge, Credentials, Scope, TokenCache};
use crate::error::{ApiErrors, RegistryError};
use crate::stall::{describe, Stall, TransferLimits, Watch};
use crate::transport::{agent_for, agent_with_lazy_tls, TransportOptions};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubles each time.
    pub base: Duration,
    /// Longest backoff, and the cap on `Retry-After`.
    pub max: Duration,
    /// Attempts in all when the registry stalls (stall.rs): a stuck connection may
    /// recover on a new one, a registry that stalls every time will not.
    pub stall_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_millis(200),
            max: Duration::from_secs(30),
            stall_attempts: 2,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt + 1`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        (self.base * 2u32.saturating_pow(attempt.min(16))).min(self.max)
    }
}

/// A request body that can be replayed on retry.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`; `progress` gets the absolute position.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        progress: Option<&'a (dyn Fn(u64) + Sync)>,
    },
}

/// One request: method, absolute URL, extra headers, body, and the scope it needs.
pub struct Request<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    pub scope: &'a Scope,
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: TokenCache,
}

/// A connection to one registry.
pub struct Client {
    registry: String,
    host: String,
    base: String,
    agent: Agent,
    opts: TransportOptions,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to `endpoint` (`host[:port]`) serving `registry` (its normalised name, used
    /// for credentials and messages): probes `GET /v2/` over HTTPS, then plain HTTP when
    /// allowed, and remembers the challenge.
    pub fn connect(
        registry: &str,
        endpoint: &str,
        opts: TransportOptions,
        creds: Option<Credentials>,
        retry: RetryPolicy,
    ) -> Result<Self, RegistryError> {
        let (agent, tls) = agent_with_lazy_tls(endpoint, &opts);
        let mut client = Self {
            registry: registry.to_owned(),
            host: endpoint.to_owned(),
            base: format!("https://{endpoint}"),
            agent,
            opts,
            creds,
            auth: Mutex::new(AuthState::default()),
            retry,
        };
        let plain_ok = client.opts.allows_plain_http(endpoint);
        // Loopback registries are nearly always plain HTTP (docker treats them as
        // insecure): try that first and skip a TLS handshake against a plain server.
        // Elsewhere HTTPS first; plain HTTP only as the fallback the user allowed.
        // The first probe gets no retries when a fallback follows.
        let schemes: &[&str] = match (plain_ok, crate::transport::is_loopback(endpoint)) {
            (false, _) => &["https"],
            (true, true) => &["http", "https"],
            (true, false) => &["https", "http"],
        };
        let mut last = None;
        for (i, scheme) in schemes.iter().enumerate() {
            client.base = format!("{scheme}://{endpoint}");
            if *scheme == "https" {
                // Made here rather than inside the handshake: a bad CA file fails with
                // its name, and before any connection.
                tls.load()?;
            }
            let attempts = if i + 1 < schemes.len() {
                1
            } else {
                client.retry.attempts
            };
            match client.ping(attempts) {
                Ok(()) => {
                    last = None;
                    break;
                }
                // A server that took a plain HTTP request and then said nothing is stalled,
                // not speaking TLS (a TLS server rejects such a request at once): do not
                // wait on it again over HTTPS.
                Err(e @ RegistryError::Stalled { .. }) if *scheme == "http" => return Err(e),
                Err(e) => {
                    tracing::debug!(%e, "{scheme} probe failed");
                    last = Some(e);
                }
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        Ok(client)
    }

    fn ping(&self, attempts: u32) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let mut attempt = 0;
        let mut stalls = 0;
        let resp = loop {
            match self.agent.get(&url).call() {
                Ok(r) if is_retryable_status(r.status().as_u16()) && attempt + 1 < attempts => {}
                Ok(r) => break r,
                Err(e) => {
                    let stall = Stall::from_ureq(&e, &self.opts.limits, false);
                    stalls += u32::from(stall.is_some());
                    let again = is_retryable_transport(&e)
                        && attempt + 1 < attempts
                        && stalls < self.retry.stall_attempts.max(1);
                    if !again {
                        return Err(self.transport_error("GET", &url, e, stall));
                    }
                }
            }
            std::thread::sleep(self.retry.backoff(attempt));
            attempt += 1;
        };
        if resp.status().as_u16() == 400 && url.starts_with("http://") {
            // "Client sent an HTTP request to an HTTPS server."
            return Err(Self::error("GET", &url, resp));
        }
        if resp.status().as_u16() == 401 {
            let ch = resp
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(Challenge::parse);
            self.lock_auth().challenge = ch;
        }
        Ok(())
    }

    /// The registry's normalised name (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// When a transfer counts as stalled or too slow.
    pub fn limits(&self) -> &TransferLimits {
        &self.opts.limits
    }

    /// The retry settings.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// A failed exchange as an error: a stall names the host and what it was doing.
    fn transport_error(
        &self,
        method: &str,
        url: &str,
        e: ureq::Error,
        stall: Option<Stall>,
    ) -> RegistryError {
        match stall {
            Some(stall) => RegistryError::Stalled {
                host: authority_of(url).unwrap_or(url).to_owned(),
                doing: describe(method, url),
                stall,
            },
            None => RegistryError::Transport {
                method: method.into(),
                url: url.into(),
                source: Box::new(e),
            },
        }
    }

    /// `scheme://host` of the API.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// An absolute URL for an API path (`/v2/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // A panic while holding the lock leaves a usable state (plain data).
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Get a token for `scope` now, so that large uploads do not meet a 401 midway.
    pub fn authorize(&self, scope: &Scope) -> Result<(), RegistryError> {
        self.auth_header(scope).map(|_| ())
    }

    fn auth_header(&self, need: &Scope) -> Result<Option<String>, RegistryError> {
        let mut st = self.lock_auth();
        match st.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(t) = st.tokens.valid_for(need) {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                st.tokens.wanted.union(need);
                let scope = st.tokens.wanted.clone();
                let realm_host = authority_of(&realm).unwrap_or_default();
                let agent = if realm_host == self.host {
                    self.agent.clone()
                } else {
                    agent_for(realm_host, &self.opts)?
                };
                let mut tries = 0;
                let mut stalls = 0;
                let token = loop {
                    match fetch_token(
                        &agent,
                        &realm,
                        service.as_deref(),
                        &scope,
                        self.creds.as_ref(),
                        &self.opts.limits,
                    ) {
                        Ok(t) => break t,
                        Err(e)
                            if tries + 1 < self.retry.attempts
                                && !e.to_string().contains("refused")
                                && {
                                    stalls += u32::from(matches!(e, RegistryError::Stalled { .. }));
                                    stalls < self.retry.stall_attempts.max(1)
                                } =>
                        {
                            tracing::debug!(%e, "token request failed; retrying");
                            std::thread::sleep(self.retry.backoff(tries));
                            tries += 1;
                        }
                        Err(e) => return Err(e),
                    }
                };
                let header = format!("Bearer {}", token.value);
                st.tokens.token = Some(token);
                Ok(Some(header))
            }
        }
    }

    /// Verify that the credentials are accepted: `GET /v2/` authenticated (for a token
    /// registry, the token request itself checks them).
    pub fn check_login(&self) -> Result<(), RegistryError> {
        let scope = Scope::default();
        let url = self.url("/v2/");
        let resp = self.send(&Request {
            method: "GET",
            url: url.clone(),
            headers: Vec::new(),
            body: Body::Empty,
            scope: &scope,
        })?;
        match resp.status().as_u16() {
            200 => Ok(()),
            401 | 403 => Err(RegistryError::Auth {
                registry: self.registry.clone(),
                reason: "the registry refused the credentials".into(),
            }),
            _ => Err(Self::error("GET", &url, resp)),
        }
    }

    /// Send with auth and retries. Returns the final response whatever its status
    /// (after retries of 5xx/408/429 and one re-authentication on 401); transport
    /// errors after the last attempt are errors.
    pub fn send(&self, req: &Request<'_>) -> Result<Response<RespBody>, RegistryError> {
        let mut reauthed = false;
        let mut attempt = 0u32;
        let mut stalls = 0u32;
        let same_host = authority_of(&req.url) == Some(self.host.as_str());
        // Set after a connection broke while this request had a body: a registry that
        // answers (413 to a body over its limit) before reading the body and closes loses
        // that answer with the connection, and the same body would break it again. The
        // retries ask first (`Expect: 100-continue`), so the answer comes back as a
        // status before any body goes.
        let mut ask_first = false;
        loop {
            let auth = if same_host {
                self.auth_header(req.scope)?
            } else {
                None
            };
            let verdict = Cell::new(None);
            let result = self.send_once(req, auth.as_deref(), ask_first, &verdict);
            let last = attempt + 1 >= self.retry.attempts;
            match result {
                Err(e) => {
                    let stall = verdict
                        .take()
                        .or_else(|| Stall::from_ureq(&e, &self.opts.limits, waits_for_commit(req)));
                    stalls += u32::from(stall.is_some());
                    if last
                        || !is_retryable_transport(&e)
                        || stalls >= self.retry.stall_attempts.max(1)
                    {
                        return Err(self.transport_error(req.method, &req.url, e, stall));
                    }
                    tracing::debug!(method = req.method, url = %req.url, %e, "retrying after a transport error");
                    ask_first |= has_body(req);
                    std::thread::sleep(self.retry.backoff(attempt));
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 && same_host && !reauthed {
                        let ch = resp
                            .headers()
                            .get_all("www-authenticate")
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .find_map(Challenge::parse);
                        if let Some(ch) = ch {
                            let mut st = self.lock_auth();
                            if let Challenge::Bearer { scope: Some(s), .. } = &ch {
                                st.tokens.wanted.union(&Scope::parse(s));
                            }
                            st.tokens.token = None;
                            st.challenge = Some(ch);
                            reauthed = true;
                            continue;
                        }
                        return Ok(resp);
                    }
                    if ask_first && status == 417 && !last {
                        // A server that does not take `Expect` (RFC 9110 §10.1.1): the
                        // next try sends the body unasked.
                        ask_first = false;
                        drain(resp);
                    } else if !last && is_retryable_status(status) {
                        let delay = retry_after(&resp)
                            .map(|d| d.min(self.retry.max))
                            .unwrap_or_else(|| self.retry.backoff(attempt));
                        tracing::debug!(method = req.method, url = %req.url, status, ?delay, "retrying");
                        drain(resp);
                        std::thread::sleep(delay);
                    } else {
                        return Ok(resp);
                    }
                }
            }
            attempt += 1;
        }
    }

    fn send_once(
        &self,
        req: &Request<'_>,
        auth: Option<&str>,
        ask_first: bool,
        verdict: &Cell<Option<Stall>>,
    ) -> Result<Response<RespBody>, ureq::Error> {
        macro_rules! with_headers {
            ($b:expr) => {{
                let mut b = $b;
                for (k, v) in &req.headers {
                    b = b.header(*k, v.as_str());
                }
                if let Some(a) = auth {
                    b = b.header("Authorization", a);
                }
                if ask_first {
                    // ureq waits for `100 Continue` (or its 1 s timeout) before the body.
                    b = b.header("Expect", "100-continue");
                }
                b
            }};
        }
        let a = &self.agent;
        let limits = &self.opts.limits;
        match req.method {
            "GET" => with_headers!(a.get(&req.url)).call(),
            "HEAD" => with_headers!(a.head(&req.url)).call(),
            "DELETE" => with_headers!(a.delete(&req.url)).call(),
            m => {
                let b = match m {
                    "POST" => a.post(&req.url),
                    "PATCH" => a.patch(&req.url),
                    _ => a.put(&req.url),
                };
                let len = match req.body {
                    Body::Empty => 0,
                    Body::Bytes(b) => b.len() as u64,
                    Body::File { len, .. } => len,
                };
                let mut config = b.config().timeout_send_body(limits.send_deadline(len));
                if waits_for_commit(req) {
                    // The registry may hash and move the whole blob before it answers a
                    // PUT or PATCH: a longer, still bounded, wait for the answer.
                    config = config
                        .timeout_per_read(Some(limits.answer))
                        .timeout_recv_response(Some(limits.answer));
                }
                let b = with_headers!(config.build());
                match req.body {
                    Body::Empty => b.header("Content-Length", "0").send_empty(),
                    Body::Bytes(bytes) => b
                        .header("Content-Length", bytes.len().to_string())
                        .send(bytes),
                    Body::File {
                        path,
                        offset,
                        len,
                        progress,
                    } => {
                        let mut f = File::open(path).map_err(ureq::Error::Io)?;
                        f.seek(SeekFrom::Start(offset)).map_err(ureq::Error::Io)?;
                        let mut reader = Watch::new(
                            Progress {
                                inner: f.take(len),
                                pos: offset,
                                cb: progress,
                            },
                            limits,
                            true,
                            verdict,
                        );
                        b.header("Content-Length", len.to_string())
                            .send(SendBody::from_reader(&mut reader))
                    }
                }
            }
        }
    }

    /// Turn a failed response into an error naming the request and the registry's codes.
    pub fn error(method: &str, url: &str, resp: Response<RespBody>) -> RegistryError {
        let status = resp.status().as_u16();
        // The codes only improve the message: an unreadable body gives none.
        let body = read_small(resp, &TransferLimits::default()).unwrap_or_default();
        RegistryError::Status {
            method: method.into(),
            url: url.into(),
            status,
            errors: ApiErrors::from_body(&body),
        }
    }
}

struct Progress<'a, R> {
    inner: R,
    pos: u64,
    cb: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        if let Some(cb) = self.cb {
            cb(self.pos);
        }
        Ok(n)
    }
}

/// True for requests that send a body.
fn has_body(req: &Request<'_>) -> bool {
    match req.body {
        Body::Empty => false,
        Body::Bytes(b) => !b.is_empty(),
        Body::File { len, .. } => len > 0,
    }
}

/// True for requests whose answer may wait for the registry to commit a blob.
fn waits_for_commit(req: &Request<'_>) -> bool {
    matches!(req.method, "PUT" | "PATCH")
}

/// Why a small body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// It is longer than the limit (by its `Content-Length`, or by what arrived).
    TooLarge {
        limit: u64,
    },
    /// The registry stalled or trickled.
    Stalled(Stall),
    Io(std::io::Error),
}

/// Read a whole small body (manifests, tokens, error documents) of at most `limit`
/// bytes, under the stall bound and the rate floor.
pub fn read_bounded(
    resp: &mut Response<RespBody>,
    limit: u64,
    limits: &TransferLimits,
) -> Result<Vec<u8>, BodyError> {
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let verdict = Cell::new(None);
    // ureq's own limit stays above ours, so an overlong body shows here as one byte too
    // many rather than as a ureq error.
    let inner = resp
        .body_mut()
        .with_config()
        .limit(limit.saturating_add(2))
        .reader();
    let mut reader = Watch::new(inner, limits, false, &verdict).take(limit.saturating_add(1));
    let mut out = Vec::new();
    match reader.read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > limit => Err(BodyError::TooLarge { limit }),
        Ok(_) => Ok(out),
        Err(e) => Err(verdict
            .take()
            .map(BodyError::Stalled)
            .unwrap_or(BodyError::Io(e))),
    }
}

/// Read a small body (error documents) of at most 8 MiB, under the transfer limits.
pub fn read_small(
    mut resp: Response<RespBody>,
    limits: &TransferLimits,
) -> Result<Vec<u8>, BodyError> {
    read_bounded(&mut resp, 8 << 20, limits)
}

fn drain(mut resp: Response<RespBody>) {
    // Best effort: reading the rest lets the connection be reused; failure only costs that.
    let _ = std::io::copy(
        &mut resp.body_mut().as_reader().take(1 << 20),
        &mut std::io::sink(),
    );
}

/// 5xx, 408 and 429 are worth another try.
pub fn is_retryable_status(status: u16) -> bool {
    status == 408
        || status == 429
        || (500..=599).contains(&status) && status != 501 && status != 505
}

fn is_retryable_transport(e: &ureq::Error) -> bool {
    !matches!(
        e,
        ureq::Error::BadUri(_)
            | ureq::Error::InvalidProxyUrl
            | ureq::Error::TooManyRedirects
            | ureq::Error::RedirectFailed
    )
}

/// `Retry-After` in seconds (HTTP dates are rare from registries and fall back to backoff).
pub fn retry_after(resp: &Response<RespBody>) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `host[:port]` of an absolute URL.
pub fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Resolve an upload `Location` against the URL of the request that returned it:
/// absolute URLs stay, `//host/..` takes the scheme, `/path` takes scheme and host.
pub fn resolve_location(request_url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let scheme = request_url
        .split_once("://")
        .map(|(s, _)| s)
        .unwrap_or("https");
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let authority = authority_of(request_url).unwrap_or_default();
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = request_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(request_url);
    let dir = path
        .split('?')
        .next()
        .unwrap_or(path)
        .rsplit_once('/')
        .map(|(d, _)| d)
        .unwrap_or(path);
    format!("{scheme}://{dir}/{location}")
}

/// Append a query parameter to a URL that may already carry a query (`_state=…`).
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}{key}={}",
        crate::auth::token::percent_encode(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request() {
        let req = "http://127.0.0.1:5000/v2/me/x/blobs/uploads/";
        assert_eq!(
            resolve_location(req, "/v2/me/x/blobs/uploads/u1?_state=a"),
            "http://127.0.0.1:5000/v2/me/x/blobs/uploads/u1?_state=a"
        );
        assert_eq!(
            resolve_location(req, "https://cdn.example/up/1"),
            "https://cdn.example/up/1"
        );
        assert_eq!(resolve_location(req, "//other:1/p"), "http://other:1/p");
        assert_eq!(
            resolve_location(req, "u2"),
            "http://127.0.0.1:5000/v2/me/x/blobs/uploads/u2"
        );
        assert_eq!(
            with_query("http://h/u?_state=a", "digest", "sha256:ab"),
            "http://h/u?_state=a&digest=sha256%3Aab"
        );
        assert_eq!(
            with_query("http://h/u", "digest", "x"),
            "http://h/u?digest=x"
        );
        assert_eq!(
            authority_of("https://auth.docker.io/token?x"),
            Some("auth.docker.io")
        );
    }

    /// A registry reached over plain HTTP never has the TLS configuration made: a CA
    /// file that cannot be read does not stop it. The same file fails a connection that
    /// tries HTTPS, naming the file, before any handshake.
    #[test]
    fn plain_http_registries_make_no_tls_configuration() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("bad.crt"),
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let opts = TransportOptions {
            ca_dir: Some(t.path().to_owned()),
            ..TransportOptions::default()
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = l.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap() == 1 {
                head.push(b[0]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .unwrap();
            String::from_utf8(head).unwrap()
        });
        let retry = RetryPolicy::default();
        let c = Client::connect(&endpoint, &endpoint, opts.clone(), None, retry).unwrap();
        assert_eq!(c.base(), format!("http://{endpoint}"));
        assert!(server.join().unwrap().starts_with("GET /v2/ HTTP/1.1"));
        // Port 1 refuses plain HTTP at once; HTTPS comes next and needs the file.
        let e = Client::connect("127.0.0.1:1", "127.0.0.1:1", opts, None, retry).unwrap_err();
        assert!(
            matches!(&e, RegistryError::Tls { reason, .. } if reason.contains("bad.crt")),
            "{e}"
        );
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 413, 416, 501] {
            assert!(!is_retryable_status(s), "{s}");
        }
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(350),
            stall_attempts: 2,
        };
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(5), Duration::from_millis(350));
    }
}
