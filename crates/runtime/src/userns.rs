//! One user namespace for a user's HPC containers on a node: the kernel lets a process
//! read or write another's memory (`process_vm_readv/writev`, MPI's CMA) across user
//! namespaces only with CAP_SYS_PTRACE over the other's namespace, which no rank has; in
//! one namespace the same uid is enough. So a container with keep-id, the host's pids
//! and the host's network (the `--hpc` profile) enters the user namespace of a running
//! container of the same mapping, and the first one makes it.
//! Owns: the rendezvous under the runtime dir, `userns/<uid>-<gid>.lock` and the member
//! list `userns/<uid>-<gid>/PID-START` (pid 1 of each container in it), the check
//! that a member's namespace has exactly the maps this container would get, and why a
//! container could not take part ([`Alone`]).
//! Never: clones or enters namespaces (the sandbox does), waits unbounded.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use imago_sandbox::{IdMap, IdMapEntry};
use imago_store::lock::{self, LockGuard};

use crate::live::ProcRef;

/// How long a rank waits for another that is making the namespace (a clone and two
/// setuid helpers: milliseconds; a stuck holder must not hang a job).
const WAIT: Duration = Duration::from_secs(30);

/// Why a container that asked for the shared user namespace gets one of its own, which
/// no other container joins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Alone {
    /// The runtime dir, or the rendezvous in it, cannot be made or locked (what failed).
    #[error("no usable runtime dir: {0}")]
    NoRuntimeDir(String),
    /// Another irun held the rendezvous longer than [`WAIT`].
    #[error("its rendezvous `{0}` stayed locked for {1:?}")]
    Busy(PathBuf, Duration),
}

/// The rendezvous, locked: find a member to join, or register the container made.
pub struct Rendezvous {
    members: PathBuf,
    _lock: LockGuard,
}

/// What the members hold for a container of a given mapping.
#[derive(Debug)]
pub enum Found {
    /// The user namespace of a live member with the same maps, opened.
    Same(OwnedFd),
    /// No live member: this container makes the namespace.
    Nobody,
    /// Live members, none with these maps (ids changed in /etc/subuid since they
    /// started, or another `IMAGO_IDMAP`): this container makes a namespace of its own
    /// for its maps, which the next containers of the same maps join.
    OtherMaps,
}

impl Rendezvous {
    /// Lock the rendezvous of the caller's `uid`/`gid`; [`Alone`] when it cannot be had
    /// (no runtime dir, a holder stuck past the wait): the container then makes a
    /// namespace of its own, as any other does.
    pub fn lock(uid: u32, gid: u32) -> Result<Rendezvous, Alone> {
        let dir = crate::live::runtime_dir()
            .map_err(|e| Alone::NoRuntimeDir(chain(&e)))?
            .join("userns");
        Rendezvous::lock_in(&dir, uid, gid, WAIT)
    }

    /// [`Rendezvous::lock`] in `dir`, waiting at most `wait`.
    fn lock_in(dir: &Path, uid: u32, gid: u32, wait: Duration) -> Result<Rendezvous, Alone> {
        let members = dir.join(format!("{uid}-{gid}"));
        let unusable = |p: &Path, e: &dyn std::fmt::Display| {
            Alone::NoRuntimeDir(format!("`{}`: {e}", p.display()))
        };
        std::fs::create_dir_all(&members).map_err(|e| unusable(&members, &e))?;
        let path = dir.join(format!("{uid}-{gid}.lock"));
        match lock::exclusive_until(&path, Instant::now() + wait) {
            Ok(Some(guard)) => Ok(Rendezvous {
                members,
                _lock: guard,
            }),
            Ok(None) => Err(Alone::Busy(path, wait)),
            Err(e) => Err(unusable(&path, &e)),
        }
    }

    /// The member to join for `map`; members that ended are struck off.
    pub fn find(&self, map: &IdMap) -> Found {
        let Ok(entries) = std::fs::read_dir(&self.members) else {
            return Found::Nobody;
        };
        let mut others = false;
        for e in entries.flatten() {
            let name = e.file_name();
            let member = name.to_str().and_then(parse_member);
            let alive = member.filter(ProcRef::alive);
            let Some(p) = alive else {
                // Best effort: a stale entry left behind is skipped again next time.
                let _ = std::fs::remove_file(e.path());
                continue;
            };
            match open_if_same(p.pid, map) {
                Some(fd) => return Found::Same(fd),
                None => others = true,
            }
        }
        match others {
            true => Found::OtherMaps,
            false => Found::Nobody,
        }
    }

    /// Add the container whose pid 1 is `pid` (its maps written) to the members.
    pub fn register(&self, pid: i32) {
        if let Some(p) = ProcRef::of(pid) {
            // Best effort: an unregistered container is only one fewer to join.
            let _ = std::fs::write(
                self.members.join(format!("{}-{}", p.pid, p.start_time)),
                b"",
            );
        }
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

fn parse_member(name: &str) -> Option<ProcRef> {
    let (pid, start) = name.split_once('-')?;
    Some(ProcRef {
        pid: pid.parse().ok()?,
        start_time: start.parse().ok()?,
    })
}

/// The user namespace of `pid`, when its uid and gid maps are exactly `map`'s.
fn open_if_same(pid: i32, map: &IdMap) -> Option<OwnedFd> {
    let same = |file: &str, want: &[IdMapEntry]| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()
            .is_some_and(|text| same_lines(&text, want))
    };
    if !same("uid_map", &map.uid) || !same("gid_map", &map.gid) {
        return None;
    }
    let f = std::fs::File::open(format!("/proc/{pid}/ns/user")).ok()?;
    Some(OwnedFd::from(f))
}

/// A /proc uid_map or gid_map text holds exactly `want`'s lines (in any order).
fn same_lines(text: &str, want: &[IdMapEntry]) -> bool {
    let mut have: Vec<(u32, u32, u32)> = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let n: Vec<u32> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        match n.as_slice() {
            [i, o, c] => have.push((*i, *o, *c)),
            _ => return false,
        }
    }
    let mut want: Vec<(u32, u32, u32)> = want
        .iter()
        .map(|e| (e.inside, e.outside, e.count))
        .collect();
    have.sort_unstable();
    want.sort_unstable();
    have == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_compare_as_the_kernel_prints_them() {
        let map = IdMap::single(1000, 1000).keep_id();
        assert!(same_lines("      1000       1000          1\n", &map.uid));
        assert!(!same_lines("         0       1000          1\n", &map.uid));
        assert!(!same_lines("", &map.uid));
        assert!(!same_lines("1000 1000\n", &map.uid));
        let two = [
            IdMapEntry {
                inside: 0,
                outside: 5,
                count: 1,
            },
            IdMapEntry {
                inside: 1,
                outside: 9,
                count: 3,
            },
        ];
        assert!(same_lines("1 9 3\n0 5 1\n", &two));
    }

    #[test]
    fn member_names() {
        assert_eq!(
            parse_member("42-123"),
            Some(ProcRef {
                pid: 42,
                start_time: 123
            })
        );
        assert_eq!(parse_member("x-1"), None);
        assert_eq!(parse_member("42"), None);
    }

    #[test]
    fn members_that_ended_are_struck_off_and_other_maps_are_told_apart() {
        let t = tempfile::tempdir().unwrap();
        let rv = Rendezvous::lock_in(t.path(), 7, 8, WAIT).unwrap();
        let map = IdMap::single(1000, 1000).keep_id();
        assert!(matches!(rv.find(&map), Found::Nobody));
        let gone = t.path().join("7-8/999999999-1");
        std::fs::write(&gone, b"").unwrap();
        assert!(matches!(rv.find(&map), Found::Nobody));
        assert!(!gone.exists(), "a member that ended is struck off");
        // This test process: alive, in the host's user namespace, whose maps are not
        // keep-id's map of uid 1000.
        rv.register(std::process::id() as i32);
        assert!(matches!(rv.find(&map), Found::OtherMaps));
    }

    #[test]
    fn no_rendezvous_when_the_dir_is_unusable_or_the_lock_stays_held() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("userns");
        std::fs::write(&file, b"").unwrap();
        match Rendezvous::lock_in(&file, 7, 8, WAIT) {
            Err(Alone::NoRuntimeDir(why)) => assert!(why.contains("userns/7-8"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
        let dir = t.path().join("ok");
        let held = Rendezvous::lock_in(&dir, 7, 8, WAIT).unwrap();
        let wait = Duration::from_millis(50);
        match Rendezvous::lock_in(&dir, 7, 8, wait) {
            Err(e @ Alone::Busy(..)) => assert!(e.to_string().contains("7-8.lock"), "{e}"),
            other => panic!("{:?}", other.err()),
        }
        drop(held);
        assert!(Rendezvous::lock_in(&dir, 7, 8, wait).is_ok());
    }
}
