//! The registry client's one error type: what failed (the step and the object: method +
//! URL, blob digest, reference) and why (transport, status + registry error codes, a
//! digest mismatch, the store). `hint()` tells the user what to do about it.
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
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
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
    #[error("read or write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] crate::layout::LayoutError),
    #[error(transparent)]
    Credentials(#[from] crate::auth::creds::CredError),
    #[error("invalid reference: {0}")]
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
            Self::Auth { registry, .. } => Some(format!("log in with `ilogin {registry}` (or check the stored credentials)")),
            Self::Status { status: 401, .. } => Some("log in with `ilogin REGISTRY`".into()),
            _ if has("DENIED") || self.status() == Some(403) => {
                Some("the credentials lack the right: check the repository name and your access to it".into())
            }
            _ if has("NAME_UNKNOWN") || has("MANIFEST_UNKNOWN") => {
                Some("check the image name and tag (`skopeo list-tags docker://NAME` lists tags)".into())
            }
            _ if has("TOOMANYREQUESTS") || self.status() == Some(429) => {
                Some("rate limited: wait, or log in (`ilogin`) for a higher limit".into())
            }
            Self::Transport { source, .. } if matches!(**source, ureq::Error::Tls(_)) || source.to_string().contains("certificate") => Some(
                "put the registry's CA in /etc/containers/certs.d/HOST/ca.crt or ~/.config/containers/certs.d/HOST/ca.crt, \
                 or pass --tls-verify=false"
                    .into(),
            ),
            Self::Transport { .. } => Some("is the registry up and reachable (proxy settings: HTTPS_PROXY, NO_PROXY)?".into()),
            Self::NotInStore(_) => Some("list images with `iimage ls`, or pull it first with `ipull`".into()),
            Self::Platform { .. } => Some("choose one with --platform OS/ARCH[/VARIANT]".into()),
            _ => None,
        }
    }
}
