//! The host side of published ports: one listening TCP socket or bound UDP socket per
//! [`PortSpec`], made in the caller's (the host's) network namespace before the
//! forwarder joins the container's, with the port the kernel chose read back.
//! Owns: binding, the backlog, the errors a user can act on (a privileged port names
//! `net.ipv4.ip_unprivileged_port_start`, a taken port says so).
//! Never: accepts or relays (tcp.rs, udp.rs), enters namespaces (forwarder.rs).

use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use super::spec::{PortSpec, Proto};

/// Where the kernel keeps the first unprivileged port.
const UNPRIVILEGED_START: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";

/// Failures of binding a host port.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The port is below the first unprivileged port and we lack the capability.
    #[error("publish {spec}: host port {port} is privileged: ports below {start} need root (sysctl net.ipv4.ip_unprivileged_port_start = {start}, {UNPRIVILEGED_START}); pick a host port of {start} or more")]
    Privileged {
        /// The spec as given.
        spec: PortSpec,
        /// The host port.
        port: u16,
        /// The sysctl's value.
        start: u16,
    },
    /// Something else listens there.
    #[error("publish {spec}: host port {port} is already in use")]
    InUse {
        /// The spec as given.
        spec: PortSpec,
        /// The host port.
        port: u16,
    },
    /// Any other failure.
    #[error("publish {spec}: bind {addr}")]
    Other {
        /// The spec as given.
        spec: PortSpec,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound host socket.
#[derive(Debug)]
pub(crate) enum HostSocket {
    /// Listening.
    Tcp(TcpListener),
    /// Bound.
    Udp(UdpSocket),
}

impl HostSocket {
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            HostSocket::Tcp(l) => l.as_fd(),
            HostSocket::Udp(u) => u.as_fd(),
        }
    }
}

/// A host socket and its spec with the real host port.
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) spec: PortSpec,
    pub(crate) socket: HostSocket,
}

/// The first unprivileged port (1024 when the sysctl cannot be read).
fn unprivileged_start() -> u16 {
    std::fs::read_to_string(UNPRIVILEGED_START)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Bind `spec`'s host address; the result carries the port the kernel gave.
pub(crate) fn bind(spec: &PortSpec) -> Result<Bound, BindError> {
    let addr = spec.host_addr();
    let res = match spec.proto {
        Proto::Tcp => TcpListener::bind(addr).and_then(|l| {
            // std listens with a small backlog: bursts of connections (a load test, a
            // browser) would wait for SYN retries. The kernel caps it at somaxconn.
            nix::sys::socket::listen(&l, nix::sys::socket::Backlog::MAXCONN)
                .map_err(std::io::Error::from)?;
            Ok(HostSocket::Tcp(l))
        }),
        Proto::Udp => UdpSocket::bind(addr).map(HostSocket::Udp),
    };
    let socket = res.map_err(|source| match source.kind() {
        std::io::ErrorKind::PermissionDenied if spec.host_port < unprivileged_start() => {
            BindError::Privileged {
                spec: *spec,
                port: spec.host_port,
                start: unprivileged_start(),
            }
        }
        std::io::ErrorKind::AddrInUse => BindError::InUse {
            spec: *spec,
            port: spec.host_port,
        },
        _ => BindError::Other {
            spec: *spec,
            addr,
            source,
        },
    })?;
    let local = match &socket {
        HostSocket::Tcp(l) => l.local_addr(),
        HostSocket::Udp(u) => u.local_addr(),
    };
    let port = local
        .map_err(|source| BindError::Other {
            spec: *spec,
            addr,
            source,
        })?
        .port();
    Ok(Bound {
        spec: PortSpec {
            host_port: port,
            ..*spec
        },
        socket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_reads_back_the_chosen_port_and_a_taken_port_says_so() {
        let spec = PortSpec::parse("127.0.0.1::80").unwrap()[0];
        let b = bind(&spec).unwrap();
        assert_ne!(b.spec.host_port, 0);
        assert_eq!(b.spec.container_port, 80);
        let again = PortSpec {
            host_port: b.spec.host_port,
            ..spec
        };
        let e = bind(&again).unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
        let udp = PortSpec::parse("127.0.0.1::53/udp").unwrap()[0];
        assert_ne!(bind(&udp).unwrap().spec.host_port, 0);
    }

    #[test]
    fn the_privileged_message_names_the_sysctl() {
        let spec = PortSpec::parse("80:8080").unwrap()[0];
        let e = BindError::Privileged {
            spec,
            port: 80,
            start: 1024,
        }
        .to_string();
        assert!(
            e.contains("net.ipv4.ip_unprivileged_port_start = 1024"),
            "{e}"
        );
        assert!(e.contains("0.0.0.0:80->8080/tcp"), "{e}");
    }
}
