//! `ictr stop`: docker stop — the container's stop signal (`-s`, else the image's
//! STOPSIGNAL, else SIGTERM) to its pid 1, SIGKILL after `-t` seconds (default 10);
//! returns once each container is gone and prints its name as given.

use std::process::ExitCode;
use std::time::Duration;

use imago_cli::GlobalOpts;
use imago_runtime::control;

use crate::common::{self, CtrError};

pub use crate::args::StopArgs as Args;

/// Run `ictr stop`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    common::each(global, &a.containers, |c, name| {
        let (id, rec) = common::find(c, name)?;
        let sig = control::stop_signal(&rec, a.signal.as_deref())?;
        control::stop(c, &id, sig, Duration::from_secs(a.time))?;
        imago_cli::output::print_lines([name]).map_err(CtrError::from)
    })
}
