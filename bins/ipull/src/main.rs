//! `ipull REF`: pull an image from a registry into the store. Prints the image id
//! (config digest) on stdout; progress on stderr.

mod args;

use std::process::ExitCode;

use args::Opts;
use imago_cli::progress::TransferProgress;
use imago_registry::{Platform, PullOptions, Reference};

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let reference = match Reference::parse(&opts.reference) {
        Ok(r) => r,
        Err(e) => return imago_cli::fail(&e),
    };
    let (root, connect) = match opts.remote.with_store_root(&opts.global) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let pull_opts = PullOptions {
        platform: opts.platform.unwrap_or_else(Platform::host),
        jobs: opts.jobs,
        tag_as: None,
    };
    let progress = TransferProgress::new(opts.quiet);
    match imago_registry::pull_into_root(&root, &reference, &connect, &pull_opts, &progress) {
        Ok(p) => {
            progress.line(&format!(
                "{}: pulled {} ({} blobs fetched, {} already present)",
                p.name, p.manifest.digest, p.fetched, p.present
            ));
            match imago_cli::output::print_lines([p.config.to_string()]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => imago_cli::fail(&e),
            }
        }
        Err(e) => imago_cli::fail(&e),
    }
}
