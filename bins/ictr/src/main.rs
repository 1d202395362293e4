//! `ictr`: docker's container verbs for imago's containers, without a daemon — ps, logs,
//! stop, kill, rm, inspect, start, wait, port, attach, exec. Each verb is a module of its
//! own; this file parses the command line and dispatches. Data on stdout, diagnostics on
//! stderr; usage errors and imago's own failures exit 125. docs/ictr.md has the usage.
//!
//! `ictr start` runs this same binary again as a container's monitor (see
//! `imago_runtime::monitor`): that check comes first, before any flag is parsed, while
//! the process is still single-threaded.

mod attach;
mod common;
mod exec;
mod inspect;
mod kill;
mod logs;
mod port;
mod ps;
mod rm;
mod start;
mod stop;
mod wait;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Manage containers (docker's container verbs).
#[derive(Debug, Parser)]
#[command(name = "ictr", version)]
struct Opts {
    #[command(flatten)]
    global: imago_cli::GlobalOpts,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// List containers
    #[command(alias = "ls", alias = "list")]
    Ps(ps::Args),
    /// Print a container's output
    Logs(logs::Args),
    /// Stop running containers (the stop signal, then SIGKILL after a timeout)
    Stop(stop::Args),
    /// Send a signal to running containers
    Kill(kill::Args),
    /// Remove containers
    #[command(alias = "remove")]
    Rm(rm::Args),
    /// Show containers as JSON (docker's shape)
    Inspect(inspect::Args),
    /// Start stopped containers again
    Start(start::Args),
    /// Wait until containers end and print their exit codes
    Wait(wait::Args),
    /// List a container's published ports
    Port(port::Args),
    /// Attach to a running container's terminal or output
    Attach(attach::Args),
    /// Run a command in a running container
    Exec(exec::Args),
}

fn main() -> ExitCode {
    if let Some(code) = imago_runtime::monitor::run_if_requested(imago_cli::logging::init) {
        return code;
    }
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let g = &opts.global;
    match &opts.verb {
        Verb::Ps(a) => ps::run(g, a),
        Verb::Logs(a) => logs::run(g, a),
        Verb::Stop(a) => stop::run(g, a),
        Verb::Kill(a) => kill::run(g, a),
        Verb::Rm(a) => rm::run(g, a),
        Verb::Inspect(a) => inspect::run(g, a),
        Verb::Start(a) => start::run(g, a),
        Verb::Wait(a) => wait::run(g, a),
        Verb::Port(a) => port::run(g, a),
        Verb::Attach(a) => attach::run(g, a),
        Verb::Exec(a) => exec::run(g, a),
    }
}
