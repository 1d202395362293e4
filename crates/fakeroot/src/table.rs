//! The fake credentials of the container's processes, keyed by thread-group id and start
//! time (a reused pid is a new process). A process the table does not know yet has the
//! credentials of its nearest known ancestor (fork copies them), found through
//! `/proc/PID/status`'s PPid; with none known it is what it really is (root).
//! Owns: the table and its bounds. Never: answers notifications (supervisor.rs).

use std::collections::HashMap;

use crate::creds::Creds;

/// Most processes remembered; past it, entries of ended processes are dropped.
const MAX_ENTRIES: usize = 16384;
/// Longest ancestor chain walked (a pid namespace is not deeper than this in practice).
const MAX_DEPTH: usize = 256;
/// Largest /proc status file read.
const MAX_STATUS: u64 = 16 << 10;

/// Identity of a process: thread-group id and start time (field 22 of /proc/PID/stat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    tgid: i32,
    start: u64,
}

/// The table.
#[derive(Debug, Default)]
pub struct Table {
    map: HashMap<i32, (u64, Creds)>,
}

impl Table {
    /// True when no process ever changed its ids (get*id then need no lookup).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The credentials of thread `tid` (inherited when unknown); `None`: nothing known
    /// of it or its ancestors (its real ids hold).
    pub fn get(&self, tid: i32) -> Option<Creds> {
        let key = key_of(tid)?;
        if let Some(c) = self.known(key) {
            return Some(c.clone());
        }
        let mut pid = ppid_of(key.tgid)?;
        for _ in 0..MAX_DEPTH {
            if pid <= 0 {
                return None;
            }
            let k = key_of(pid)?;
            if let Some(c) = self.known(k) {
                return Some(c.clone());
            }
            pid = ppid_of(k.tgid)?;
        }
        None
    }

    /// Change the credentials of thread `tid` with `f` (starting from [`Table::get`]).
    pub fn update<T>(
        &mut self,
        tid: i32,
        f: impl FnOnce(&mut Creds) -> Result<T, nix::errno::Errno>,
    ) -> Result<T, nix::errno::Errno> {
        let key = key_of(tid).ok_or(nix::errno::Errno::ESRCH)?;
        let mut c = self.get(tid).unwrap_or_default();
        let r = f(&mut c)?;
        if self.map.len() >= MAX_ENTRIES {
            self.map
                .retain(|pid, (start, _)| key_of(*pid).map(|k| k.start) == Some(*start));
        }
        self.map.insert(key.tgid, (key.start, c));
        Ok(r)
    }

    fn known(&self, key: Key) -> Option<&Creds> {
        match self.map.get(&key.tgid) {
            Some((start, c)) if *start == key.start => Some(c),
            _ => None,
        }
    }
}

fn read_proc(path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_STATUS)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// The status field `name` (e.g. `Tgid:`) of task `tid`.
fn status_field(tid: i32, name: &str) -> Option<i32> {
    let s = read_proc(&format!("/proc/{tid}/status"))?;
    parse_status_field(&s, name)
}

fn parse_status_field(s: &str, name: &str) -> Option<i32> {
    s.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

fn ppid_of(pid: i32) -> Option<i32> {
    status_field(pid, "PPid:")
}

fn key_of(tid: i32) -> Option<Key> {
    let tgid = status_field(tid, "Tgid:")?;
    let stat = read_proc(&format!("/proc/{tgid}/stat"))?;
    Some(Key {
        tgid,
        start: parse_start_time(&stat)?,
    })
}

/// Field 22 of a stat line (after the command name in parentheses, which may hold
/// spaces and parentheses itself).
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        let status = "Name:\tsh\nTgid:\t42\nPid:\t43\nPPid:\t7\n";
        assert_eq!(parse_status_field(status, "Tgid:"), Some(42));
        assert_eq!(parse_status_field(status, "PPid:"), Some(7));
        let stat = "42 (a) b) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(parse_start_time(stat), Some(12345));
    }

    #[test]
    fn children_inherit_and_own_changes_stay_their_own() {
        let me = std::process::id() as i32;
        let mut t = Table::default();
        assert!(t.is_empty() && t.get(me).is_none());
        t.update(me, |c| c.set_res(crate::creds::Which::Uid, [7, 7, 7]))
            .unwrap();
        assert_eq!(t.get(me).map(|c| c.uid), Some([7; 3]));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert_eq!(t.get(pid).map(|c| c.uid), Some([7; 3]));
        t.update(pid, |c| c.set_one(crate::creds::Which::Uid, 7))
            .unwrap();
        assert_eq!(t.get(me).map(|c| c.uid), Some([7; 3]));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
