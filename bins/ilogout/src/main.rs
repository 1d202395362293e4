//! `ilogout [REGISTRY]`: remove stored credentials, as `docker logout` (the same as
//! `ilogin --logout`).

mod args;

use std::io::Write;
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
    match imago_registry::logout(&opts.registry, &connect) {
        Ok(_) => {
            // The exit status says it worked; a closed stderr loses only the line.
            let _ = writeln!(
                std::io::stderr(),
                "Removed login credentials for {}",
                opts.registry
            );
            ExitCode::SUCCESS
        }
        Err(e) => imago_cli::fail(&e),
    }
}
