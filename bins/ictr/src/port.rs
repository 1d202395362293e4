//! `ictr port`: a container's published ports, from its record: `80/tcp ->
//! 0.0.0.0:8080` per mapping, or with `PRIVATE_PORT[/PROTO]` the host addresses of that
//! port only.

use std::process::ExitCode;

use imago_cli::GlobalOpts;

use crate::common::{self, CtrError};

pub use crate::args::PortArgs as Args;

/// One published port: host address, host port, container port, protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub host_ip: String,
    pub host_port: String,
    pub port: String,
    pub proto: String,
}

/// A record's port string, `HOST_IP:HOST_PORT->CTR_PORT/PROTO` (the IP may be IPv6:
/// the host port follows the last colon).
pub fn parse(s: &str) -> Option<Published> {
    let (host, ctr) = s.split_once("->")?;
    let (host_ip, host_port) = host.rsplit_once(':')?;
    let (port, proto) = ctr.split_once('/').unwrap_or((ctr, "tcp"));
    Some(Published {
        host_ip: host_ip.trim_matches(['[', ']']).to_string(),
        host_port: host_port.to_string(),
        port: port.to_string(),
        proto: proto.to_string(),
    })
}

fn show_ip(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn run_port(global: &GlobalOpts, a: &Args) -> Result<(), CtrError> {
    let c = common::containers(global)?;
    let (_, rec) = common::find(&c, &a.container)?;
    let all: Vec<Published> = common::live_ports(&rec)
        .iter()
        .filter_map(|p| parse(p))
        .collect();
    let lines: Vec<String> = match &a.private_port {
        None => all
            .iter()
            .map(|p| {
                format!(
                    "{}/{} -> {}:{}",
                    p.port,
                    p.proto,
                    show_ip(&p.host_ip),
                    p.host_port
                )
            })
            .collect(),
        Some(want) => {
            let (port, proto) = want.split_once('/').unwrap_or((want, "tcp"));
            let v: Vec<String> = all
                .iter()
                .filter(|p| p.port == port && p.proto == proto)
                .map(|p| format!("{}:{}", show_ip(&p.host_ip), p.host_port))
                .collect();
            if v.is_empty() {
                return Err(CtrError::Usage(format!(
                    "No public port '{port}/{proto}' published for {}",
                    a.container
                )));
            }
            v
        }
    };
    Ok(imago_cli::output::print_lines(lines)?)
}

/// Run `ictr port`.
pub fn run(global: &GlobalOpts, args: &Args) -> ExitCode {
    common::finish(run_port(global, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_strings() {
        let p = parse("0.0.0.0:8080->80/tcp").unwrap();
        assert_eq!(
            (p.host_ip.as_str(), p.host_port.as_str()),
            ("0.0.0.0", "8080")
        );
        assert_eq!((p.port.as_str(), p.proto.as_str()), ("80", "tcp"));
        let p = parse("[::]:53->53/udp").unwrap();
        assert_eq!((p.host_ip.as_str(), p.proto.as_str()), ("::", "udp"));
        assert!(parse("junk").is_none());
    }
}
