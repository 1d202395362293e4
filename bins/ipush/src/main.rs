//! `ipush SRC [DEST]`: push an image from the store to a registry. Prints the pushed
//! manifest digest on stdout; progress on stderr.

use std::process::ExitCode;

use clap::Parser;
use imago_cli::progress::TransferProgress;
use imago_cli::remote::RemoteOpts;
use imago_oci::{Compression, ManifestFormat};
use imago_registry::{PushOptions, Reference};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Oci,
    /// Docker schema 2 (alias: v2s2)
    #[value(alias = "v2s2")]
    Docker,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Comp {
    Gzip,
    Zstd,
}

/// Push an image from the imago store to an OCI registry.
#[derive(Debug, Parser)]
#[command(name = "ipush", version)]
struct Opts {
    #[command(flatten)]
    global: imago_cli::GlobalOpts,
    #[command(flatten)]
    remote: RemoteOpts,
    /// Layer compression to push (recompresses layers stored otherwise; default: as stored)
    #[arg(long, value_enum)]
    compression: Option<Comp>,
    /// Manifest format to push (default: as stored)
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Blobs uploaded at once
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Upload blobs larger than 32 MiB in chunks of this many bytes (default: one streamed PATCH)
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,
    /// Do not try cross-repository mounts
    #[arg(long)]
    no_mount: bool,
    /// Write the pushed manifest digest to this file
    #[arg(long, value_name = "FILE")]
    digestfile: Option<std::path::PathBuf>,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
    /// The image in the store (name[:tag] or id)
    source: String,
    /// Where to push: [REGISTRY/]NAME[:TAG] (default: SOURCE's name)
    dest: Option<String>,
}

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let dest = match Reference::parse(opts.dest.as_deref().unwrap_or(&opts.source)) {
        Ok(r) => r,
        Err(e) => {
            let hint = if opts.dest.is_none() {
                vec!["give a destination: ipush SOURCE REGISTRY/NAME[:TAG]".to_owned()]
            } else {
                vec![]
            };
            return imago_cli::report(&e, &hint, imago_cli::ExitCodes::IMAGO_FAILED);
        }
    };
    let (root, connect) = match opts.remote.with_store_root(&opts.global) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let push_opts = PushOptions {
        compression: opts.compression.map(|c| match c {
            Comp::Gzip => Compression::Gzip,
            Comp::Zstd => Compression::Zstd,
        }),
        format: opts.format.map(|f| match f {
            Format::Oci => ManifestFormat::Oci,
            Format::Docker => ManifestFormat::Docker,
        }),
        jobs: opts.jobs,
        chunk_size: opts.chunk_size,
        mount: !opts.no_mount,
        ..PushOptions::default()
    };
    let progress = TransferProgress::new(opts.quiet);
    let pushed =
        imago_registry::push_from_root(&root, &opts.source, &dest, &connect, &push_opts, &progress);
    match pushed {
        Ok(p) => {
            let digest = p.digest.map(|d| d.to_string()).unwrap_or_default();
            progress.line(&format!(
                "{dest}: pushed {digest} ({} uploaded, {} mounted, {} already there)",
                p.uploaded, p.mounted, p.existed
            ));
            if let Some(f) = &opts.digestfile {
                if let Err(e) = imago_cli::output::write_file("digest file", f, digest.as_bytes()) {
                    return imago_cli::fail(&e);
                }
            }
            match imago_cli::output::print_lines([digest]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => imago_cli::fail(&e),
            }
        }
        Err(e) => imago_cli::fail(&e),
    }
}
