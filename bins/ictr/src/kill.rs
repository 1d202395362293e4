//! `ictr kill`: docker kill — a signal (`-s`, default SIGKILL) to each running
//! container's pid 1, which passes it on to the command; prints the names as given.

use std::process::ExitCode;

use imago_cli::GlobalOpts;
use imago_runtime::{control, live};

use crate::common::{self, CtrError};

pub use crate::args::KillArgs as Args;

/// Run `ictr kill`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    let Some(sig) = live::parse_signal(&a.signal) else {
        let e = CtrError::Usage(format!("invalid signal: {}", a.signal));
        return imago_cli::fail(&e);
    };
    common::each(global, &a.containers, |c, name| {
        let (_, rec) = common::find(c, name)?;
        control::signal(&rec, sig)?;
        imago_cli::output::print_lines([name]).map_err(CtrError::from)
    })
}
