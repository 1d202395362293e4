//! `ictr wait`: block until each container is not running, then print its exit code
//! (255 when its monitor died without recording one).

use std::process::ExitCode;

use imago_cli::GlobalOpts;
use imago_runtime::control;
use imago_runtime::record::RecordError;
use imago_runtime::status::LOST_EXIT_CODE;

use crate::common::{self, CtrError};

pub use crate::args::WaitArgs as Args;

/// Run `ictr wait`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    common::each(global, &a.containers, |c, name| {
        let id = c.find(name)?;
        let code = match control::wait_stopped(c, &id, None) {
            Ok(Some(st)) => st.exit_code.unwrap_or(0),
            // Removed meanwhile (`--rm`): its exit code went with it.
            Ok(None) => return Err(RecordError::NotFound(name.into()).into()),
            Err(st) => st.exit_code.unwrap_or(LOST_EXIT_CODE),
        };
        imago_cli::output::print_lines([code.to_string()]).map_err(CtrError::from)
    })
}
