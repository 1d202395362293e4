//! The tiny init: the container's pid 1 while the command runs as pid 2. Reaps every
//! child (orphans are re-parented to pid 1), forwards every signal it receives to the
//! command, and returns the command's status (128+N when killed by N). Also the
//! in-namespace `--rm` cleanup and the signal reset before exec.
//! Never: mounts, prints, touches ids.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Wait for `child` while reaping everything and forwarding signals (all blocked in
/// `set`, read with sigwait: no handlers, nothing lost while we are busy).
pub fn supervise(child: Pid, set: &SigSet) -> i32 {
    loop {
        // Reap everything that ended; stop when the command did.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p == child => return c,
                Ok(WaitStatus::Signaled(p, s, _)) if p == child => return 128 + s as i32,
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(_) => break, // ECHILD: nothing left (cannot happen before `child` ends)
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => continue,
            Ok(sig) => {
                // Ignoring ESRCH: the command may have ended; the reap loop sees it.
                let _ = kill(child, sig);
            }
        }
    }
}

/// Default dispositions and an empty mask, as a freshly exec'd program expects (Rust
/// ignores SIGPIPE and we blocked everything; both survive exec otherwise).
pub fn reset_signals() {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // Ignoring errors: SIG_DFL is refused only for SIGKILL and SIGSTOP (skipped
        // above), and a disposition left over changes nothing we can repair here.
        let _ = crate::sys::set_default_disposition(sig);
    }
    // Ignoring the result: sigprocmask fails only for an invalid `how`.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Remove everything inside the directory `dir` (fd-relative, never following
/// symlinks, chmod-ing mode-000 dirs like overlay's `work/work` first). Best effort:
/// what is left is removed by the caller afterwards.
pub fn remove_contents(dir: BorrowedFd<'_>) {
    use nix::dir::Dir;
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    use nix::unistd::{unlinkat, UnlinkatFlags};
    let Ok(dup) = nix::unistd::dup(dir) else {
        return;
    };
    let Ok(mut d) = Dir::from_fd(dup) else { return };
    let names: Vec<std::ffi::CString> = d
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        if unlinkat(dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir).is_ok() {
            continue;
        }
        // A mode-000 dir (overlay's work/work) must be opened to be emptied; a failure
        // shows in the openat or rmdir below, and what stays is the caller's to remove.
        let _ = nix::sys::stat::fchmodat(
            dir,
            name.as_c_str(),
            Mode::from_bits_truncate(0o700),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        );
        if let Ok(sub) = nix::fcntl::openat(
            dir,
            name.as_c_str(),
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            use std::os::fd::AsFd;
            remove_contents(sub.as_fd());
        }
        // Best effort (see above): a dir that is still not empty is left to the caller.
        let _ = unlinkat(dir, name.as_c_str(), UnlinkatFlags::RemoveDir);
    }
}
