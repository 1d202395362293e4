//! The node-local dir, and whether the store is shared by many nodes. One rule for the
//! runtime and the builder:
//!
//! - The dir ([`choose`]): `$IMAGO_LOCAL_DIR`, else the config key `local_dir`, else
//!   `$XDG_RUNTIME_DIR/imago`, else `$TMPDIR/imago-<uid>` when TMPDIR is on a local file
//!   system, else `/var/tmp/imago-<uid>`. Made 0700; refused when it is not a directory
//!   of ours that only we may write to ([`check_private`]): a name in a shared temp dir
//!   can be made in advance by another user.
//! - Placement ([`placement`]): containers' writable layers, work dirs, rootfs mount
//!   points and locks, and ibuild's RUN scratch go under the dir when it was named
//!   (IMAGO_LOCAL_DIR or the config key) or when the store is on a network or cluster
//!   file system ([`shared_fs`] of statfs(2)'s `f_type`): overlayfs refuses upper dirs
//!   there, flock may be emulated or missing, small writes are slow. Otherwise nothing
//!   moves: a store on a local file system keeps everything as it always did.
//!
//! Subdirs: `containers/<id>/`, `build/<temp name>`, `run/<id>/` (live state, when
//! `$XDG_RUNTIME_DIR` is unset). Never: writes in the store, removes anything.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The statfs(2) magic numbers of file systems that one machine does not own alone:
/// network and cluster file systems, and FUSE (see [`shared_fs`]).
const SHARED: &[(u32, &str)] = &[
    (0x6969, "NFS"),
    (0x0BD0_0BD0, "Lustre"),
    (0x4750_4653, "GPFS"),
    (0x1983_0326, "BeeGFS"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB"),
    (0x00C3_6400, "CephFS"),
    (0x0102_1997, "9p"),
    (0x5346_414F, "AFS"),
    (0x6573_5546, "FUSE"),
];

/// The name of the shared file system with this `f_type`, None for a local one. FUSE
/// counts as shared: it is how sshfs, GlusterFS, s3fs and CVMFS are mounted, statfs
/// cannot tell those from a local FUSE file system, and overlayfs refuses a FUSE upper
/// dir anyway, so node-local placement is right for every FUSE store.
pub fn shared_fs(magic: u32) -> Option<&'static str> {
    SHARED.iter().find(|(m, _)| *m == magic).map(|(_, n)| *n)
}

/// The `f_type` of the file system holding `path`, or of its nearest existing ancestor
/// (a store root is made on first use).
pub fn fs_magic(path: &Path) -> std::io::Result<u32> {
    let mut p = path;
    loop {
        match rustix::fs::statfs(p) {
            // The magic numbers are 32-bit; f_type is a C long (or u32) by architecture.
            Ok(s) => return Ok(s.f_type as u32),
            Err(rustix::io::Errno::NOENT) => match p.parent() {
                Some(up) if !up.as_os_str().is_empty() => p = up,
                _ => return Err(rustix::io::Errno::NOENT.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// Where the node-local dir came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `$IMAGO_LOCAL_DIR`.
    Env,
    /// The config key `local_dir`.
    Config,
    /// `$XDG_RUNTIME_DIR/imago`.
    XdgRuntime,
    /// `$TMPDIR/imago-<uid>`.
    TmpDir,
    /// `/var/tmp/imago-<uid>`.
    VarTmp,
}

impl Source {
    /// Named by the user: node-local placement applies on any store.
    pub fn forces(self) -> bool {
        matches!(self, Source::Env | Source::Config)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Env => "$IMAGO_LOCAL_DIR",
            Source::Config => "the config key local_dir",
            Source::XdgRuntime => "$XDG_RUNTIME_DIR/imago",
            Source::TmpDir => "$TMPDIR/imago-<uid>",
            Source::VarTmp => "/var/tmp/imago-<uid>",
        })
    }
}

/// What the environment offers for the dir. Absolute paths only; the caller leaves out
/// what is empty, relative, missing, or (TMPDIR) on a shared file system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    /// `$IMAGO_LOCAL_DIR`.
    pub env: Option<PathBuf>,
    /// The config key `local_dir`.
    pub config: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`, an existing directory.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$TMPDIR`, an existing directory on a local file system.
    pub tmpdir: Option<PathBuf>,
    /// The effective uid.
    pub uid: u32,
}

/// The node-local dir by precedence (pure).
pub fn choose(c: &Candidates) -> (PathBuf, Source) {
    if let Some(p) = &c.env {
        return (p.clone(), Source::Env);
    }
    if let Some(p) = &c.config {
        return (p.clone(), Source::Config);
    }
    if let Some(x) = &c.xdg_runtime_dir {
        return (x.join("imago"), Source::XdgRuntime);
    }
    let mine = format!("imago-{}", c.uid);
    match &c.tmpdir {
        Some(t) => (t.join(mine), Source::TmpDir),
        None => (Path::new("/var/tmp").join(mine), Source::VarTmp),
    }
}

/// What [`check_private`] looks at: lstat(2) of the dir (stat(2) for a dir the user
/// named, which may be a link to their scratch disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirFacts {
    pub is_dir: bool,
    pub is_symlink: bool,
    pub uid: u32,
    pub mode: u32,
}

/// Why a dir is not private.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a directory")]
    NotADir,
    #[error("it belongs to uid {0}, not to you")]
    Owner(u32),
    #[error("others may write to it (mode {0:04o})")]
    Writable(u32),
}

/// Is this a dir of `uid`'s that nobody else may write to? (pure)
pub fn check_private(f: &DirFacts, uid: u32) -> Result<(), Refusal> {
    if f.is_symlink {
        return Err(Refusal::Symlink);
    }
    if !f.is_dir {
        return Err(Refusal::NotADir);
    }
    if f.uid != uid {
        return Err(Refusal::Owner(f.uid));
    }
    if f.mode & 0o022 != 0 {
        return Err(Refusal::Writable(f.mode & 0o7777));
    }
    Ok(())
}

/// Errors of the node-local dir.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The dir exists but is not private to us.
    #[error("refusing the node-local dir `{path}` ({from}): {why}; remove it, or set IMAGO_LOCAL_DIR to a private dir of yours on a local disk")]
    Refused {
        path: PathBuf,
        from: Source,
        why: Refusal,
    },
    /// It could not be made or looked at.
    #[error("{what} the node-local dir `{path}` ({from})")]
    Io {
        what: &'static str,
        path: PathBuf,
        from: Source,
        #[source]
        source: std::io::Error,
    },
}

/// The node-local dir, made and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDir {
    /// The dir itself.
    pub path: PathBuf,
    /// Where it came from.
    pub source: Source,
}

impl LocalDir {
    /// `containers/`: one dir per container (writable layer, rootfs, lock, log).
    pub fn containers(&self) -> PathBuf {
        self.path.join("containers")
    }
    /// `build/`: ibuild's RUN scratch trees.
    pub fn build(&self) -> PathBuf {
        self.path.join("build")
    }
    /// `run/`: live state of running containers, when `$XDG_RUNTIME_DIR` is unset.
    pub fn run(&self) -> PathBuf {
        self.path.join("run")
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn absolute(p: PathBuf) -> PathBuf {
    match (p.is_relative(), std::env::current_dir()) {
        (true, Ok(cwd)) => cwd.join(p),
        _ => p,
    }
}

/// The config file: `$IMAGO_CONFIG`, else `$XDG_CONFIG_HOME/imago/config.toml`, else
/// `~/.config/imago/config.toml` (it may not exist).
pub fn config_file() -> Option<PathBuf> {
    env_path("IMAGO_CONFIG")
        .or_else(|| env_path("XDG_CONFIG_HOME").map(|x| x.join("imago/config.toml")))
        .or_else(|| env_path("HOME").map(|h| h.join(".config/imago/config.toml")))
}

/// A top-level `key = "value"` of a TOML config text (before any `[table]`; `#`
/// comments; bare values too). Here because libraries cannot use imago_cli, whose
/// `config` module reads the same file with it.
pub fn config_value(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            return None;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let v = v.trim();
        let v = match v.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"')?.0,
            None => v.split('#').next().unwrap_or_default().trim(),
        };
        return (!v.is_empty()).then(|| v.to_string());
    }
    None
}

fn config_local_dir() -> Option<PathBuf> {
    use std::io::Read;
    let mut text = String::new();
    // At most 64 KiB: a config file is a few lines; a huge or endless one is not read.
    std::fs::File::open(config_file()?)
        .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
        .ok()?;
    let v = config_value(&text, "local_dir")?;
    match (v.strip_prefix("~/"), env_path("HOME")) {
        (Some(rest), Some(home)) => Some(home.join(rest)),
        _ => Some(PathBuf::from(v)),
    }
}

/// What this process's environment offers.
pub fn candidates() -> Candidates {
    let dir = |p: &PathBuf| p.is_absolute() && p.is_dir();
    Candidates {
        env: env_path("IMAGO_LOCAL_DIR").map(absolute),
        config: config_local_dir().map(absolute),
        xdg_runtime_dir: env_path("XDG_RUNTIME_DIR").filter(dir),
        tmpdir: env_path("TMPDIR")
            .filter(dir)
            .filter(|p| fs_magic(p).is_ok_and(|m| shared_fs(m).is_none())),
        uid: rustix::process::geteuid().as_raw(),
    }
}

/// The node-local dir of this process: chosen, made 0700 when missing, checked.
pub fn node_local_dir() -> Result<LocalDir, LocalError> {
    make(&candidates())
}

fn make(c: &Candidates) -> Result<LocalDir, LocalError> {
    let (path, from) = choose(c);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalError::Io {
            what,
            path,
            from,
            source,
        }
    };
    // A dir the user named may need its parents; the defaults' parents exist (the
    // shared temp dir, the runtime dir), and only the last component is ours to make.
    match std::fs::DirBuilder::new()
        .recursive(from.forces())
        .mode(0o700)
        .create(&path)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("create", &path)(e)),
    }
    let meta = match from.forces() {
        true => std::fs::metadata(&path),
        false => std::fs::symlink_metadata(&path),
    }
    .map_err(io("stat", &path))?;
    let facts = DirFacts {
        is_dir: meta.is_dir(),
        is_symlink: meta.file_type().is_symlink(),
        uid: meta.uid(),
        mode: meta.mode(),
    };
    check_private(&facts, c.uid).map_err(|why| LocalError::Refused {
        path: path.clone(),
        from,
        why,
    })?;
    Ok(LocalDir { path, source: from })
}

/// Where node-local things of the store at `store_root` go: Some(dir) when the dir was
/// named (IMAGO_LOCAL_DIR, config) or the store is on a shared file system (said once
/// per process, as a warning on stderr); None: in the store, as they always were.
/// Decided once per process and store: a container start asks twice (the storage
/// driver's probe cache, the container's dir), and the answer cannot change meanwhile.
pub fn placement(store_root: &Path) -> Result<Option<LocalDir>, LocalError> {
    static DECIDED: std::sync::Mutex<Vec<(PathBuf, Option<LocalDir>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut decided = DECIDED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, d)) = decided.iter().find(|(root, _)| root == store_root) {
        return Ok(d.clone());
    }
    let d = decide(store_root)?;
    decided.push((store_root.to_path_buf(), d.clone()));
    Ok(d)
}

fn decide(store_root: &Path) -> Result<Option<LocalDir>, LocalError> {
    let c = candidates();
    let shared = fs_magic(store_root).ok().and_then(shared_fs);
    if shared.is_none() && c.env.is_none() && c.config.is_none() {
        return Ok(None);
    }
    let dir = make(&c)?;
    if let Some(fs) = fs_magic(&dir.path).ok().and_then(shared_fs) {
        static WARNED: Once = Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                "the node-local dir {} ({}) is on {fs}: overlayfs may refuse the upper dirs \
                 made there; choose a dir on a local disk",
                dir.path.display(),
                dir.source
            );
        });
    }
    if let Some(fs) = shared {
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            tracing::warn!(
                "the store {} is on {fs}, which other machines may share and which takes no \
                 overlay upper dirs: containers' writable layers, locks and ibuild's RUN \
                 scratch go to the node-local dir {} ({}; set IMAGO_LOCAL_DIR to choose \
                 another)",
                store_root.display(),
                dir.path.display(),
                dir.source
            );
        });
    }
    Ok(Some(dir))
}

/// This machine's name (`/proc/sys/kernel/hostname`), recorded beside a container whose
/// dir is node-local.
pub fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
