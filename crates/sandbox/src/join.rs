//! Running a command in a running container (`ictr exec`): the caller's side. Given the
//! host pid of the container's pid 1 and the process to run (the container's caps
//! policy, seccomp, no_new_privs, env and user, with the caller's `-e`, `-w`, `-u`),
//! [`run`] checks the pid ([`target`]), forks J1, which joins the container's
//! namespaces and forks J2 inside its pid namespace (join/enter.rs), then waits for J2 as
//! its subreaper: forwarding signals, or relaying the pty with `-t` (tty.rs), or not at
//! all with `detach`.
//!
//! Processes: **caller** (single-threaded, signals of `wait.rs`'s set blocked, child
//! subreaper) → fork **J1** (joins user, mnt, pid, ipc, uts, net, cgroup; exits once J2
//! is forked) → fork **J2** (pid N in the container; reparented to the caller when J1
//! exits; its orphans go to the container's init) → execve the command.
//! Channels: J1 writes J2's host pid on a pipe; J1 and J2 report a failure before exec
//! as `Failed(RemoteError)` on a seqpacket channel (channel.rs), J2 passes the pty master
//! on it (`Pty`/`PtyReady`, as the container's pid 1 does); exec closes it, which is
//! the caller's sign that the command runs.
//! Owns: that sequence and the exit code. Never: reads container records (the runtime
//! does), decides the process's settings, prints.

mod enter;
pub mod target;

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::{ForkResult, Pid};

use crate::channel::{self, ChannelError, Msg};
use crate::child::RemoteError;
use crate::spec::ProcessSpec;
use crate::sys;
use crate::tty::TtyError;
use crate::wait::{forwarded_signals, reap, wait_forwarding};

pub use enter::EnterError;
pub use target::{Target, TargetError};

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// The host pid of the container's pid 1.
    pub pid: i32,
    /// Its start time as recorded with the container (field 22 of `/proc/PID/stat`), to
    /// tell it from a later process with the same pid; `None` skips that check (the
    /// others remain).
    pub start_time: Option<u64>,
    /// The process: argv, the complete env, the working dir (`""` is `/`), the user
    /// (resolved in the container's /etc/passwd), `terminal` (`-t`), `stdin` (`-i`),
    /// caps, seccomp, no_new_privs.
    pub process: ProcessSpec,
    /// Start the command and return at once (`-d`): its stdio is the container's
    /// /dev/null, it runs in a session of its own, nobody waits for it.
    pub detach: bool,
    /// The caller's program name (`ictr`): a failed exec of the command says
    /// `PROGRAM: …` on the command's stderr.
    pub program: String,
}

/// Failures of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The pid is not a running container's pid 1.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The forwarded signals could not be blocked.
    #[error("block the forwarded signals (sigprocmask)")]
    BlockSignals(#[source] Errno),
    /// PR_SET_CHILD_SUBREAPER failed.
    #[error("become the subreaper of the process in the container (prctl)")]
    Subreaper(#[source] Errno),
    /// The channel could not be made.
    #[error("create the channel to the process in the container (socketpair)")]
    Socketpair(#[source] Errno),
    /// The pid pipe could not be made.
    #[error("create the pipe for the process's pid")]
    Pipe(#[source] Errno),
    /// The first fork failed.
    #[error("fork the process that joins the container")]
    Fork(#[source] Errno),
    /// Joining or the start failed before exec (its chain is the source).
    #[error("start the process in the container")]
    Start {
        /// The exit status: 127 not found, 126 cannot execute, 125 otherwise.
        code: i32,
        /// What failed, inside.
        #[source]
        source: RemoteError,
    },
    /// A process ended before it said why.
    #[error("the process joining the container ended before the command started ({0})")]
    Died(String),
    /// A message could not be received.
    #[error("receive from the process in the container")]
    Receive(#[source] ChannelError),
    /// `Pty` came without an fd.
    #[error("the process in the container passed no pty master")]
    NoPtyFd,
    /// The answer to `Pty` could not be sent.
    #[error("tell the process in the container its pty is ready")]
    SendPtyReady(#[source] ChannelError),
    /// The relay failed.
    #[error("relay the terminal")]
    Tty(#[source] TtyError),
}

impl JoinError {
    /// The exit status for this failure: the command's start codes pass through.
    pub fn code(&self) -> i32 {
        match self {
            JoinError::Start { code, .. } => *code,
            _ => 125,
        }
    }

    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            JoinError::Target(TargetError::Proc {
                errno: Errno::EACCES | Errno::EPERM,
                ..
            }) => Some("only the user who started a container can run commands in it".into()),
            _ => None,
        }
    }
}

/// The forwarded signals blocked until dropped (the previous mask restored).
struct Blocked {
    set: SigSet,
    old: SigSet,
}

impl Blocked {
    fn new() -> Result<Blocked, JoinError> {
        let set = forwarded_signals();
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(JoinError::BlockSignals)?;
        Ok(Blocked { set, old })
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // Ignoring the result: sigprocmask fails only for an invalid `how`.
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Run `spec.process` in the container whose pid 1 is `spec.pid` and return the exit
/// code: the command's status (128+N when killed by signal N), 0 at once with
/// `detach`. Call while single-threaded (J1 must be, to join a user namespace). Makes
/// the caller a child subreaper for good (J2 must become its child).
pub fn run(spec: &JoinSpec) -> Result<i32, JoinError> {
    let target = Target::open(spec.pid, spec.start_time)?;
    let blocked = Blocked::new()?;
    nix::sys::prctl::set_child_subreaper(true).map_err(JoinError::Subreaper)?;
    let (chan, chan_child) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(JoinError::Socketpair)?;
    let (pid_in, pid_out) = sys::pipe().map_err(JoinError::Pipe)?;
    let j1 = match sys::fork().map_err(JoinError::Fork)? {
        ForkResult::Child => {
            drop(chan);
            drop(pid_in);
            enter::first(
                &spec.program,
                &target,
                &spec.process,
                spec.detach,
                chan_child,
                pid_out,
            )
        }
        ForkResult::Parent { child } => child,
    };
    drop((chan_child, pid_out, target));
    let j2 = read_pid(&pid_in);
    let j1_code = reap(j1);
    let master = match started(&chan, j2, j1_code)? {
        Started::Exec(master) => master,
        Started::Gone => {
            return Err(JoinError::Died(format!("exit status {j1_code}")));
        }
    };
    drop(chan);
    let Some(j2) = j2 else {
        return Err(JoinError::Died(format!("exit status {j1_code}")));
    };
    if spec.detach {
        // J2 stays our child until we exit; then it is reparented like any orphan.
        return Ok(0);
    }
    match master {
        Some(m) => {
            crate::tty::relay(j2, m, spec.process.stdin, &blocked.set).map_err(JoinError::Tty)
        }
        None => Ok(wait_forwarding(j2, &blocked.set)),
    }
}

/// J2's host pid from the pipe (`None` when J1 failed before forking it).
fn read_pid(pipe: &OwnedFd) -> Option<Pid> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        match sys::read_some(pipe.as_fd(), &mut buf[got..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got += n,
        }
    }
    Some(Pid::from_raw(i32::from_ne_bytes(buf)))
}

/// How the start ended, as seen on the channel.
enum Started {
    /// The channel closed after the command's exec (or J2's end: waiting tells);
    /// with the pty master when `-t`.
    Exec(Option<OwnedFd>),
    /// The channel closed and there is no J2: J1 failed without a word.
    Gone,
}

/// Read the channel until it closes: `Failed` becomes [`JoinError::Start`] with J2's
/// exit status (J1's, `j1_code`, when there is no J2); `Pty` is answered once its size
/// is set.
fn started(chan: &OwnedFd, j2: Option<Pid>, j1_code: i32) -> Result<Started, JoinError> {
    let mut master = None;
    loop {
        match channel::recv(chan.as_fd()) {
            Ok(Some((Msg::Failed(source), _))) => {
                let code = j2.map(reap).unwrap_or(j1_code);
                return Err(JoinError::Start { code, source });
            }
            Ok(Some((Msg::Pty, fds))) => {
                let fd = fds.into_iter().next().ok_or(JoinError::NoPtyFd)?;
                crate::tty::copy_size(fd.as_fd());
                master = Some(fd);
                channel::send(chan.as_fd(), &Msg::PtyReady, &[])
                    .map_err(JoinError::SendPtyReady)?;
            }
            Ok(Some(_)) => continue,
            Ok(None) if j2.is_none() => return Ok(Started::Gone),
            Ok(None) => return Ok(Started::Exec(master)),
            Err(e) => return Err(JoinError::Receive(e)),
        }
    }
}
