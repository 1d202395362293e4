//! Helpers for the store tests (iimage.rs, itag.rs): importing busybox, reading
//! `iimage ls --format json`'s names, podman as a test user, tar entry comparison.

use std::collections::BTreeMap;
use std::path::Path;

use imago_it::Env;

/// `iimage import busybox-rootfs.tar NAME`, returns the printed image id.
pub fn import_busybox(env: &Env, name: &str) -> String {
    let tar = env.busybox_tar();
    let out = env.cmd("iimage").args(["import"]).arg(&tar).arg(name).ok();
    let id = out.stdout().trim().to_owned();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "not an id: {out}"
    );
    id
}

/// The names (ref.names) per image id from `iimage ls --no-trunc --format json`: one
/// row per name (`Name`), one row with an empty `Name` for an unnamed image.
pub fn ls_names(env: &Env) -> BTreeMap<String, Vec<String>> {
    let out = env
        .cmd("iimage")
        .args(["ls", "--no-trunc", "--format", "json"])
        .ok();
    let mut m = BTreeMap::new();
    for line in out.stdout().lines() {
        let i: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad json ({e}): {out}"));
        let id = i["ID"].as_str().expect("ID").to_owned();
        let names: &mut Vec<String> = m.entry(id).or_default();
        let name = i["Name"].as_str().expect("Name");
        if !name.is_empty() {
            names.push(name.to_owned());
        }
    }
    m
}

/// `iimage fsck` exits 0 and reports 0 problems.
pub fn fsck_clean(env: &Env) {
    let out = env.cmd("iimage").arg("fsck").run();
    assert!(
        out.output.status.success() && out.stdout().contains(" 0 problems"),
        "fsck not clean: {out}"
    );
}

/// podman as the env's user.
pub fn podman(env: &Env) -> imago_it::Cmd {
    env.podman()
}

pub use imago_it::have;

/// One tar entry, everything a round trip must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: Option<String>,
    pub data: Vec<u8>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Entries of a tar by path (`./` prefixes and trailing `/` dropped; the root skipped).
pub fn entries(tar: &[u8]) -> BTreeMap<String, Entry> {
    let mut a = tar::Archive::new(tar);
    let mut out = BTreeMap::new();
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path_bytes().into_owned();
        let mut path = String::from_utf8(path).expect("utf8 path");
        while let Some(p) = path.strip_prefix("./") {
            path = p.to_owned();
        }
        let path = path.trim_end_matches('/').to_owned();
        if path.is_empty() || path == "." {
            continue;
        }
        let mut xattrs = BTreeMap::new();
        if let Ok(Some(pax)) = e.pax_extensions() {
            for x in pax.flatten() {
                if let Some(k) = x.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.insert(k.to_owned(), x.value_bytes().to_vec());
                }
            }
        }
        let h = e.header().clone();
        let mut data = vec![];
        std::io::Read::read_to_end(&mut e, &mut data).expect("read entry");
        let link = e.link_name_bytes().map(|l| {
            String::from_utf8_lossy(&l)
                .trim_start_matches("./")
                .to_owned()
        });
        out.insert(
            path,
            Entry {
                kind: h.entry_type().as_byte(),
                mode: h.mode().expect("mode") & 0o7777,
                uid: h.uid().expect("uid"),
                gid: h.gid().expect("gid"),
                mtime: h.mtime().expect("mtime"),
                link,
                data,
                xattrs,
            },
        );
    }
    out
}

/// A snapshot of a tree: path → (size, mtime, mode), for "nothing changed" checks.
pub fn snapshot(root: &Path) -> BTreeMap<String, (u64, i64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if let Ok(m) = p.symlink_metadata() {
                out.insert(p.display().to_string(), (m.size(), m.mtime(), m.mode()));
                if m.is_dir() {
                    todo.push(p);
                }
            }
        }
    }
    out
}
