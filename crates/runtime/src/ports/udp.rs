//! UDP relaying in the forwarder: datagrams from each client address go out through a
//! socket of that client's own, connected to the container port on the container's
//! loopback (127.0.0.1), so the answers find their way back; a session idle for
//! [`IDLE`] ends and closes its socket.
//! Owns: the session table (bounded), one answer thread per session.
//! Never: binds host sockets (bind.rs) or changes namespaces (forwarder.rs).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::tcp::STACK;

/// A session without a datagram in either direction for this long ends.
pub(crate) const IDLE: Duration = Duration::from_secs(60);
/// Most client addresses relayed at once per port; datagrams of further ones are dropped.
const MAX_SESSIONS: usize = 1024;
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// One client's socket inside and when it last carried a datagram.
struct Session {
    inside: UdpSocket,
    last: Mutex<Instant>,
}

type Table = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Relay datagrams arriving on `host` to `port` in the container, forever.
pub(crate) fn serve(host: UdpSocket, port: u16) {
    serve_with(host, port, IDLE, Table::default())
}

fn serve_with(host: UdpSocket, port: u16, idle: Duration, table: Table) {
    let host = Arc::new(host);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = match host.recv_from(&mut buf) {
            Ok(r) => r,
            // ICMP errors reported on the host socket concern one datagram.
            Err(e) if super::tcp::concerns_one(&e) => continue,
            // Out of memory or worse: do not spin.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(session) = session_for(&table, &host, client, port, idle) else {
            continue; // over the bound or out of sockets: UDP may drop it
        };
        // Nothing listening inside (ECONNREFUSED) loses the datagram, as UDP does.
        let _ = session.inside.send(&buf[..n]);
    }
}

/// The client's session, made (with its answer thread) when it has none; its clock is
/// reset under the table's lock, so an ending session is never handed out.
fn session_for(
    table: &Table,
    host: &Arc<UdpSocket>,
    client: SocketAddr,
    port: u16,
    idle: Duration,
) -> Option<Arc<Session>> {
    let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = t.get(&client) {
        *s.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        return Some(Arc::clone(s));
    }
    if t.len() >= MAX_SESSIONS {
        return None;
    }
    let inside = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).ok()?;
    inside
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .ok()?;
    // Wake up now and then to notice idleness.
    inside.set_read_timeout(Some(idle / 4)).ok()?;
    let session = Arc::new(Session {
        inside,
        last: Mutex::new(Instant::now()),
    });
    let (s, h, tb) = (Arc::clone(&session), Arc::clone(host), Arc::clone(table));
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || answer(&s, &h, client, &tb, idle))
        .ok()?;
    t.insert(client, Arc::clone(&session));
    Some(session)
}

/// Send the container's answers back to `client` until the session is idle.
fn answer(s: &Session, host: &UdpSocket, client: SocketAddr, table: &Table, idle: Duration) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match s.inside.recv(&mut buf) {
            Ok(n) => {
                *s.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
                // A failed send loses one datagram, as UDP may.
                let _ = host.send_to(&buf[..n], client);
            }
            // Timeouts (the idle check below), ECONNREFUSED (nothing listens yet); anything
            // else must not spin.
            Err(e) => {
                let timeout = matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
                if !timeout && !super::tcp::concerns_one(&e) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
                let last = *s.last.lock().unwrap_or_else(PoisonError::into_inner);
                if last.elapsed() >= idle {
                    t.remove(&client);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_go_both_ways_and_idle_sessions_end() {
        // An echo server standing in for the container's.
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let eport = echo.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut b = [0u8; 100];
            while let Ok((n, from)) = echo.recv_from(&mut b) {
                let _ = echo.send_to(&b[..n], from);
            }
        });
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let faddr = front.local_addr().unwrap();
        let idle = Duration::from_millis(400);
        let table = Table::default();
        let t = Arc::clone(&table);
        std::thread::spawn(move || serve_with(front, eport, idle, t));
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 100];
        for msg in [&b"one"[..], b"two"] {
            c.send_to(msg, faddr).unwrap();
            let (n, from) = c.recv_from(&mut b).unwrap();
            assert_eq!((&b[..n], from), (msg, faddr));
        }
        assert_eq!(table.lock().unwrap().len(), 1);
        // after the idle time the session is gone; a new datagram makes a new one
        std::thread::sleep(idle * 3);
        assert_eq!(table.lock().unwrap().len(), 0);
        c.send_to(b"three", faddr).unwrap();
        let (n, _) = c.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"three");
    }
}
