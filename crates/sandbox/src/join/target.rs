//! The running container to join, checked and opened from the host before anything
//! forks: `/proc/PID` opened as a directory fd (it keeps naming that very process: once
//! it ended, every lookup through the fd fails, even when the pid is reused), the
//! identity checks (the recorded start time, pid 1 of a pid namespace of its own or a
//! process of ours for a container on the host's pids, a user namespace that is not
//! ours), the namespace files to join, its root, and its id
//! mapping as the kernel has it.
//! Owns: those checks and what they read in /proc. Never: calls setns, forks.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::{fstat, stat, Mode};

use crate::idmap::{IdMap, IdMapEntry, IdMapWriter, MapKind};
use crate::proc::{has_ended, parse_start_time};

/// A /proc file read here is refused beyond this size (they are a few hundred bytes).
const MAX_PROC_FILE: usize = 64 << 10;

/// Why a process cannot be joined.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// No process has that pid (any more).
    #[error("the container's process {0} is gone: the container is not running")]
    Gone(i32),
    /// The pid now names another process.
    #[error("process {pid} is no longer the container's pid 1 (it started at tick {found}, the container's at tick {recorded}): the container is not running")]
    Reused {
        /// The pid.
        pid: i32,
        /// The start time recorded with the container.
        recorded: u64,
        /// The start time of the process now at that pid.
        found: u64,
    },
    /// The process is no container's pid 1.
    #[error("process {pid} is not a container's pid 1: {why}")]
    NotAContainer {
        /// The pid.
        pid: i32,
        /// Which check failed.
        why: &'static str,
    },
    /// A file of /proc could not be opened or read.
    #[error("read `/proc/{pid}/{file}`")]
    Proc {
        /// The pid.
        pid: i32,
        /// The file below `/proc/PID`.
        file: &'static str,
        /// Why.
        #[source]
        errno: Errno,
    },
    /// A file of /proc did not have the expected form.
    #[error("`/proc/{pid}/{file}` has an unexpected form")]
    Malformed {
        /// The pid.
        pid: i32,
        /// The file below `/proc/PID`.
        file: &'static str,
    },
}

/// A namespace a joining process enters, in the order it enters them: the user
/// namespace first (it gives the capabilities the others need), the mount namespace
/// next (it replaces root and working dir, checked right after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// `user`.
    User,
    /// `mnt`.
    Mount,
    /// `pid` (applies to the children forked afterwards).
    Pid,
    /// `ipc`.
    Ipc,
    /// `uts`.
    Uts,
    /// `net`.
    Net,
    /// `cgroup`.
    Cgroup,
}

impl Namespace {
    /// Every namespace, in join order.
    pub const ALL: [Namespace; 7] = [
        Namespace::User,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Net,
        Namespace::Cgroup,
    ];

    /// Its file below `/proc/PID/`.
    pub fn file(self) -> &'static str {
        match self {
            Namespace::User => "ns/user",
            Namespace::Mount => "ns/mnt",
            Namespace::Pid => "ns/pid",
            Namespace::Ipc => "ns/ipc",
            Namespace::Uts => "ns/uts",
            Namespace::Net => "ns/net",
            Namespace::Cgroup => "ns/cgroup",
        }
    }

    /// Its setns flag.
    pub fn flag(self) -> CloneFlags {
        match self {
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }
}

/// A running container's pid 1, checked, with what a joining process needs.
#[derive(Debug)]
pub struct Target {
    /// Its pid (in the caller's pid namespace).
    pub pid: i32,
    /// The namespaces it does not share with the caller, in join order (a container on
    /// the host's network shares the network namespace: nothing to join there).
    pub namespaces: Vec<(Namespace, OwnedFd)>,
    /// Its root directory (`/proc/PID/root`), to check the mount namespace's root by.
    pub root: OwnedFd,
    /// Its user namespace's id mapping, as the kernel has it.
    pub map: IdMap,
}

impl Target {
    /// Open and check `pid`: it must run, have started at `start_time` (field 22 of
    /// `/proc/PID/stat`, when the container's record has it), be pid 1 of its own pid
    /// namespace and sit in a user namespace other than the caller's.
    pub fn open(pid: i32, start_time: Option<u64>) -> Result<Target, TargetError> {
        let dir = open(
            format!("/proc/{pid}").as_str(),
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT | Errno::ESRCH => TargetError::Gone(pid),
            errno => TargetError::Proc {
                pid,
                file: "",
                errno,
            },
        })?;
        let dir = dir.as_fd();
        check_start(pid, dir, start_time)?;
        let status = read(pid, dir, "status")?;
        // A container on the host's pids (`--pid host`) has no pid 1 of its own; its
        // pid 1 is then an ordinary process of our pid namespace (still checked below:
        // its user namespace must be another than ours).
        let own_pid_ns = ns_pid_innermost(&status) == Some(1);
        let host_pids = || -> Result<bool, TargetError> {
            let fd = open_at(pid, dir, Namespace::Pid.file(), OFlag::O_RDONLY)?;
            same_as_ours(pid, Namespace::Pid, fd.as_fd())
        };
        if !own_pid_ns && !host_pids()? {
            return Err(TargetError::NotAContainer {
                pid,
                why: "it is not pid 1 of a pid namespace of its own",
            });
        }
        let mut namespaces = Vec::new();
        for ns in Namespace::ALL {
            let ours = format!("/proc/self/{}", ns.file());
            if ns == Namespace::Cgroup && !std::path::Path::new(&ours).exists() {
                // A kernel without cgroup namespaces (before 4.6): nothing to join.
                continue;
            }
            let fd = open_at(pid, dir, ns.file(), OFlag::O_RDONLY)?;
            if !same_as_ours(pid, ns, fd.as_fd())? {
                namespaces.push((ns, fd));
            } else if ns == Namespace::User {
                return Err(TargetError::NotAContainer {
                    pid,
                    why: "it runs in the caller's own user namespace",
                });
            }
        }
        let root = open_at(pid, dir, "root", OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let map = id_map(pid, dir)?;
        // Everything above came through `dir`: if that process ended meanwhile, this
        // read fails, so no file of a process that took over the pid was opened.
        check_start(pid, dir, start_time)?;
        Ok(Target {
            pid,
            namespaces,
            root,
            map,
        })
    }
}

/// The start time matches the record (when there is one); the process still runs.
fn check_start(pid: i32, dir: BorrowedFd<'_>, recorded: Option<u64>) -> Result<(), TargetError> {
    let stat = read(pid, dir, "stat")?;
    let found = parse_start_time(&stat).ok_or(TargetError::Malformed { pid, file: "stat" })?;
    if has_ended(&stat) {
        // Ended, waiting to be reaped: nothing of it can be joined.
        return Err(TargetError::Gone(pid));
    }
    match recorded {
        Some(r) if r != found => Err(TargetError::Reused {
            pid,
            recorded: r,
            found,
        }),
        _ => Ok(()),
    }
}

/// The pid in the innermost pid namespace (the last of `NSpid:`).
fn ns_pid_innermost(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// The mapping of the process's user namespace, from `uid_map`, `gid_map` and
/// `setgroups`: only `kind` (the seccomp variant) and `setgroups_deny` (whether
/// setgroups may be called) matter to a joining process.
fn id_map(pid: i32, dir: BorrowedFd<'_>) -> Result<IdMap, TargetError> {
    let uid = parse_map(&read(pid, dir, "uid_map")?).ok_or(TargetError::Malformed {
        pid,
        file: "uid_map",
    })?;
    let gid = parse_map(&read(pid, dir, "gid_map")?).ok_or(TargetError::Malformed {
        pid,
        file: "gid_map",
    })?;
    let setgroups_deny = read(pid, dir, "setgroups")?.trim() == "deny";
    Ok(IdMap {
        kind: kind_of(&uid),
        uid,
        gid,
        writer: IdMapWriter::Direct,
        setgroups_deny,
    })
}

/// `inside outside count` lines.
fn parse_map(text: &str) -> Option<Vec<IdMapEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace().map(str::parse::<u32>);
            let (inside, outside, count) = (f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?);
            Some(IdMapEntry {
                inside,
                outside,
                count,
            })
        })
        .collect()
}

/// The kind a uid map was written as (idmap.rs): one id is the single mapping, an
/// identity line is root's, anything else a subordinate range.
fn kind_of(uid: &[IdMapEntry]) -> MapKind {
    if uid.iter().map(|e| u64::from(e.count)).sum::<u64>() <= 1 {
        MapKind::Single
    } else if uid.iter().all(|e| e.inside == e.outside) {
        MapKind::Identity
    } else {
        MapKind::SubIds
    }
}

fn open_at(
    pid: i32,
    dir: BorrowedFd<'_>,
    file: &'static str,
    flags: OFlag,
) -> Result<OwnedFd, TargetError> {
    openat(dir, file, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| match e {
        // The directory was there: a file of it missing means the process ended (a
        // zombie has no namespaces or root left).
        Errno::ESRCH | Errno::ENOENT => TargetError::Gone(pid),
        errno => TargetError::Proc { pid, file, errno },
    })
}

/// A small /proc file through `dir`, bounded.
fn read(pid: i32, dir: BorrowedFd<'_>, file: &'static str) -> Result<String, TargetError> {
    let fd = open_at(pid, dir, file, OFlag::O_RDONLY)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = crate::sys::read_some(fd.as_fd(), &mut buf).map_err(|e| match e {
            Errno::ESRCH => TargetError::Gone(pid),
            errno => TargetError::Proc { pid, file, errno },
        })?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > MAX_PROC_FILE {
            return Err(TargetError::Malformed { pid, file });
        }
    }
    String::from_utf8(out).map_err(|_| TargetError::Malformed { pid, file })
}

/// Is the namespace behind `fd` the caller's own of that kind?
fn same_as_ours(pid: i32, ns: Namespace, fd: BorrowedFd<'_>) -> Result<bool, TargetError> {
    let theirs = fstat(fd).map_err(|errno| TargetError::Proc {
        pid,
        file: ns.file(),
        errno,
    })?;
    let ours = match stat(format!("/proc/self/{}", ns.file()).as_str()) {
        Ok(s) => s,
        // We have no such namespace file, so it cannot be ours.
        Err(_) => return Ok(false),
    };
    Ok((theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_pid_is_the_last_of_nspid() {
        assert_eq!(ns_pid_innermost("Name:\tx\nNSpid:\t4242\t1\n"), Some(1));
        assert_eq!(ns_pid_innermost("NSpid:\t4242\n"), Some(4242));
        assert_eq!(ns_pid_innermost("Name:\tx\n"), None);
    }

    #[test]
    fn maps_parse_into_their_kind() {
        let single = parse_map("         0       1000          1\n").unwrap();
        assert_eq!(kind_of(&single), MapKind::Single);
        let root = parse_map("0 0 65536\n").unwrap();
        assert_eq!(kind_of(&root), MapKind::Identity);
        let sub = parse_map("0 1000 1\n1 100000 65536\n").unwrap();
        assert_eq!(kind_of(&sub), MapKind::SubIds);
        assert_eq!(sub[1].outside, 100000);
        assert!(parse_map("0 x 1\n").is_none());
    }

    #[test]
    fn our_own_process_is_no_container() {
        let pid = std::process::id() as i32;
        let err = Target::open(pid, None).unwrap_err();
        assert!(matches!(err, TargetError::NotAContainer { .. }), "{err:?}");
        let t = crate::proc::start_time(pid).unwrap();
        let err = Target::open(pid, Some(t + 1)).unwrap_err();
        assert!(matches!(err, TargetError::Reused { .. }), "{err:?}");
    }

    #[test]
    fn a_pid_nobody_has_is_gone() {
        // Above the largest pid_max the kernel allows (2^22).
        let err = Target::open(1 << 23, None).unwrap_err();
        assert!(matches!(err, TargetError::Gone(_)), "{err:?}");
        assert!(err.to_string().contains("not running"), "{err}");
    }
}
