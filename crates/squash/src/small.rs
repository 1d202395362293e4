//! Small files read straight from an archive without mounting it (the image's
//! `/etc/passwd` and `/etc/group`, to place the single mapping's one id at the
//! container's user before the container exists).
//! Never: follows symlinks (a linked passwd reads as missing) or reads past a bound.

use crate::read::{Archive, InodeKind, ReadError};

/// The regular file at the absolute `path` in `a`, if it exists and is at most `max`
/// bytes; `Ok(None)` when missing, not a regular file, reached through a symlink or
/// larger.
pub fn read_small(a: &Archive, path: &str, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let mut at = a.root();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        match a.lookup(at, part.as_bytes())? {
            Some(e) => at = e.inode,
            None => return Ok(None),
        }
    }
    let ino = a.inode(at)?;
    match ino.kind {
        InodeKind::File { size, .. } if size <= max => Ok(Some(a.read(at, 0, size as usize)?)),
        _ => Ok(None),
    }
}
