//! `ictr stop`: docker stop — the container's stop signal (`-s`, else the image's
//! STOPSIGNAL, else SIGTERM) to its pid 1, SIGKILL after `-t` seconds (default 10);
//! returns once each container is gone and prints its name as given.

use std::process::ExitCode;
use std::time::Duration;

use imago_cli::GlobalOpts;
use imago_runtime::control;

use crate::common::{self, CtrError};

/// `ictr stop` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait before SIGKILL
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        default_value_t = 10
    )]
    time: u64,
    /// The signal to stop with (default: the image's STOPSIGNAL, else SIGTERM)
    #[arg(short, long)]
    signal: Option<String>,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Run `ictr stop`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    common::each(global, &a.containers, |c, name| {
        let (id, rec) = common::find(c, name)?;
        let sig = control::stop_signal(&rec, a.signal.as_deref())?;
        control::stop(c, &id, sig, Duration::from_secs(a.time))?;
        imago_cli::output::print_lines([name]).map_err(CtrError::from)
    })
}
