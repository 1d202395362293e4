//! `iimage`: the image inventory of the imago store — ls, inspect, rm, prune, import,
//! export, save, load, fsck, gc, info. Data on stdout, diagnostics on stderr; exit 0 on
//! success, 125 on failure (imago_cli::ExitCodes). docs/iimage.md has the usage.
//!
//! Store work that creates or removes files owned by other ids (unpacking layers for
//! import/export, removing unpacked layers in gc/prune/rm) runs inside the user's id
//! mapping (imago_sandbox::run_in_mapping); the rest runs directly.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod change;
mod common;
mod images;
mod maint;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use imago_cli::OutputFormat;

/// The imago image inventory.
#[derive(Debug, Parser)]
#[command(name = "iimage", version)]
struct Opts {
    #[command(flatten)]
    global: imago_cli::GlobalOpts,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List images (REPOSITORY TAG IMAGE ID CREATED SIZE)
    #[command(alias = "list", alias = "images")]
    Ls {
        /// Only image ids
        #[arg(short, long)]
        quiet: bool,
        /// Full image ids
        #[arg(long)]
        no_trunc: bool,
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Show images' manifest and config as JSON
    Inspect {
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
    /// Remove images without a name, then collect garbage
    Prune {
        /// Do not ask (kept for docker compatibility; iimage never asks)
        #[arg(short, long)]
        force: bool,
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

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let g = &opts.global;
    let r = match opts.cmd {
        Cmd::Ls {
            quiet,
            no_trunc,
            format,
        } => images::ls(g, quiet, no_trunc, format),
        Cmd::Inspect { images } => images::inspect(g, &images),
        Cmd::Rm { force, images } => images::rm(g, &images, force),
        Cmd::Prune { force: _ } => images::prune(g),
        Cmd::Import {
            changes,
            message,
            max_size,
            source,
            name,
        } => transfer::import(
            g,
            &source,
            name.as_deref(),
            &changes,
            message.as_deref(),
            max_size,
        ),
        Cmd::Export { output, image } => transfer::export(g, &image, output.as_deref()),
        Cmd::Save {
            output,
            format,
            images,
        } => transfer::save(g, &images, output.as_deref(), &format),
        Cmd::Load { input, quiet } => transfer::load(g, input.as_deref(), quiet),
        Cmd::Fsck { format } => maint::fsck(g, format),
        Cmd::Gc {
            layers,
            dry_run,
            build_cache,
            force,
            wait,
        } => maint::gc(
            g,
            maint::GcFlags {
                layers,
                dry_run,
                build_cache,
                force,
                wait: std::time::Duration::from_secs(wait),
            },
        ),
        Cmd::Info { format } => maint::info(g, format),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => imago_cli::fail(&*e),
    }
}
