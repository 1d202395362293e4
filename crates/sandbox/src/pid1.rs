//! The container's pid 1 (C), from the clone to the command's status: wait for `Go` (or
//! `Early`, then mount what needs no id maps while irun's helpers write them, and wait
//! for `Mapped`)
//! (every fd inherited from irun but the channel is closed already; before it, with
//! `Join`, enter a shared user namespace and make the others there), bring `lo` up in a network
//! namespace of its own, die with irun (with `--pid host`: also be the command's
//! subreaper), block every signal, run the setup sequence (setup.rs), open the pty
//! (`-t`), then either exec the command itself (`--no-init`) or fork it as pid 2 and be
//! the tiny init (init.rs). A failure before the command starts goes back to irun as
//! `Failed(RemoteError)` with its whole chain, and C exits 125.
//! Owns: that order and what C says on the channel. Never: mounts or resolves paths
//! itself (setup.rs), execs (exec.rs).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::channel::{self, Msg};
use crate::child::RemoteError;
use crate::exec::{exec_process, CommandStdio};
use crate::spec::Network;
use crate::sys;
use crate::tty::TtyError;

/// Failures of pid 1 outside the setup sequence.
#[derive(Debug, thiserror::Error)]
enum Pid1Error {
    /// SIOCSIFFLAGS on `lo` failed.
    #[error("bring up lo in the container's network namespace")]
    Loopback(#[source] Errno),
    /// `-t`: the pty could not be made or passed.
    #[error("open a pty in the container")]
    Pty(#[source] TtyError),
    /// The user namespace to join could not be entered, or the namespaces of our own
    /// not made in it.
    #[error("join the user namespace `{0}` and make the container's namespaces in it")]
    Join(PathBuf, #[source] Errno),
    /// fork of the command (pid 2) failed.
    #[error("fork the container process")]
    Fork(#[source] Errno),
}

/// The program a failed exec of the command names on its stderr: a container's start
/// is irun's (also when ibuild's RUN or a detached container's monitor starts it).
const PROGRAM: &str = "irun";

/// Exit status of pid 1 when it failed before the command (irun reports why).
const FAILED: i32 = 125;

/// Tell irun why the start failed.
fn report(chan: BorrowedFd<'_>, err: &(dyn std::error::Error + 'static)) -> i32 {
    // Ignoring a send failure: irun then sees the channel close without `Running` and
    // reports the container's end itself.
    let _ = channel::send(chan, &Msg::Failed(RemoteError::from_chain(err)), &[]);
    FAILED
}

/// C's life after the clone (which closed every fd C inherited but `chan`); returns its
/// exit code.
pub fn container_main(chan: OwnedFd) -> i32 {
    let mut msg = channel::recv(chan.as_fd());
    if let Ok(Some((Msg::Join(ns, flags), _))) = &msg {
        if let Err(e) = sys::join_userns(ns, *flags) {
            return report(chan.as_fd(), &Pid1Error::Join(ns.clone(), e));
        }
        if channel::send(chan.as_fd(), &Msg::Joined, &[]).is_err() {
            return FAILED; // irun went away
        }
        msg = channel::recv(chan.as_fd());
    }
    let (spec, network, stdio, early) = match msg {
        Ok(Some((Msg::Go(spec, network, passed), fds))) => {
            (spec, network, CommandStdio::from_passed(passed, fds), false)
        }
        Ok(Some((Msg::Early(spec, network, passed), fds))) => {
            (spec, network, CommandStdio::from_passed(passed, fds), true)
        }
        _ => return FAILED, // irun failed to map us (or went away) and says so itself
    };
    let spec = &*spec;
    if network != Network::Host {
        if let Err(e) = sys::set_loopback_up() {
            return report(chan.as_fd(), &Pid1Error::Loopback(e));
        }
    }
    // If irun dies (SIGKILL), so does the whole container: pid 1 going takes the pid
    // namespace with it. Ignoring the result: PR_SET_PDEATHSIG fails only for an
    // invalid signal number.
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    if spec.sharing.pid {
        // No pid namespace of ours: be the reaper of the command's orphans, as pid 1
        // is. Ignoring the result: PR_SET_CHILD_SUBREAPER cannot fail for a value of 1.
        let _ = sys::set_child_subreaper();
    }
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    // Ignoring the result: sigprocmask fails only for an invalid `how`.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None);
    let cleanup = open_cleanup_dirs(&spec.cleanup);
    // `Early`: the mounts that need no id maps while irun's helpers write them.
    let before = match early {
        true => crate::setup::before_maps(spec),
        false => crate::setup::Before::default(),
    };
    if early && !matches!(channel::recv(chan.as_fd()), Ok(Some((Msg::Mapped, _)))) {
        return FAILED; // irun failed to map us (or went away) and says so itself
    }
    let ids = match crate::setup::after_maps(spec, before) {
        Ok(ids) => shared_ids(ids, &spec.sharing),
        Err(e) => return report(chan.as_fd(), &e),
    };
    let slave = if spec.process.terminal {
        match crate::tty::open_pty(chan.as_fd()) {
            Ok(s) => Some(s),
            Err(e) => return report(chan.as_fd(), &Pid1Error::Pty(e)),
        }
    } else {
        None
    };
    if !spec.init {
        say_running(chan.as_fd());
        exec_process(PROGRAM, &spec.process, &ids, &spec.id_map, slave, stdio)
    }
    let child = match sys::fork() {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(chan);
            drop(cleanup);
            exec_process(PROGRAM, &spec.process, &ids, &spec.id_map, slave, stdio)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => return report(chan.as_fd(), &Pid1Error::Fork(e)),
    };
    drop(slave);
    // The given stdout/stderr are the command's: pid 1 holds no copy of them.
    drop(stdio);
    say_running(chan.as_fd());
    drop(chan);
    let code = crate::init::supervise(child, &all);
    for fd in cleanup {
        crate::init::remove_contents(fd.as_fd());
    }
    code
}

/// Tell irun the command is starting.
fn say_running(chan: BorrowedFd<'_>) {
    // Ignoring a send failure: irun is gone then, and its death signal ends us.
    let _ = channel::send(chan, &Msg::Running, &[]);
}

/// `--rm`: the dirs to empty after the command ended, opened now (before the mounts
/// and pivot_root hide them). A dir that cannot be opened is left to irun.
fn open_cleanup_dirs(dirs: &[PathBuf]) -> Vec<OwnedFd> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    dirs.iter()
        .filter_map(|d| {
            open(
                d.as_path(),
                OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .ok()
        })
        .collect()
}

/// The ids of the image's user adjusted by what the container shares with its caller:
/// keep-id's inherited groups and its HOME when the image's passwd does not know the
/// user; without a pid namespace, the command dies with its parent.
fn shared_ids(mut ids: crate::user::Ids, sharing: &crate::spec::Sharing) -> crate::user::Ids {
    ids.keep_groups = sharing.keep_groups;
    ids.die_with_parent = sharing.pid;
    if let (false, Some(home)) = (ids.in_passwd, &sharing.home) {
        ids.home = home.clone();
    }
    ids
}
