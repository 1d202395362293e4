//! Is a recorded process still the one we started? A pid alone cannot say (pids are
//! reused, and a reboot reuses all of them), so a [`ProcRef`] is a pid with the start
//! time the kernel gives it in `/proc/PID/stat` (clock ticks since boot); the process is
//! ours while both match. Also signals to such a process.
//! Never: reaps, waits, or writes records.

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// A process as recorded: its pid and its start time (ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    /// The pid, in the pid namespace of whoever recorded it (the host's for imago).
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat`.
    pub start_time: u64,
}

/// Field 22 (starttime) of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself: fields are counted after its
/// last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) … field 22 (starttime): index 19.
    after.split_whitespace().nth(19)?.parse().ok()
}

impl ProcRef {
    /// The running process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<ProcRef> {
        if pid <= 0 {
            return None;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // A zombie has ended: it only waits to be reaped.
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        if matches!(state, Some("Z") | Some("X")) {
            return None;
        }
        Some(ProcRef {
            pid,
            start_time: parse_start_time(&stat)?,
        })
    }

    /// This process itself.
    pub fn current() -> Option<ProcRef> {
        ProcRef::of(std::process::id() as i32)
    }

    /// Is the recorded process still running (same pid, same start time)?
    pub fn alive(&self) -> bool {
        ProcRef::of(self.pid).is_some_and(|p| p == *self)
    }

    /// Send `sig` if the process is still the recorded one. `Ok(false)`: it is gone.
    pub fn signal(&self, sig: Signal) -> Result<bool, Errno> {
        if !self.alive() {
            return Ok(false);
        }
        match kill(Pid::from_raw(self.pid), sig) {
            Ok(()) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A signal by docker's spellings: `KILL`, `SIGKILL`, `kill`, `9`.
pub fn parse_signal(s: &str) -> Option<Signal> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let up = t.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_start_time(line), Some(98765));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcRef::current().unwrap();
        assert!(me.alive());
        let other = ProcRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.alive());
        assert!(!ProcRef {
            pid: 0,
            start_time: 0
        }
        .alive());
    }

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("KILL"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("15"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("NOPE"), None);
    }
}
