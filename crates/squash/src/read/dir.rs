//! Directory listings: headers and entries, names checked (no `/`, NUL, `.` or `..`,
//! none empty: such entries are dropped, so no path the kernel walks can leave the
//! tree), sizes bounded.
//! Never: parses inodes (inode.rs).

use std::sync::Arc;

use super::inode::InodeKind;
use super::{corrupt, Archive, ReadError};
use crate::format::Cursor;

/// The longest listing read (a directory of ~500k entries).
const MAX_LISTING: usize = 32 << 20;
/// The most entries of a cached listing.
const CACHED_ENTRIES: usize = 8192;

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name (never `.`, `..`, empty, or with `/` or NUL).
    pub name: Vec<u8>,
    /// Its inode reference.
    pub inode: u64,
    /// Its basic inode type.
    pub kind: u16,
}

fn name_ok(n: &[u8]) -> bool {
    !n.is_empty() && n != b"." && n != b".." && !n.iter().any(|b| *b == b'/' || *b == 0)
}

impl Archive {
    /// The entries of the directory at inode `r`, in stored order (cached).
    pub fn dir(&self, r: u64) -> Result<Arc<Vec<Entry>>, ReadError> {
        // Listings of more than CACHED_ENTRIES names are read again for each request:
        // the cache (256 listings) stays bounded whatever an archive claims.
        let small = |e: &Vec<Entry>| e.len() <= CACHED_ENTRIES;
        self.dirs.get_or_if(
            r,
            || {
                let ino = self.inode(r)?;
                let InodeKind::Dir {
                    block, offset, len, ..
                } = ino.kind
                else {
                    return corrupt("not a directory");
                };
                if len > MAX_LISTING {
                    return corrupt("directory listing too long");
                }
                let start = self.superblock().dir_table + block;
                let raw = self.meta_read(start, offset, len, self.dir_end)?;
                parse(&raw)
            },
            small,
        )
    }

    /// The entry `name` in the directory at `r`.
    pub fn lookup(&self, r: u64, name: &[u8]) -> Result<Option<Entry>, ReadError> {
        let d = self.dir(r)?;
        Ok(d.iter().find(|e| e.name == name).cloned())
    }
}

fn parse(raw: &[u8]) -> Result<Vec<Entry>, ReadError> {
    let c = Cursor::new(raw);
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        // The header's third field (the run's first inode number) is not needed.
        let (Some(count), Some(start), Some(_)) = (c.u32(at), c.u32(at + 4), c.u32(at + 8)) else {
            return corrupt("directory header");
        };
        if count >= 256 {
            return corrupt("directory header count");
        }
        at += 12;
        for _ in 0..=count {
            let (Some(off), Some(_delta), Some(kind), Some(nlen)) =
                (c.u16(at), c.u16(at + 2), c.u16(at + 4), c.u16(at + 6))
            else {
                return corrupt("directory entry");
            };
            let nlen = usize::from(nlen) + 1;
            let Some(name) = c.bytes(at + 8, nlen) else {
                return corrupt("directory entry name");
            };
            at += 8 + nlen;
            if usize::from(off) >= crate::format::META_SIZE || !(1..=7).contains(&kind) {
                return corrupt("directory entry fields");
            }
            if name_ok(name) {
                out.push(Entry {
                    name: name.to_vec(),
                    inode: (u64::from(start) << 16) | u64::from(off),
                    kind,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_dropped() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(!name_ok(bad));
        }
        assert!(name_ok(b"..."));
        // One header, one entry named "../x".
        let mut raw = Vec::new();
        for v in [0u32, 0, 1] {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        for v in [0u16, 0, 2, 3] {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        raw.extend_from_slice(b"../x");
        assert_eq!(parse(&raw).unwrap(), vec![]);
        raw.truncate(raw.len() - 1);
        assert!(parse(&raw).is_err());
    }
}
