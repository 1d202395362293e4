//! `ilogout`'s command line, as clap reads it. Shared with the completion and man page
//! generator (xtask), which includes this file by path: so it names only `clap`, `imago_cli`
//! and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs does).

use clap::Parser;

/// Log out of an OCI registry (docker logout): remove its credentials from every file
/// imago reads them from, and from the credential helper that holds them.
#[derive(Debug, Parser)]
#[command(name = "ilogout", version)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    #[command(flatten)]
    pub remote: imago_cli::remote::RemoteOpts,
    /// The registry, or a namespace in it as stored by `ilogin` (`quay.io/org`);
    /// docker.io for Docker Hub
    #[arg(default_value = "docker.io")]
    pub registry: String,
}
