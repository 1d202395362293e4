//! `ipull`'s command line, as clap reads it. Shared with the completion and man page
//! generator (xtask), which includes this file by path: so it names only `clap`, `imago_cli`, `imago_registry`
//! and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs does).

use clap::Parser;

/// Pull an image from an OCI registry (Docker Hub by default) into the imago store.
#[derive(Debug, Parser)]
#[command(name = "ipull", version)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    #[command(flatten)]
    pub remote: imago_cli::remote::RemoteOpts,
    /// Platform to pick from a multi-platform image (OS/ARCH[/VARIANT]; default: this host's)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<imago_registry::Platform>,
    /// Blobs fetched at once
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// No progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// The image: [REGISTRY/]NAME[:TAG|@DIGEST] (docker.io/library/ for bare names)
    pub reference: String,
}
