//! `ipush`'s command line, as clap reads it. Shared with the completion and man page
//! generator (xtask), which includes this file by path: so it names only `clap`, `imago_cli`
//! and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs does).

use clap::Parser;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Oci,
    /// Docker schema 2 (alias: v2s2)
    #[value(alias = "v2s2")]
    Docker,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Comp {
    Gzip,
    Zstd,
}

/// Push an image from the imago store to an OCI registry.
#[derive(Debug, Parser)]
#[command(name = "ipush", version)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    #[command(flatten)]
    pub remote: imago_cli::remote::RemoteOpts,
    /// Layer compression to push (recompresses layers stored otherwise; default: as stored)
    #[arg(long, value_enum)]
    pub compression: Option<Comp>,
    /// Manifest format to push (default: as stored)
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Blobs uploaded at once
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Upload blobs in chunks of this many bytes (default: one PUT per blob up to 128 MiB,
    /// 64 MiB chunks for larger blobs, so that a killed push can resume)
    #[arg(long, value_name = "BYTES")]
    pub chunk_size: Option<u64>,
    /// Do not try cross-repository mounts
    #[arg(long)]
    pub no_mount: bool,
    /// Write the pushed manifest digest to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<std::path::PathBuf>,
    /// No progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// The image in the store (name[:tag] or id)
    pub source: String,
    /// Where to push: [REGISTRY/]NAME[:TAG] (default: SOURCE's name)
    pub dest: Option<String>,
}
