//! What `ipull`, `ipush` and `ilogin` share at their edge: the registry flags
//! ([`RemoteOpts`]) and the [`ConnectOptions`] they mean, `ilogin`'s reading of a
//! user name and password (flags, a terminal prompt, or one line of stdin), and the
//! errors of `irun`'s pull of its image (crate::run_image, re-exported here).
//!
//! Never: talks to a registry or reads credential files itself (imago-registry does).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use imago_registry::{AuthFiles, ConnectOptions, Credentials, RegistryError, TransportOptions};

pub use crate::run_image::{pull_for_run, Platform, PullPolicy};

/// Registry connection flags; `#[command(flatten)]` them into a bin's options.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteOpts {
    /// Verify TLS (default: yes, except for localhost/127.0.0.1, which may also use plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Directory of CA files (`*.crt`) for the registry, instead of the certs.d search
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Credentials file (default: $REGISTRY_AUTH_FILE, then podman's and docker's files)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// USER:PASSWORD to use instead of stored credentials
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
}

/// Flags or input that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("--creds takes USER:PASSWORD")]
    Creds,
    /// The environment's settings (`IMAGO_REGISTRY_*`) are invalid.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("read {what}")]
    Read {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no user name: pass -u USER")]
    NoUser,
    #[error("no password: pipe it into --password-stdin, or run on a terminal to be asked")]
    NoPassword,
    #[error("--password and --password-stdin exclude each other")]
    TwoPasswords,
    #[error("user name and password must not be empty")]
    Empty,
    #[error("--pull always: `{0}` is not a registry reference: {1}")]
    NotPullable(String, String),
    /// The store could not say whether it has the image.
    #[error(transparent)]
    Store(#[from] imago_store::StoreError),
    /// `irun` of an image no store has, whose pull failed.
    #[error("image `{image}` is not in the store, and pulling {reference} failed")]
    PullMissing {
        image: String,
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
    /// `--pull never --platform P` of an image the store has for another platform.
    #[error("image `{image}` in the store is {has}, not {wanted}, and --pull never forbids pulling {wanted}")]
    OtherPlatform {
        image: String,
        has: String,
        wanted: String,
    },
    /// A short name registries.conf leaves ambiguous.
    #[error(transparent)]
    ShortName(#[from] crate::shortnames::ShortNameError),
}

impl RemoteOpts {
    /// The connection settings: the environment's, with these flags applied.
    pub fn connect_options(&self) -> Result<ConnectOptions, RemoteError> {
        let mut o = ConnectOptions::from_env()?;
        if let Some(f) = &self.authfile {
            o.auth_files = AuthFiles {
                read: vec![f.clone()],
                write: Some(f.clone()),
            };
        }
        if let Some(c) = &self.creds {
            let (u, p) = c.split_once(':').ok_or(RemoteError::Creds)?;
            o.credentials = Some(Credentials {
                username: u.into(),
                password: p.into(),
            });
        }
        o.transport = TransportOptions {
            tls_verify: self.tls_verify,
            certs_dirs: None,
            ca_dir: self.cert_dir.clone(),
            limits: o.transport.limits,
        };
        Ok(o)
    }
}

impl RemoteOpts {
    /// The store root and the connection settings of a program that moves images
    /// between the store and a registry; on failure the error is reported (as
    /// [`crate::args::parse`] does) and the exit code is returned.
    pub fn with_store_root(
        &self,
        global: &crate::GlobalOpts,
    ) -> Result<(PathBuf, ConnectOptions), ExitCode> {
        let root = global.store_root().map_err(|e| crate::fail(&e))?;
        let connect = self.connect_options().map_err(|e| crate::fail(&e))?;
        Ok((root, connect))
    }
}

/// `ilogout REGISTRY` and `ilogin --logout REGISTRY`: remove the stored credentials
/// and say so on stderr, as docker does; the exit status of the program.
pub fn logout(registry: &str, connect: &ConnectOptions) -> ExitCode {
    match imago_registry::logout(registry, connect) {
        Ok(_) => {
            // The exit status says it worked; a closed stderr loses only the line.
            let _ = writeln!(
                std::io::stderr(),
                "Removed login credentials for {registry}"
            );
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e),
    }
}

/// `ilogin`'s credentials: the user name from `-u` or, on a terminal, a prompt; the
/// password from `-p` or one line of stdin (`--password-stdin`).
pub fn read_credentials(
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<Credentials, RemoteError> {
    let terminal = std::io::stdin().is_terminal();
    let read = |what| move |source| RemoteError::Read { what, source };
    let username = match username {
        Some(u) => u,
        None if terminal => crate::prompt::ask("Username: ").map_err(read("user name"))?,
        None => return Err(RemoteError::NoUser),
    };
    let password = match (password, password_stdin) {
        (Some(_), true) => return Err(RemoteError::TwoPasswords),
        (Some(p), false) => p,
        (None, true) => crate::prompt::read_line().map_err(read("password from stdin"))?,
        (None, false) if terminal => {
            crate::prompt::ask_secret("Password: ").map_err(read("password"))?
        }
        (None, false) => return Err(RemoteError::NoPassword),
    };
    if username.is_empty() || password.is_empty() {
        return Err(RemoteError::Empty);
    }
    Ok(Credentials { username, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(creds: Option<&str>) -> RemoteOpts {
        RemoteOpts {
            tls_verify: Some(false),
            cert_dir: None,
            authfile: Some("/x/auth.json".into()),
            creds: creds.map(str::to_owned),
        }
    }

    #[test]
    fn flags_become_connect_options() {
        let o = opts(Some("me:p:w")).connect_options().unwrap();
        let c = o.credentials.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "p:w"));
        assert_eq!(o.auth_files.write, Some(PathBuf::from("/x/auth.json")));
        assert_eq!(o.transport.tls_verify, Some(false));
        assert!(matches!(
            opts(Some("nocolon")).connect_options(),
            Err(RemoteError::Creds)
        ));
    }
}
