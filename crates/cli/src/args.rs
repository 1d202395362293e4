//! Parsing the command line the same way in every program: a usage error prints clap's
//! message on stderr and exits 125 (imago's own failure, as docker and podman do, not
//! clap's 2); `--help` and `--version` print on stdout and exit 0. Nothing else runs
//! before the flags are known, so a bad flag never creates a store.

use std::process::ExitCode;

use crate::exit::ExitCodes;

/// Parse `std::env::args` into `T`, or the exit code to return from `main` at once.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let code = if e.use_stderr() {
            ExitCodes::IMAGO_FAILED
        } else {
            ExitCodes::OK
        };
        // Ignoring a failed print: there is no other channel to report it on.
        let _ = e.print();
        ExitCode::from(code)
    })
}
