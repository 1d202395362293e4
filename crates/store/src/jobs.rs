//! One job at a time per key, across processes: pulling one manifest
//! ([`Store::pull_lock`]) and unpacking one layer (taken inside
//! [`Store::unpack_layers`]). Many processes asking for the same image at once (the
//! ranks of a Slurm step starting on one node) then download and unpack it once; the
//! others wait on a keyed flock (lock.rs) and find the work done. Different images
//! have different keys and go in parallel.
//!
//! The wait is bounded: `$IMAGO_PULL_WAIT` seconds, else [`DEFAULT_JOB_WAIT`] (for a
//! pull: seconds without progress of the other pull's download); then
//! [`StoreError::JobWait`] says what was waited for. A holder that dies releases its
//! lock (flock), and the next waiter does the job itself.
//!
//! Never: downloads or unpacks anything itself (the registry crate and layers.rs do).

use std::time::{Duration, Instant};

use imago_oci::Digest;

use crate::error::{Result, StoreError};
use crate::lock::{self, LockGuard};
use crate::store::Store;

/// How long a process waits, by default, for another one doing the same pull or unpack.
pub const DEFAULT_JOB_WAIT: Duration = Duration::from_secs(1200);

/// How often a waiting pull looks at the other one's progress.
const PROGRESS_POLL: Duration = Duration::from_secs(1);

/// The environment variable that sets the wait, in seconds.
pub const WAIT_ENV: &str = "IMAGO_PULL_WAIT";

/// A held job lock; dropping it lets the next waiter in.
#[derive(Debug)]
pub struct JobLock {
    _guard: LockGuard,
}

/// The wait from `$IMAGO_PULL_WAIT` (whole seconds), else the default.
pub fn job_wait() -> Result<Duration> {
    parse_wait(std::env::var(WAIT_ENV).ok().as_deref())
}

/// The pure rule behind [`job_wait`]: unset or empty is the default.
pub fn parse_wait(value: Option<&str>) -> Result<Duration> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_JOB_WAIT),
        Some(v) => v
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| StoreError::Setting {
                setting: format!("wait `{v}` from ${WAIT_ENV}"),
                why: "not a whole number of seconds".into(),
            }),
    }
}

impl Store {
    /// Wait until no other process pulls `manifest` into this store, and hold that until
    /// the guard drops; the caller checks afterwards what the store already has. The
    /// wait is bounded by `wait` without progress: `progress` (e.g. the bytes of the
    /// image's blobs and partial downloads in the store) is polled, and each change
    /// starts the bound again, so a slow but moving download is waited for.
    pub fn pull_lock(
        &self,
        manifest: &Digest,
        wait: Duration,
        progress: &dyn Fn() -> u64,
    ) -> Result<JobLock> {
        self.job_lock(
            &self.layout.pull_lock(manifest),
            wait,
            format!("pulling image {manifest}"),
            progress,
        )
    }

    pub(crate) fn unpack_lock(&self, chain_id: &Digest, wait: Duration) -> Result<JobLock> {
        self.job_lock(
            &self.layout.unpack_lock(chain_id),
            wait,
            format!("unpacking layer {chain_id}"),
            &|| 0,
        )
    }

    /// The keyed lock `path`, waiting for its holder at most `wait` after the last
    /// change of `progress`.
    fn job_lock(
        &self,
        path: &std::path::Path,
        wait: Duration,
        job: String,
        progress: &dyn Fn() -> u64,
    ) -> Result<JobLock> {
        let now = Instant::now();
        // Free most of the time: only a waiter says anything.
        if let Some(g) = lock::keyed_until(path, now)? {
            return Ok(JobLock { _guard: g });
        }
        tracing::info!("waiting for another imago process {job}");
        let (mut seen, mut since) = (progress(), now);
        loop {
            let poll = Instant::now() + PROGRESS_POLL;
            if let Some(g) = lock::keyed_until(path, poll.min(since + wait))? {
                return Ok(JobLock { _guard: g });
            }
            let p = progress();
            if p != seen {
                (seen, since) = (p, Instant::now());
            } else if Instant::now() >= since + wait {
                return Err(StoreError::JobWait { job, waited: wait });
            }
        }
    }

    /// Remove the keyed lock files nobody holds (gc); returns how many went.
    pub(crate) fn sweep_job_locks(&self) -> Result<usize> {
        let mut n = 0;
        for kind in ["pull", "unpack"] {
            let dir = self.layout.locks().join(kind);
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("read directory", dir, e)),
            };
            for e in rd {
                let e = e.map_err(|e| StoreError::io("read directory", &dir, e))?;
                if lock::remove_if_free(&e.path())? {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_setting() {
        assert_eq!(parse_wait(None).unwrap(), DEFAULT_JOB_WAIT);
        assert_eq!(parse_wait(Some(" ")).unwrap(), DEFAULT_JOB_WAIT);
        assert_eq!(parse_wait(Some("30")).unwrap(), Duration::from_secs(30));
        let e = parse_wait(Some("10m")).unwrap_err();
        assert!(e.to_string().contains("IMAGO_PULL_WAIT"), "{e}");
    }

    #[test]
    fn a_second_taker_waits_and_gives_up_with_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        let m = Digest::of(b"manifest");
        let still = || 0;
        let held = s.pull_lock(&m, Duration::ZERO, &still).unwrap();
        let e = s
            .pull_lock(&m, Duration::from_millis(30), &still)
            .unwrap_err();
        assert!(e.to_string().contains("pulling image"), "{e}");
        // Progress keeps a waiter waiting past the bound.
        let n = std::sync::atomic::AtomicU64::new(0);
        let moving = || n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::thread::scope(|t| {
            t.spawn(|| {
                std::thread::sleep(Duration::from_millis(2500));
                drop(held);
            });
            let g = s.pull_lock(&m, Duration::from_millis(1200), &moving);
            assert!(g.is_ok(), "{g:?}");
        });
        // Another key is not held up.
        drop(
            s.pull_lock(&Digest::of(b"other"), Duration::ZERO, &still)
                .unwrap(),
        );
        drop(s.pull_lock(&m, Duration::ZERO, &still).unwrap());
        assert_eq!(s.sweep_job_locks().unwrap(), 2);
    }
}
