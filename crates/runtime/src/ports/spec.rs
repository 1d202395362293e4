//! What `-p` and `-P` ask for: docker's `[IP:][HOST:]CTR[/tcp|/udp]` forms (ranges
//! `8080-8081:80-81` included), an image's EXPOSE entries, and docker's display form
//! `0.0.0.0:8080->80/tcp` (`Display`, read back by `FromStr`, as a container's record
//! keeps it). Pure.
//! Never: binds, forks or touches the kernel (bind.rs, forwarder.rs do).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// Most ports one container may publish (a range expands to one entry per port, each
/// a listening socket and a thread in the forwarder).
pub const MAX_PORTS: usize = 1024;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port: host address and port (0 = any free port, chosen when bound)
/// to a container port on the container's loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortSpec {
    /// The host address to listen on (default 0.0.0.0: every IPv4 address).
    pub host_ip: IpAddr,
    /// The host port; 0 until bound when irun picks a free one.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// tcp or udp.
    pub proto: Proto,
}

/// A bad `-p` value or EXPOSE entry; the value is named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// The `-p` value does not parse.
    #[error("invalid port `{spec}`: {why} (use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp])")]
    Invalid {
        /// The value as given.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// An EXPOSE entry of the image does not parse.
    #[error("the image exposes `{entry}`, which is not a port: {why}")]
    Exposed {
        /// The entry.
        entry: String,
        /// What is wrong.
        why: String,
    },
    /// A text that is not [`PortSpec`]'s display form.
    #[error("`{0}` is not a published port in the form 0.0.0.0:8080->80/tcp")]
    NotDisplayForm(String),
    /// Too many ports in all.
    #[error("{count} ports to publish: at most {max} are supported")]
    TooMany {
        /// How many were asked for.
        count: usize,
        /// [`MAX_PORTS`].
        max: usize,
    },
}

impl fmt::Display for PortSpec {
    /// docker's form: `0.0.0.0:8080->80/tcp`, `[::1]:8080->80/udp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = SocketAddr::new(self.host_ip, self.host_port);
        write!(f, "{host}->{}/{}", self.container_port, self.proto)
    }
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    /// The `Display` form back: `0.0.0.0:8080->80/tcp`, `[::1]:0->53/udp` (not `-p`'s
    /// forms: [`PortSpec::parse`] reads those).
    fn from_str(s: &str) -> Result<PortSpec, PortSpecError> {
        let parts = || -> Option<PortSpec> {
            let (host, ctr) = s.split_once("->")?;
            let host: SocketAddr = host.parse().ok()?;
            let (port, proto) = ctr.split_once('/')?;
            Some(PortSpec {
                host_ip: host.ip(),
                host_port: host.port(),
                container_port: port.parse().ok()?,
                proto: match proto {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => return None,
                },
            })
        };
        parts().ok_or_else(|| PortSpecError::NotDisplayForm(s.to_string()))
    }
}

impl PortSpec {
    /// The host address to bind.
    pub fn host_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host_ip, self.host_port)
    }

    /// Parse one `-p` value: `CTR`, `HOST:CTR`, `IP:HOST:CTR`, `IP::CTR`, each port
    /// possibly a range `A-B` (host and container ranges of the same length, or no host
    /// port), IPv6 addresses in brackets, `/tcp` (default) or `/udp` at the end.
    pub fn parse(spec: &str) -> Result<Vec<PortSpec>, PortSpecError> {
        let bad = |why: &str| PortSpecError::Invalid {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        let (addr, proto) = split_proto(spec).map_err(|w| bad(&w))?;
        let (ip, host, ctr) = split_addr(addr).map_err(|w| bad(&w))?;
        let host_ip = match ip {
            None | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(ip) => ip
                .parse()
                .map_err(|_| bad(&format!("`{ip}` is not an IP address")))?,
        };
        let ctr = range(ctr, false).map_err(|w| bad(&w))?;
        let host = match host {
            None | Some("") => None,
            Some(h) => Some(range(h, true).map_err(|w| bad(&w))?),
        };
        let count = usize::from(ctr.1 - ctr.0) + 1;
        if count > MAX_PORTS {
            return Err(PortSpecError::TooMany {
                count,
                max: MAX_PORTS,
            });
        }
        if let Some(h) = host {
            if h.1 - h.0 != ctr.1 - ctr.0 {
                return Err(bad(
                    "the host and container port ranges must be of the same length",
                ));
            }
            if h.0 == 0 && h.1 != 0 {
                return Err(bad("host port 0 (any free port) cannot start a range"));
            }
        }
        Ok((0..count as u16)
            .map(|i| PortSpec {
                host_ip,
                host_port: host
                    .map(|h| if h.0 == 0 { 0 } else { h.0 + i })
                    .unwrap_or(0),
                container_port: ctr.0 + i,
                proto,
            })
            .collect())
    }

    /// The ports `-P` publishes: every EXPOSE entry (`80`, `80/tcp`, `53/udp`,
    /// `8000-8001/tcp`) not already in `published` (same container port and protocol),
    /// each on a free host port of 0.0.0.0.
    pub fn publish_all(
        exposed: &[String],
        published: &[PortSpec],
    ) -> Result<Vec<PortSpec>, PortSpecError> {
        let mut out: Vec<PortSpec> = Vec::new();
        for entry in exposed {
            let bad = |why: String| PortSpecError::Exposed {
                entry: entry.clone(),
                why,
            };
            let (port, proto) = split_proto(entry).map_err(bad)?;
            let (a, b) = range(port, false).map_err(bad)?;
            for p in a..=b {
                let taken = |s: &PortSpec| s.container_port == p && s.proto == proto;
                if published.iter().any(taken) || out.iter().any(taken) {
                    continue;
                }
                out.push(PortSpec {
                    host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    host_port: 0,
                    container_port: p,
                    proto,
                });
                if out.len() + published.len() > MAX_PORTS {
                    return Err(PortSpecError::TooMany {
                        count: out.len() + published.len(),
                        max: MAX_PORTS,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// `ADDR[/PROTO]` → (ADDR, protocol).
fn split_proto(s: &str) -> Result<(&str, Proto), String> {
    match s.rsplit_once('/') {
        None => Ok((s, Proto::Tcp)),
        Some((a, "tcp")) => Ok((a, Proto::Tcp)),
        Some((a, "udp")) => Ok((a, Proto::Udp)),
        Some((_, "sctp")) => Err("sctp is not supported (tcp, udp)".into()),
        Some((_, p)) => Err(format!("unknown protocol `{p}` (tcp, udp)")),
    }
}

/// `[IP:][HOST:]CTR` → (IP, HOST, CTR); an IPv6 address goes in brackets.
type AddrParts<'a> = (Option<&'a str>, Option<&'a str>, &'a str);

fn split_addr(s: &str) -> Result<AddrParts<'_>, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, rest) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        let rest = rest
            .strip_prefix(':')
            .ok_or("a host port or `:` must follow the IPv6 address")?;
        return match rest.split_once(':') {
            Some((host, ctr)) => Ok((Some(ip), Some(host), ctr)),
            None => {
                Err("IP:HOST_PORT:CONTAINER_PORT needs both ports (HOST_PORT may be empty)".into())
            }
        };
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts[..] {
        [ctr] => Ok((None, None, ctr)),
        [host, ctr] => Ok((None, Some(host), ctr)),
        [ip, host, ctr] => Ok((Some(ip), Some(host), ctr)),
        _ => Err("too many `:` (write an IPv6 address in brackets: [::1]:8080:80)".into()),
    }
}

/// `N` or `A-B` → (first, last); host ports may be 0 (any free port).
fn range(s: &str, host: bool) -> Result<(u16, u16), String> {
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) if host => Ok(0),
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("`{p}` is not a port (1-65535)")),
        }
    };
    if s.is_empty() {
        return Err("the container port is missing".into());
    }
    match s.split_once('-') {
        None => port(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("the range `{s}` ends before it starts"));
            }
            Ok((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> String {
        let v = PortSpec::parse(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v[0].to_string()
    }

    #[test]
    fn dockers_forms_parse_and_display() {
        assert_eq!(one("8080:80"), "0.0.0.0:8080->80/tcp");
        assert_eq!(one("80"), "0.0.0.0:0->80/tcp");
        assert_eq!(one("127.0.0.1:8080:80/udp"), "127.0.0.1:8080->80/udp");
        assert_eq!(one("127.0.0.1::80"), "127.0.0.1:0->80/tcp");
        assert_eq!(one("[::1]:8080:80"), "[::1]:8080->80/tcp");
        assert_eq!(one("[::]::80/tcp"), "[::]:0->80/tcp");
        assert_eq!(one("0:80"), "0.0.0.0:0->80/tcp");
    }

    #[test]
    fn published_ports_read_back_their_display_form() {
        for spec in [
            "0.0.0.0:8080->80/tcp",
            "[::1]:0->53/udp",
            "127.0.0.1:1->2/tcp",
        ] {
            let p: PortSpec = spec.parse().unwrap();
            assert_eq!(p.to_string(), spec);
        }
        assert!("8080:80".parse::<PortSpec>().is_err());
        assert!("0.0.0.0:1->2/sctp".parse::<PortSpec>().is_err());
    }

    #[test]
    fn ranges_expand_pairwise() {
        let v: Vec<String> = PortSpec::parse("8080-8082:80-82/udp")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            v,
            [
                "0.0.0.0:8080->80/udp",
                "0.0.0.0:8081->81/udp",
                "0.0.0.0:8082->82/udp"
            ]
        );
        let v = PortSpec::parse("80-81").unwrap();
        assert!(v.iter().all(|p| p.host_port == 0) && v.len() == 2);
    }

    #[test]
    fn bad_values_are_named() {
        for (s, why) in [
            ("", "container port is missing"),
            ("8080:", "container port is missing"),
            ("x:80", "`x` is not a port"),
            ("8080:0", "`0` is not a port"),
            ("8080:70000", "`70000` is not a port"),
            ("80/sctp", "sctp is not supported"),
            ("80/icmp", "unknown protocol"),
            ("1.2.3:80:80", "not an IP address"),
            ("::1:80:80", "too many `:`"),
            ("[::1:80:80", "closing `]`"),
            ("8080-8081:80", "same length"),
            ("82-80", "ends before it starts"),
            ("0-5:80-85", "cannot start a range"),
        ] {
            let e = PortSpec::parse(s).unwrap_err().to_string();
            assert!(e.contains(&format!("`{s}`")), "{s}: {e}");
            assert!(e.contains(why), "{s}: {e}");
        }
        let e = PortSpec::parse("1-2000").unwrap_err();
        assert!(
            matches!(e, PortSpecError::TooMany { count: 2000, .. }),
            "{e}"
        );
    }

    #[test]
    fn publish_all_takes_exposed_ports_not_published_yet() {
        let published = PortSpec::parse("8080:80").unwrap();
        let exposed: Vec<String> = ["80/tcp", "53/udp", "9000-9001", "80/udp"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let v: Vec<String> = PortSpec::publish_all(&exposed, &published)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            v,
            [
                "0.0.0.0:0->53/udp",
                "0.0.0.0:0->9000/tcp",
                "0.0.0.0:0->9001/tcp",
                "0.0.0.0:0->80/udp"
            ]
        );
        let e = PortSpec::publish_all(&["http".to_string()], &[]).unwrap_err();
        assert!(e.to_string().contains("`http`"), "{e}");
    }
}
