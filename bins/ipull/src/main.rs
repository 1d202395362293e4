//! `ipull REF`: pull an image from a registry into the store. Prints the image id
//! (config digest) on stdout; progress on stderr.

#![allow(clippy::print_stderr, clippy::print_stdout)]

mod shared;

use std::process::ExitCode;

use clap::Parser;
use imago_registry::{pull, Platform, PullOptions, Reference};

/// Pull an image from an OCI registry (Docker Hub by default) into the imago store.
#[derive(Debug, Parser)]
#[command(name = "ipull", version)]
struct Opts {
    #[command(flatten)]
    global: imago_cli::GlobalOpts,
    #[command(flatten)]
    remote: shared::RemoteOpts,
    /// Platform to pick from a multi-platform image (OS/ARCH[/VARIANT]; default: this host's)
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<Platform>,
    /// Blobs fetched at once
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
    /// The image: [REGISTRY/]NAME[:TAG|@DIGEST] (docker.io/library/ for bare names)
    reference: String,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    imago_cli::logging::init(&opts.global.log_level);
    let reference = match Reference::parse(&opts.reference) {
        Ok(r) => r,
        Err(e) => return imago_cli::report(&e, &[], imago_cli::ExitCodes::IMAGO_FAILED),
    };
    let root = match opts.global.store_root() {
        Ok(r) => r,
        Err(e) => return imago_cli::fail(&e),
    };
    let connect = match opts.remote.connect_options() {
        Ok(c) => c,
        Err(msg) => return shared::report_msg(&msg),
    };
    let progress = shared::Progress::new(opts.quiet);
    let result = (|| {
        let store = imago_store::Store::open(&root)?;
        // Blobs are written long before index.json names them: keep a concurrent gc
        // from collecting them until the pull is recorded.
        let _pin = store.pin()?;
        let client = imago_registry::connect(&reference, &connect)?;
        let pull_opts = PullOptions {
            platform: opts.platform.clone().unwrap_or_else(Platform::host),
            jobs: opts.jobs,
            tag_as: None,
        };
        pull::pull(&client, &store, &reference, &pull_opts, &progress)
    })();
    match result {
        Ok(p) => {
            progress.line(&format!(
                "{}: pulled {} ({} blobs fetched, {} already present)",
                p.name, p.manifest.digest, p.fetched, p.present
            ));
            println!("{}", p.config);
            ExitCode::SUCCESS
        }
        Err(e) => shared::report(&e),
    }
}
