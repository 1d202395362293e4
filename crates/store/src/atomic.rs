//! Atomic writes: a temp file in the store's tmp dir (same file system), fsync, rename
//! over the target, fsync of the target's directory. Temp names carry the writer's pid
//! so gc can tell debris of killed processes from work in progress.
//! Never: decides where things go (layout.rs) or holds locks (lock.rs).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{IoCtx, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A short tag of this host (8 hex of the hostname's sha256), so gc on one node of a
/// shared store never mistakes another node's live writer for a dead local process.
pub fn host_tag() -> String {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        imago_oci::Digest::of(host.trim().as_bytes()).hex()[..8].to_owned()
    })
    .clone()
}

/// A fresh temp path in `tmp_dir`: `<pid>.<host>-<nanos>-<n>-<what>`.
pub fn temp_path(tmp_dir: &Path, what: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    tmp_dir.join(format!(
        "{}.{}-{nanos}-{n}-{what}",
        std::process::id(),
        host_tag()
    ))
}

/// The pid and host tag a temp name was made by, if it is one of ours.
pub fn temp_owner(name: &str) -> Option<(u32, &str)> {
    let (pid, host) = name.split('-').next()?.split_once('.')?;
    Some((pid.parse().ok()?, host))
}

/// Whether process `pid` may still write its temp entries: it exists and is not a
/// zombie. A killed writer stays a zombie until its parent (often init, for the
/// mapping child of a killed program) reaps it, which some inits do late; its debris is
/// debris all the same.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) state ...": comm may hold ") ", so split at the last one.
        Ok(stat) => !matches!(
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next()),
            Some('Z') | Some('X')
        ),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

/// The entries of `dir` named by [`temp_path`] on this host by a process that no
/// longer runs (other names, and other hosts' entries, are not judged here).
pub fn dead_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let host = host_tag();
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            (name.to_str())
                .and_then(temp_owner)
                .is_some_and(|(pid, h)| h == host && !pid_alive(pid))
        })
        .map(|e| e.path())
        .collect()
}

/// Create a new temp file (exclusive) in `tmp_dir`.
pub fn create_temp(tmp_dir: &Path, what: &str) -> Result<(File, PathBuf)> {
    let p = temp_path(tmp_dir, what);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .ctx("create temp file", &p)?;
    Ok((f, p))
}

/// fsync a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

/// fsync `file` at `tmp`, rename it to `to`, fsync `to`'s directory.
pub fn commit(file: File, tmp: &Path, to: &Path) -> Result<()> {
    file.sync_all().ctx("fsync", tmp)?;
    drop(file);
    std::fs::rename(tmp, to).ctx("rename into place", to)?;
    if let Some(dir) = to.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Write `bytes` to `to` atomically through a temp file in `tmp_dir`.
pub fn write_file(tmp_dir: &Path, to: &Path, bytes: &[u8]) -> Result<()> {
    let (mut f, tmp) = create_temp(tmp_dir, "file")?;
    let r = f
        .write_all(bytes)
        .ctx("write", &tmp)
        .and_then(|()| commit(f, &tmp, to));
    if r.is_err() {
        // The error that matters is `r`; a temp file left in tmp/ is gc's.
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_pid() {
        let p = temp_path(Path::new("/x"), "blob");
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            temp_owner(name),
            Some((std::process::id(), host_tag().as_str()))
        );
        assert_eq!(temp_owner("junk"), None);
    }

    #[test]
    fn write_file_replaces_atomically() {
        let d = tempfile::tempdir().unwrap();
        let to = d.path().join("f");
        write_file(d.path(), &to, b"one").unwrap();
        write_file(d.path(), &to, b"two").unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
