//! `ictr`: docker's container verbs for imago's containers, without a daemon — ps, logs,
//! stop, kill, rm, inspect, start, wait, port, attach, exec, commit. Each verb is a
//! module of its own; this file parses the command line and dispatches. Data on stdout,
//! diagnostics on stderr; usage errors and imago's own failures exit 125. docs/ictr.md
//! has the usage.
//!
//! `ictr start` runs this same binary again as a container's monitor (see
//! `imago_runtime::monitor`): that check comes first, before any flag is parsed, while
//! the process is still single-threaded.

mod args;
mod attach;
mod commit;
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

use args::{Opts, Verb};

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
        Verb::Commit(a) => commit::run(g, a),
    }
}
