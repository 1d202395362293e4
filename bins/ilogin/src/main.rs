//! `ilogin [-u USER] [--password-stdin] REGISTRY`: check credentials against a registry
//! and store them (mode 0600); `ilogin --logout REGISTRY` removes them.

#![allow(clippy::print_stderr, clippy::print_stdout)]

#[path = "../../ipull/src/shared.rs"]
#[allow(dead_code)]
mod shared;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use imago_registry::Credentials;

/// Log in to an OCI registry: check the credentials, then store them where podman and
/// imago look ($REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json, else
/// ~/.config/containers/auth.json).
#[derive(Debug, Parser)]
#[command(name = "ilogin", version)]
struct Opts {
    #[command(flatten)]
    global: imago_cli::GlobalOpts,
    #[command(flatten)]
    remote: shared::RemoteOpts,
    /// User name (asked for on a terminal when missing)
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin: arguments show in `ps`)
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin (one line)
    #[arg(long)]
    password_stdin: bool,
    /// Remove the stored credentials instead
    #[arg(long)]
    logout: bool,
    /// The registry (docker.io for Docker Hub)
    #[arg(default_value = "docker.io")]
    registry: String,
}

fn read_line(prompt: Option<&str>) -> std::io::Result<String> {
    if let Some(p) = prompt {
        eprint!("{p}");
        std::io::stderr().flush()?;
    }
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    imago_cli::logging::init(&opts.global.log_level);
    let connect = match opts.remote.connect_options() {
        Ok(c) => c,
        Err(msg) => return shared::report_msg(&msg),
    };
    if opts.logout {
        return match imago_registry::logout(&opts.registry, &connect) {
            Ok(files) if files.is_empty() => {
                shared::report_msg(&format!("not logged in to {}", opts.registry))
            }
            Ok(_) => {
                eprintln!("Removed login credentials for {}", opts.registry);
                ExitCode::SUCCESS
            }
            Err(e) => shared::report(&e),
        };
    }
    let tty = std::io::stdin().is_terminal();
    let username = match opts.username.clone() {
        Some(u) => u,
        None if tty => match read_line(Some("Username: ")) {
            Ok(u) => u,
            Err(e) => return shared::report_msg(&format!("read user name: {e}")),
        },
        None => return shared::report_msg("no user name: pass -u USER"),
    };
    let password = match (&opts.password, opts.password_stdin) {
        (Some(_), true) => {
            return shared::report_msg("--password and --password-stdin exclude each other")
        }
        (Some(p), false) => p.clone(),
        (None, true) => match read_line(None) {
            Ok(p) => p,
            Err(e) => return shared::report_msg(&format!("read password from stdin: {e}")),
        },
        (None, false) => {
            return shared::report_msg("no password: pipe it into --password-stdin (or pass -p)")
        }
    };
    if username.is_empty() || password.is_empty() {
        return shared::report_msg("user name and password must not be empty");
    }
    match imago_registry::login(&opts.registry, Credentials { username, password }, &connect) {
        Ok(path) => {
            eprintln!("Login Succeeded (credentials stored in {})", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => shared::report(&e),
    }
}
