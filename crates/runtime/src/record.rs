//! Container records and their directories (here, not in the store crate, which stays
//! image-only):
//! - `<store root>/containers/<id>/` — the record dir: `config.json` (the
//!   [`ContainerRecord`]) and, for a container whose own dir is node-local,
//!   `node-local.json` (that dir's root and the machine's name);
//! - the container's own dir ([`Containers::dir`]): `upper/` and `work/` (the overlay's
//!   writable half), `rootfs/` (mount point), `hosts`, `hostname`, `resolv.conf` (bound
//!   into the container), `l/` (short links for many-layer images), `lock`, the log and
//!   `monitor.log`. It is the record dir itself, as it always was, unless the store is
//!   shared by many nodes or `IMAGO_LOCAL_DIR` names a dir
//!   ([`imago_store::local::placement`]): then `<node-local dir>/containers/<id>/`;
//! - `<store root>/containers/names/<name>` — the id owning a name (created with
//!   O_EXCL: the claim is atomic, so two `--name x` runs cannot both win);
//! - runtime state of live containers: [`crate::live::runtime_dir`].
//!
//! Never: mounts, enters namespaces, reads images.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use imago_store::local::{LocalDir, LocalError};
use serde::{Deserialize, Serialize};

use crate::launch::Launch;
use crate::live::ProcRef;
pub use crate::live::{live_dir, runtime_dir};
use crate::lookup::{NodeLocal, NODE_LOCAL};

/// A container id: 64 lowercase hex digits, like docker's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerId(String);

impl ContainerId {
    /// A new random id (from /dev/urandom; time and pid as a fallback).
    pub fn random() -> ContainerId {
        let mut bytes = [0u8; 32];
        let ok = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .is_ok();
        if !ok {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = ((t >> ((i % 16) * 8)) as u8)
                    ^ (std::process::id() as u8).wrapping_mul(i as u8 + 1);
            }
        }
        ContainerId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Parse a full id.
    pub fn parse(s: &str) -> Option<ContainerId> {
        (s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| ContainerId(s.into()))
    }

    /// The full id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// docker's short form: the first 12 digits.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Made, never started (or its first start is under way).
    #[default]
    Created,
    /// Its monitor (or the foreground irun) runs it; see [`ContainerRecord::monitor`].
    Running,
    /// Ended; `exit_code` says how.
    Exited,
}

impl State {
    /// docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Exited => "exited",
        }
    }
}

/// `config.json` of a container. Written whole and atomically (temp + rename): by its
/// creator (state `created`), then by whoever runs it (the monitor of a detached
/// container, or irun in the foreground): `running` with the pids, `exited` with the
/// exit code. Fields added after the first version default when missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Full id.
    pub id: String,
    /// Name, if given.
    pub name: Option<String>,
    /// The image as the user named it.
    pub image: String,
    /// The image id (config digest), when run from the store.
    pub image_id: Option<String>,
    /// The command.
    pub command: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    /// created, running or exited (as recorded: a running container whose monitor is
    /// gone is exited; see `status::of`).
    pub state: State,
    /// Exit code once exited.
    pub exit_code: Option<i32>,
    /// When it last started (RFC 3339).
    #[serde(default)]
    pub started: Option<String>,
    /// When it last ended (RFC 3339).
    #[serde(default)]
    pub finished: Option<String>,
    /// The process running it: the monitor of a detached container, irun in the
    /// foreground. It is running while this process lives.
    #[serde(default)]
    pub monitor: Option<ProcRef>,
    /// The container's pid 1 (host pid), while running.
    #[serde(default)]
    pub pid: Option<ProcRef>,
    /// The attach socket of a container with a terminal, while it runs (in the live
    /// dir of its monitor, whose runtime dir may differ from a client's).
    #[serde(default)]
    pub attach_socket: Option<PathBuf>,
    /// How to start it again (`ictr start`).
    #[serde(default)]
    pub launch: Option<Launch>,
    /// Published ports, docker's `ps` form: `HOST_IP:HOST_PORT->CTR_PORT/PROTO`, e.g.
    /// `0.0.0.0:8080->80/tcp` (filled by the port publishing code).
    #[serde(default)]
    pub ports: Vec<String>,
}

/// Errors of container records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// docker's name conflict message.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse {
        /// The name.
        name: String,
        /// Its owner.
        id: String,
    },
    /// No container has this name, id or id prefix (docker's message).
    #[error("No such container: {0}")]
    NotFound(String),
    /// More than one container id starts with this prefix.
    #[error("multiple containers match the id prefix `{0}`: give more digits or the name")]
    Ambiguous(String),
    /// docker's rule for names.
    #[error("invalid container name \"{0}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    /// The node-local dir is refused or cannot be made.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// A file operation failed.
    #[error("{what} `{path}`")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RecordError + 'a {
    move |source| RecordError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The containers area of a store root.
#[derive(Debug, Clone)]
pub struct Containers {
    base: PathBuf,
}

impl Containers {
    /// `<store root>/containers`.
    pub fn new(store_root: &Path) -> Containers {
        Containers {
            base: imago_store::Layout::new(store_root).containers(),
        }
    }

    /// The store root these containers belong to.
    pub fn store_root(&self) -> PathBuf {
        self.base
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The record dir of one container: `config.json`, `node-local.json`. Its own dir
    /// (writable layer, lock, log) is [`Containers::dir`].
    pub fn record_dir(&self, id: &ContainerId) -> PathBuf {
        self.base.join(id.as_str())
    }

    pub(crate) fn name_file(&self, name: &str) -> PathBuf {
        self.base.join("names").join(name)
    }

    /// Where new containers of this store put their own dirs: Some(node-local dir) on
    /// a shared store or when `IMAGO_LOCAL_DIR` names one, else None (the record dir).
    pub fn placement(&self) -> Result<Option<LocalDir>, RecordError> {
        Ok(imago_store::local::placement(&self.store_root())?)
    }

    /// Create the container's record dir and its own dir with `upper/`, `work/`,
    /// `rootfs/`: in `local` (recorded in `node-local.json`), else in the record dir.
    /// Returns its own dir.
    pub fn create_dir(
        &self,
        id: &ContainerId,
        local: Option<&LocalDir>,
    ) -> Result<PathBuf, RecordError> {
        let rd = self.record_dir(id);
        std::fs::create_dir_all(&rd).map_err(io("create directory", &rd))?;
        let d = match local {
            Some(l) => {
                let at = NodeLocal {
                    dir: l.path.clone(),
                    node: imago_store::local::node_name(),
                };
                let f = rd.join(NODE_LOCAL);
                let bytes = serde_json::to_vec(&at).unwrap_or_default();
                std::fs::write(&f, bytes).map_err(io("write", &f))?;
                at.container_dir(id)
            }
            None => rd,
        };
        for sub in ["upper", "work", "rootfs"] {
            let p = d.join(sub);
            std::fs::create_dir_all(&p).map_err(io("create directory", &p))?;
        }
        Ok(d)
    }

    /// Claim `name` for `id` atomically. A name whose container dir is gone (a crashed
    /// `--rm` run) is taken over.
    pub fn claim_name(&self, name: &str, id: &ContainerId) -> Result<(), RecordError> {
        if !valid_name(name) {
            return Err(RecordError::BadName(name.into()));
        }
        let f = self.name_file(name);
        if let Some(p) = f.parent() {
            std::fs::create_dir_all(p).map_err(io("create directory", p))?;
        }
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&f)
            {
                Ok(mut file) => {
                    return file
                        .write_all(id.as_str().as_bytes())
                        .map_err(io("write", &f))
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&f).unwrap_or_default();
                    let alive = ContainerId::parse(owner.trim())
                        .map(|o| self.record_dir(&o).exists())
                        .unwrap_or(false);
                    if alive {
                        return Err(RecordError::NameInUse {
                            name: name.into(),
                            id: owner.trim().into(),
                        });
                    }
                    // Stale: its container is gone. Ignoring a failed remove: the retry reports.
                    let _ = std::fs::remove_file(&f);
                }
                Err(e) => return Err(io("create", &f)(e)),
            }
        }
        Err(RecordError::NameInUse {
            name: name.into(),
            id: String::new(),
        })
    }

    /// Release a name (only if `id` owns it).
    pub fn release_name(&self, name: &str, id: &ContainerId) {
        let f = self.name_file(name);
        if std::fs::read_to_string(&f)
            .map(|o| o.trim() == id.as_str())
            .unwrap_or(false)
        {
            let _ = std::fs::remove_file(&f); // best effort: a stale name is reclaimed later
        }
    }

    /// Write `config.json` atomically (temp + rename).
    pub fn write_record(&self, rec: &ContainerRecord) -> Result<(), RecordError> {
        let d = self.base.join(&rec.id);
        let tmp = d.join(".config.json.tmp");
        let to = d.join("config.json");
        let bytes = serde_json::to_vec_pretty(rec).unwrap_or_default();
        // Private: the environment in it may hold secrets (`-e TOKEN=…`).
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &to).map_err(io("rename", &to))
    }

    /// The dir holding every container dir.
    pub(crate) fn base(&self) -> &Path {
        &self.base
    }

    /// Read `config.json`.
    pub fn read_record(&self, id: &ContainerId) -> Option<ContainerRecord> {
        let bytes = std::fs::read(self.record_dir(id).join("config.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex() {
        let a = ContainerId::random();
        let b = ContainerId::random();
        assert_eq!(a.as_str().len(), 64);
        assert_ne!(a, b);
        assert_eq!(a.short().len(), 12);
        assert!(ContainerId::parse(a.as_str()).is_some());
        assert!(ContainerId::parse("xyz").is_none());
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a"));
        assert!(!valid_name("a/b"));
    }

    #[test]
    fn name_claims_conflict_and_stale_takeover() {
        let t =
            std::env::temp_dir().join(format!("imago-rt-names-{}-{}", std::process::id(), line!()));
        let c = Containers::new(&t);
        let a = ContainerId::random();
        let b = ContainerId::random();
        c.create_dir(&a, None).unwrap();
        c.claim_name("web", &a).unwrap();
        let e = c.claim_name("web", &b).unwrap_err();
        assert!(
            e.to_string().contains("is already in use by container"),
            "{e}"
        );
        std::fs::remove_dir_all(c.record_dir(&a)).unwrap();
        c.create_dir(&b, None).unwrap();
        c.claim_name("web", &b).unwrap(); // a's dir is gone: stale
        c.release_name("web", &a); // not the owner: kept
        assert!(matches!(
            c.claim_name("web", &a),
            Err(RecordError::NameInUse { .. })
        ));
        c.release_name("web", &b);
        std::fs::remove_dir_all(&t).unwrap();
    }
}
