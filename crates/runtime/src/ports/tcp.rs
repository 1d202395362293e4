//! TCP relaying in the forwarder: accept on the host listener, connect to the container
//! port on the container's loopback (127.0.0.1, else ::1), copy both ways with
//! splice(2) through a pipe (plain read/write when the kernel refuses, or when no pipe
//! can be had), and pass a half-close on (shutdown of the write side when one side
//! ends). A reset on either side ends both directions. Every socket and pipe of a
//! connection is closed when its two directions end.
//! Owns: the accept loop, one thread per direction, the connection bound.
//! Never: binds (bind.rs) or changes namespaces (forwarder.rs: this runs after the
//! join, so sockets it makes live in the container's network namespace).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{splice, OFlag, SpliceFFlags};

/// Most connections relayed at once by one forwarder; more are closed at once.
const MAX_CONNECTIONS: usize = 4096;
/// Stack of a relay thread: it only loops over syscalls.
pub(crate) const STACK: usize = 64 * 1024;
/// Bytes moved per splice call: a pipe's default capacity.
const CHUNK: usize = 64 * 1024;

/// Connections being relayed now.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Gives a connection slot back when its relay ends (or never starts).
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        if LIVE.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            LIVE.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accept forever on `listener`, relaying each connection to `port` in the container.
pub(crate) fn serve(listener: TcpListener, port: u16) {
    loop {
        match listener.accept() {
            Ok((client, _)) => {
                let Some(slot) = Slot::take() else {
                    continue; // over the bound: dropping closes it
                };
                // A failed spawn drops the closure, the client and the slot with it.
                let _ = std::thread::Builder::new()
                    .stack_size(STACK)
                    .spawn(move || {
                        let _slot = slot;
                        relay(client, port);
                    });
            }
            // ECONNABORTED and the like concern one connection only.
            Err(e) if concerns_one(&e) => {}
            // Out of fds or memory (or anything else): wait for connections to end
            // instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// An accept or receive error about one peer, not the socket.
pub(crate) fn concerns_one(e: &std::io::Error) -> bool {
    use nix::libc::{EAGAIN, ECONNABORTED, ECONNREFUSED, ECONNRESET, EINTR, EPERM, EPROTO};
    matches!(
        e.raw_os_error(),
        Some(ECONNABORTED | ECONNREFUSED | ECONNRESET | EINTR | EAGAIN | EPERM | EPROTO)
    )
}

/// Connect to the container's `port` on its loopback: IPv4 first, then IPv6.
fn connect_inside(port: u16) -> std::io::Result<TcpStream> {
    TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .or_else(|_| TcpStream::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, port))))
}

/// Relay one accepted connection until both directions ended.
fn relay(client: TcpStream, port: u16) {
    let Ok(server) = connect_inside(port) else {
        return; // nothing listens (yet): the client sees its connection closed
    };
    // Small writes go out at once, as they would between the two ends directly; a
    // failure only costs latency.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client, server) = (Arc::new(client), Arc::new(server));
    let (c, s) = (Arc::clone(&client), Arc::clone(&server));
    let back = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || pump(&s, &c));
    let Ok(back) = back else {
        return; // no thread for the other direction: dropping both ends closes them
    };
    pump(&client, &server);
    // A panic there cannot happen (no unwrap on that path); either way both ends close.
    let _ = back.join();
}

/// Copy `from` → `to` until EOF (then half-close `to`) or an error (then end both).
fn pump(from: &TcpStream, to: &TcpStream) {
    match copy(from, to) {
        // Shutdown fails only when `to` is already gone, which the other direction sees.
        Ok(()) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            // Wake the other direction, blocked on one of the two, with an end.
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    }
}

/// Copy until EOF: splice through a pipe of our own, else read/write.
fn copy(from: &TcpStream, to: &TcpStream) -> std::io::Result<()> {
    match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok((r, w)) => match splice_all(from, to, &r, &w) {
            Err(Refused) => copy_plain(from, to),
            Ok(res) => res,
        },
        // No fd for a pipe (EMFILE): the plain copy needs none.
        Err(_) => copy_plain(from, to),
    }
}

/// The kernel does not splice these files: copy another way (nothing was moved yet).
struct Refused;

fn splice_all(
    from: &TcpStream,
    to: &TcpStream,
    r: &OwnedFd,
    w: &OwnedFd,
) -> Result<std::io::Result<()>, Refused> {
    let mut first = true;
    loop {
        let n = match splice(
            from,
            None,
            w.as_fd(),
            None,
            CHUNK,
            SpliceFFlags::SPLICE_F_MOVE,
        ) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EINVAL | Errno::ENOSYS) if first => return Err(Refused),
            Err(e) => return Ok(Err(e.into())),
        };
        first = false;
        let mut left = n;
        while left > 0 {
            match splice(r.as_fd(), None, to, None, left, SpliceFFlags::SPLICE_F_MOVE) {
                Ok(0) => return Ok(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(m) => left -= m,
                Err(Errno::EINTR) => {}
                Err(e) => return Ok(Err(e.into())),
            }
        }
    }
}

fn copy_plain(mut from: &TcpStream, mut to: &TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo-free sink server that answers with what it read once the client's side
    /// ended: proves the half-close passes through the relay.
    #[test]
    fn a_half_close_passes_through_and_the_answer_comes_back() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let sport = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(format!("got {} bytes", got.len()).as_bytes())
                .unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let fport = front.local_addr().unwrap().port();
        std::thread::spawn(move || serve(front, sport));
        let mut c = TcpStream::connect(("127.0.0.1", fport)).unwrap();
        c.write_all(&vec![7u8; 300_000]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "got 300000 bytes");
    }

    #[test]
    fn nothing_listening_inside_closes_the_client() {
        let unused = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = unused.local_addr().unwrap().port();
        drop(unused);
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let fport = front.local_addr().unwrap().port();
        std::thread::spawn(move || serve(front, dead));
        let mut c = TcpStream::connect(("127.0.0.1", fport)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    }
}
