//! `ilogout [REGISTRY]`: remove stored credentials, as `docker logout` (the same as
//! `ilogin --logout`).

mod args;

use std::process::ExitCode;

use args::Opts;

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let connect = match opts.remote.connect_options() {
        Ok(c) => c,
        Err(e) => return imago_cli::fail(&e),
    };
    imago_cli::remote::logout(&opts.registry, &connect)
}
