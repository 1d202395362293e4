//! Report an error once, in the bin: `error:` / `caused by:` / `hint:` on stderr,
//! then the exit code. Libraries return errors; only this prints them. Errors that know
//! their fix implement [`Hint`] (here for the library errors the bins report) and go
//! through [`fail_hinted`].

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use crate::exit::ExitCodes;

/// An error that knows how the user can fix it.
pub trait Hint {
    /// One line telling the user what to do, when there is something to do.
    fn hint(&self) -> Option<String>;
}

impl Hint for imago_registry::RegistryError {
    fn hint(&self) -> Option<String> {
        imago_registry::RegistryError::hint(self)
    }
}

impl Hint for crate::remote::RemoteError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::Registry(e) => Hint::hint(e),
            _ => None,
        }
    }
}

/// Print `err` with its whole source chain and `hints`, return `code`.
/// A broken pipe on stdout (e.g. `iimage ls | head -1`) is not an error: exit 0.
pub fn report(err: &(dyn Error + 'static), hints: &[String], code: u8) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    // Ignoring a write error: stderr is the last channel we have.
    let _ = std::io::stderr()
        .lock()
        .write_all(render(err, hints).as_bytes());
    ExitCode::from(code)
}

/// Shorthand for an imago failure (exit 125) without hints.
pub fn fail(err: &(dyn Error + 'static)) -> ExitCode {
    report(err, &[], ExitCodes::IMAGO_FAILED)
}

/// An imago failure (exit 125) with the error's own hint.
pub fn fail_hinted<E: Error + Hint + 'static>(err: &E) -> ExitCode {
    let hints: Vec<String> = err.hint().into_iter().collect();
    report(err, &hints, ExitCodes::IMAGO_FAILED)
}

/// The lines `report` prints. A cause whose text ends the line before it (an error
/// that shows its source in its own message, as some libraries' errors do) is skipped:
/// it would say the same thing twice.
fn render(err: &(dyn Error + 'static), hints: &[String]) -> String {
    let mut out = format!("error: {err}\n");
    let mut last = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !last.ends_with(&text) {
            out.push_str(&format!("caused by: {text}\n"));
            last = text;
        }
        source = cause.source();
    }
    for h in hints {
        out.push_str(&format!("hint: {h}\n"));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connect: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("connect")]
    struct Chained(#[source] std::io::Error);

    fn refused() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused")
    }

    #[test]
    fn each_cause_is_printed_once() {
        let text = render(&Repeats(refused()), &["is it up?".into()]);
        assert_eq!(
            text,
            "error: connect: Connection refused\nhint: is it up?\n"
        );
        let text = render(&Chained(refused()), &[]);
        assert_eq!(text, "error: connect\ncaused by: Connection refused\n");
    }

    #[test]
    fn registry_errors_hint_through_the_trait() {
        let e = imago_registry::RegistryError::NotInStore("x".into());
        assert!(Hint::hint(&e).is_some_and(|h| h.contains("iimage ls")));
    }
}
