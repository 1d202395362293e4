//! `ipush SRC [DEST]`: push an image from the store to a registry. Prints the pushed
//! manifest digest on stdout; progress on stderr. SRC is found as irun finds an image
//! (a short name by the names registries.conf gives it); without DEST, the image goes
//! to the name it was found by.

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
    let (root, connect) = match opts.remote.with_store_root(&opts.global) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Opened once: finding the image and pushing it share the store (and so one read
    // of its `oci-layout`).
    let store = match imago_store::Store::open(&root) {
        Ok(s) => s,
        Err(e) => return imago_cli::fail(&e),
    };
    let source = match stored_name(&store, &connect.registries, &opts.source) {
        Ok(s) => s,
        Err(e) => return imago_cli::fail(&e),
    };
    let dest = match Reference::parse(opts.dest.as_deref().unwrap_or(&source)) {
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
        imago_registry::push_from_store(&store, &source, &dest, &connect, &push_opts, &progress);
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

/// The store name `source` is found by (its short-name forms first, by the
/// registries.conf the connection settings already read); a name the store lacks stays
/// as typed, for the push to report.
fn stored_name(
    store: &imago_store::Store,
    registries: &imago_registry::RegistriesConf,
    source: &str,
) -> Result<String, imago_store::StoreError> {
    match imago_registry::shortnames::find_stored(store, registries, source) {
        Ok((name, _)) => Ok(name),
        Err(imago_store::StoreError::ImageNotFound { .. }) => Ok(source.to_owned()),
        Err(e) => Err(e),
    }
}
