//! Starting a container and waiting for it, irun's side: the clone of the container's
//! pid 1, its id maps, the private network's helper, the handshake, then waiting with
//! signals forwarded (wait.rs) or the pty relay (tty.rs).
//! Owns: the clone into new user/mount/pid/uts/ipc(/net) namespaces and [`Pending`].
//! Never: reads images or the store, decides the mapping or the mounts (idmap.rs,
//! mounts.rs), runs anything of the container's own sequence (pid1.rs, setup.rs,
//! exec.rs), prints anything.
//!
//! Processes:
//! - **irun** (the caller of [`run`], single-threaded: see [`prepare`])
//!   clones **C** with CLONE_NEWUSER|NEWNS|NEWPID|NEWUTS|NEWIPC; C is pid 1 of the new
//!   pid namespace. [`prepare_shared`] leaves out NEWPID (`--pid host`: C is an
//!   ordinary host process, the command's subreaper) and/or NEWIPC (`--ipc host`). The network namespace is the host's unless the caller asks for
//!   `Network::None` or `Network::Private` (CLONE_NEWNET; with Private, irun starts the
//!   helper of net.rs once the maps are written and before `Go`, and reaps it at the end).
//! - irun sends `Early` while newuidmap/newgidmap write C's maps (C mounts the root and
//!   what needs no maps meanwhile: setup.rs) and `Mapped` once they are written; or,
//!   when the maps came first (a FUSE or squashfs root, served from outside after the
//!   maps; maps written through /proc; joined namespaces), `Go`. C closes every fd it
//!   inherited but the channel, mounts the root, applies the mount plan with every container path resolved inside
//!   the root (inroot.rs), makes the working dir, reads the image's passwd and group
//!   (bounded), pivots and detaches the old root at once (setup.rs), and (with `-t`)
//!   opens a pty in the container's own devpts and passes the master back over the channel (SCM_RIGHTS), so `tty` inside prints `/dev/pts/0`.
//! - With init (default) C forks the command (pid 2), reaps every child, forwards every
//!   signal to the command and exits with its status (128+N when killed by N). With
//!   `--no-init`, C execs the command itself.
//! - Without `-t`, the command's fds 0/1/2 are irun's own (no relay, nothing buffered);
//!   without `-i`, fd 0 is the container's /dev/null.
//!
//! Control channel (channel.rs): a SOCK_SEQPACKET socketpair, one JSON [`Msg`] per
//! message in frames, up to [`MAX_MESSAGE`] (64 MiB). A setup failure in C comes back as
//! `Failed(RemoteError)` with its chain.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;

use crate::channel::{self, ChannelError};
use crate::child::RemoteError;
use crate::idmap::{IdMap, IdMapError, MapWrite};
use crate::spec::{ContainerSpec, Network, RootMount, Sharing, StdioFds};
use crate::sys;
use crate::tty::TtyError;
use crate::wait::{forwarded_signals, reap, wait_forwarding};

pub use crate::channel::{Msg, MAX_MESSAGE};
pub use crate::exec::find_in_path;

/// Failures of starting or waiting for a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The forwarded signals could not be blocked.
    #[error("block the forwarded signals (sigprocmask)")]
    BlockSignals(#[source] Errno),
    /// The control channel could not be made.
    #[error("create the control channel to the container (socketpair)")]
    Socketpair(#[source] Errno),
    /// clone with new namespaces failed.
    #[error("create the container's namespaces (clone user, mount, pid, uts, ipc)")]
    Clone(#[source] Errno),
    /// The id maps could not be written.
    #[error("write the container's id maps")]
    IdMap(#[source] IdMapError),
    /// [`Pending::start`] found its channel gone (cannot happen: start consumes it).
    #[error("the container was already started")]
    Started,
    /// The spec could not be sent.
    #[error("send the spec to the container")]
    SendSpec(#[source] ChannelError),
    /// The answer to the pty could not be sent.
    #[error("tell the container its pty is ready")]
    SendPtyReady(#[source] ChannelError),
    /// A message from the container could not be received.
    #[error("receive from the container")]
    Receive(#[source] ChannelError),
    /// The container said `Pty` without passing an fd.
    #[error("the container passed no pty master")]
    NoPtyFd,
    /// The container's setup failed inside (its chain is the source).
    #[error("set up the container")]
    Setup(#[source] RemoteError),
    /// The container ended before it said it was running.
    #[error("the container ended during setup ({0})")]
    Died(String),
    /// The private network's helper (pasta/slirp4netns) failed.
    #[error("set up the private network")]
    Net(#[source] crate::net::NetError),
    /// The FUSE overlay root could not be served.
    #[error("serve the container's root file system (FUSE overlay)")]
    Fuse(#[source] crate::fuse_root::FuseRootError),
    /// The spec does not fit on the control channel.
    #[error("the container spec is {bytes} bytes, more than the limit of {limit} bytes (64 MiB): make the environment or the mount list smaller")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// [`MAX_MESSAGE`].
        limit: usize,
    },
    /// The terminal relay failed.
    #[error("relay the container's terminal")]
    Tty(#[source] TtyError),
    /// A user namespace is joined only with the host's pid namespace.
    #[error("joining a user namespace needs the host's pid namespace")]
    JoinNeedsHost,
    /// The spec shares other namespaces with the host than the clone did.
    #[error("the container was cloned sharing other pid/IPC namespaces than its spec asks")]
    Sharing,
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

/// The spec encoded for `Go` (or `Early`, when `early`); a spec over the limit is
/// [`ContainerError::TooLarge`].
fn encode_go(
    spec: &ContainerSpec,
    network: Network,
    passed: crate::spec::StdioPassed,
    early: bool,
) -> Result<Vec<u8>, ContainerError> {
    let spec = Box::new(spec.clone());
    let go = match early {
        true => Msg::Early(spec, network, passed),
        false => Msg::Go(spec, network, passed),
    };
    channel::encode(&go).map_err(|e| match e {
        ChannelError::TooLarge { bytes, limit } => ContainerError::TooLarge { bytes, limit },
        e => ContainerError::SendSpec(e),
    })
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
    /// The host's (pid, IPC) namespaces it was cloned into.
    shared: (bool, bool),
    net: Option<crate::net::Helper>,
    /// The FUSE root's server: after `net` so it is reaped last, once the container's
    /// mount namespace (and with it the mount) is gone.
    fuse: Option<crate::fuse_root::FuseRoot>,
    /// The recording fakeroot's socket, passed with `Go` ([`Pending::record_ownership`]).
    fakeroot: Option<OwnedFd>,
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
    prepare_shared(map, network, &Sharing::default())
}

/// [`prepare_with`] sharing the host's pid and/or IPC namespace as `sharing` says (no
/// CLONE_NEWPID / CLONE_NEWIPC); the spec given to [`Pending::start`] must say the same.
pub fn prepare_shared(
    map: &IdMap,
    network: Network,
    sharing: &Sharing,
) -> Result<Pending, ContainerError> {
    clone_pending(Some(map), network, sharing, None)
}

/// [`prepare_shared`] into the user namespace `userns` (an open nsfs file, e.g.
/// `/proc/PID/ns/user` of a container of the same mapping): pid 1, cloned without
/// namespaces, enters it and unshares the container's other namespaces there before
/// this returns (`Join`/`Joined` on the channel); from then on it is as any other
/// container's pid 1. Its maps are the namespace's. Needs `sharing.pid` (a pid
/// namespace cannot be unshared for the process itself). Containers in one user
/// namespace may use each other's memory (`process_vm_readv/writev`, MPI's CMA), which
/// the kernel refuses across user namespaces.
pub fn prepare_joining(
    userns: OwnedFd,
    network: Network,
    sharing: &Sharing,
) -> Result<Pending, ContainerError> {
    clone_pending(None, network, sharing, Some(userns))
}

/// The clone of [`prepare_shared`] (`map`) or [`prepare_joining`] (`userns`).
fn clone_pending(
    map: Option<&IdMap>,
    network: Network,
    sharing: &Sharing,
    userns: Option<OwnedFd>,
) -> Result<Pending, ContainerError> {
    let forwarded = forwarded_signals();
    let mut old_mask = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), Some(&mut old_mask))
        .map_err(ContainerError::BlockSignals)?;
    let restore = |old: &SigSet| {
        // Ignoring the result: sigprocmask fails only for an invalid `how`.
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
            return Err(ContainerError::Socketpair(errno));
        }
    };
    if userns.is_some() && !sharing.pid {
        restore(&old_mask);
        return Err(ContainerError::JoinNeedsHost);
    }
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWUTS;
    if !sharing.pid {
        flags |= libc::CLONE_NEWPID;
    }
    if !sharing.ipc {
        flags |= libc::CLONE_NEWIPC;
    }
    if network != Network::Host {
        flags |= libc::CLONE_NEWNET;
    }
    // Joining: no namespace of its own yet; pid 1 enters the user namespace and
    // unshares the others there (pid1.rs). The maps exist already.
    let unshare = flags & !libc::CLONE_NEWUSER;
    if userns.is_some() {
        flags = 0;
    }
    let pid = match sys::clone_child(flags, chan_c, crate::pid1::container_main) {
        Ok(pid) => pid,
        Err(e) => {
            restore(&old_mask);
            return Err(ContainerError::Clone(e));
        }
    };
    let mut pending = Pending {
        pid,
        chan: Some(chan_p),
        maps: None,
        forwarded,
        old_mask,
        started: false,
        network,
        shared: (sharing.pid, sharing.ipc),
        net: None,
        fuse: None,
        fakeroot: None,
    };
    if let Some(map) = map {
        pending.maps = Some(
            map.start_write(pid.as_raw())
                .map_err(ContainerError::IdMap)?,
        );
    }
    if let Some(ns) = userns {
        pending.join(&ns, unshare)?;
    }
    Ok(pending)
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.started {
            // It waits for Go, so there is nothing to undo; ESRCH (it died) is fine too.
            let _ = kill(self.pid, Signal::SIGKILL);
            if let Some(m) = self.maps.take() {
                // Only to reap the helpers: the maps of a killed child no longer matter.
                let _ = m.finish();
            }
            reap(self.pid);
        }
        // Ignoring the result: sigprocmask fails only for an invalid `how`.
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old_mask), None);
    }
}

impl Pending {
    /// The container's pid 1 (in irun's pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Have pid 1 enter the user namespace `ns` (opened by pid 1 through our fd table: it
    /// keeps none of our fds) and unshare `flags` there; returns once it has.
    fn join(&mut self, ns: &OwnedFd, flags: libc::c_int) -> Result<(), ContainerError> {
        let chan = self.chan.as_ref().ok_or(ContainerError::Started)?;
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            ns.as_raw_fd()
        ));
        channel::send(chan.as_fd(), &Msg::Join(path, flags), &[])
            .map_err(ContainerError::SendSpec)?;
        match channel::recv(chan.as_fd()) {
            Ok(Some((Msg::Joined, _))) => Ok(()),
            Ok(Some((Msg::Failed(e), _))) => Err(ContainerError::Setup(e)),
            Ok(_) => Err(ContainerError::Died(
                "before it joined the user namespace".into(),
            )),
            Err(e) => Err(ContainerError::Receive(e)),
        }
    }

    /// Wait until its id maps are written (else [`Pending::start`] does): from then on
    /// its user namespace may be joined by others.
    pub fn finish_maps(&mut self) -> Result<(), ContainerError> {
        match self.maps.take() {
            Some(m) => m.finish().map_err(ContainerError::IdMap),
            None => Ok(()),
        }
    }

    /// Record ownership with the recording fakeroot: `sock` is the container's end of
    /// `imago_fakeroot::Supervisor::spawn`'s socket, passed with `Go`. The command's
    /// process sends its notification listener over it when it gets the fakeroot filter
    /// (root under the single mapping); otherwise it just closes it.
    pub fn record_ownership(&mut self, sock: OwnedFd) {
        self.fakeroot = Some(sock);
    }

    /// Finish the id maps, hand `spec` to the container and run it in the foreground;
    /// returns irun's exit code (see [`run`]). `spec.id_map` must be the map given to
    /// [`prepare`]. The command's stdio is the caller's own (see
    /// [`Pending::start_with_stdio`]).
    pub fn start(self, spec: &ContainerSpec) -> Result<i32, ContainerError> {
        self.start_with_stdio(spec, StdioFds::default())
    }

    /// [`Pending::start`] with the command's stdout and/or stderr on the given fds, which
    /// go to the container with the spec and reach fds 1 and 2 of the command's own
    /// process only; the caller's fds 0, 1, 2 are never touched.
    pub fn start_with_stdio(
        mut self,
        spec: &ContainerSpec,
        stdio: StdioFds<'_>,
    ) -> Result<i32, ContainerError> {
        if self.shared != (spec.sharing.pid, spec.sharing.ipc) {
            return Err(ContainerError::Sharing);
        }
        let fakeroot = self.fakeroot.take();
        let mut passed = stdio.passed();
        passed.fakeroot = fakeroot.is_some();
        let pass: Vec<_> = [
            stdio.stdout,
            stdio.stderr,
            fakeroot.as_ref().map(|f| f.as_fd()),
        ]
        .into_iter()
        .flatten()
        .collect();
        // While newuidmap/newgidmap still run, pid 1 mounts what needs no id maps
        // (setup.rs): `Early` now, `Mapped` once they are written. A root served from
        // outside (FUSE, squashfs) needs the maps first: `Go` after them, as before.
        let early = self.maps.as_ref().is_some_and(MapWrite::pending)
            && matches!(spec.root, RootMount::Overlay { .. } | RootMount::Bind(_));
        if early {
            let chan = self.chan.as_ref().ok_or(ContainerError::Started)?;
            let msg = encode_go(spec, self.network, passed, true)?;
            channel::send_bytes(chan.as_fd(), &msg, &pass).map_err(ContainerError::SendSpec)?;
        }
        if let Some(m) = self.maps.take() {
            m.finish().map_err(ContainerError::IdMap)?;
        }
        if let RootMount::Fuse(layers) = &spec.root {
            self.fuse = Some(
                crate::fuse_root::start(self.pid.as_raw(), &spec.rootfs, layers)
                    .map_err(ContainerError::Fuse)?,
            );
        }
        if let RootMount::Squash(s) = &spec.root {
            self.fuse = Some(
                crate::squash_root::start(self.pid.as_raw(), s).map_err(ContainerError::Fuse)?,
            );
        }
        if self.network == Network::Private {
            // Before Go (or Mapped): the container starts with its network configured.
            // Dropped (killed and reaped) with self, after the container ended.
            self.net = Some(crate::net::start(self.pid.as_raw()).map_err(ContainerError::Net)?);
        }
        let chan_p = self.chan.take().ok_or(ContainerError::Started)?;
        match early {
            true => channel::send(chan_p.as_fd(), &Msg::Mapped, &[]),
            false => channel::send_bytes(
                chan_p.as_fd(),
                &encode_go(spec, self.network, passed, false)?,
                &pass,
            ),
        }
        .map_err(ContainerError::SendSpec)?;
        // The container holds it now: ours closed, the supervisor sees the socket close
        // if the container never sends its listener.
        drop(fakeroot);
        self.started = true;
        let pid = self.pid;
        let forwarded = &self.forwarded;
        let mut master: Option<OwnedFd> = None;
        loop {
            match channel::recv(chan_p.as_fd()) {
                Ok(Some((Msg::Failed(e), _))) => {
                    reap(pid);
                    return Err(ContainerError::Setup(e));
                }
                Ok(Some((Msg::Pty, fds))) => {
                    let fd = fds.into_iter().next().ok_or(ContainerError::NoPtyFd)?;
                    crate::tty::copy_size(fd.as_fd());
                    master = Some(fd);
                    channel::send(chan_p.as_fd(), &Msg::PtyReady, &[])
                        .map_err(ContainerError::SendPtyReady)?;
                }
                Ok(Some((Msg::Running, _))) | Ok(None) => break,
                Ok(Some((_, _))) => continue,
                Err(e) => {
                    // ESRCH (it already died) is fine: either way it is reaped next.
                    let _ = kill(pid, Signal::SIGKILL);
                    reap(pid);
                    return Err(ContainerError::Receive(e));
                }
            }
        }
        drop(chan_p);
        match master {
            Some(m) => crate::tty::relay(pid, m, spec.process.stdin, forwarded)
                .map_err(ContainerError::Tty),
            None => Ok(wait_forwarding(pid, forwarded)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_over_the_limit_is_refused_naming_it() {
        let mut spec = ContainerSpec::for_tests();
        spec.process.env = vec!["X=".to_string() + &"x".repeat(MAX_MESSAGE)];
        let err = encode_go(&spec, Network::Host, StdioFds::default().passed(), false).unwrap_err();
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
