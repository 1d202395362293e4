//! File locks (flock) on files under `imago/locks/`. Lock order: gc-gate.lock, then
//! gc.lock, then one `pull/<manifest>.lock`, then one `unpack/<chain id>.lock`, then
//! index.lock; never the other way round, and never two keyed locks of one kind.
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
//! - Keyed locks (`pull/<hex>.lock`, `unpack/<hex>.lock`, [`keyed_until`]): one process
//!   does a job (download an image, unpack a layer) while the others asking for the
//!   same one wait, then find it done. A dead holder's lock is released by the kernel.
//!   gc removes the files ([`remove_if_free`]); a taker checks that the file it locked
//!   is still the one at the path, so a file unlinked under it is never trusted.
//!
//! Never: touches anything but the lock files.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
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

/// Take the keyed lock `path` (made with its parent dir when missing) exclusively,
/// polling until `deadline`; `Ok(None)` when it stayed busy. Unlike [`exclusive_until`],
/// the file may be removed by gc between our open and our flock: the lock counts only
/// when the path still names the file we locked, else we open again.
pub fn keyed_until(path: &Path, deadline: Instant) -> Result<Option<LockGuard>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
    }
    loop {
        let Some(guard) = exclusive_until(path, deadline)? else {
            return Ok(None);
        };
        let held = guard
            ._file
            .metadata()
            .map_err(|e| StoreError::io("stat", path, e))?;
        match std::fs::metadata(path) {
            Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => return Ok(Some(guard)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("stat", path, e)),
        }
    }
}

/// Remove the keyed lock file `path` when nobody holds it (a holder keeps it). Only
/// sensible for keyed locks: their takers check the path after locking.
pub fn remove_if_free(path: &Path) -> Result<bool> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io("open", path, e)),
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("remove", path, e)),
        },
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(StoreError::Lock {
            path: path.into(),
            source: e.into(),
        }),
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

    #[test]
    fn keyed_locks_exclude_and_survive_removal_by_gc() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pull/abc.lock");
        let soon = || Instant::now() + Duration::from_millis(20);
        let g = keyed_until(&p, soon()).unwrap().unwrap();
        assert!(keyed_until(&p, soon()).unwrap().is_none());
        assert!(!remove_if_free(&p).unwrap(), "a held lock stays");
        drop(g);
        assert!(remove_if_free(&p).unwrap());
        assert!(!p.exists());
        let g = keyed_until(&p, soon()).unwrap().unwrap();
        assert!(keyed_until(&p, soon()).unwrap().is_none());
        drop(g);
    }
}
