//! What the copy made: every path of the merged lower view with the inode the copy gave
//! it and that inode's change time when the copy was done. The diff reads it back to
//! tell untouched entries (same inode, same ctime) from what the container changed, and
//! to find what it deleted (paths of the manifest missing from the copy).
//!
//! On disk (beside the copy, out of the container's reach): a magic line, then per entry
//! `u32 path length, path, u32 file type bits, u64 inode, i64 ctime s, u32 ctime ns,
//! i64 birth time s, u32 birth time ns`, little endian. Never: looks at files itself.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"imago-copy-manifest 2\n";
/// Paths longer than this are refused on load (PATH_MAX is 4096; a damaged file must
/// not make us allocate gigabytes).
const MAX_PATH: usize = 1 << 16;

/// One entry as the copy left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// `st_mode & S_IFMT`.
    pub fmt: u32,
    /// The copy's inode.
    pub ino: u64,
    /// Its change time after the copy was done.
    pub ctime: (i64, u32),
    /// Its birth time, `(0, 0)` when the file system keeps none: with the inode number,
    /// what tells the file the copy made from a new one that got a freed inode number.
    pub born: (i64, u32),
}

/// Paths (relative, `a/b`) of the merged view, with their stamps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<Vec<u8>, Stamp>,
    /// Directory path → names in it (the root is `""`).
    children: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

/// The parent and base name of a relative path.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

/// `rel/name` (or `name` at the root).
pub fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(rel.len() + 1 + name.len());
    if !rel.is_empty() {
        p.extend_from_slice(rel);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl Manifest {
    /// Record `path`.
    pub fn insert(&mut self, path: Vec<u8>, stamp: Stamp) {
        let (parent, name) = split(&path);
        self.children
            .entry(parent.to_vec())
            .or_default()
            .push(name.to_vec());
        self.entries.insert(path, stamp);
    }

    /// Update the change time of every path with inode `ino` (a hard link was added).
    pub fn restamp(&mut self, paths: &[Vec<u8>], ctime: (i64, u32)) {
        for p in paths {
            if let Some(s) = self.entries.get_mut(p) {
                s.ctime = ctime;
            }
        }
    }

    /// The stamp of `path`.
    pub fn get(&self, path: &[u8]) -> Option<&Stamp> {
        self.entries.get(path)
    }

    /// The names the merged view had in directory `rel`.
    pub fn children(&self, rel: &[u8]) -> &[Vec<u8>] {
        self.children.get(rel).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries (an empty image).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The latest change time recorded.
    pub fn latest_ctime(&self) -> Option<(i64, u32)> {
        self.entries.values().map(|s| s.ctime).max()
    }

    /// Write to `path` (created; the caller's dir).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut w = BufWriter::new(std::fs::File::create(path)?);
        w.write_all(MAGIC)?;
        for (p, s) in &self.entries {
            let len = u32::try_from(p.len()).map_err(|_| io::Error::other("path too long"))?;
            w.write_all(&len.to_le_bytes())?;
            w.write_all(p)?;
            w.write_all(&s.fmt.to_le_bytes())?;
            w.write_all(&s.ino.to_le_bytes())?;
            w.write_all(&s.ctime.0.to_le_bytes())?;
            w.write_all(&s.ctime.1.to_le_bytes())?;
            w.write_all(&s.born.0.to_le_bytes())?;
            w.write_all(&s.born.1.to_le_bytes())?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }

    /// Read what [`Manifest::save`] wrote.
    pub fn load(path: &Path) -> io::Result<Manifest> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        let mut r = BufReader::new(std::fs::File::open(path)?);
        let mut magic = vec![0u8; MAGIC.len()];
        r.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(bad("not a copy manifest"));
        }
        let mut m = Manifest::default();
        loop {
            let mut len = [0u8; 4];
            match r.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let len = u32::from_le_bytes(len) as usize;
            if len == 0 || len > MAX_PATH {
                return Err(bad("bad path length"));
            }
            let mut p = vec![0u8; len];
            r.read_exact(&mut p)?;
            let mut b4 = [0u8; 4];
            let mut b8 = [0u8; 8];
            r.read_exact(&mut b4)?;
            let fmt = u32::from_le_bytes(b4);
            r.read_exact(&mut b8)?;
            let ino = u64::from_le_bytes(b8);
            r.read_exact(&mut b8)?;
            let sec = i64::from_le_bytes(b8);
            r.read_exact(&mut b4)?;
            let nsec = u32::from_le_bytes(b4);
            r.read_exact(&mut b8)?;
            let born_sec = i64::from_le_bytes(b8);
            r.read_exact(&mut b4)?;
            let born_nsec = u32::from_le_bytes(b4);
            m.insert(
                p,
                Stamp {
                    fmt,
                    ino,
                    ctime: (sec, nsec),
                    born: (born_sec, born_nsec),
                },
            );
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_with_children() {
        let d = std::env::temp_dir().join(format!("imago-manifest-{}", std::process::id()));
        let mut m = Manifest::default();
        let s = |ino| Stamp {
            fmt: 0o040000,
            ino,
            ctime: (1700000000, 5),
            born: (1600000000, 7),
        };
        m.insert(b"etc".to_vec(), s(1));
        m.insert(b"etc/passwd".to_vec(), s(2));
        m.insert(b"bin".to_vec(), s(3));
        m.save(&d).unwrap();
        let back = Manifest::load(&d).unwrap();
        std::fs::remove_file(&d).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back.get(b"etc/passwd"), Some(&s(2)));
        assert_eq!(back.children(b"etc"), [b"passwd".to_vec()]);
        let mut root: Vec<_> = back.children(b"").to_vec();
        root.sort();
        assert_eq!(root, [b"bin".to_vec(), b"etc".to_vec()]);
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(join(b"", b"x"), b"x");
    }

    #[test]
    fn refuses_garbage() {
        let d = std::env::temp_dir().join(format!("imago-manifest-bad-{}", std::process::id()));
        std::fs::write(&d, b"something else entirely").unwrap();
        assert!(Manifest::load(&d).is_err());
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&d, bytes).unwrap();
        assert!(Manifest::load(&d).is_err());
        std::fs::remove_file(&d).unwrap();
    }
}
