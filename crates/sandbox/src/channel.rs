//! The control channel between irun and the container's pid 1: a close-on-exec
//! SOCK_SEQPACKET socketpair carrying one JSON [`Msg`] per message, in frames of 32 KiB
//! (a header byte, more / last, then the chunk) so that a spec of any size up to
//! [`MAX_MESSAGE`] passes: one seqpacket message is limited by the socket buffer
//! (~200 KiB). Fds (the pty master; the container's stdout and stderr) travel with the
//! first frame (SCM_RIGHTS).
//! Owns: the message set, the framing, the size limit, fd passing.
//! Never: decides what to send or when (container.rs, pid1.rs), interprets a spec.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde::{Deserialize, Serialize};

use crate::child::RemoteError;
use crate::fd::{recv_with_fds, FdError, MAX_FDS};
use crate::spec::{ContainerSpec, Network, StdioPassed};

/// Messages on the control channel.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// irun → C: the maps are written; here is what to be, and which of the command's
    /// stdout and stderr are attached (in that order).
    Go(Box<ContainerSpec>, Network, StdioPassed),
    /// C → irun: setup failed.
    Failed(RemoteError),
    /// C → irun: the pty master is attached to this message.
    Pty,
    /// irun → C: the pty size is set.
    PtyReady,
    /// C → irun: the command is starting.
    Running,
    /// irun → C, before `Go` (`prepare_joining`): enter the user namespace of this nsfs
    /// path (in irun's fd table) and unshare these CLONE_NEW* flags there.
    Join(std::path::PathBuf, i32),
    /// C → irun: joined; C waits for `Go` as any container's pid 1.
    Joined,
    /// irun → C, instead of `Go` while its id maps are still being written: the same
    /// spec; C sets up what needs no maps (setup.rs) and waits for `Mapped`.
    Early(Box<ContainerSpec>, Network, StdioPassed),
    /// irun → C, after `Early`: the maps are written (and the network's helper runs).
    Mapped,
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

/// Failures on the control channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A message could not be serialised.
    #[error("encode a control message")]
    Encode(#[source] serde_json::Error),
    /// A message is larger than [`MAX_MESSAGE`].
    #[error("the container spec is {bytes} bytes, more than the limit of {limit} bytes (64 MiB): make the environment or the mount list smaller")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// [`MAX_MESSAGE`].
        limit: usize,
    },
    /// sendmsg failed.
    #[error("send a control message (sendmsg)")]
    Send(#[source] Errno),
    /// More fds than one message carries ([`MAX_FDS`]).
    #[error("send a control message: {0} fds, more than {MAX_FDS}")]
    TooManyFds(usize),
    /// recvmsg failed.
    #[error("receive a control message")]
    Receive(#[source] FdError),
    /// A received message is over the limit or was cut by the kernel.
    #[error("receive a control message: more than {MAX_MESSAGE} bytes or truncated")]
    Oversized,
    /// A received message is not valid JSON for [`Msg`].
    #[error("decode a control message")]
    Decode(#[source] serde_json::Error),
}

/// `msg` as JSON, refused when over [`MAX_MESSAGE`].
pub fn encode(msg: &Msg) -> Result<Vec<u8>, ChannelError> {
    let bytes = serde_json::to_vec(msg).map_err(ChannelError::Encode)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(ChannelError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_MESSAGE,
        });
    }
    Ok(bytes)
}

/// Send `msg`, with `pass` attached to its first frame.
pub fn send(fd: BorrowedFd<'_>, msg: &Msg, pass: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
    send_bytes(fd, &encode(msg)?, pass)
}

/// Send one encoded message as frames of at most [`FRAME`] bytes, each a header byte
/// and a chunk; `pass` (at most [`MAX_FDS`]) travels with the first frame.
pub fn send_bytes(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    pass: &[BorrowedFd<'_>],
) -> Result<(), ChannelError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ChannelError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_MESSAGE,
        });
    }
    if pass.len() > MAX_FDS {
        return Err(ChannelError::TooManyFds(pass.len()));
    }
    let fds: Vec<RawFd> = pass.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmsg: Vec<ControlMessage<'_>> = match fds.is_empty() {
        true => vec![],
        false => vec![ControlMessage::ScmRights(&fds)],
    };
    let mut chunks = bytes.chunks(FRAME).peekable();
    if chunks.peek().is_none() {
        return Err(ChannelError::Send(Errno::EINVAL));
    }
    while let Some(chunk) = chunks.next() {
        let head = [if chunks.peek().is_some() { MORE } else { LAST }];
        let iov = [IoSlice::new(&head), IoSlice::new(chunk)];
        loop {
            match sendmsg::<()>(fd.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ChannelError::Send(e)),
                Ok(_) => break,
            }
        }
        cmsg.clear();
    }
    Ok(())
}

/// Receive one message and the fds that came with it; `None` when the peer closed its end.
pub fn recv(fd: BorrowedFd<'_>) -> Result<Option<(Msg, Vec<OwnedFd>)>, ChannelError> {
    let mut msg = Vec::new();
    let mut got = Vec::new();
    let mut frame = vec![0u8; FRAME + 1];
    loop {
        let r = recv_with_fds(fd, &mut frame).map_err(ChannelError::Receive)?;
        if got.is_empty() {
            got = r.fds;
        }
        let n = r.bytes;
        if n == 0 {
            return Ok(None); // the peer closed its end
        }
        if r.truncated || msg.len() + n - 1 > MAX_MESSAGE {
            return Err(ChannelError::Oversized);
        }
        msg.extend_from_slice(&frame[1..n]);
        if frame[0] == LAST {
            break;
        }
    }
    let msg = serde_json::from_slice(&msg).map_err(ChannelError::Decode)?;
    Ok(Some((msg, got)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;

    /// A control channel's two ends.
    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    fn failed(len: usize) -> Msg {
        Msg::Failed(RemoteError {
            msg: "x".repeat(len),
            cause: None,
        })
    }

    #[test]
    fn messages_larger_than_a_socket_buffer_pass_in_frames() {
        let (a, b) = pair();
        // 3 MiB: far above one seqpacket message (EMSGSIZE before frames)
        let sender = std::thread::spawn(move || {
            let bytes = encode(&failed(3 << 20)).unwrap();
            send_bytes(a.as_fd(), &bytes, &[]).unwrap();
            send(a.as_fd(), &Msg::Running, &[]).unwrap();
        });
        match recv(b.as_fd()).unwrap() {
            Some((Msg::Failed(e), fds)) if fds.is_empty() => assert_eq!(e.msg.len(), 3 << 20),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            recv(b.as_fd()).unwrap(),
            Some((Msg::Running, fds)) if fds.is_empty()
        ));
        sender.join().unwrap();
        assert!(
            recv(b.as_fd()).unwrap().is_none(),
            "closed after the sender ended"
        );
    }

    #[test]
    fn an_fd_travels_with_the_first_frame() {
        let (a, b) = pair();
        let (r, w) = sys::pipe().unwrap();
        send(a.as_fd(), &Msg::Pty, &[w.as_fd()]).unwrap();
        drop(w);
        let Some((Msg::Pty, got)) = recv(b.as_fd()).unwrap() else {
            panic!("no message")
        };
        assert_eq!(got.len(), 1);
        nix::unistd::write(&got[0], b"k").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(sys::read_some(r.as_fd(), &mut buf).unwrap(), 1);
    }

    #[test]
    fn two_fds_travel_in_order() {
        let (a, b) = pair();
        let (r1, w1) = sys::pipe().unwrap();
        let (r2, w2) = sys::pipe().unwrap();
        send(a.as_fd(), &Msg::Running, &[w1.as_fd(), w2.as_fd()]).unwrap();
        drop((w1, w2));
        let Some((Msg::Running, got)) = recv(b.as_fd()).unwrap() else {
            panic!("no message")
        };
        assert_eq!(got.len(), 2);
        nix::unistd::write(&got[0], b"1").unwrap();
        nix::unistd::write(&got[1], b"2").unwrap();
        let mut buf = [0u8; 1];
        sys::read_some(r1.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf, b"1");
        sys::read_some(r2.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf, b"2");
        let four = [a.as_fd(), a.as_fd(), a.as_fd(), a.as_fd()];
        assert!(matches!(
            send(a.as_fd(), &Msg::Running, &four),
            Err(ChannelError::TooManyFds(4))
        ));
    }

    #[test]
    fn a_message_over_the_limit_is_refused_naming_it() {
        let err = encode(&failed(MAX_MESSAGE + 1)).unwrap_err();
        assert!(matches!(
            err,
            ChannelError::TooLarge {
                limit: MAX_MESSAGE,
                ..
            }
        ));
        assert!(err.to_string().contains("64 MiB"), "{err}");
    }
}
