//! Helpers shared by the crate's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A temp dir under $IMAGO_TEST_TMP when set (a tmpfs in CI), else the system one.
pub fn tempdir() -> tempfile::TempDir {
    match std::env::var_os("IMAGO_TEST_TMP") {
        Some(d) if !d.is_empty() => {
            std::fs::create_dir_all(&d).unwrap();
            tempfile::tempdir_in(d).unwrap()
        }
        _ => tempfile::tempdir().unwrap(),
    }
}

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Every path under `dir` (not following symlinks, skipping `skip`) with its type,
/// size, mode, owner, mtime and (for symlinks) target.
pub fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(d: &Path, skip: &Path, out: &mut BTreeMap<String, String>) {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            if p == skip {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let link = std::fs::read_link(&p)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            out.insert(
                p.display().to_string(),
                format!(
                    "{:o} {} {}:{} {}.{} {}",
                    m.mode(),
                    m.len(),
                    m.uid(),
                    m.gid(),
                    m.mtime(),
                    m.mtime_nsec(),
                    link
                ),
            );
            if m.is_dir() {
                walk(&p, skip, out);
            }
        }
    }
    walk(dir, skip, &mut out);
    out
}

/// A tar entry, every header field that matters plus data and xattrs.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Ent {
    pub path: String,
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<String>,
    pub dev: (Option<u32>, Option<u32>),
    pub data: Vec<u8>,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

pub fn entries(tar: &[u8]) -> Vec<Ent> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                if let Some(k) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.push((k.to_owned(), x.value_bytes().to_vec()));
                }
            }
        }
        xattrs.sort();
        let h = e.header().clone();
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Ent {
            path,
            kind: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            size: e.size(),
            link,
            dev: (
                h.device_major().unwrap_or(None),
                h.device_minor().unwrap_or(None),
            ),
            data,
            xattrs,
        });
    }
    out
}

/// A tar writer with full control over each header (ustar, PAX records as needed).
pub struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
}

pub struct E<'a> {
    pub path: &'a str,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: &'a str,
    pub data: &'a [u8],
    pub xattrs: &'a [(&'a str, &'a [u8])],
}

impl Default for E<'_> {
    fn default() -> Self {
        E {
            path: "",
            kind: tar::EntryType::Regular,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            link: "",
            data: b"",
            xattrs: &[],
        }
    }
}

fn pax_record(k: &str, v: &[u8]) -> Vec<u8> {
    let body = k.len() + v.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {k}=").into_bytes();
    r.extend_from_slice(v);
    r.push(b'\n');
    r
}

impl TarBuilder {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn add(&mut self, e: E<'_>) -> &mut Self {
        let mut pax = Vec::new();
        for (k, v) in e.xattrs {
            pax.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
        }
        let name = e.path.as_bytes();
        let mut h = tar::Header::new_ustar();
        if name.len() > 100 {
            pax.extend(pax_record("path", name));
            h.as_old_mut().name.copy_from_slice(&name[..100]);
        } else {
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
        }
        if !pax.is_empty() {
            let mut ph = tar::Header::new_ustar();
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.as_old_mut().name[..4].copy_from_slice(b"paxh");
            ph.set_size(pax.len() as u64);
            ph.set_mode(0o644);
            ph.set_cksum();
            self.b.append(&ph, &pax[..]).unwrap();
        }
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        self.b.append(&h, e.data).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// The error and its sources, joined with ": ".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// True when `dir`'s file system takes `user.*` xattrs (tmpfs only since Linux 6.6).
pub fn user_xattrs(dir: &Path) -> bool {
    let p = dir.join(".xattr-probe");
    std::fs::write(&p, b"").unwrap();
    let ok = rustix::fs::setxattr(&p, "user.probe", b"1", rustix::fs::XattrFlags::empty()).is_ok();
    std::fs::remove_file(&p).unwrap();
    ok
}
