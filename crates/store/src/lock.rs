//! File locks (flock) on files under `imago/locks/`. Lock order: gc-gate.lock, then
//! gc.lock, then index.lock; never the other way round.
//!
//! - `index.lock`: exclusive, held for one read-modify-write of index.json (short).
//! - `gc.lock`: shared while a writer has blobs not yet referenced from index.json
//!   ([`crate::Store::pin`]); exclusive for the whole of a gc.
//! - `gc-gate.lock`: makes gc.lock fair to gc. flock(2) queues nobody: a shared
//!   request is granted while an exclusive one waits, so writers whose pins overlap
//!   (a few build or import loops) kept gc waiting for ever. Now a writer takes the gate
//!   exclusively just for the moment of taking its shared gc.lock, and a gc holds the
//!   gate from before it asks for gc.lock until it is done. Once a gc is pending, new
//!   writers queue behind it, and the gc waits only for the writes already running.
//!
//! Why a gate rather than a gc that runs beside writers (leases naming the blobs and
//! unpacked layers each writer uses): it keeps the one invariant everything relies on
//! today, "no writer runs during a gc", with two small lock steps, and needs no change
//! in the callers (builds, pulls, loads) that would have to record what they use. The
//! cost: a gc waits for the longest write in flight, and new writes wait for that gc.
//! Both waits are bounded: gc gives up after [`crate::GcOptions::wait`] with
//! [`crate::StoreError::StoreBusy`] (and lets the queued writers go).
//!
//! Never: touches anything but the lock files.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Result, StoreError};

/// A held flock; released on drop (closing the file).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::io("open lock file", path, e))
}

fn take(path: &Path, op: FlockOperation) -> Result<LockGuard> {
    let file = open(path)?;
    loop {
        match flock(&file, op) {
            Ok(()) => return Ok(LockGuard { _file: file }),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(StoreError::Lock {
                    path: path.into(),
                    source: e.into(),
                })
            }
        }
    }
}

/// Block until we hold `path` exclusively.
pub fn exclusive(path: &Path) -> Result<LockGuard> {
    take(path, FlockOperation::LockExclusive)
}

/// Take `path` exclusively if nobody holds it; `Ok(None)` when it is busy.
pub fn try_exclusive(path: &Path) -> Result<Option<LockGuard>> {
    let file = std::fs::File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(LockGuard { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(StoreError::Lock {
            path: path.into(),
            source: e.into(),
        }),
    }
}

/// Take `path` exclusively, polling until `deadline`; `Ok(None)` when it stayed busy.
/// (flock has no timeout; polling keeps this free of signals and threads.)
pub fn exclusive_until(path: &Path, deadline: Instant) -> Result<Option<LockGuard>> {
    let file = open(path)?;
    let mut pause = Duration::from_millis(1);
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Some(LockGuard { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(StoreError::Lock {
                    path: path.into(),
                    source: e.into(),
                })
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Hold `path` (a file or a directory) shared, blocking while someone holds it
/// exclusively.
pub fn shared_on(path: &Path) -> Result<LockGuard> {
    let file = std::fs::File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    loop {
        match flock(&file, FlockOperation::LockShared) {
            Ok(()) => return Ok(LockGuard { _file: file }),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(StoreError::Lock {
                    path: path.into(),
                    source: e.into(),
                })
            }
        }
    }
}

/// Block until we hold `path` shared.
pub fn shared(path: &Path) -> Result<LockGuard> {
    take(path, FlockOperation::LockShared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_within_one_process_on_distinct_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let g = exclusive(&p).unwrap();
        let f = open(&p).unwrap();
        assert!(flock(&f, FlockOperation::NonBlockingLockShared).is_err());
        drop(g);
        assert!(flock(&f, FlockOperation::NonBlockingLockShared).is_ok());
    }

    #[test]
    fn exclusive_until_gives_up_at_the_deadline_and_takes_a_free_lock() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l");
        let held = shared(&p).unwrap();
        let soon = Instant::now() + Duration::from_millis(30);
        assert!(exclusive_until(&p, soon).unwrap().is_none());
        drop(held);
        assert!(exclusive_until(&p, Instant::now()).unwrap().is_some());
    }
}
