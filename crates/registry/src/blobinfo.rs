//! Where a blob is known to live remotely: `digest registry repository` lines appended to
//! `STATE/registry-blob-sources` (STATE: [`state_dir`]) after each pull and push, read back by push to try a
//! cross-repository mount (`POST …/uploads/?mount=D&from=REPO`) before uploading.
//! Appends of one short line are atomic with `O_APPEND`; a damaged line is ignored.
//!
//! Never: trusts an entry (the mount may fail; push then uploads).

use std::io::Write;
use std::path::{Path, PathBuf};

use imago_oci::Digest;
use imago_store::Store;

const FILE: &str = "registry-blob-sources";
/// Cap on the file; past it, the oldest half is dropped on the next write.
const MAX_BYTES: u64 = 4 << 20;

/// The registry code's own directory in the store (`ROOT/imago/registry`), made when
/// missing; `None` when it cannot be made (the caches are advisory: pulls and pushes
/// work without them).
pub fn state_dir(store: &Store) -> Option<PathBuf> {
    let d = store.layout().imago().join("registry");
    std::fs::create_dir_all(&d).ok().map(|()| d)
}

fn file(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Record that `registry/repository` holds each digest. Failures only cost a future mount.
pub fn record<'a>(
    dir: Option<&Path>,
    registry: &str,
    repository: &str,
    digests: impl IntoIterator<Item = &'a Digest>,
) {
    let Some(dir) = dir else { return };
    let path = file(dir);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_BYTES) {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let lines: Vec<&str> = text.lines().collect();
            let keep = lines[lines.len() / 2..].join("\n") + "\n";
            let tmp = dir.join(format!("{FILE}.tmp-{}", std::process::id()));
            if std::fs::write(&tmp, keep).is_ok() {
                let _ = std::fs::rename(&tmp, &path); // best effort: the cache is advisory
            }
        }
    }
    let mut text = String::new();
    for d in digests {
        text.push_str(&format!("{d} {registry} {repository}\n"));
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::debug!(path = %path.display(), %e, "blob source cache not updated");
    }
}

/// Repositories of `registry` known to hold `digest`, newest first, without `except`.
pub fn sources(dir: Option<&Path>, digest: &Digest, registry: &str, except: &str) -> Vec<String> {
    let Some(text) = dir.and_then(|d| std::fs::read_to_string(file(d)).ok()) else {
        return Vec::new();
    };
    let want = digest.to_string();
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().rev() {
        let mut f = line.split(' ');
        if let (Some(d), Some(r), Some(repo), None) = (f.next(), f.next(), f.next(), f.next()) {
            if d == want && r == registry && repo != except && !out.iter().any(|o| o == repo) {
                out.push(repo.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_finds_sources_newest_first() {
        let t = tempfile::tempdir().unwrap();
        let d = Digest::of(b"a");
        record(Some(t.path()), "r:1", "x/a", [&d]);
        record(Some(t.path()), "r:1", "x/b", [&d, &Digest::of(b"b")]);
        record(Some(t.path()), "other", "x/c", [&d]);
        assert_eq!(
            sources(Some(t.path()), &d, "r:1", "x/z"),
            vec!["x/b", "x/a"]
        );
        assert_eq!(sources(Some(t.path()), &d, "r:1", "x/b"), vec!["x/a"]);
        assert!(sources(None, &d, "r:1", "").is_empty());
    }
}
