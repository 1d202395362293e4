//! `ictr rm`: docker rm — remove containers (their writable layer, log, record and
//! name); a running one only with `-f`, which kills it first. Prints the names as given.

use std::process::ExitCode;

use imago_cli::GlobalOpts;
use imago_runtime::control;
use imago_runtime::record::RecordError;

use crate::common::{self, CtrError};

/// `ictr rm` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill a running container first (and ignore missing ones)
    #[arg(short, long)]
    force: bool,
    /// Accepted for docker compatibility (imago has no anonymous volumes)
    #[arg(short, long)]
    volumes: bool,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Run `ictr rm`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    common::each(global, &a.containers, |c, name| {
        let id = match c.find(name) {
            Ok(id) => id,
            Err(RecordError::NotFound(_)) if a.force => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        control::remove(c, &id, a.force)?;
        imago_cli::output::print_lines([name]).map_err(CtrError::from)
    })
}
