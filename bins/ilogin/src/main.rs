//! `ilogin [-u USER] [--password-stdin] REGISTRY`: check credentials against a registry
//! and store them (mode 0600); `ilogin --logout REGISTRY` removes them.

mod args;

use std::io::Write;
use std::process::ExitCode;

use args::Opts;
use imago_cli::remote::read_credentials;

/// The outcome line on stderr; a failed write is ignored, the exit status tells.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

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
    if opts.logout {
        return imago_cli::remote::logout(&opts.registry, &connect);
    }
    let creds = match read_credentials(opts.username, opts.password, opts.password_stdin) {
        Ok(c) => c,
        Err(e) => return imago_cli::fail(&e),
    };
    match imago_registry::login(&opts.registry, creds, &connect) {
        Ok(path) => {
            say(&format!(
                "Login Succeeded (credentials stored in {})",
                path.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => imago_cli::fail(&e),
    }
}
