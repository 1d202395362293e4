//! `ilogin`'s command line, as clap reads it. Shared with the completion and man page
//! generator (xtask), which includes this file by path: so it names only `clap`, `imago_cli`
//! and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs does).

use clap::Parser;

/// Log in to an OCI registry: check the credentials, then store them where podman and
/// imago look ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, else
/// ~/.config/containers/auth.json).
#[derive(Debug, Parser)]
#[command(name = "ilogin", version)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    #[command(flatten)]
    pub remote: imago_cli::remote::RemoteOpts,
    /// User name (asked for on a terminal when missing)
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: arguments show in `ps`)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin (one line)
    #[arg(long)]
    pub password_stdin: bool,
    /// Remove the stored credentials instead
    #[arg(long)]
    pub logout: bool,
    /// The registry (docker.io for Docker Hub)
    #[arg(default_value = "docker.io")]
    pub registry: String,
}
