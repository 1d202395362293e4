//! `ipush SRC [DEST]`: push an image from the store to a registry. Prints the pushed
//! manifest digest on stdout; progress on stderr.

mod args;

use std::process::ExitCode;

use args::{Comp, Format, Opts};
use imago_cli::progress::TransferProgress;
use imago_oci::{Compression, ManifestFormat};
use imago_registry::{PushOptions, Reference};

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
