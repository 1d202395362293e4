//! `ictr rm`: docker rm — remove containers (their writable layer, log, record and
//! name); a running one only with `-f`, which kills it first. Prints the names as given.
//! A container whose node-local dir is gone loses its record and name; one whose dir is
//! on another node is only forgotten here with `-f` (it may be running there).

use std::process::ExitCode;

use imago_cli::GlobalOpts;
use imago_runtime::record::RecordError;
use imago_runtime::{control, create, status, Place};
use imago_sandbox::IdMap;

use crate::common::{self, CtrError};

pub use crate::args::RmArgs as Args;

/// Run `ictr rm`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    common::each(global, &a.containers, |c, name| {
        let id = match c.find(name) {
            Ok(id) => id,
            Err(RecordError::NotFound(_)) if a.force => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let rec = c.read_record(&id);
        let running = rec.as_ref().is_some_and(|r| status::of(r).running());
        match c.place(&id) {
            // Its lock, processes and files are here: the usual way.
            Place::Here(_) => control::remove(c, &id, a.force)?,
            Place::Elsewhere { .. } if !a.force => {
                let hint = format!(
                    "; it may be running there: remove it on that node, or `ictr rm -f {name}` forgets it here"
                );
                common::need_here(c, &id, format!("container {name}"), hint)?
            }
            // Running here with its dir wiped (its lock went with it): stop it first.
            Place::Gone(_) if running => {
                let hint = format!("; it still runs: `ictr stop {name}` first");
                common::need_here(c, &id, format!("container {name}"), hint)?
            }
            Place::Gone(_) | Place::Elsewhere { .. } => {
                let name_of = rec.and_then(|r| r.name);
                create::remove(c, &id, name_of.as_deref(), &IdMap::detect());
            }
        }
        imago_cli::output::print_lines([name]).map_err(CtrError::from)
    })
}
