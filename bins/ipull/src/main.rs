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
    let (root, connect) = match opts.remote.with_store_root(&opts.global) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // A short name may mean several references (registries.conf's aliases and search
    // list): the first that pulls wins, as podman does; the last one's error is the one.
    let mut candidates = connect.registries.qualify(&opts.reference);
    let last = candidates.pop().unwrap_or_else(|| opts.reference.clone());
    let pull_opts = PullOptions {
        platform: opts.platform.unwrap_or_else(Platform::host),
        jobs: opts.jobs,
        tag_as: None,
    };
    let progress = TransferProgress::new(opts.quiet);
    let pull = |name: &str| {
        let reference = Reference::parse(name).map_err(|e| Box::new(e) as BoxError)?;
        imago_registry::pull_into_root(&root, &reference, &connect, &pull_opts, &progress)
            .map_err(|e| Box::new(e) as BoxError)
    };
    let mut pulled = None;
    for name in &candidates {
        match pull(name) {
            Ok(p) => {
                pulled = Some(p);
                break;
            }
            Err(e) => progress.line(&format!("{name}: {e}; trying the next")),
        }
    }
    let pulled = match pulled {
        Some(p) => Ok(p),
        None => pull(&last),
    };
    match pulled {
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
        Err(e) => imago_cli::fail(&*e),
    }
}

/// A failure of one candidate: a bad reference or a failed pull.
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
