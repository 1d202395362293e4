//! The storage driver a program uses (`--storage-driver` of irun and ibuild,
//! `$IMAGO_STORAGE_DRIVER`, the config key `storage_driver`, else the host probe), with
//! the probe cached per kernel release: `<store>/imago/probe-<release>.json`, or in the
//! node-local dir when containers live there (a shared store). The decision itself is
//! [`imago_overlay::select`]'s; this module reads its inputs and keeps the cache.
//! Never: prints (the bins say [`imago_overlay::select::copy_note`]), mounts itself.

use std::path::{Path, PathBuf};

use imago_overlay::select::{self, ProbeCache, ProbeFacts, SelectError, Selection, Wishes};

use crate::config::{self, ConfigError};

/// The driver cannot be chosen.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A wish names no driver, or one not available.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The config file could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Choose the driver for the store at `store_root`, `flag` being `--storage-driver`.
/// Probes (two short-lived children, a few ms) only when nothing is forced and the cache
/// is missing, unreadable or of another kernel or boot.
pub fn choose(flag: Option<&str>, store_root: &Path) -> Result<Selection, StorageError> {
    let env = std::env::var(select::ENV_VAR).ok();
    let mut wishes = Wishes {
        flag,
        env: env.as_deref(),
        config: None,
    };
    let unset = |v: Option<&str>| v.is_none_or(|s| s.trim().is_empty());
    // The config file is read only when it decides.
    let from_config = match unset(flag) && unset(env.as_deref()) {
        true => config::value(select::CONFIG_KEY)?,
        false => None,
    };
    let shown = from_config
        .as_ref()
        .map(|(v, p)| (v.as_str(), p.display().to_string()));
    wishes.config = shown.as_ref().map(|(v, p)| (*v, p.as_str()));
    if let Some(s) = select::forced(&wishes, select::FUSE_WIRED)? {
        return Ok(s);
    }
    let (facts, cached) = facts(store_root);
    Ok(select::probed(&facts, select::FUSE_WIRED, cached))
}

/// Where the probe runs and its cache lives: the node-local dir when containers are
/// placed there, else the store (its `imago/` dir, when the store exists).
fn places(store_root: &Path) -> (PathBuf, Option<PathBuf>) {
    match imago_store::local::placement(store_root) {
        Ok(Some(local)) => (local.path.clone(), Some(local.path)),
        _ => {
            let own = store_root.join("imago");
            let cache_dir = own.is_dir().then_some(own);
            let probe_dir = match store_root.is_dir() {
                true => store_root.to_path_buf(),
                false => std::env::temp_dir(),
            };
            (probe_dir, cache_dir)
        }
    }
}

fn read_trimmed(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The probe cache file of this kernel for `store_root` (it may not exist yet).
pub fn cache_file(store_root: &Path) -> Option<PathBuf> {
    let release = read_trimmed("/proc/sys/kernel/osrelease");
    places(store_root)
        .1
        .map(|d| d.join(select::cache_file_name(&release)))
}

/// The cached facts when fresh, else probed now (and cached); true when cached.
fn facts(store_root: &Path) -> (ProbeFacts, bool) {
    let release = read_trimmed("/proc/sys/kernel/osrelease");
    let boot_id = read_trimmed("/proc/sys/kernel/random/boot_id");
    let (probe_dir, cache_dir) = places(store_root);
    let file = cache_dir.map(|d| d.join(select::cache_file_name(&release)));
    if let Some(f) = &file {
        let cached = std::fs::read(f)
            .ok()
            .and_then(|b| serde_json::from_slice::<ProbeCache>(&b).ok());
        if let Some(c) = cached {
            if let Some(facts) = c.fresh_facts(&release, &boot_id) {
                return (facts.clone(), true);
            }
        }
    }
    let userns = imago_sandbox::probe::probe_userns();
    let facts = ProbeFacts {
        overlay_in_userns: userns.then(|| imago_sandbox::probe::probe_overlay(&probe_dir)),
        fuse_device: std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok(),
    };
    if let Some(f) = &file {
        let cache = ProbeCache {
            version: ProbeCache::VERSION,
            kernel_release: release,
            boot_id,
            facts: facts.clone(),
        };
        // A cache that cannot be written (read-only store, full disk) only means the
        // next run probes again.
        let _ = write_atomically(f, &serde_json::to_vec_pretty(&cache).unwrap_or_default());
    }
    (facts, false)
}

/// Write `bytes` to `to` through a temp file beside it and a rename: a reader (another
/// program at the same moment) sees the old file or the new one, never a part.
fn write_atomically(to: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let r = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, to));
    if r.is_err() {
        // Ours, half written: nothing else refers to it.
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
