//! `ipull REF`: pull an image from a registry into the store. Prints the image id
//! (config digest) on stdout; progress on stderr.

mod args;

use std::process::ExitCode;

use args::Opts;
use imago_cli::progress::TransferProgress;
use imago_cli::run_image::pull_first;
use imago_registry::{Platform, PullOptions};

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let (root, connect) = match opts.remote.with_store_root(&opts.global) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // A short name may mean several references (registries.conf's aliases, search list
    // and short-name-mode): the first that pulls wins, as podman does.
    let candidates =
        match imago_cli::shortnames::pull_candidates(&connect.registries, &opts.reference) {
            Ok(c) => c,
            Err(e) => return imago_cli::fail(&e),
        };
    let pull_opts = PullOptions {
        platform: opts.platform.unwrap_or_else(Platform::host),
        jobs: opts.jobs,
        tag_as: None,
    };
    let progress = TransferProgress::new(opts.quiet);
    let pulled = pull_first(&root, &candidates, &connect, &pull_opts, &progress);
    match pulled {
        Ok((_, p)) => {
            progress.line(&format!(
                "{}: pulled {} ({} blobs fetched, {} already present)",
                p.name, p.manifest.digest, p.fetched, p.present
            ));
            match imago_cli::output::print_lines([p.config.to_string()]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => imago_cli::fail(&e),
            }
        }
        // The error itself, not the wrapper naming the candidate: its hint is found by
        // its type.
        Err(failed) => imago_cli::fail(&failed.source),
    }
}
