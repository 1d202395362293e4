//! The registry client's one error type: what failed (the step and the object: method +
//! URL, blob digest, reference) and why (transport, status + registry error codes, a
//! digest mismatch, the store). `hint()` tells the user what to do about it. A cause
//! is either the `#[source]` (printed once, by the reporter, as `caused by:`) or part of
//! the message — never both, so no cause is printed twice.
//!
//! Never: prints, or decides exit codes (the bins do).

use std::fmt;
use std::path::PathBuf;

use imago_oci::Digest;

/// One entry of a registry's `{"errors":[{code,message,detail}]}` body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The error codes of a failed response, shown as `CODE: message; CODE: message`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiErrors(pub Vec<ApiError>);

impl ApiErrors {
    /// Parse the body of an error response; anything unparsable gives no codes.
    pub fn from_body(body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(default)]
            errors: Vec<ApiError>,
        }
        Self(
            serde_json::from_slice::<Envelope>(body)
                .map(|e| e.errors)
                .unwrap_or_default(),
        )
    }

    /// True when one of the errors has this code (e.g. `BLOB_UPLOAD_INVALID`).
    pub fn has(&self, code: &str) -> bool {
        self.0.iter().any(|e| e.code == code)
    }
}

impl fmt::Display for ApiErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            let sep = if i == 0 { " (" } else { "; " };
            write!(f, "{sep}{}: {}", e.code, e.message)?;
        }
        if !self.0.is_empty() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    RegistriesConf(#[from] crate::registries_conf::ConfError),
    /// A short name registries.conf leaves ambiguous.
    #[error(transparent)]
    ShortName(#[from] crate::shortnames::ShortNameError),
    #[error("{method} {url}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("registry {host} {stall} while {doing}")]
    Stalled {
        host: String,
        doing: String,
        stall: crate::stall::Stall,
    },
    #[error("{what} at {url} is larger than the {} MiB limit", limit >> 20)]
    TooLarge {
        what: &'static str,
        url: String,
        limit: u64,
    },
    #[error(transparent)]
    Limits(#[from] crate::stall::LimitsError),
    #[error("{method} {url}: registry answered {status}{errors}")]
    Status {
        method: String,
        url: String,
        status: u16,
        errors: ApiErrors,
    },
    #[error("authenticate to {registry}: {reason}")]
    Auth { registry: String, reason: String },
    #[error("get a token from {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("blob {digest}: {reason}")]
    BlobVerify { digest: Digest, reason: String },
    #[error("manifest {reference}: {reason}")]
    Manifest { reference: String, reason: String },
    #[error("no manifest for platform {wanted} in {reference} (it has: {available})")]
    Platform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("image `{0}` is not in the store")]
    NotInStore(String),
    #[error("not logged in to {0}")]
    NotLoggedIn(String),
    #[error("read or write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] imago_store::StoreError),
    #[error(transparent)]
    Credentials(#[from] crate::auth::creds::CredError),
    #[error(transparent)]
    Reference(#[from] imago_oci::ReferenceError),
    #[error("configure TLS for {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("upload of blob {digest} to {repository}: {reason}")]
    Upload {
        digest: Digest,
        repository: String,
        reason: String,
    },
}

impl RegistryError {
    /// The registry's error codes, when the failure is an HTTP status.
    pub fn api_errors(&self) -> Option<&ApiErrors> {
        match self {
            Self::Status { errors, .. } => Some(errors),
            _ => None,
        }
    }

    /// The HTTP status, when the failure is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// One line telling the user what to do, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        let has = |c: &str| self.api_errors().is_some_and(|e| e.has(c));
        match self {
            // Only `ilogin` checks credentials this way: telling it to log in is no help.
            Self::Auth { .. } => Some("check the user name and password (a registry with two-factor login wants an access token)".into()),
            Self::Status { status: 401, url, .. } => Some(format!(
                "log in with `ilogin {}` (or check the stored credentials)",
                crate::client::authority_of(url).unwrap_or("REGISTRY")
            )),
            _ if has("DENIED") || self.status() == Some(403) => {
                Some("the credentials lack the right: check the repository name and your access to it".into())
            }
            _ if has("NAME_UNKNOWN") || has("MANIFEST_UNKNOWN") => {
                Some("check the image name and tag (`skopeo list-tags docker://NAME` lists tags)".into())
            }
            _ if has("TOOMANYREQUESTS") || self.status() == Some(429) => {
                Some("rate limited: wait, or log in (`ilogin`) for a higher limit".into())
            }
            Self::Transport { source, .. }
                if matches!(**source, ureq::Error::Tls(_) | ureq::Error::Rustls(_)) =>
            {
                Some(
                "put the registry's CA in /etc/containers/certs.d/HOST/ca.crt or ~/.config/containers/certs.d/HOST/ca.crt \
                 (SSL_CERT_FILE names the system's CA bundle), or pass --tls-verify=false"
                        .into(),
                )
            }
            Self::Transport { source, .. } => transport_hint(source),
            Self::Stalled { stall, .. } => Some(stall_hint(stall)),
            Self::TooLarge { what, limit, .. } => Some(format!(
                "the server is not serving a real {what} (real ones are a few KiB; imago reads at most {} MiB): \
                 check the registry address and port, and any proxy in between",
                limit >> 20
            )),
            Self::BlobVerify { .. } => Some(
                "the registry, or something between it and imago, sent other bytes than the image names; \
                 try again, and if it persists the registry's copy is damaged"
                    .into(),
            ),
            Self::Limits(_) => Some("unset the variable or give a valid value (docs/registry.md)".into()),
            Self::NotInStore(_) => Some("list images with `iimage ls`, or pull it first with `ipull`".into()),
            Self::Platform { .. } => Some("choose one with --platform OS/ARCH[/VARIANT]".into()),
            Self::Store(e) => e.hint(),
            _ => None,
        }
    }
}

/// What to do about a stall: wait, or loosen the limit that tripped.
fn stall_hint(stall: &crate::stall::Stall) -> String {
    use crate::stall::{StallKind, ENV_ANSWER, ENV_MIN_RATE, ENV_RATE_WINDOW, ENV_STALL};
    let knob = match stall.kind {
        StallKind::Silent(_) => format!("raise {ENV_STALL}"),
        StallKind::NoAnswer(_) if stall.sending => format!("raise {ENV_ANSWER}"),
        StallKind::NoAnswer(_) => format!("raise {ENV_STALL}"),
        StallKind::Slow { .. } | StallKind::Late { .. } => {
            format!("lower {ENV_MIN_RATE} or raise {ENV_RATE_WINDOW}")
        }
    };
    format!("the registry or the network stopped moving data: try again later, or {knob} (docs/registry.md)")
}

/// The hint for a failed exchange, by what failed: only connection failures suggest
/// that the registry is down.
fn transport_hint(e: &ureq::Error) -> Option<String> {
    use ureq::Error as E;
    match e {
        E::Io(_) | E::ConnectionFailed | E::HostNotFound | E::Timeout(_) | E::ConnectProxyFailed(_) => {
            Some("is the registry up and reachable (proxy settings: HTTPS_PROXY, NO_PROXY)?".into())
        }
        E::Protocol(_) => Some(
            "the server does not speak HTTP as a registry does: check the address and port (a TLS port needs HTTPS)".into(),
        ),
        E::TooManyRedirects | E::RedirectFailed => {
            Some("the registry redirects in a loop or to an invalid address: its configuration is broken".into())
        }
        E::BodyExceedsLimit(_) => Some("the server sent far more than a registry would: check the registry address".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(e: ureq::Error) -> RegistryError {
        RegistryError::Transport {
            method: "GET".into(),
            url: "http://127.0.0.1:5000/v2/".into(),
            source: Box::new(e),
        }
    }

    /// The cause is the source, printed once by the reporter: not in the message too.
    #[test]
    fn causes_are_not_repeated_in_the_message() {
        use std::error::Error;
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = transport(ureq::Error::Io(refused));
        let cause = e.source().unwrap().to_string();
        assert!(cause.contains("refused"), "{cause}");
        assert!(!e.to_string().contains(&cause), "{e}");
        assert_eq!(e.to_string(), "GET http://127.0.0.1:5000/v2/");
        let e = RegistryError::from(imago_oci::Reference::parse("A/B").unwrap_err());
        assert_eq!(e.to_string().matches("invalid reference").count(), 1, "{e}");
    }

    #[test]
    fn hints_fit_the_failure() {
        let up = "is the registry up";
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(transport(ureq::Error::Io(refused))
            .hint()
            .unwrap()
            .contains(up));
        let h = transport(ureq::Error::TooManyRedirects).hint().unwrap();
        assert!(!h.contains(up), "{h}");
        let h = RegistryError::TooLarge {
            what: "manifest",
            url: "http://h/v2/a/manifests/1".into(),
            limit: 8 << 20,
        }
        .hint()
        .unwrap();
        assert!(
            h.contains("not serving a real manifest") && h.contains("8 MiB"),
            "{h}"
        );
        // ilogin's own refusal must not tell the user to run ilogin.
        let h = RegistryError::Auth {
            registry: "r:1".into(),
            reason: "refused".into(),
        }
        .hint()
        .unwrap();
        assert!(!h.contains("ilogin"), "{h}");
        let stalled = |sending, kind| RegistryError::Stalled {
            host: "h:1".into(),
            doing: "downloading blob x".into(),
            stall: crate::stall::Stall { sending, kind },
        };
        let s = stalled(
            false,
            crate::stall::StallKind::Silent(std::time::Duration::from_secs(20)),
        );
        assert_eq!(
            s.to_string(),
            "registry h:1 sent no data for 20 s while downloading blob x"
        );
        assert!(s.hint().unwrap().contains(crate::stall::ENV_STALL));
        let s = stalled(
            false,
            crate::stall::StallKind::Slow {
                bytes: 3,
                window: std::time::Duration::from_secs(60),
                min_rate: 1024,
            },
        );
        assert!(s.hint().unwrap().contains(crate::stall::ENV_MIN_RATE));
    }
}
