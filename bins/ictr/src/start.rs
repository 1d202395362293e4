//! `ictr start`: start stopped containers again through a new monitor, with their
//! writable layer as they left it; `-a` attaches to one (its output from the start, or
//! its terminal) and exits with its exit code. A running container is left alone; one
//! whose writable layer is not on this machine (a wiped node-local dir) is refused.

use std::process::ExitCode;

use imago_cli::GlobalOpts;
use imago_runtime::detach;
use imago_runtime::logfile::{self, Reader};
use imago_runtime::{ContainerId, Containers};

use crate::attach::{attach_to, parse_keys, Ended};
use crate::common::{self, CtrError};

pub use crate::args::StartArgs as Args;

fn start_attached(global: &GlobalOpts, a: &Args) -> Result<Ended, CtrError> {
    let keys = parse_keys(&a.detach_keys)?;
    let c = common::containers(global)?;
    let name = &a.containers[0];
    let (id, _) = common::find(&c, name)?;
    need_layer(&c, &id, name)?;
    // Opened before the start: all of this run's output is read.
    let from = Reader::open_at_end(&logfile::path(&c.dir(&id), id.as_str()));
    detach::start_existing(&c, &id)?;
    let (_, rec) = common::find(&c, name)?;
    attach_to(&c, &id, &rec, a.interactive, &keys, Some(from))
}

/// A container whose writable layer is not on this machine cannot start: say why.
fn need_layer(c: &Containers, id: &ContainerId, name: &str) -> Result<(), CtrError> {
    common::need_here(
        c,
        id,
        format!("cannot start container {name}"),
        format!("; `ictr rm {name}` removes its record"),
    )
}

/// Run `ictr start`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    if a.attach {
        if a.containers.len() > 1 {
            let e =
                CtrError::Usage("you cannot start and attach multiple containers at once".into());
            return imago_cli::fail(&e);
        }
        return match start_attached(global, a) {
            Ok(e) => e.code(),
            Err(e) => imago_cli::fail(&e),
        };
    }
    common::each(global, &a.containers, |c, name| {
        let (id, _) = common::find(c, name)?;
        need_layer(c, &id, name)?;
        detach::start_existing(c, &id)?;
        imago_cli::output::print_lines([name]).map_err(CtrError::from)
    })
}
