//! The HTTP transport: one `ureq` agent per registry host with its TLS trust, proxies and
//! connection pool, and the scheme rule (HTTPS verified by default; plain HTTP only for
//! loopback hosts, like docker, or when the user turns verification off).
//!
//! TLS is rustls with the `ring` provider: pure Rust plus C that gcc builds, no OpenSSL to
//! link or load, so the static build (scripts/build-static.sh) keeps HTTPS. Trust: the
//! system's roots found as OpenSSL finds them (`SSL_CERT_FILE` and `SSL_CERT_DIR` when
//! set, else the distribution's bundle), plus the CA files (`*.crt`) of
//! `/etc/containers/certs.d/HOST/`, `/etc/docker/certs.d/HOST/` and
//! `~/.config/containers/certs.d/HOST/` (or `--cert-dir`).
//! Proxies: `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY`, for token requests too.
//! Redirects are followed; `Authorization` is never sent to another host after one.
//! The TLS configuration of a registry's agent is made when first needed (client.rs
//! makes it before it tries HTTPS): a plain-HTTP registry never has the trust store read.
//!
//! Never: authenticates (auth/), retries (client.rs) or parses registry bodies.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    ConnectProxyConnector, ConnectionDetails, Connector, Either, TcpConnector, Transport,
};
use ureq::Agent;

use crate::error::RegistryError;
use crate::stall::TransferLimits;
use crate::tls;

/// How the user wants TLS handled.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// `Some(false)`: accept any certificate and allow plain HTTP (`--tls-verify=false`).
    /// `Some(true)`: always verify, even for loopback hosts. `None`: the default rule.
    pub tls_verify: Option<bool>,
    /// Directories holding `HOST/*.crt` CA files; `None`: the default list.
    pub certs_dirs: Option<Vec<PathBuf>>,
    /// A directory of CA files (`*.crt`) used for every host (`--cert-dir`), instead of
    /// the certs.d search.
    pub ca_dir: Option<PathBuf>,
    /// When a transfer counts as stalled or too slow (stall.rs).
    pub limits: TransferLimits,
}

impl TransportOptions {
    /// The certs.d directories searched, in order.
    pub fn certs_dirs(&self) -> Vec<PathBuf> {
        if let Some(d) = &self.certs_dirs {
            return d.clone();
        }
        let mut v = Vec::new();
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(c) = config_home {
            v.push(c.join("containers/certs.d"));
        }
        v.push(PathBuf::from("/etc/containers/certs.d"));
        v.push(PathBuf::from("/etc/docker/certs.d"));
        v
    }

    /// May this host be reached over plain HTTP (after HTTPS failed)?
    pub fn allows_plain_http(&self, host: &str) -> bool {
        match self.tls_verify {
            Some(false) => true,
            Some(true) => false,
            None => is_loopback(host),
        }
    }
}

/// True for `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback(authority: &str) -> bool {
    let host = host_of(authority);
    if host == "localhost" {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The host part of `host[:port]` or `[v6]:port`.
pub fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
}

/// The CA files for `authority` found in the certs.d directories.
pub fn extra_ca_files(dirs: &[PathBuf], authority: &str) -> Vec<PathBuf> {
    dirs.iter()
        .flat_map(|d| crt_files(&d.join(authority)))
        .collect()
}

/// The `*.crt` files of a directory, sorted; none when it is missing.
fn crt_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    files
}

/// Build the agent for one host, its TLS configuration (trust store included) made now.
pub fn agent_for(authority: &str, opts: &TransportOptions) -> Result<Agent, RegistryError> {
    let (agent, tls) = agent_with_lazy_tls(authority, opts);
    tls.load()?;
    Ok(agent)
}

/// Build the agent for one host; its TLS configuration is made at the first TLS
/// connection, or by [`LazyTls::load`]. A registry reached over plain HTTP (a loopback
/// one) then never pays for parsing the system's trust store: several milliseconds,
/// before the first request, of every push and pull.
pub fn agent_with_lazy_tls(authority: &str, opts: &TransportOptions) -> (Agent, LazyTls) {
    let tls = LazyTls(Arc::new(TlsParts {
        authority: authority.to_owned(),
        opts: opts.clone(),
        connector: OnceLock::new(),
    }));
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .max_redirects(8)
        .max_idle_connections(32)
        .max_idle_connections_per_host(16)
        .timeout_connect(Some(Duration::from_secs(30)))
        // A registry that stops sending or stops taking our upload fails the transfer
        // after `stall`; requests with a body wait longer for their answer
        // (client.rs sets that per request), and the rate floor is stall.rs's Watch.
        .timeout_per_read(Some(opts.limits.stall))
        .timeout_per_write(Some(opts.limits.stall))
        .timeout_recv_response(Some(opts.limits.stall))
        .user_agent(concat!("imago/", env!("CARGO_PKG_VERSION")))
        .build();
    // ureq's default chain (HTTP CONNECT proxy, TCP, TLS) with our TLS at its end.
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(tls.clone());
    let agent = Agent::with_parts(config, connector, DefaultResolver::default());
    (agent, tls)
}

/// The TLS end of an agent's connector chain, made once, when first needed.
#[derive(Debug, Clone)]
pub struct LazyTls(Arc<TlsParts>);

#[derive(Debug)]
struct TlsParts {
    authority: String,
    opts: TransportOptions,
    /// The connector, or why it could not be made.
    connector: OnceLock<Result<tls::TlsConnector, String>>,
}

impl LazyTls {
    /// Make the TLS configuration now (the trust store and the host's CA files), so that
    /// a bad CA file fails here with its name rather than inside a connection.
    pub fn load(&self) -> Result<(), RegistryError> {
        self.connector()
            .map(|_| ())
            .map_err(|reason| RegistryError::Tls {
                host: self.0.authority.clone(),
                reason: reason.clone(),
            })
    }

    fn connector(&self) -> Result<&tls::TlsConnector, &String> {
        let p = &self.0;
        p.connector
            .get_or_init(|| tls_connector(&p.authority, &p.opts))
            .as_ref()
    }
}

impl<In: Transport> Connector<In> for LazyTls {
    type Out = <tls::TlsConnector as Connector<In>>::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        match chained {
            Some(plain) if !details.needs_tls() => Ok(Some(Either::A(plain))),
            chained => match self.connector() {
                Ok(c) => c.connect(details, chained),
                Err(reason) => Err(ureq::Error::Io(std::io::Error::other(reason.clone()))),
            },
        }
    }
}

/// The TLS connector for `authority`; the error is the reason it could not be made.
fn tls_connector(authority: &str, opts: &TransportOptions) -> Result<tls::TlsConnector, String> {
    let verify = opts.tls_verify != Some(false);
    let mut roots = Vec::new();
    if verify {
        let extra = match &opts.ca_dir {
            Some(d) => crt_files(d),
            None => extra_ca_files(&opts.certs_dirs(), authority),
        };
        roots = system_roots();
        for f in &extra {
            roots.extend(
                read_pem_certs(f)
                    .map_err(|reason| format!("read CA file {}: {reason}", f.display()))?,
            );
        }
        if !extra.is_empty() {
            tracing::debug!(host = authority, files = ?extra, "extra CA files");
        }
    }
    let tls = tls::client_config(roots, verify).map_err(|e| e.to_string())?;
    Ok(tls::TlsConnector::new(tls))
}

/// The system's trust store, as OpenSSL finds it: `SSL_CERT_FILE` and `SSL_CERT_DIR`
/// (`:`-separated) when set, else the distribution's bundle and hashed directory
/// (Debian, RHEL, SUSE, Alpine, ... paths). Unreadable or malformed entries are skipped:
/// one bad file must not cost the rest, and a registry whose CA is missing fails its
/// handshake with a hint naming certs.d.
fn system_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "system CA store");
    }
    // Also how tests see that programs working offline never read the store.
    tracing::debug!(certs = found.certs.len(), "system trust store loaded");
    found.certs
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => {
                out.push(CertificateDer::from(c.der().to_vec()))
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_allow_plain_http_by_default() {
        let o = TransportOptions::default();
        for h in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(o.allows_plain_http(h), "{h}");
        }
        for h in ["registry-1.docker.io", "10.0.0.1:5000", "ghcr.io"] {
            assert!(!o.allows_plain_http(h), "{h}");
        }
        let strict = TransportOptions {
            tls_verify: Some(true),
            ..Default::default()
        };
        assert!(!strict.allows_plain_http("127.0.0.1:5000"));
        let lax = TransportOptions {
            tls_verify: Some(false),
            ..Default::default()
        };
        assert!(lax.allows_plain_http("example.com"));
    }

    #[test]
    fn extra_ca_files_come_from_the_host_dir() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("reg.example:5000");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("ca.crt"), "x").unwrap();
        std::fs::write(host.join("client.cert"), "x").unwrap();
        let found = extra_ca_files(&[t.path().to_path_buf()], "reg.example:5000");
        assert_eq!(found, vec![host.join("ca.crt")]);
        assert!(extra_ca_files(&[t.path().to_path_buf()], "other").is_empty());
    }
}
