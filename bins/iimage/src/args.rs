//! `iimage`'s command line: its verbs and their options, as clap reads them. Shared with
//! the completion and man page generator (xtask), which includes this file by path: so it
//! names only `clap`, `imago_cli`, `imago_store` and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs dispatches to the verbs' modules).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use imago_cli::OutputFormat;

/// The imago image inventory.
#[derive(Debug, Parser)]
#[command(name = "iimage", version)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List images (REPOSITORY TAG IMAGE ID CREATED SIZE)
    #[command(alias = "list", alias = "images")]
    Ls {
        /// Only image ids
        #[arg(short, long)]
        quiet: bool,
        /// Full image ids
        #[arg(long)]
        no_trunc: bool,
        /// table, json (one object per line) or a Go template (`{{.Repository}}:{{.Tag}}`,
        /// `table {{.ID}}\t{{.Size}}`); fields: ID, Repository, Tag, Digest,
        /// CreatedSince, CreatedAt, Size
        #[arg(long, value_name = "FORMAT", default_value = "table")]
        format: String,
        /// Only some images: reference=PATTERN, dangling=true|false, label=KEY[=VALUE],
        /// before=IMAGE, since=IMAGE (repeatable)
        #[arg(short, long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<String>,
        /// Show the manifest digest in the table
        #[arg(long)]
        digests: bool,
        /// All images (docker's intermediate images: the store keeps none, so the same list)
        #[arg(short, long)]
        all: bool,
        /// Only the names matching REPOSITORY[:TAG] (a `reference` pattern)
        #[arg(value_name = "REPOSITORY[:TAG]")]
        reference: Option<String>,
    },
    /// Show images as a JSON array in docker's shape (Id, RepoTags, Config, RootFS...)
    Inspect {
        /// A Go template applied to each image (`{{json .Config.Env}}`)
        #[arg(short, long, value_name = "TEMPLATE", conflicts_with = "raw")]
        format: Option<String>,
        /// imago's stored view instead: the OCI manifest and config as stored, with
        /// the index and manifest digests
        #[arg(long)]
        raw: bool,
        /// Images: NAME[:TAG], id, id prefix or digest
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images: by name, untag it (and delete the image with its last name); by
    /// id, delete the image (-f when it has several names)
    #[command(alias = "rmi")]
    Rm {
        /// Delete an image by id even when it has several names
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images without a name (-a: every image no container uses), then collect
    /// garbage
    Prune {
        /// Do not ask (kept for docker compatibility; iimage never asks)
        #[arg(short, long)]
        force: bool,
        /// Remove every image no container was made from, not only unnamed ones
        #[arg(short, long)]
        all: bool,
    },
    /// Make a one-layer image from a root file system tarball or directory
    Import {
        /// Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE,
        /// LABEL, STOPSIGNAL, VOLUME (repeatable)
        #[arg(short, long = "change", value_name = "INSTRUCTION")]
        changes: Vec<String>,
        /// A comment for the image's history
        #[arg(short, long)]
        message: Option<String>,
        /// Size cap of the unpacked layer, bytes (default 64 GiB)
        #[arg(long, value_name = "BYTES")]
        max_size: Option<u64>,
        /// A tar file (plain, gzip or zstd), `-` for stdin, or a directory
        source: String,
        /// Name for the image: [REGISTRY/]NAME[:TAG]
        name: Option<String>,
    },
    /// Write an image's flattened root file system as a tar
    Export {
        /// Write to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        image: String,
    },
    /// Write an image as a single-file squashfs (zstd) that `irun FILE.sqsh` runs
    Squash {
        /// The file to write (replaced atomically)
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        image: String,
    },
    /// Write images to an archive (docker-archive by default; podman/docker load it)
    Save {
        /// Write to FILE instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// docker-archive or oci-archive
        #[arg(long, default_value = "docker-archive")]
        format: String,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from an archive (docker-archive or oci-archive, detected)
    Load {
        /// Read from FILE instead of stdin
        #[arg(short, long, value_name = "FILE")]
        input: Option<PathBuf>,
        /// Print only the image ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check every blob's digest and every reference of the store
    Fsck {
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Take out what is damaged: damaged blobs deleted, images missing a part
        /// dropped (their names are listed: pull or load them again), broken unpacked
        /// layers removed; then gc
        #[arg(long)]
        repair: bool,
        /// With --repair: seconds to wait for running writers before giving up
        #[arg(long, value_name = "SECONDS", default_value_t = imago_store::gc::DEFAULT_GC_WAIT.as_secs())]
        wait: u64,
    },
    /// Remove unreferenced blobs, unused unpacked layers and debris of killed processes
    Gc {
        /// Also remove unpacked layers images still use (unpacked again when needed)
        #[arg(long)]
        layers: bool,
        /// Show what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Also drop every build cache entry
        #[arg(long)]
        build_cache: bool,
        /// Collect a store that has damaged manifests or configs (deletes what only
        /// they reference); without it gc refuses such a store
        #[arg(long)]
        force: bool,
        /// Seconds to wait for running builds, imports, loads and pulls before giving
        /// up (writers that start meanwhile wait for the gc)
        #[arg(long, value_name = "SECONDS", default_value_t = imago_store::gc::DEFAULT_GC_WAIT.as_secs())]
        wait: u64,
    },
    /// Show the store and what this host allows (user namespaces, overlay, FUSE, id
    /// mapping), with a fix for each missing item
    Info {
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
}
