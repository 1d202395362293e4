//! `itag SOURCE TARGET...`: give the image SOURCE (name[:tag], a short name as
//! registries.conf resolves it, id, id prefix or digest) the names TARGET… in the
//! store, like `docker tag`. Prints nothing on success.

mod args;

use std::process::ExitCode;

use args::Opts;

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let root = match opts.global.store_root() {
        Ok(r) => r,
        Err(e) => return imago_cli::fail(&e),
    };
    let result = (|| {
        let store = imago_store::Store::open(&root)?;
        // A short name finds what a pull of it stored (registries.conf), as irun does.
        let (_, image) = imago_cli::shortnames::find_stored(&store, &opts.source)?;
        for t in &opts.targets {
            store.tag(t, &image.index_digest)?;
        }
        Ok::<_, imago_registry::RegistryError>(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => imago_cli::fail(&e),
    }
}
