//! Is a recorded process still the one we started? A pid alone cannot say (pids are
//! reused, and a reboot reuses all of them), so a [`ProcRef`] is a pid with the start
//! time the kernel gives it in `/proc/PID/stat` (clock ticks since boot); the process is
//! ours while both match (`imago_sandbox::proc` reads it). Also signals to such a
//! process, and where live state (attach sockets) goes: [`runtime_dir`].
//! Never: reaps, waits, or writes records.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::record::{io, ContainerId, RecordError};

/// A process as recorded: its pid and its start time (ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    /// The pid, in the pid namespace of whoever recorded it (the host's for imago).
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat`.
    pub start_time: u64,
}

impl ProcRef {
    /// The running process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<ProcRef> {
        Some(ProcRef {
            pid,
            start_time: imago_sandbox::proc::start_time(pid)?,
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

/// The live state of one container: `<runtime dir>/<id>` (its attach socket). Not
/// created here.
pub fn live_dir(id: &ContainerId) -> Result<PathBuf, RecordError> {
    Ok(runtime_dir()?.join(id.as_str()))
}

/// One rule: `$XDG_RUNTIME_DIR/imago` when set and usable, else `run/` in the node-local
/// dir (`imago_store::local`: `$IMAGO_LOCAL_DIR`, the config, `$TMPDIR/imago-<uid>`,
/// `/var/tmp/imago-<uid>`; private, checked), made 0700. Needs no XDG_RUNTIME_DIR (HPC
/// nodes have none).
pub fn runtime_dir() -> Result<PathBuf, RecordError> {
    use std::os::unix::fs::DirBuilderExt;
    let private = |p: &PathBuf| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)
    };
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        let p = PathBuf::from(x).join("imago");
        if private(&p).is_ok() {
            return Ok(p);
        }
    }
    let p = imago_store::local::node_local_dir()?.run();
    private(&p).map_err(io("create directory", &p))?;
    Ok(p)
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
