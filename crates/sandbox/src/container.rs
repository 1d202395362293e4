//! Starting a container and waiting for it: the parent side (id maps, handshake, signal
//! forwarding, the pty relay) and the container's pid 1 (root mount, the mount plan,
//! pivot_root, hostname, the process setup, the tiny init).
//! Owns: the clone into new user/mount/pid/uts/ipc namespaces, the control channel,
//! exit statuses, the order of the setup. Never: reads images or the store, decides the
//! mapping or the mounts (idmap.rs, mounts.rs), touches a container path except through
//! [`InRoot`] (before pivot_root) or from inside the pivoted root, prints anything except
//! the exec failure of the container process itself (on the container's stderr, like
//! docker's runtime).
//!
//! Processes:
//! - **irun** (the caller of [`run`], single-threaded: see the `clone_fork` contract)
//!   clones **C** with CLONE_NEWUSER|NEWNS|NEWPID|NEWUTS|NEWIPC; C is pid 1 of the new
//!   pid namespace. The network namespace is the host's unless the caller asks for
//!   `Network::None` or `Network::Private` (CLONE_NEWNET; with Private, irun starts the
//!   helper of net.rs once the maps are written and before `Go`, and reaps it at the end).
//! - irun writes C's maps, sends `Go`; C closes every fd it inherited but the channel,
//!   mounts the root, applies the mount plan with every container path resolved inside
//!   the root (inroot.rs), makes the working dir, reads the image's passwd and group
//!   (bounded), pivots and detaches the old root at once, and (with `-t`) opens a pty in the container's own devpts and passes the
//!   master back over the channel (SCM_RIGHTS), so `tty` inside prints `/dev/pts/0`.
//! - With init (default) C forks the command (pid 2), reaps every child, forwards every
//!   signal to the command and exits with its status (128+N when killed by N). With
//!   `--no-init`, C execs the command itself.
//! - Without `-t`, the command's fds 0/1/2 are irun's own (no relay, nothing buffered);
//!   without `-i`, fd 0 is the container's /dev/null.
//!
//! Control channel: a SOCK_SEQPACKET socketpair (close-on-exec), one JSON [`Msg`] per
//! message, sent in frames of 32 KiB (a header byte: more / last) so that a spec of any
//! size up to [`MAX_MESSAGE`] (64 MiB) passes; one seqpacket message is limited by the
//! socket buffer. A setup failure in C comes back as `Failed(RemoteError)` with its chain.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::child::RemoteError;
use crate::idmap::{IdMap, IdMapError, MapKind, MapWrite};
use crate::inroot::{InRoot, InRootError, Resolver};
use crate::mounts;
use crate::spec::{CapsPolicy, ContainerSpec, Network, ProcessSpec, RootMount};
use crate::sys;
use crate::user::{self, Ids};

/// Messages on the control channel.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// irun → C: the maps are written; here is what to be.
    Go(Box<ContainerSpec>, Network),
    /// C → irun: setup failed.
    Failed(RemoteError),
    /// C → irun: the pty master is attached to this message.
    Pty,
    /// irun → C: the pty size is set.
    PtyReady,
    /// C → irun: the command is starting.
    Running,
}

/// Failures of starting or waiting for a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The control channel could not be made or used.
    #[error("control channel to the container ({what})")]
    Channel {
        /// Which step.
        what: &'static str,
        /// Why.
        #[source]
        errno: Errno,
    },
    /// clone with new namespaces failed.
    #[error("create the container's namespaces (clone user, mount, pid, uts, ipc)")]
    Clone(#[source] Errno),
    /// The id maps could not be written.
    #[error("write the container's id maps")]
    IdMap(#[source] IdMapError),
    /// The container's setup failed inside (its chain is the source).
    #[error("set up the container")]
    Setup(#[source] RemoteError),
    /// The container ended before it said it was running.
    #[error("the container ended during setup ({0})")]
    Died(String),
    /// The private network's helper (pasta/slirp4netns) failed.
    #[error("set up the private network")]
    Net(#[source] crate::net::NetError),
    /// The spec does not fit on the control channel.
    #[error("the container spec is {bytes} bytes, more than the limit of {limit} bytes (64 MiB): make the environment or the mount list smaller")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// [`MAX_MESSAGE`].
        limit: usize,
    },
    /// The terminal could not be handled.
    #[error("terminal ({what})")]
    Tty {
        /// Which step.
        what: &'static str,
        /// Why.
        #[source]
        errno: Errno,
    },
}

impl ContainerError {
    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            ContainerError::Clone(_) => {
                Some("user namespaces may be disabled: run `iimage info`".into())
            }
            ContainerError::IdMap(e) => e.hint(),
            ContainerError::Setup(e) if e.chain().iter().any(|m| m.contains("overlay")) => Some(
                "kernel overlayfs in a user namespace needs Linux 5.11+ and a local upper dir; \
                 `iimage info` shows what this host allows"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Errors inside the container's pid 1 during setup (sent back as a RemoteError chain).
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("mount the root file system on `{dst}` ({what})")]
    Root {
        dst: PathBuf,
        what: String,
        #[source]
        errno: Errno,
    },
    #[error("pivot_root into `{0}`")]
    Pivot(PathBuf, #[source] Errno),
    #[error("container mounts")]
    Mounts(#[source] mounts::MountError),
    #[error("detach the old root")]
    Detach(#[source] Errno),
    #[error("set the hostname to `{0}`")]
    Hostname(String, #[source] Errno),
    #[error("create the working directory `{0}`")]
    Workdir(String, #[source] InRootError),
    #[error("read the container's `{0}`")]
    EtcFile(&'static str, #[source] InRootError),
    #[error("open the container root `{0}`")]
    OpenRoot(PathBuf, #[source] Errno),
    #[error("resolve the user `{spec}`")]
    User {
        spec: String,
        #[source]
        source: user::UserError,
    },
    #[error("user {what} {id} is not mapped in this container: the single-id mapping only has root (add a subuid/subgid range for your user, or run as root)")]
    Unmapped { what: &'static str, id: u32 },
    #[error("open a pty in the container")]
    Pty(#[source] Errno),
    #[error("remount / read-only")]
    ReadOnly(#[source] mounts::MountError),
    #[error("create short links for the overlay")]
    Links(#[source] std::io::Error),
}

/// Run the container described by `spec` in the foreground and return the exit code
/// irun should exit with: the command's status, 128+N when it was killed by signal N.
/// Call only while single-threaded (the clone does not run atfork handlers).
/// Same as `prepare(&spec.id_map)?.start(spec)`.
pub fn run(spec: &ContainerSpec) -> Result<i32, ContainerError> {
    prepare(&spec.id_map)?.start(spec)
}

/// A container's pid 1, cloned into its namespaces and waiting for its spec, with its id
/// maps being written (newuidmap/newgidmap run meanwhile). Made early by [`prepare`] so
/// the helpers' few milliseconds overlap the caller's own work (image lookup, dirs).
/// Dropping it without [`Pending::start`] kills the waiting child.
#[must_use = "dropping a Pending kills the waiting container"]
pub struct Pending {
    pid: Pid,
    chan: Option<OwnedFd>,
    maps: Option<MapWrite>,
    forwarded: SigSet,
    old_mask: SigSet,
    started: bool,
    network: Network,
    net: Option<crate::net::Helper>,
}

/// Clone the container's pid 1 (new user, mount, pid, uts and ipc namespaces; the host's
/// network) and start writing `map`. Blocks the forwarded signals until the container
/// ends (or the Pending is dropped). Single-threaded callers only.
pub fn prepare(map: &IdMap) -> Result<Pending, ContainerError> {
    prepare_with(map, Network::Host)
}

/// [`prepare`] with a choice of network: [`Network::None`] adds a new network namespace
/// whose `lo` the container brings up.
pub fn prepare_with(map: &IdMap, network: Network) -> Result<Pending, ContainerError> {
    let forwarded = forwarded_signals();
    let mut old_mask = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), Some(&mut old_mask))
        .map_err(|errno| ContainerError::Channel {
            what: "block signals",
            errno,
        })?;
    let restore = |old: &SigSet| {
        // Ignoring a failure to restore the mask: irun exits right after.
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
    };
    let (chan_p, chan_c) = match socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    ) {
        Ok(p) => p,
        Err(errno) => {
            restore(&old_mask);
            return Err(ContainerError::Channel {
                what: "socketpair",
                errno,
            });
        }
    };
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC;
    if network != Network::Host {
        flags |= libc::CLONE_NEWNET;
    }
    let pid = match sys::clone_fork(flags) {
        Ok(None) => {
            drop(chan_p);
            let code = container_main(chan_c);
            sys::exit_now(code)
        }
        Ok(Some(pid)) => pid,
        Err(e) => {
            restore(&old_mask);
            return Err(ContainerError::Clone(e));
        }
    };
    drop(chan_c);
    let mut pending = Pending {
        pid,
        chan: Some(chan_p),
        maps: None,
        forwarded,
        old_mask,
        started: false,
        network,
        net: None,
    };
    pending.maps = Some(
        map.start_write(pid.as_raw())
            .map_err(ContainerError::IdMap)?,
    );
    Ok(pending)
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.started {
            let _ = kill(self.pid, Signal::SIGKILL); // it waits for Go: nothing to undo
            if let Some(m) = self.maps.take() {
                let _ = m.finish(); // reap the helpers; their result no longer matters
            }
            reap(self.pid);
        }
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}

impl Pending {
    /// The container's pid 1 (in irun's pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Finish the id maps, hand `spec` to the container and run it in the foreground;
    /// returns irun's exit code (see [`run`]). `spec.id_map` must be the map given to
    /// [`prepare`].
    pub fn start(mut self, spec: &ContainerSpec) -> Result<i32, ContainerError> {
        if let Some(m) = self.maps.take() {
            m.finish().map_err(ContainerError::IdMap)?;
        }
        if self.network == Network::Private {
            // Before Go: the container starts with its network configured. Dropped (killed
            // and reaped) with self, after the container ended.
            self.net = Some(crate::net::start(self.pid.as_raw()).map_err(ContainerError::Net)?);
        }
        let chan_p = self.chan.take().ok_or(ContainerError::Channel {
            what: "reuse",
            errno: Errno::EBADF,
        })?;
        let go = encode(&Msg::Go(Box::new(spec.clone()), self.network))?;
        send_bytes(chan_p.as_fd(), &go, None).map_err(|errno| ContainerError::Channel {
            what: "send the spec",
            errno,
        })?;
        self.started = true;
        let pid = self.pid;
        let forwarded = &self.forwarded;
        let mut master: Option<OwnedFd> = None;
        loop {
            match recv(chan_p.as_fd()) {
                Ok(Some((Msg::Failed(e), _))) => {
                    reap(pid);
                    return Err(ContainerError::Setup(e));
                }
                Ok(Some((Msg::Pty, fd))) => {
                    let fd = fd.ok_or(ContainerError::Tty {
                        what: "no pty fd received",
                        errno: Errno::EBADMSG,
                    })?;
                    if let Ok(ws) = sys::get_winsize(std::io::stdin().as_fd()) {
                        let _ = sys::set_winsize(fd.as_fd(), &ws); // best effort: a default 0x0 size
                    }
                    master = Some(fd);
                    send(chan_p.as_fd(), &Msg::PtyReady, None).map_err(|errno| {
                        ContainerError::Channel {
                            what: "send pty-ready",
                            errno,
                        }
                    })?;
                }
                Ok(Some((Msg::Running, _))) | Ok(None) => break,
                Ok(Some((_, _))) => continue,
                Err(errno) => {
                    let _ = kill(pid, Signal::SIGKILL);
                    reap(pid);
                    return Err(ContainerError::Channel {
                        what: "receive",
                        errno,
                    });
                }
            }
        }
        drop(chan_p);
        match master {
            Some(m) => crate::tty::relay(pid, m, spec.process.stdin, forwarded),
            None => Ok(wait_forwarding(pid, forwarded)),
        }
    }
}

fn forwarded_signals() -> SigSet {
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

/// Wait for `pid`, forwarding every other signal in `set` to it.
fn wait_forwarding(pid: Pid, set: &SigSet) -> i32 {
    loop {
        if let Some(code) = try_reap(pid) {
            return code;
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => continue,
            Ok(Signal::SIGWINCH) => continue,
            Ok(sig) => {
                let _ = kill(pid, sig); // it may have just exited; the next loop reaps it
            }
            Err(_) => continue,
        }
    }
}

/// Reap `pid` if it ended: its exit code (128+N for a signal).
pub(crate) fn try_reap(pid: Pid) -> Option<i32> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, c)) => Some(c),
        Ok(WaitStatus::Signaled(_, s, _)) => Some(128 + s as i32),
        Ok(_) => None,
        Err(Errno::EINTR) => None,
        Err(_) => Some(125),
    }
}

fn reap(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Err(Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 125,
        }
    }
}

/// Largest message on the control channel (a spec with a huge environment); the kernel's
/// own limit on one seqpacket message is the socket buffer (~200 KiB), so messages go
/// in frames.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Payload bytes per frame, well below the default socket buffer.
const FRAME: usize = 32 << 10;

/// Frame header byte: more frames of this message follow / this is the last.
const MORE: u8 = 0;
const LAST: u8 = 1;

fn encode(msg: &Msg) -> Result<Vec<u8>, ContainerError> {
    let bytes = serde_json::to_vec(msg).map_err(|_| ContainerError::Channel {
        what: "encode a message",
        errno: Errno::EINVAL,
    })?;
    if bytes.len() > MAX_MESSAGE {
        return Err(ContainerError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_MESSAGE,
        });
    }
    Ok(bytes)
}

fn send(fd: BorrowedFd<'_>, msg: &Msg, pass: Option<RawFd>) -> Result<(), Errno> {
    let bytes = serde_json::to_vec(msg).map_err(|_| Errno::EINVAL)?;
    send_bytes(fd, &bytes, pass)
}

/// Send one message as frames of at most [`FRAME`] bytes, each a header byte and a
/// chunk; `pass` travels with the first frame.
fn send_bytes(fd: BorrowedFd<'_>, bytes: &[u8], pass: Option<RawFd>) -> Result<(), Errno> {
    if bytes.len() > MAX_MESSAGE {
        return Err(Errno::EMSGSIZE);
    }
    let fds;
    let mut cmsg: Vec<ControlMessage<'_>> = match pass {
        Some(f) => {
            fds = [f];
            vec![ControlMessage::ScmRights(&fds)]
        }
        None => vec![],
    };
    let mut chunks = bytes.chunks(FRAME).peekable();
    if chunks.peek().is_none() {
        return Err(Errno::EINVAL);
    }
    while let Some(chunk) = chunks.next() {
        let head = [if chunks.peek().is_some() { MORE } else { LAST }];
        let iov = [IoSlice::new(&head), IoSlice::new(chunk)];
        loop {
            match sendmsg::<()>(fd.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
                Err(Errno::EINTR) => continue,
                r => {
                    r?;
                    break;
                }
            }
        }
        cmsg.clear();
    }
    Ok(())
}

fn recv(fd: BorrowedFd<'_>) -> Result<Option<(Msg, Option<OwnedFd>)>, Errno> {
    let mut msg = Vec::new();
    let mut got = None;
    let mut frame = vec![0u8; FRAME + 1];
    let mut cbuf = nix::cmsg_space!([RawFd; 1]);
    loop {
        let (n, truncated) = loop {
            let mut iov = [IoSliceMut::new(&mut frame)];
            match recvmsg::<()>(
                fd.as_raw_fd(),
                &mut iov,
                Some(&mut cbuf),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(m) => {
                    for c in m.cmsgs().map_err(|_| Errno::EBADMSG)? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for &f in &fds {
                                // Extra fds (none are sent) are closed on drop.
                                let owned = sys::own_received_fd(f);
                                if got.is_none() {
                                    got = Some(owned);
                                }
                            }
                        }
                    }
                    break (m.bytes, m.flags.contains(MsgFlags::MSG_TRUNC));
                }
            }
        };
        if n == 0 {
            return Ok(None); // the peer closed its end
        }
        if truncated || msg.len() + n - 1 > MAX_MESSAGE {
            return Err(Errno::EMSGSIZE);
        }
        msg.extend_from_slice(&frame[1..n]);
        if frame[0] == LAST {
            break;
        }
    }
    let msg = serde_json::from_slice(&msg).map_err(|_| Errno::EBADMSG)?;
    Ok(Some((msg, got)))
}

// ---------------------------------------------------------------------------------------
// Inside: the container's pid 1.

fn container_main(chan: OwnedFd) -> i32 {
    let spec = match recv(chan.as_fd()) {
        Ok(Some((Msg::Go(spec, network), _))) => (spec, network),
        _ => return 125, // irun failed to map us (or went away) and says so itself
    };
    let (spec, network) = (&*spec.0, spec.1);
    sys::close_inherited(chan.as_fd());
    if network != Network::Host {
        if let Err(e) = sys::set_loopback_up() {
            let msg = format!("bring up lo in the container's network namespace: {e}");
            let _ = send(
                chan.as_fd(),
                &Msg::Failed(RemoteError { msg, cause: None }),
                None,
            );
            return 125;
        }
    }
    // If irun dies (SIGKILL), so does the whole container: pid 1 going takes the pid
    // namespace with it.
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None);
    let cleanup = open_cleanup_dirs(&spec.cleanup);
    let ids = match setup(spec) {
        Ok(ids) => ids,
        Err(e) => {
            let _ = send(
                chan.as_fd(),
                &Msg::Failed(RemoteError::from_chain(&e)),
                None,
            );
            return 125;
        }
    };
    let slave = if spec.process.terminal {
        match open_pty(chan.as_fd()) {
            Ok(s) => Some(s),
            Err(e) => {
                let _ = send(
                    chan.as_fd(),
                    &Msg::Failed(RemoteError::from_chain(&e)),
                    None,
                );
                return 125;
            }
        }
    } else {
        None
    };
    if !spec.init {
        let _ = send(chan.as_fd(), &Msg::Running, None);
        exec_process(&spec.process, &ids, &spec.id_map, slave)
    }
    let child = match sys::fork() {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(chan);
            drop(cleanup);
            exec_process(&spec.process, &ids, &spec.id_map, slave)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => {
            let _ = send(
                chan.as_fd(),
                &Msg::Failed(RemoteError {
                    msg: format!("fork the container process: {e}"),
                    cause: None,
                }),
                None,
            );
            return 125;
        }
    };
    drop(slave);
    let _ = send(chan.as_fd(), &Msg::Running, None);
    drop(chan);
    let code = crate::init::supervise(child, &all);
    for fd in cleanup {
        crate::init::remove_contents(fd.as_fd());
    }
    code
}

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

/// Root mount, pivot, mount plan, hostname, workdir, user: everything that may fail
/// with an imago error (exit 125) rather than a command error.
fn setup(spec: &ContainerSpec) -> Result<Ids, SetupError> {
    use nix::mount::{mount, MsFlags};
    let _ = sys::make_mounts_private(); // best effort; our namespace is new anyway
    let root = &spec.rootfs;
    match &spec.root {
        RootMount::Overlay { cwd, data, links } => {
            for (link, target) in links {
                if let Some(p) = link.parent() {
                    std::fs::create_dir_all(p).map_err(SetupError::Links)?;
                }
                let _ = std::fs::remove_file(link);
                std::os::unix::fs::symlink(target, link).map_err(SetupError::Links)?;
            }
            if let Some(c) = cwd {
                nix::unistd::chdir(c.as_path()).map_err(|errno| SetupError::Root {
                    dst: root.clone(),
                    what: format!("chdir {}", c.display()),
                    errno,
                })?;
            }
            mount(
                Some("overlay"),
                root.as_path(),
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(|errno| SetupError::Root {
                dst: root.clone(),
                what: format!("overlay {data}"),
                errno,
            })?;
        }
        RootMount::Bind(dir) => {
            mount(
                Some(dir.as_path()),
                root.as_path(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|errno| SetupError::Root {
                dst: root.clone(),
                what: format!("bind {}", dir.display()),
                errno,
            })?;
        }
    }
    // Everything below resolves container paths from this fd, inside the root (inroot.rs):
    // the image's symlinks cannot reach the host. It must be opened after the root
    // mount, to hold the mount and not the empty dir beneath.
    let root_fd = rustix::fs::open(
        root.as_path(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| SetupError::OpenRoot(root.clone(), Errno::from_raw(e.raw_os_error())))?;
    let in_root = InRoot::new(root_fd.as_fd(), Resolver::detect());
    // The plan before pivot_root: the host's /proc (needed to mount a fresh procfs in a
    // user namespace, and for /proc/self/fd/N) and host sources are still in view, and
    // no image path is ever reached by an ordinary path call.
    mounts::apply(&mounts::plan(spec), &in_root).map_err(SetupError::Mounts)?;
    let cwd = if spec.process.cwd.is_empty() {
        "/"
    } else {
        spec.process.cwd.as_str()
    };
    in_root
        .mkdir_all(Path::new(cwd))
        .map_err(|e| SetupError::Workdir(cwd.into(), e))?;
    let ids = resolve_ids(spec, &in_root)?;
    pivot(root_fd, root)?;
    nix::unistd::sethostname(&spec.hostname)
        .map_err(|e| SetupError::Hostname(spec.hostname.clone(), e))?;
    if spec.readonly_root {
        mounts::remount_ro(Path::new("/")).map_err(SetupError::ReadOnly)?;
    }
    Ok(ids)
}

/// pivot_root(".", ".") (runc's way): the old root ends up stacked on the new one and is
/// detached at once, so no directory is made in the image and nothing of the host stays
/// reachable after this returns.
fn pivot(new_root: OwnedFd, root: &Path) -> Result<(), SetupError> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let err = |e| SetupError::Pivot(root.to_path_buf(), e);
    let old_root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(err)?;
    nix::unistd::fchdir(&new_root).map_err(err)?;
    nix::unistd::pivot_root(".", ".").map_err(err)?;
    drop(new_root);
    // After pivot_root the kernel gives no guarantee what "." is; go to the old root
    // explicitly (it is on top of the stack at "/").
    nix::unistd::fchdir(&old_root).map_err(err)?;
    drop(old_root);
    // Private first, so the detach does not propagate to the host's peers.
    let _ = mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    );
    umount2(".", MntFlags::MNT_DETACH).map_err(SetupError::Detach)?;
    nix::unistd::chdir("/").map_err(err)
}

/// Image files read during setup are bounded: a passwd of more is refused.
const MAX_ETC_FILE: u64 = 16 << 20;

fn resolve_ids(spec: &ContainerSpec, in_root: &InRoot<'_>) -> Result<Ids, SetupError> {
    let read = |p: &'static str| -> Result<String, SetupError> {
        let bytes = in_root
            .read_file(Path::new(p), MAX_ETC_FILE)
            .map_err(|e| SetupError::EtcFile(p, e))?;
        Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    let ids =
        user::resolve(&spec.process.user, &passwd, &group).map_err(|source| SetupError::User {
            spec: spec.process.user.clone(),
            source,
        })?;
    if spec.id_map.kind == MapKind::Single {
        if ids.uid != 0 {
            return Err(SetupError::Unmapped {
                what: "uid",
                id: ids.uid,
            });
        }
        if ids.gid != 0 {
            return Err(SetupError::Unmapped {
                what: "gid",
                id: ids.gid,
            });
        }
    }
    Ok(ids)
}

fn open_pty(chan: BorrowedFd<'_>) -> Result<OwnedFd, SetupError> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(SetupError::Pty)?;
    nix::pty::grantpt(&master).map_err(SetupError::Pty)?;
    nix::pty::unlockpt(&master).map_err(SetupError::Pty)?;
    let name = nix::pty::ptsname_r(&master).map_err(SetupError::Pty)?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(SetupError::Pty)?;
    send(chan, &Msg::Pty, Some(master.as_raw_fd())).map_err(SetupError::Pty)?;
    match recv(chan) {
        Ok(Some((Msg::PtyReady, _))) => Ok(slave),
        Ok(_) => Err(SetupError::Pty(Errno::EPIPE)),
        Err(e) => Err(SetupError::Pty(e)),
    }
}

/// Become the container's process and exec it. Never returns: on failure prints
/// `irun: …` on the process's stderr and exits 127 (not found), 126 (cannot execute)
/// or 125 (setup).
fn exec_process(p: &ProcessSpec, ids: &Ids, map: &IdMap, slave: Option<OwnedFd>) -> ! {
    let fail = |code: i32, msg: String| -> ! {
        let _ = writeln!(std::io::stderr(), "irun: {msg}");
        sys::exit_now(code)
    };
    if let Some(s) = &slave {
        let _ = nix::unistd::setsid();
        if let Err(e) = sys::set_controlling_tty(s.as_fd()) {
            fail(125, format!("set the controlling terminal: {e}"));
        }
        for fd in 0..3 {
            if let Err(e) = dup_onto(s.as_fd(), fd) {
                fail(125, format!("attach the terminal: {e}"));
            }
        }
    } else if !p.stdin {
        match std::fs::File::open("/dev/null") {
            Ok(f) => {
                if let Err(e) = dup_onto(f.as_fd(), 0) {
                    fail(125, format!("redirect stdin from /dev/null: {e}"));
                }
            }
            Err(e) => fail(125, format!("open /dev/null: {e}")),
        }
    }
    drop(slave);
    let cwd = if p.cwd.is_empty() {
        "/"
    } else {
        p.cwd.as_str()
    };
    // In the root, like the setup: an image's WORKDIR of `/proc/self/fd/N` must not
    // lead to a directory some fd of ours still holds.
    if let Err(e) = chdir_in_root(cwd) {
        fail(125, format!("chdir to `{cwd}`: {e}"));
    }
    if let CapsPolicy::Bounded(keep) = &p.caps {
        if let Err(e) = crate::caps::bound(keep) {
            fail(125, format!("{e}"));
        }
    }
    if p.seccomp {
        // Under the single mapping the fakeroot variant (chown & co succeed, doing nothing).
        if let Err(e) = crate::seccomp::install(crate::seccomp::Filter::for_map(map.kind)) {
            fail(125, format!("install the seccomp filter: {e}"));
        }
    }
    if !map.setgroups_deny {
        let groups: Vec<nix::unistd::Gid> = ids
            .groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        if let Err(e) = nix::unistd::setgroups(&groups) {
            fail(
                125,
                format!("set supplementary groups {:?}: {e}", ids.groups),
            );
        }
    }
    let gid = nix::unistd::Gid::from_raw(ids.gid);
    let uid = nix::unistd::Uid::from_raw(ids.uid);
    if let Err(e) = nix::unistd::setresgid(gid, gid, gid) {
        fail(125, format!("set gid {}: {e}", ids.gid));
    }
    if let Err(e) = nix::unistd::setresuid(uid, uid, uid) {
        fail(125, format!("set uid {}: {e}", ids.uid));
    }
    if let CapsPolicy::Bounded(keep) = &p.caps {
        if let Err(e) = crate::caps::set_process(keep, ids.uid == 0) {
            fail(125, format!("{e}"));
        }
    }
    if p.no_new_privs {
        if let Err(e) = sys::set_no_new_privs() {
            fail(125, format!("set no_new_privs: {e}"));
        }
    }
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", ids.home));
    }
    crate::init::reset_signals();
    // Nothing of irun's (the channel, --rm's dirs) may stay open while the image's PATH is
    // searched and execve resolves `prog`: close-on-exec acts only after that resolution.
    sys::close_from(3);
    let Some(arg0) = p.args.first() else {
        fail(125, "no command specified".into())
    };
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::DEFAULT_PATH)
        .to_string();
    let prog = match find_in_path(arg0, &path_var) {
        Some(p) => p,
        None => fail(
            127,
            format!("exec: \"{arg0}\": executable file not found in $PATH"),
        ),
    };
    let cstr = |s: &str| CString::new(s.as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = p.args.iter().map(|a| cstr(a)).collect();
    let envp: Vec<CString> = env.iter().map(|e| cstr(e)).collect();
    let e = nix::unistd::execve(&cstr(&prog), &argv, &envp)
        .err()
        .unwrap_or(Errno::EINVAL);
    match e {
        Errno::ENOENT => fail(127, format!("exec `{prog}`: no such file or directory")),
        e => fail(126, format!("exec `{prog}`: {e}")),
    }
}

fn chdir_in_root(cwd: &str) -> Result<(), String> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| e.to_string())?;
    let dir = InRoot::new(root.as_fd(), Resolver::detect())
        .open(Path::new(cwd))
        .map_err(|e| e.to_string())?;
    nix::unistd::fchdir(&dir).map_err(|e| e.to_string())
}

fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
    if fd.as_raw_fd() == target {
        return Ok(());
    }
    sys::dup_onto_stdio(fd, target)
}

/// docker's lookup: a name with `/` is used as is; else the first executable regular
/// file in PATH.
pub fn find_in_path(arg0: &str, path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if arg0.contains('/') {
        return Some(arg0.to_string());
    }
    if arg0.is_empty() {
        return None;
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/{arg0}"))
        .find(|c| {
            std::fs::metadata(c)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(len: usize) -> Msg {
        Msg::Failed(RemoteError {
            msg: "x".repeat(len),
            cause: None,
        })
    }

    #[test]
    fn messages_larger_than_a_socket_buffer_pass_in_frames() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        // 3 MiB: far above one seqpacket message (EMSGSIZE before frames)
        let sender = std::thread::spawn(move || {
            let bytes = encode(&failed(3 << 20)).unwrap();
            send_bytes(a.as_fd(), &bytes, None).unwrap();
            send(a.as_fd(), &Msg::Running, None).unwrap();
        });
        match recv(b.as_fd()).unwrap() {
            Some((Msg::Failed(e), None)) => assert_eq!(e.msg.len(), 3 << 20),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            recv(b.as_fd()).unwrap(),
            Some((Msg::Running, None))
        ));
        sender.join().unwrap();
        assert!(
            recv(b.as_fd()).unwrap().is_none(),
            "closed after the sender ended"
        );
    }

    #[test]
    fn a_spec_over_the_limit_is_refused_naming_it() {
        let err = encode(&failed(MAX_MESSAGE + 1)).unwrap_err();
        assert!(matches!(
            err,
            ContainerError::TooLarge {
                limit: MAX_MESSAGE,
                ..
            }
        ));
        assert!(err.to_string().contains("64 MiB"), "{err}");
    }
}
