//! `itag`'s command line, as clap reads it. Shared with the completion and man page
//! generator (xtask), which includes this file by path: so it names only `clap`, `imago_cli`
//! and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs does).

use clap::Parser;

/// Give an image more names (like `docker tag`).
#[derive(Debug, Parser)]
#[command(name = "itag", version)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    /// The image: NAME[:TAG], image id, unique id prefix, or manifest digest
    pub source: String,
    /// New names: [REGISTRY/]NAME[:TAG]
    #[arg(required = true)]
    pub targets: Vec<String>,
}
