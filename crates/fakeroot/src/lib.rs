//! imago's recording fakeroot, for containers under the single mapping (one id, root,
//! inside): instead of answering chown and set*id with a success that did nothing,
//! a seccomp user-notification filter sends those calls to a supervisor thread of the
//! process that owns the container, which
//! - keeps fake credentials per process (set*id, setgroups, get*id, getgroups), so a
//!   program that drops to another user and checks it (apt's `_apt` sandbox) works;
//! - records chown & co as the `user.containers.override_stat` xattr of the file, which
//!   the layer committer turns into the owner in the layer tar; for symlinks, fifos and
//!   sockets (no xattr there) in a side record by path, handed over at the end
//!   ([`Supervisor::finish_with_side`]) for the committer;
//! - shows a recorded owner in stat/lstat/fstat/newfstatat/statx;
//! - records the files and dirs a process that believes it is another user makes
//!   (open with O_CREAT, creat, mkdir) as that user's, and its symlinks and fifos
//!   (symlink, mknod) in the side record;
//! - makes a plain file for a device node (mknod), recorded as that device, as
//!   fakeroot(1) does.
//!
//! # Use
//! - The owner: [`Supervisor::spawn`] → the supervisor and the container's end of a
//!   socket; pass that end into the container, drop your copy once the container has it,
//!   and [`Supervisor::finish`] after the container ended.
//! - The container's process, before it drops capabilities: [`install`] (the filter of
//!   [`filter`] on top of its main filter), then [`send_listener`] over that socket.
//!
//! Never: decides whether a container gets it (the caller does), edits layers (the
//! committer reads the record), follows a container's path outside its root.

mod create;
mod creds;
mod device;
mod files;
pub mod filter;
mod record;
mod side;
mod special;
mod supervisor;
mod sys;
mod table;

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

pub use side::SideOwners;
pub use supervisor::Stats;

/// The switch: `IMAGO_FAKEROOT=noop` turns the recording fakeroot off (the no-op one,
/// which records nothing, is used instead); anything else or unset: on.
pub const ENV: &str = "IMAGO_FAKEROOT";

/// False when [`ENV`] asks for the no-op fakeroot.
pub fn enabled() -> bool {
    std::env::var(ENV).map_or(true, |v| v != "noop")
}

/// Failures of the fakeroot.
#[derive(Debug, thiserror::Error)]
pub enum FakerootError {
    /// The socket between owner and container could not be made.
    #[error("make the fakeroot's socket")]
    Socket(#[source] Errno),
    /// The supervisor thread could not be started.
    #[error("start the fakeroot supervisor thread")]
    Thread(#[source] std::io::Error),
    /// The filter could not be installed (kernel without seccomp user notification).
    #[error("install the fakeroot's seccomp notification filter")]
    Install(#[source] Errno),
    /// The listener could not be passed or received.
    #[error("pass the fakeroot's listener")]
    Pass(#[source] Errno),
    /// The supervisor failed while serving.
    #[error("serve the fakeroot's notifications")]
    Serve(#[source] Errno),
    /// The supervisor thread panicked.
    #[error("the fakeroot supervisor thread panicked")]
    Panicked,
}

/// The supervisor thread of one container.
pub struct Supervisor {
    thread: std::thread::JoinHandle<Result<(Stats, SideOwners), FakerootError>>,
}

impl Supervisor {
    /// Start the supervisor; returns it and the container's end of its socket
    /// (close-on-exec: the container's process sends the listener over it).
    pub fn spawn() -> Result<(Supervisor, OwnedFd), FakerootError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(FakerootError::Socket)?;
        let thread = std::thread::Builder::new()
            .name("fakeroot".into())
            .spawn(move || -> Result<(Stats, SideOwners), FakerootError> {
                match recv_listener(ours.as_fd())? {
                    Some(l) => supervisor::serve(l.as_fd()).map_err(FakerootError::Serve),
                    // The container did not install the filter (not root, no seccomp,
                    // or it failed before): nothing to serve.
                    None => Ok(Default::default()),
                }
            })
            .map_err(FakerootError::Thread)?;
        Ok((Supervisor { thread }, theirs))
    }

    /// Wait for the end of the supervisor (all the container's processes ended, or the
    /// container never sent its listener) and say what it did.
    pub fn finish(self) -> Result<Stats, FakerootError> {
        self.finish_with_side().map(|(stats, _)| stats)
    }

    /// [`Supervisor::finish`], with the side record: the owners asked for symlinks,
    /// fifos and sockets, which the layer committer applies by path.
    pub fn finish_with_side(self) -> Result<(Stats, SideOwners), FakerootError> {
        self.thread.join().map_err(|_| FakerootError::Panicked)?
    }
}

/// In the container's process: install the notification filter on top of the main one
/// ([`filter::install`]); on failure nothing is installed (a kernel without seccomp user
/// notification: the caller falls back to the no-op fakeroot).
pub fn install() -> Result<OwnedFd, FakerootError> {
    filter::install().map_err(FakerootError::Install)
}

/// In the container's process, right after [`install`]: send the listener over `sock`.
/// Both are closed here: the container keeps neither. A failure must stop the container
/// (its filtered calls would have nobody to answer them).
pub fn send_listener(sock: OwnedFd, listener: OwnedFd) -> Result<(), FakerootError> {
    let fds = [listener.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"L")];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop).map_err(FakerootError::Pass),
        }
    }
}

/// The listener sent by [`send_listener`]; `None` when the other end closed first.
fn recv_listener(sock: BorrowedFd<'_>) -> Result<Option<OwnedFd>, FakerootError> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            r => break r.map_err(FakerootError::Pass)?,
        }
    };
    for c in msg.cmsgs().map_err(FakerootError::Pass)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                return Ok(Some(sys::received_fd(*fd)));
            }
        }
    }
    Ok(None)
}
