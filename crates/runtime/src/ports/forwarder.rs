//! The port forwarder process of one container. [`Forwarder::start`] binds every host
//! port in the caller's network namespace, then forks a child that, while still
//! single-threaded (setns refuses threaded callers), joins the container's user
//! namespace and then its network namespace through `/proc/<pid1>/ns/{user,net}`, and
//! only then starts its threads: the host sockets opened before keep living in the
//! host's namespace, every socket made after lives in the container's, so a
//! connection accepted outside is relayed to the container's loopback (tcp.rs,
//! udp.rs). No root, no helper program, no port forwarded by pasta or slirp4netns.
//!
//! The child is named `irun-ports`, leaves the caller's session (a Ctrl-C at the
//! terminal is the container's business, not the forwarder's), blocks every signal but
//! SIGKILL, closes every fd it inherited but its sockets, dies with its parent
//! (PR_SET_PDEATHSIG) and is killed and reaped by [`Forwarder::stop`] (or drop) when
//! the container ends.
//! Owns: that process. Never: decides what to publish (spec.rs, the caller), prints.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::bind::{self, BindError, Bound, HostSocket};
use super::spec::PortSpec;

/// How long the child may take to join the namespaces and start its threads.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// The most the child reports about its start.
const MAX_REPORT: u64 = 4096;

/// Failures of starting the forwarder.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// A host port could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The container's namespace could not be opened.
    #[error("open the container's namespace `{path}`")]
    Namespace {
        /// `/proc/<pid>/ns/...`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A syscall of the start failed.
    #[error("start the port forwarder ({call})")]
    Start {
        /// pipe2, fork.
        call: &'static str,
        /// Why.
        #[source]
        source: Errno,
    },
    /// The child could not join the container's namespaces or start relaying.
    #[error("the port forwarder could not start: {0}")]
    Child(String),
}

/// A running forwarder (or none, with nothing published); dropping it stops it.
#[derive(Debug)]
pub struct Forwarder {
    child: Option<Pid>,
    published: Vec<PortSpec>,
    /// Per published port: its host port was chosen by the kernel (asked as 0).
    chosen: Vec<bool>,
}

impl Forwarder {
    /// Publish `specs` for the container whose pid 1 (in the caller's pid namespace) is
    /// `pid1`: bind the host ports, fork the forwarder, wait until it relays. No spec,
    /// no process. Call while single-threaded (it forks); the container's namespaces
    /// must exist (its id maps may still be being written).
    pub fn start(pid1: i32, specs: &[PortSpec]) -> Result<Forwarder, ForwardError> {
        if specs.is_empty() {
            return Ok(Forwarder {
                child: None,
                published: Vec::new(),
                chosen: Vec::new(),
            });
        }
        let bound = specs
            .iter()
            .map(bind::bind)
            .collect::<Result<Vec<Bound>, _>>()?;
        let published = bound.iter().map(|b| b.spec).collect();
        let ns = |what: &str| {
            let path = PathBuf::from(format!("/proc/{pid1}/ns/{what}"));
            File::open(&path).map_err(|source| ForwardError::Namespace { path, source })
        };
        let (userns, netns) = (ns("user")?, ns("net")?);
        let (ready_r, ready_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| ForwardError::Start {
                call: "pipe2",
                source,
            })?;
        let mut keep = vec![ready_w.as_raw_fd(), userns.as_raw_fd(), netns.as_raw_fd()];
        keep.extend(bound.iter().map(|b| b.socket.as_fd().as_raw_fd()));
        let parent = nix::unistd::getpid();
        // The closure owns the host sockets: the parent's copies close when it returns.
        let pid = imago_sandbox::proc::fork_child(&keep, move || {
            child_main(parent, bound, userns, netns, ready_w)
        })
        .map_err(|source| ForwardError::Start {
            call: "fork",
            source,
        })?;
        let fwd = Forwarder {
            child: Some(pid),
            published,
            chosen: specs.iter().map(|s| s.host_port == 0).collect(),
        };
        // On failure `fwd` is dropped: the child is killed and reaped.
        wait_ready(ready_r).map_err(ForwardError::Child)?;
        Ok(fwd)
    }

    /// What is published, with the host ports the kernel chose for port 0, in docker's
    /// form through `Display` (`0.0.0.0:8080->80/tcp`).
    pub fn published(&self) -> &[PortSpec] {
        &self.published
    }

    /// The published ports whose host port was left to irun (`-P`, `-p CTR`): the ones a
    /// user cannot know without being told.
    pub fn chosen(&self) -> Vec<PortSpec> {
        self.published
            .iter()
            .zip(&self.chosen)
            .filter(|(_, &c)| c)
            .map(|(p, _)| *p)
            .collect()
    }

    /// The forwarder's pid, if it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.map(Pid::as_raw)
    }

    /// Kill the forwarder and reap it (closing every published port).
    pub fn stop(mut self) {
        self.kill_and_reap();
    }

    fn kill_and_reap(&mut self) {
        if let Some(pid) = self.child.take() {
            // ESRCH: it already died (it is still ours to reap).
            let _ = kill(pid, Signal::SIGKILL);
            // Until reaped; ECHILD means someone reaped it already.
            while let Err(Errno::EINTR) = waitpid(pid, None) {}
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Wait for the child's `ok`, or its reason, or its end, within [`READY_WITHIN`].
fn wait_ready(ready: OwnedFd) -> Result<(), String> {
    let deadline = Instant::now() + READY_WITHIN;
    let mut said = Vec::new();
    let mut file = File::from(ready);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("not ready after {READY_WITHIN:?}"));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
        let mut chunk = [0u8; 512];
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if (said.len() as u64) < MAX_REPORT => said.extend_from_slice(&chunk[..n]),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
    }
    match String::from_utf8_lossy(&said).trim() {
        "ok" => Ok(()),
        "" => Err("it ended during its start".into()),
        why => Err(why.to_string()),
    }
}

/// The forwarder's life after the fork; returns only on a failed start.
fn child_main(parent: Pid, bound: Vec<Bound>, userns: File, netns: File, ready: OwnedFd) -> i32 {
    let mut ready = File::from(ready);
    match prepare(parent, userns, netns).and_then(|()| spawn_relays(bound)) {
        Ok(()) => {
            // The parent reads to EOF: ready's close (drop) ends its wait.
            if ready.write_all(b"ok").is_err() {
                return 1;
            }
            drop(ready);
            loop {
                std::thread::park();
            }
        }
        Err(why) => {
            // The parent reports what it read; a failed write leaves it "ended".
            let _ = ready.write_all(why.as_bytes());
            1
        }
    }
}

/// Detach from the caller's session and signals, then join the container.
fn prepare(parent: Pid, userns: File, netns: File) -> Result<(), String> {
    // Dies with irun; a parent gone before the prctl would not be noticed: check.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    if nix::unistd::getppid() != parent {
        return Err("irun ended".into());
    }
    // The name only helps `ps` readers; failing to set it changes nothing else.
    let _ = nix::sys::prctl::set_name(c"irun-ports");
    // Out of the terminal's process group: Ctrl-C goes to the container, not here.
    // Fails only for a group leader, which a fresh child is not.
    let _ = nix::unistd::setsid();
    // Signals stay pending forever (SIGKILL still ends us); no SIGPIPE on a write to a
    // closed socket: the write fails with EPIPE instead.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None)
        .map_err(|e| format!("sigprocmask: {e}"))?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("open /dev/null: {e}"))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| format!("dup2: {e}"))?;
    nix::unistd::dup2_stdout(&null).map_err(|e| format!("dup2: {e}"))?;
    nix::sched::setns(&userns, CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("join the container's user namespace: {e}"))?;
    nix::sched::setns(&netns, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("join the container's network namespace: {e}"))?;
    raise_fd_limit();
    Ok(())
}

/// Each relayed connection holds two sockets and two pipes: lift the soft fd limit to
/// the hard one (a failure leaves the default; relays then fall back to plain copies
/// and accepts wait for fds).
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// One thread per host socket.
fn spawn_relays(bound: Vec<Bound>) -> Result<(), String> {
    for b in bound {
        let port = b.spec.container_port;
        let name = b.spec.to_string();
        let spawned = std::thread::Builder::new()
            .stack_size(super::tcp::STACK)
            .spawn(move || match b.socket {
                HostSocket::Tcp(l) => super::tcp::serve(l, port),
                HostSocket::Udp(u) => super::udp::serve(u, port),
            });
        spawned.map_err(|e| format!("start the relay of {name}: {e}"))?;
    }
    Ok(())
}
