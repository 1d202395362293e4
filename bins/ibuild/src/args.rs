//! `ibuild`'s command line, as clap reads it. Shared with the completion and man page
//! generator (xtask), which includes this file by path: so it names only `clap`, `imago_cli`
//! and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs does).

use std::path::PathBuf;

use clap::Parser;

/// Build an image from a Dockerfile.
#[derive(Debug, Parser)]
#[command(name = "ibuild", version, about)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    /// Name (and optionally a tag) for the image: `name:tag` (repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/Containerfile); `-` reads stdin
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// The stage to build (default: the last one)
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// A build-time variable: `K=V`, or `K` to take it from the environment (repeatable)
    #[arg(long = "build-arg", value_name = "K[=V]")]
    pub build_args: Vec<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Write the image id (`sha256:…`) to FILE once the build succeeds
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Pass the host's proxy variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, … in either
    /// case) to RUN steps, as podman does; they stay out of the image's config, history and
    /// cache key. `--build-arg` of the same name wins
    #[arg(long, value_name = "BOOL", default_value = "true", action = clap::ArgAction::Set)]
    pub http_proxy: bool,
    /// Print only the image id (on stdout)
    #[arg(short, long)]
    pub quiet: bool,
    /// Add a label to the image: `K=V` (repeatable)
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Network for RUN steps
    #[arg(long, value_name = "MODE", default_value = "host", value_parser = ["host", "none", "private", "default"])]
    pub network: String,
    /// Progress display: `tty` (a spinner per step with its last output line), `plain`
    /// (one line per step and the RUN output as is), `auto` (tty when stderr is a terminal)
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Always pull base images from their registry (default: only when missing from the store)
    #[arg(long)]
    pub pull: bool,
    /// Target platform (OS/ARCH[/VARIANT]; default: this host's): TARGETPLATFORM, and the
    /// platform of stages without their own `FROM --platform`, whose base images are
    /// picked from a multi-platform image for it (a stored image of another platform is
    /// pulled again). RUN steps of a platform this host cannot run fail
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<imago_cli::remote::Platform>,
    /// A secret for `RUN --mount=type=secret`: `id=NAME,src=FILE` (repeatable)
    #[arg(long = "secret", value_name = "id=NAME,src=FILE")]
    pub secrets: Vec<String>,
    /// Clamp timestamps to this Unix time for reproducible images (default: $SOURCE_DATE_EPOCH)
    #[arg(long, value_name = "SECONDS", env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
    /// How RUN steps get their root: overlay (kernel overlayfs in a user namespace),
    /// fuse, or copy (a private copy of the parent's layers: slow, for hosts without
    /// either). Default: $IMAGO_STORAGE_DRIVER, else the config key storage_driver, else
    /// what this host supports. The layers are the same with every driver
    #[arg(long, value_name = "DRIVER")]
    pub storage_driver: Option<String>,
    /// The build context: a directory, or `-` for a tar on stdin
    #[arg(value_name = "CONTEXT")]
    pub context: String,
}
