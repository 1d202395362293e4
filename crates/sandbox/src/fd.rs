//! File descriptors whose ownership the type system cannot see: fds the kernel installs
//! with SCM_RIGHTS, the stdio slots replaced with dup2, fds a helper program inherits.
//! Each `unsafe` here has its invariant next to it; the helpers whose soundness would
//! rest on a caller are `unsafe fn` and used only in this file.
//! Owns: those three. Never: opens files by path, decides what to pass.

#![allow(unsafe_code)]

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Failures of the calls here.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    /// recvmsg failed.
    #[error("recvmsg")]
    Recvmsg(#[source] Errno),
    /// The control data of a received message could not be parsed.
    #[error("recvmsg: bad ancillary data")]
    Ancillary(#[source] Errno),
    /// dup2 onto a stdio slot failed.
    #[error("dup2 onto fd {0}")]
    Dup2(i32, #[source] Errno),
}

/// Most fds one datagram may carry (the container's stdout and stderr, the recording
/// fakeroot's socket); further ones are closed.
pub const MAX_FDS: usize = 3;

/// One received datagram: its length, whether the kernel cut it, the fds with it.
pub struct Received {
    /// Bytes written into the buffer.
    pub bytes: usize,
    /// MSG_TRUNC: the datagram was larger than the buffer.
    pub truncated: bool,
    /// The fds passed with it (close-on-exec), in the order sent, at most [`MAX_FDS`].
    pub fds: Vec<OwnedFd>,
}

/// Take ownership of an fd the kernel just installed in our table.
///
/// # Safety
/// `fd` must be open and owned by nothing else in this process (no `OwnedFd`, `File`
/// or other owner), and the caller must call this once per fd: e.g. an fd of an
/// SCM_RIGHTS control message that recvmsg returned just now.
unsafe fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller guarantees `fd` is open and has no other owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// recvmsg one datagram of a seqpacket socket into `buf` (EINTR retried), owning the fds
/// passed with it.
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Received, FdError> {
    let mut cbuf = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let m = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cbuf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(FdError::Recvmsg(e)),
            Ok(m) => m,
        };
        let mut got = Vec::new();
        for c in m.cmsgs().map_err(FdError::Ancillary)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for &f in &fds {
                    // SAFETY: recvmsg just installed `f` (SCM_RIGHTS) and nothing else
                    // knows it; each is taken once. Extra fds (none are sent) are
                    // closed when `owned` drops.
                    let owned = unsafe { own_received_fd(f) };
                    if got.len() < MAX_FDS {
                        got.push(owned);
                    }
                }
            }
        }
        return Ok(Received {
            bytes: m.bytes,
            truncated: m.flags.contains(MsgFlags::MSG_TRUNC),
            fds: got,
        });
    }
}

/// dup2(fd, target): `target` now refers to `fd`'s file; what it held is closed.
///
/// # Safety
/// Nothing in this process may own `target` (an `OwnedFd`, `File`, …): it is closed
/// and replaced behind that owner's back otherwise.
unsafe fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
    // SAFETY: dup2 on a valid fd; the caller guarantees `target` has no owner.
    let r = unsafe { libc::dup2(fd.as_raw_fd(), target) };
    Errno::result(r).map(drop)
}

/// The standard streams, whose slots (0, 1, 2) std leaves unowned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// fd 0.
    In = 0,
    /// fd 1.
    Out = 1,
    /// fd 2.
    Err = 2,
}

/// Make the stdio slot `slot` refer to `fd`'s file (a no-op when `fd` is that slot).
pub fn replace_stdio(fd: BorrowedFd<'_>, slot: Stdio) -> Result<(), FdError> {
    let target = slot as RawFd;
    if fd.as_raw_fd() == target {
        return Ok(());
    }
    // SAFETY: std never owns fds 0-2 (`std::io::stdin()` and co only borrow them) and
    // imago opens every file close-on-exec as an `OwnedFd` only while 0-2 are open, so
    // no owner of `target` exists (rustix's `dup2_stdin` rests on the same argument).
    unsafe { dup_onto(fd, target) }.map_err(|e| FdError::Dup2(target, e))
}

/// Spawn `cmd` with `keep` inherited (their close-on-exec flag cleared in the child
/// only, so no other program this process starts gets them).
pub fn spawn_keeping(cmd: &mut Command, keep: &[BorrowedFd<'_>]) -> std::io::Result<Child> {
    let raw: Vec<RawFd> = keep.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the hook runs between fork and exec and only calls fcntl (async-signal-safe)
    // on fds that stay open: `keep` borrows them for the whole of this call.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}
