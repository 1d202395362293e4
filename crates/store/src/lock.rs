//! File locks (flock) on files under `imago/locks/`. Lock order: gc.lock before
//! index.lock; never the other way round.
//!
//! - `index.lock`: exclusive, held for one read-modify-write of index.json (short).
//! - `gc.lock`: shared while a writer has blobs not yet referenced from index.json
//!   ([`crate::Store::pin`]); exclusive for the whole of a gc.
//!
//! Never: touches anything but the lock files.

use std::fs::{File, OpenOptions};
use std::path::Path;

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
}
