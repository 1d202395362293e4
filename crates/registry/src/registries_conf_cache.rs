//! A cache of the merged registries.conf, for callers that read it at every start
//! (irun: a short name's store names come from its aliases and search list, and
//! containers-common's shortnames.conf alone is hundreds of TOML lines).
//!
//! The cache is one JSON file: the merged configuration and, for every file it was made
//! from, in order, a stamp of the file (path, device, inode, size, modification and
//! change times in ns). It is used only when the files named now are exactly those,
//! with exactly those stamps; anything else (another file, one more or one less, a
//! touched file, a cache that does not parse, is of another version, or is too large)
//! and the files are parsed as without a cache, and the cache is written again. A file
//! changed within the same clock tick as its last write could keep its stamp (file times
//! are coarse), so no cache is written while a file is younger than [`SETTLED`]: such a
//! start parses, a later one caches. The change time is in the stamp because no one can
//! set it back (`touch -d` sets the modification time only).
//!
//! Never: holds a failure (an unreadable or refused file is parsed again, and fails, at
//! every start), or makes the cache's dir; a cache that cannot be written is only a
//! slower next start.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imago_store::atomic;
use serde::{Deserialize, Serialize};

use super::{check, ConfError, RegistriesConf};

/// Bumped when the cache's or [`RegistriesConf`]'s shape changes.
const VERSION: u32 = 1;

/// The most a cache may weigh (a merged configuration, not data).
const MAX_CACHE: u64 = 4 << 20;

/// How old every file must be before its parse is cached.
pub(super) const SETTLED: Duration = Duration::from_secs(2);

/// What identifies one file's content without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stamp {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        // As the parse opens it: through a symlink.
        let m = std::fs::metadata(path).ok()?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Some(Stamp {
            path: path.to_owned(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        })
    }

    /// Both times before `before` (ns since the epoch).
    fn older_than(&self, before: i128) -> bool {
        self.mtime_ns < before && self.ctime_ns < before
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    files: Vec<Stamp>,
    conf: RegistriesConf,
}

/// `files` merged in order (what [`RegistriesConf::load`] does), through the cache file
/// `cache`; `settled`: how old every file must be for its parse to be cached.
pub(super) fn load(
    files: &[PathBuf],
    cache: &Path,
    settled: Duration,
) -> Result<RegistriesConf, ConfError> {
    // Stamped before the parse: a file changed during it then no longer matches.
    let stamps: Option<Vec<Stamp>> = files.iter().map(|p| Stamp::of(p)).collect();
    if let Some(conf) = stamps.as_deref().and_then(|s| read(cache, s)) {
        return Ok(conf);
    }
    let conf = RegistriesConf::from_files(files)?;
    if let Some(stamps) = stamps {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let before = now - settled.as_nanos() as i128;
        if stamps.iter().all(|s| s.older_than(before)) {
            write(cache, stamps, &conf);
        }
    }
    Ok(conf)
}

/// The cached configuration when `cache` holds one made from files stamped `stamps`.
fn read(cache: &Path, stamps: &[Stamp]) -> Option<RegistriesConf> {
    let file = std::fs::File::open(cache).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_CACHE {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_CACHE), &mut bytes).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    if entry.version != VERSION || entry.files != stamps {
        return None;
    }
    // What a parse refuses, a cache cannot bring in.
    let path = Path::new("(cache)");
    let refused = (entry.conf.registries.iter()).any(|(prefix, r)| check(path, prefix, r).is_err());
    (!refused).then_some(entry.conf)
}

/// Write the cache atomically (a reader sees the old file or the new one); a failure is
/// only a slower next start, said at debug level. The temp file beside it has the
/// store's temp name (writer's pid and host), so that one left by a writer killed
/// mid-write is removed by the next write (nothing else would: the dir is not the
/// store's tmp dir, which gc sweeps).
fn write(cache: &Path, stamps: Vec<Stamp>, conf: &RegistriesConf) {
    let entry = Entry {
        version: VERSION,
        files: stamps,
        conf: conf.clone(),
    };
    let Some((dir, name)) = cache.parent().zip(cache.file_name()) else {
        return;
    };
    let what = name.to_string_lossy();
    for dead in atomic::dead_temps(dir) {
        if dead.to_string_lossy().ends_with(&*what) {
            // Best effort: another writer may be removing it at the same time.
            let _ = std::fs::remove_file(dead);
        }
    }
    let tmp = atomic::temp_path(dir, &what);
    let result = std::fs::File::create(&tmp)
        .and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            serde_json::to_writer(&mut w, &entry)?;
            std::io::Write::flush(&mut w)
        })
        .and_then(|()| std::fs::rename(&tmp, cache));
    if let Err(e) = result {
        // Ours, half written or not renamed: nobody else uses this name.
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(cache = %cache.display(), %e, "registries.conf cache not written");
    }
}
