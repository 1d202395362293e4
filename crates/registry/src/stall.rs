//! Stalled and too-slow transfers. A registry that stops sending, or trickles a few
//! bytes a second, must not keep a pull or push waiting for ever: every transfer fails
//! when no byte moves for [`TransferLimits::stall`], or when fewer than
//! `min_rate × window` bytes move in any `window` (curl's low-speed limit). The stall
//! bound is enforced by the agent's per-read and per-write timeouts (transport.rs), the
//! rate floor by [`Watch`] around body readers and upload sources. Both are retried
//! once (client.rs, pull.rs): a stuck connection may recover on a new one, but a
//! registry that stalls twice in a row is not waited on again, so a stalled pull fails
//! within about `2 × stall` and a trickling one within about `2 × window`.
//!
//! Never: sends requests, or sleeps.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// `IMAGO_REGISTRY_STALL_TIMEOUT`: seconds without a byte before a transfer fails.
pub const ENV_STALL: &str = "IMAGO_REGISTRY_STALL_TIMEOUT";
/// `IMAGO_REGISTRY_MIN_RATE`: the floor under the transfer rate, bytes per second
/// (0: no floor).
pub const ENV_MIN_RATE: &str = "IMAGO_REGISTRY_MIN_RATE";
/// `IMAGO_REGISTRY_RATE_WINDOW`: seconds over which the rate is averaged.
pub const ENV_RATE_WINDOW: &str = "IMAGO_REGISTRY_RATE_WINDOW";
/// `IMAGO_REGISTRY_ANSWER_TIMEOUT`: seconds to wait for the answer to an upload.
pub const ENV_ANSWER: &str = "IMAGO_REGISTRY_ANSWER_TIMEOUT";

/// Longest setting accepted for any of the waits (an hour): every wait stays bounded.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// How long imago waits on a registry before it calls a transfer stalled or too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLimits {
    /// No byte received or accepted for this long fails the transfer; also the wait for
    /// the first byte of an answer to a request without a body.
    pub stall: Duration,
    /// Fewer than `min_rate` bytes per second over `window` fails the transfer (0: off).
    pub min_rate: u64,
    pub window: Duration,
    /// The wait for the answer to a request with a body (an upload): the registry may
    /// verify and move the blob before it answers.
    pub answer: Duration,
}

impl Default for TransferLimits {
    fn default() -> Self {
        Self {
            stall: Duration::from_secs(20),
            min_rate: 1024,
            window: Duration::from_secs(60),
            answer: Duration::from_secs(120),
        }
    }
}

/// A limit set in the environment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var}={value:?}: {reason}")]
pub struct LimitsError {
    pub var: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl TransferLimits {
    /// The defaults, with the `IMAGO_REGISTRY_*` overrides of the process environment.
    pub fn from_env() -> Result<Self, LimitsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Pure form of [`TransferLimits::from_env`]; unset or empty variables keep defaults.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LimitsError> {
        let mut l = Self::default();
        let val = |var: &'static str| get(var).filter(|v| !v.trim().is_empty());
        if let Some(v) = val(ENV_STALL) {
            l.stall = parse_secs(ENV_STALL, &v)?;
        }
        if let Some(v) = val(ENV_RATE_WINDOW) {
            l.window = parse_secs(ENV_RATE_WINDOW, &v)?;
        }
        if let Some(v) = val(ENV_ANSWER) {
            l.answer = parse_secs(ENV_ANSWER, &v)?;
        }
        if let Some(v) = val(ENV_MIN_RATE) {
            l.min_rate = v.trim().parse().map_err(|_| LimitsError {
                var: ENV_MIN_RATE,
                value: v.clone(),
                reason: "not a whole number of bytes per second",
            })?;
        }
        Ok(l)
    }

    /// The deadline for sending a body of `len` bytes: the rate floor's share of it,
    /// plus one window of slack. `None` when there is no floor.
    pub fn send_deadline(&self, len: u64) -> Option<Duration> {
        (self.min_rate > 0)
            .then(|| self.window + Duration::from_secs(len / self.min_rate))
            .map(|d| d.min(Duration::from_secs(u64::from(u32::MAX))))
    }
}

fn parse_secs(var: &'static str, v: &str) -> Result<Duration, LimitsError> {
    let err = |reason| LimitsError {
        var,
        value: v.to_owned(),
        reason,
    };
    let secs: f64 = v
        .trim()
        .parse()
        .map_err(|_| err("not a number of seconds"))?;
    let d = Duration::try_from_secs_f64(secs).map_err(|_| err("not a number of seconds"))?;
    if d.is_zero() || d > MAX_WAIT {
        return Err(err("must be more than 0 and at most 3600 seconds"));
    }
    Ok(d)
}

/// What went wrong with a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StallKind {
    /// No byte for this long.
    Silent(Duration),
    /// Only `bytes` moved in `window`.
    Slow {
        bytes: u64,
        window: Duration,
        min_rate: u64,
    },
    /// No complete answer within this long.
    NoAnswer(Duration),
    /// The body was not sent by the rate floor's deadline for its size.
    Late { min_rate: u64 },
}

/// A stalled or too-slow transfer, and which way the data was going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// True when imago was sending (an upload).
    pub sending: bool,
    pub kind: StallKind,
}

/// `20 s`, `1.5 s`.
pub fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.sending { "accepted" } else { "sent" };
        match &self.kind {
            StallKind::Silent(d) => write!(f, "{verb} no data for {}", secs(*d)),
            StallKind::Slow {
                bytes,
                window,
                min_rate,
            } => write!(
                f,
                "{verb} only {bytes} bytes in {}, under the floor of {min_rate} bytes/s",
                secs(*window)
            ),
            StallKind::NoAnswer(d) => write!(f, "sent no answer for {}", secs(*d)),
            StallKind::Late { min_rate } => write!(
                f,
                "took the request body slower than the floor of {min_rate} bytes/s"
            ),
        }
    }
}

impl std::error::Error for Stall {}

impl Stall {
    /// The stall a ureq error stands for, if it is a timeout. `limits` gives the wait
    /// that ran out; `uploading`: the request carried a blob (its answer gets
    /// `limits.answer`).
    pub fn from_ureq(e: &ureq::Error, limits: &TransferLimits, uploading: bool) -> Option<Self> {
        use ureq::Timeout as T;
        let ureq::Error::Timeout(t) = e else {
            return None;
        };
        let answer = if uploading {
            limits.answer
        } else {
            limits.stall
        };
        let (sending, kind) = match t {
            T::PerRead if uploading => (true, StallKind::NoAnswer(answer)),
            T::PerRead => (false, StallKind::Silent(limits.stall)),
            T::RecvResponse => (uploading, StallKind::NoAnswer(answer)),
            T::PerWrite => (true, StallKind::Silent(limits.stall)),
            T::SendBody => (
                true,
                StallKind::Late {
                    min_rate: limits.min_rate,
                },
            ),
            // Connecting and resolving are not transfers: the caller's connection-error
            // handling and hint apply.
            _ => return None,
        };
        Some(Self { sending, kind })
    }
}

/// The rate-floor bookkeeping, kept apart from I/O so it can be tested with any clock:
/// tumbling windows; a window that ends with fewer than `min_rate × window` bytes fails.
#[derive(Debug, Clone)]
pub struct Pace {
    min_rate: u64,
    window: Duration,
    start: Instant,
    bytes: u64,
}

impl Pace {
    pub fn new(limits: &TransferLimits, now: Instant) -> Self {
        Self {
            min_rate: limits.min_rate,
            window: limits.window,
            start: now,
            bytes: 0,
        }
    }

    fn quota(&self) -> u64 {
        let w = self.window.as_millis().min(u128::from(u64::MAX)) as u64;
        self.min_rate.saturating_mul(w) / 1000
    }

    /// Count `n` bytes moved at `now`; `Some` when the window just ended too slow.
    pub fn record(&mut self, n: u64, now: Instant) -> Option<StallKind> {
        if self.min_rate == 0 {
            return None;
        }
        self.bytes = self.bytes.saturating_add(n);
        let elapsed = now.saturating_duration_since(self.start);
        if self.bytes >= self.quota() {
            // This window met the floor: start the next one.
            self.start = now;
            self.bytes = 0;
            return None;
        }
        if elapsed >= self.window {
            // The configured window, not the measured one: the check runs at the first
            // read after the window ends, a moment later, and the message should say
            // what the user set.
            return Some(StallKind::Slow {
                bytes: self.bytes,
                window: self.window,
                min_rate: self.min_rate,
            });
        }
        None
    }
}

/// A body reader (or upload source) under the rate floor. On a verdict the read fails
/// (`TimedOut`) and the verdict is left in `verdict` for the caller, which turns it into
/// a typed error: the io::Error may pass through other crates' error types on its way.
/// The inner reader's own timeouts (the agent's per-read bound) become a `Silent` verdict.
pub struct Watch<'a, R> {
    inner: R,
    pace: Pace,
    stall: Duration,
    sending: bool,
    verdict: &'a Cell<Option<Stall>>,
}

impl<'a, R: Read> Watch<'a, R> {
    pub fn new(
        inner: R,
        limits: &TransferLimits,
        sending: bool,
        verdict: &'a Cell<Option<Stall>>,
    ) -> Self {
        Self {
            inner,
            pace: Pace::new(limits, Instant::now()),
            stall: limits.stall,
            sending,
            verdict,
        }
    }

    fn fail(&self, kind: StallKind) -> io::Error {
        let stall = Stall {
            sending: self.sending,
            kind,
        };
        self.verdict.set(Some(stall.clone()));
        io::Error::new(io::ErrorKind::TimedOut, stall)
    }
}

impl<R: Read> Read for Watch<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => match self.pace.record(n as u64, Instant::now()) {
                Some(kind) => Err(self.fail(kind)),
                None => Ok(n),
            },
            Err(e) if is_timeout(&e) => Err(self.fail(StallKind::Silent(self.stall))),
            Err(e) => Err(e),
        }
    }
}

/// True for a read timeout, as ureq's body reader reports it (a wrapped
/// `ureq::Error::Timeout`) or as a socket does.
fn is_timeout(e: &io::Error) -> bool {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        return true;
    }
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// What a request was doing, for messages: `downloading blob sha256:…`,
/// `fetching manifest me/app:1`, `uploading to URL`, else `METHOD URL`.
pub fn describe(method: &str, url: &str) -> String {
    let path = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let path = path.split_once('/').map(|(_, p)| p).unwrap_or_default();
    if let Some(rest) = path.strip_prefix("v2/") {
        if let Some((repo, d)) = rest.rsplit_once("/blobs/") {
            if method == "GET" && !d.starts_with("uploads") {
                return format!("downloading blob {d} of {repo}");
            }
        }
        if let Some((repo, r)) = rest.rsplit_once("/manifests/") {
            if method == "GET" {
                return format!("fetching manifest {repo}:{r}");
            }
            if method == "PUT" {
                return format!("uploading manifest {repo}:{r}");
            }
        }
        if let Some((repo, _)) = rest.split_once("/blobs/uploads") {
            if matches!(method, "PUT" | "PATCH") {
                // Not the whole URL: upload locations carry long opaque state.
                let digest = url
                    .split_once('?')
                    .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("digest=")))
                    .map(|d| d.replace("%3A", ":").replace("%3a", ":"));
                return match digest {
                    Some(d) => format!("uploading blob {d} to {repo}"),
                    None => format!("uploading to {repo}"),
                };
            }
        }
    }
    format!("{method} {url}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u64, window: u64) -> TransferLimits {
        TransferLimits {
            min_rate: rate,
            window: Duration::from_secs(window),
            ..TransferLimits::default()
        }
    }

    #[test]
    fn a_trickle_fails_at_the_end_of_the_first_window() {
        let t0 = Instant::now();
        let mut p = Pace::new(&limits(1024, 60), t0);
        for s in 1..60 {
            assert_eq!(p.record(1, t0 + Duration::from_secs(s)), None, "{s}");
        }
        assert_eq!(
            p.record(1, t0 + Duration::from_secs(60)),
            Some(StallKind::Slow {
                bytes: 60,
                window: Duration::from_secs(60),
                min_rate: 1024
            })
        );
    }

    #[test]
    fn a_window_that_meets_the_floor_starts_the_next() {
        let t0 = Instant::now();
        let mut p = Pace::new(&limits(100, 10), t0);
        // 1000 bytes in the first 5 s: quota met, new window from 5 s.
        assert_eq!(p.record(1000, t0 + Duration::from_secs(5)), None);
        // 900 bytes by 14 s: under quota but the window (from 5 s) is not over.
        assert_eq!(p.record(900, t0 + Duration::from_secs(14)), None);
        // 1000 by 15 s: met again; the next window starts at 15 s and ends empty at 25 s.
        assert_eq!(p.record(100, t0 + Duration::from_secs(15)), None);
        assert_eq!(p.record(0, t0 + Duration::from_secs(24)), None);
        assert!(p.record(0, t0 + Duration::from_secs(25)).is_some());
        let mut off = Pace::new(&limits(0, 10), t0);
        assert_eq!(off.record(0, t0 + Duration::from_secs(3600)), None);
    }

    #[test]
    fn limits_come_from_the_environment_and_bad_values_are_errors() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            TransferLimits::from_lookup(env(&[])).unwrap(),
            TransferLimits::default()
        );
        let l = TransferLimits::from_lookup(env(&[
            (ENV_STALL, "2"),
            (ENV_MIN_RATE, "10"),
            (ENV_RATE_WINDOW, "0.5"),
            (ENV_ANSWER, " 3 "),
        ]))
        .unwrap();
        assert_eq!(
            (l.stall, l.min_rate, l.window, l.answer),
            (
                Duration::from_secs(2),
                10,
                Duration::from_millis(500),
                Duration::from_secs(3)
            )
        );
        for (var, v) in [
            (ENV_STALL, "0"),
            (ENV_STALL, "-1"),
            (ENV_STALL, "soon"),
            (ENV_STALL, "1e30"),
            (ENV_RATE_WINDOW, "3601"),
            (ENV_MIN_RATE, "1.5"),
        ] {
            let e = TransferLimits::from_lookup(|k| (k == var).then(|| v.to_owned()));
            assert_eq!(e.map_err(|e| e.var), Err(var), "{var}={v}");
        }
    }

    #[test]
    fn messages_name_what_stalled() {
        let s = Stall {
            sending: false,
            kind: StallKind::Silent(Duration::from_secs(20)),
        };
        assert_eq!(s.to_string(), "sent no data for 20 s");
        assert_eq!(
            describe("GET", "http://127.0.0.1:5000/v2/me/x/blobs/sha256:ab"),
            "downloading blob sha256:ab of me/x"
        );
        assert_eq!(
            describe("GET", "https://r.example/v2/a/b/manifests/1"),
            "fetching manifest a/b:1"
        );
        assert_eq!(
            describe("PATCH", "http://h/v2/a/b/blobs/uploads/u?_state=1"),
            "uploading to a/b"
        );
        assert_eq!(
            describe(
                "PUT",
                "http://h/v2/a/blobs/uploads/u?_state=1&digest=sha256%3Aab"
            ),
            "uploading blob sha256:ab to a"
        );
        assert_eq!(describe("GET", "http://h/v2/"), "GET http://h/v2/");
        let l = limits(1024, 60);
        assert_eq!(
            l.send_deadline(1 << 20),
            Some(Duration::from_secs(60 + 1024))
        );
        assert_eq!(limits(0, 60).send_deadline(1 << 20), None);
    }

    #[test]
    fn the_watch_turns_a_slow_source_into_a_verdict() {
        struct Slow;
        impl Read for Slow {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(30));
                buf[0] = 0;
                Ok(1)
            }
        }
        let verdict = Cell::new(None);
        let l = TransferLimits {
            min_rate: 1000,
            window: Duration::from_millis(100),
            ..TransferLimits::default()
        };
        let mut w = Watch::new(Slow, &l, false, &verdict);
        let e = std::io::copy(&mut w, &mut std::io::sink()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(matches!(
            verdict.take(),
            Some(Stall {
                sending: false,
                kind: StallKind::Slow { .. }
            })
        ));
    }
}
