//! Waiting for a process and turning its end into an exit code (the status, 128+N when
//! killed by signal N), and irun's signal forwarding while the container runs without a
//! terminal. The forwarded signals are blocked (container.rs) and read with sigwait: no
//! handler runs, nothing is lost while irun is busy.
//! Owns: the forwarded signal set, reaping, exit codes. Never: starts processes, touches
//! the terminal (tty.rs reads the same set from a signalfd).

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The exit code when waiting itself failed (imago's "failed" status).
const WAIT_FAILED: i32 = 125;

/// The signals irun forwards to the container (SIGCHLD and SIGWINCH are only read).
pub fn forwarded_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
        Signal::SIGWINCH,
        Signal::SIGCONT,
    ] {
        s.add(sig);
    }
    s
}

/// Wait for `pid`, forwarding every other signal in `set` (blocked) to it.
pub fn wait_forwarding(pid: Pid, set: &SigSet) -> i32 {
    loop {
        if let Some(code) = try_reap(pid) {
            return code;
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Ok(Signal::SIGWINCH) | Err(_) => continue,
            Ok(sig) => forward(pid, sig),
        }
    }
}

/// Send `sig` to `pid`, which may have just ended.
pub fn forward(pid: Pid, sig: Signal) {
    // ESRCH is the only expected failure (it ended): the caller's next reap sees that.
    let _ = kill(pid, sig);
}

/// The exit code of an ended process, `None` while it runs or stopped.
fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Reap `pid` if it ended: its exit code (128+N for a signal).
pub fn try_reap(pid: Pid) -> Option<i32> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(status) => exit_code(status),
        Err(Errno::EINTR) => None,
        Err(_) => Some(WAIT_FAILED),
    }
}

/// Wait until `pid` ended and reap it: its exit code.
pub fn reap(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(status) => {
                if let Some(c) = exit_code(status) {
                    return c;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return WAIT_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_exit_codes() {
        let p = Pid::from_raw(1);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }
}
