//! Report an error once, in the bin: `error:` / `caused by:` / `hint:` on stderr,
//! then the exit code. Libraries return errors; only this prints them.

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use crate::exit::ExitCodes;

/// An error that knows how the user can fix it. Library error types implement
/// `hint()` as inherent methods; bins wrap them in [`Hinted`] or pass hints here.
pub trait Hint {
    /// One line telling the user what to do, when there is something to do.
    fn hint(&self) -> Option<String>;
}

/// Print `err` with its whole source chain and `hints`, return `code`.
/// A broken pipe on stdout (e.g. `iimage ls | head -1`) is not an error: exit 0.
pub fn report(err: &(dyn Error + 'static), hints: &[String], code: u8) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    let mut out = std::io::stderr().lock();
    // Ignoring write errors: stderr is the last channel we have.
    let _ = writeln!(out, "error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = writeln!(out, "caused by: {cause}");
        source = cause.source();
    }
    for h in hints {
        let _ = writeln!(out, "hint: {h}");
    }
    ExitCode::from(code)
}

/// Shorthand for an imago failure (exit 125) without hints.
pub fn fail(err: &(dyn Error + 'static)) -> ExitCode {
    report(err, &[], ExitCodes::IMAGO_FAILED)
}

fn is_broken_pipe(err: &(dyn Error + 'static)) -> bool {
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        cur = e.source();
    }
    false
}
