//! Resource limits on what a container or a build step may take from the host:
//! `--pids-limit`, `--memory`, `--cpus` through a cgroup, and the default bound on a
//! build's processes (docs/runtime.md, "Resource limits").
//!
//! Which cgroup: cgroup v2 where the caller's own cgroup is delegated to them (systemd
//! `Delegate=yes`, a Slurm job step's cgroup), else cgroup v1 for root (a child of root's
//! own cgroup in the pids, memory and cpu hierarchies). Nowhere to write: a clear error
//! that says why and what would fix it. Nothing here runs without a limit asked for,
//! except [`bound_processes`], which only lowers a soft rlimit and never fails.
//!
//! Owns: parsing the flag values, finding a writable cgroup, creating it, moving a
//! process in, removing it (and stale ones left by a killed run). Never: raises a limit
//! it inherited, touches a cgroup it did not create, or needs cgroups when no limit is
//! asked for.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::{access, AccessFlags};

/// What the user asked for. All `None`: nothing is done. Kept in a detached
/// container's record, so that each start (`ictr start`) applies them again.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// `--pids-limit N`: tasks (processes and threads) in the container.
    pub pids: Option<u64>,
    /// `--memory SIZE` in bytes; swap is not allowed on top (memory+swap = memory).
    pub memory: Option<u64>,
    /// `--cpus N` in thousandths of a CPU (CFS quota over a 100 ms period).
    pub cpus_milli: Option<u64>,
}

impl Limits {
    /// No limit asked for.
    pub fn is_empty(&self) -> bool {
        self.pids.is_none() && self.memory.is_none() && self.cpus_milli.is_none()
    }

    /// From the flags' values, checked as docker does (`--pids-limit` 0 or -1 =
    /// unlimited).
    pub fn from_flags(
        pids: Option<i64>,
        memory: Option<&str>,
        cpus: Option<&str>,
    ) -> Result<Self, LimitsError> {
        Ok(Limits {
            pids: pids.and_then(|n| u64::try_from(n).ok()).filter(|&n| n > 0),
            memory: memory.map(parse_memory).transpose()?,
            cpus_milli: cpus.map(parse_cpus).transpose()?,
        })
    }
}

/// Bad values, and no cgroup to put them in.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// `--memory` is not a size.
    #[error("invalid --memory `{0}`: expected a size such as 512m or 2g (at least 6m)")]
    Memory(String),
    /// `--cpus` is not a positive number.
    #[error("invalid --cpus `{0}`: expected a positive number of CPUs such as 1.5")]
    Cpus(String),
    /// No cgroup the caller may write.
    #[error("--pids-limit, --memory and --cpus need a cgroup you may write: {why}")]
    NoCgroup {
        /// What this host has and lacks.
        why: String,
    },
    /// The kernel refused a step.
    #[error("cgroup {op} `{path}`")]
    Io {
        /// What was done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Why not.
        #[source]
        source: io::Error,
    },
}

impl LimitsError {
    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            LimitsError::NoCgroup { .. } => Some(
                "run as root on a cgroup v1 host, or on a cgroup v2 host inside a delegated \
                 cgroup (`systemd-run --user --scope -p Delegate=yes irun …`), or inside a \
                 Slurm job whose cgroup/v2 plugin gives the step its own cgroup; or drop the \
                 flags"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// docker's sizes: a number with an optional b, k, m or g (powers of 1024); at least
/// 6 MiB, docker's floor (less cannot start a shell).
pub fn parse_memory(s: &str) -> Result<u64, LimitsError> {
    let bad = || LimitsError::Memory(s.to_string());
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|r| !r.is_empty()).unwrap_or(&t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 10),
        Some((i, 'm')) => (&t[..i], 20),
        Some((i, 'g')) => (&t[..i], 30),
        Some((i, 't')) => (&t[..i], 40),
        _ => (t, 0),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(1 << shift).ok_or_else(bad)?;
    if bytes < 6 << 20 {
        return Err(bad());
    }
    Ok(bytes)
}

/// `1.5` → 1500 thousandths; positive, at most three decimals kept.
pub fn parse_cpus(s: &str) -> Result<u64, LimitsError> {
    let bad = || LimitsError::Cpus(s.to_string());
    let v: f64 = s.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 || v > 1e6 {
        return Err(bad());
    }
    let milli = (v * 1000.0).round() as u64;
    if milli == 0 {
        return Err(bad());
    }
    Ok(milli)
}

/// Which cgroup interface this process may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// cgroup v2: the caller's own cgroup dir, writable by them.
    V2 { own: PathBuf },
    /// cgroup v1 as root: each controller's mount point joined with our path in it.
    V1Root,
    /// Neither: why (for the error and `iimage info`).
    None(String),
}

impl Mode {
    /// One word for `iimage info`: `v2-delegated`, `v1-root`, `none`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::V2 { .. } => "v2-delegated",
            Mode::V1Root => "v1-root",
            Mode::None(_) => "none",
        }
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const PERIOD_US: u64 = 100_000;

fn writable(p: &Path) -> bool {
    access(p, AccessFlags::W_OK).is_ok()
}

/// Our path in the hierarchy whose `/proc/self/cgroup` line names `ctrl` (v1) or the
/// unified one (`ctrl` empty).
fn own_path(ctrl: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if ctrl.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == ctrl)
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

/// Find what this process may use (cheap: a few stats).
pub fn detect() -> Mode {
    let unified = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
    if unified {
        let Some(own) = own_path("") else {
            return Mode::None("no cgroup v2 entry in /proc/self/cgroup".into());
        };
        let dir = Path::new(CGROUP_ROOT).join(own);
        if writable(&dir.join("cgroup.procs")) && writable(&dir.join("cgroup.subtree_control")) {
            return Mode::V2 { own: dir };
        }
        return Mode::None(format!(
            "this host has cgroup v2, but your cgroup {} is not delegated to you",
            dir.display()
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return Mode::None(
            "this host has cgroup v1 (hybrid), which only root may use, and no cgroup v2 \
             subtree is delegated to you"
                .into(),
        );
    }
    let pids = Path::new(CGROUP_ROOT).join("pids");
    if pids.join("cgroup.procs").exists() && writable(&pids) {
        Mode::V1Root
    } else {
        Mode::None(format!(
            "cgroup v1 controllers are not mounted (writable) under {CGROUP_ROOT}"
        ))
    }
}

/// A cgroup made for one container (or one build); removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    /// The dirs made, one per controller (one on v2).
    dirs: Vec<PathBuf>,
    /// Where `pid` came from, when it is this process (moved back before removal).
    origins: Vec<PathBuf>,
}

fn write(path: PathBuf, value: &str, op: &'static str) -> Result<(), LimitsError> {
    fs::write(&path, value).map_err(|source| LimitsError::Io { op, path, source })
}

/// Remove `dir`'s `imago-<pid>` children left by runs that were killed: those whose
/// pid is gone (a live run's may still be empty, between its mkdir and its move).
fn reclaim(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("imago-") else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            // EBUSY = processes are still inside (a reused name): leave it.
            let _ = fs::remove_dir(e.path());
        }
    }
}

/// Put `pid` (and so every process it forks) under `limits`; `None` when no limit is
/// asked for (no cgroup is touched then).
pub fn apply(limits: &Limits, pid: i32) -> Result<Option<Cgroup>, LimitsError> {
    if limits.is_empty() {
        return Ok(None);
    }
    let name = format!("imago-{pid}");
    let me = pid == nix::unistd::getpid().as_raw();
    let mut cg = Cgroup {
        dirs: Vec::new(),
        origins: Vec::new(),
    };
    match detect() {
        Mode::None(why) => return Err(LimitsError::NoCgroup { why }),
        Mode::V2 { own } => {
            let (parent, here) = enable_v2(&own, limits)?;
            reclaim(&parent);
            let dir = parent.join(&name);
            make_dir(&dir)?;
            cg.dirs.push(dir.clone());
            if let Some(n) = limits.pids {
                write(dir.join("pids.max"), &n.to_string(), "set pids.max in")?;
            }
            if let Some(b) = limits.memory {
                write(dir.join("memory.max"), &b.to_string(), "set memory.max in")?;
                // No swap on top, as with v1 below; absent without swap accounting.
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(m) = limits.cpus_milli {
                let quota = m * PERIOD_US / 1000;
                write(
                    dir.join("cpu.max"),
                    &format!("{quota} {PERIOD_US}"),
                    "set cpu.max in",
                )?;
            }
            if me {
                cg.origins.push(here);
            }
            write(dir.join("cgroup.procs"), &pid.to_string(), "move into")?;
        }
        Mode::V1Root => {
            let wanted = [
                ("pids", limits.pids.is_some()),
                ("memory", limits.memory.is_some()),
                ("cpu", limits.cpus_milli.is_some()),
            ];
            for (ctrl, _) in wanted.iter().filter(|(_, w)| *w) {
                let own = Path::new(CGROUP_ROOT)
                    .join(ctrl)
                    .join(own_path(ctrl).unwrap_or_default());
                reclaim(&own);
                let dir = own.join(&name);
                make_dir(&dir)?;
                cg.dirs.push(dir.clone());
                match *ctrl {
                    "pids" => {
                        let n = limits.pids.unwrap_or_default().to_string();
                        write(dir.join("pids.max"), &n, "set pids.max in")?;
                    }
                    "memory" => {
                        let b = limits.memory.unwrap_or_default().to_string();
                        write(dir.join("memory.limit_in_bytes"), &b, "set memory in")?;
                        // memory+swap = memory: the hog is OOM-killed, not swapped out.
                        // Absent without swap accounting, then there is no swap to use.
                        let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), &b);
                    }
                    _ => {
                        let quota = limits.cpus_milli.unwrap_or_default() * PERIOD_US / 1000;
                        let p = PERIOD_US.to_string();
                        write(dir.join("cpu.cfs_period_us"), &p, "set cpu period in")?;
                        write(
                            dir.join("cpu.cfs_quota_us"),
                            &quota.to_string(),
                            "set cpu in",
                        )?;
                    }
                }
                if me {
                    cg.origins.push(own.clone());
                }
                write(dir.join("cgroup.procs"), &pid.to_string(), "move into")?;
            }
        }
    }
    Ok(Some(cg))
}

fn make_dir(dir: &Path) -> Result<(), LimitsError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(LimitsError::Io {
            op: "create",
            path: dir.to_owned(),
            source,
        }),
    }
}

/// The v2 dir to create children in, with the controllers `limits` needs enabled for
/// them. A cgroup with processes cannot enable controllers for its children (the "no
/// internal processes" rule): this process first moves into a leaf of its own; other
/// processes there make that fail with [`LimitsError::NoCgroup`]. Returns the parent
/// for new cgroups and where this process is now.
fn enable_v2(own: &Path, limits: &Limits) -> Result<(PathBuf, PathBuf), LimitsError> {
    let need: Vec<&str> = [
        ("pids", limits.pids.is_some()),
        ("memory", limits.memory.is_some()),
        ("cpu", limits.cpus_milli.is_some()),
    ]
    .iter()
    .filter(|(_, w)| *w)
    .map(|(c, _)| *c)
    .collect();
    let have = fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
    if let Some(missing) = need
        .iter()
        .find(|c| !have.split_whitespace().any(|h| h == **c))
    {
        return Err(LimitsError::NoCgroup {
            why: format!(
                "the {missing} controller is not delegated to your cgroup {}",
                own.display()
            ),
        });
    }
    let line = need
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let control = own.join("cgroup.subtree_control");
    if fs::write(&control, &line).is_ok() {
        return Ok((own.to_owned(), own.to_owned()));
    }
    let leaf = own.join("imago-leaf");
    make_dir(&leaf)?;
    write(
        leaf.join("cgroup.procs"),
        &nix::unistd::getpid().to_string(),
        "move into",
    )?;
    fs::write(&control, &line).map_err(|e| LimitsError::NoCgroup {
        why: format!(
            "cannot enable {line} for children of {} ({e}): other processes share that \
             cgroup; start irun in a cgroup of its own",
            own.display()
        ),
    })?;
    Ok((own.to_owned(), leaf))
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let me = nix::unistd::getpid().to_string();
        for origin in &self.origins {
            // Back where this process came from, so its cgroup can go; failing that the
            // dir stays, and the next run reclaims it.
            let _ = fs::write(origin.join("cgroup.procs"), &me);
        }
        for dir in &self.dirs {
            // The container's last processes may still be exiting: bounded retries.
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32) => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Environment variable: how many processes a build step may add to the caller's
/// (default [`DEFAULT_BUILD_PIDS`]; `0` or `max` = no bound).
pub const BUILD_PIDS_ENV: &str = "IMAGO_BUILD_PIDS";
/// The default of [`BUILD_PIDS_ENV`].
pub const DEFAULT_BUILD_PIDS: u64 = 4096;

/// The default bound on a build's processes, so a RUN fork bomb stops at "fork: Resource
/// temporarily unavailable" instead of filling the host's process table: the caller's
/// current task count + `IMAGO_BUILD_PIDS` (default 4096), as RLIMIT_NPROC (soft only,
/// never above the inherited soft limit), and for root (whom RLIMIT_NPROC does not bind)
/// a pids cgroup (v1 or delegated v2) around this process, of its own threads +
/// `IMAGO_BUILD_PIDS`, when there is one. Never
/// fails: returns what it set, for the log; the cgroup guard must live as long as the
/// build.
pub fn bound_processes() -> (Option<u64>, Option<Cgroup>) {
    let extra = match std::env::var(BUILD_PIDS_ENV).ok().as_deref().map(str::trim) {
        Some("0" | "max") => return (None, None),
        Some(v) => v.parse().unwrap_or(DEFAULT_BUILD_PIDS),
        None => DEFAULT_BUILD_PIDS,
    };
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        // The cgroup counts this process's tree only: its threads + the allowance.
        let bound = own_threads().saturating_add(extra);
        let limits = Limits {
            pids: Some(bound),
            ..Limits::default()
        };
        // No cgroup to use: the rlimit below, which binds root only inside a user
        // namespace (real root's builds then run unbounded, as documented).
        if let Ok(Some(cg)) = apply(&limits, nix::unistd::getpid().as_raw()) {
            return (Some(bound), Some(cg));
        }
    }
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let bound = tasks_of(uid.as_raw()).saturating_add(extra);
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NPROC) else {
        return (None, None);
    };
    if bound >= soft {
        return (None, None);
    }
    // Lowering a soft limit needs no privilege; failing, the inherited one stays.
    match setrlimit(Resource::RLIMIT_NPROC, bound, hard) {
        Ok(()) => (Some(bound), None),
        Err(_) => (None, None),
    }
}

fn own_threads() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// Tasks (threads included, as RLIMIT_NPROC counts them) whose real uid is `uid`.
fn tasks_of(uid: u32) -> u64 {
    let Ok(rd) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0u64;
    for e in rd.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(status) = fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if field("Uid:") == Some(u64::from(uid)) {
            n += field("Threads:").unwrap_or(1);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("32m").unwrap(), 32 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("64mb").unwrap(), 64 << 20);
        assert_eq!(parse_memory("7340032").unwrap(), 7 << 20);
        for bad in ["", "m", "1m", "-5m", "12x", "99999999999999t", "5 m"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1500);
        assert_eq!(parse_cpus("0.25").unwrap(), 250);
        for bad in ["0", "-1", "x", "NaN", "inf", "0.0001"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_as_docker_reads_them() {
        let l = Limits::from_flags(Some(-1), None, None).unwrap();
        assert!(l.is_empty(), "-1 is unlimited");
        let l = Limits::from_flags(Some(20), Some("32m"), Some("2")).unwrap();
        assert_eq!(
            l,
            Limits {
                pids: Some(20),
                memory: Some(32 << 20),
                cpus_milli: Some(2000)
            }
        );
    }

    #[test]
    fn no_limits_touch_no_cgroup() {
        let cg = apply(&Limits::default(), nix::unistd::getpid().as_raw()).unwrap();
        assert!(cg.is_none());
    }
}
