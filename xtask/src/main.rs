//! `xtask [DIR]`: write the completions and man pages under DIR (default: the repository
//! root). `scripts/gen-docs.sh` runs it. Exit 0, or 1 with the reason on stderr.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(xtask::repo_root);
    let result = xtask::files().and_then(|f| xtask::write_all(&root, &f).map(|()| f.len()));
    let mut err = std::io::stderr();
    match result {
        Ok(n) => {
            // A closed stderr loses the summary: the files are written all the same.
            let _ = writeln!(err, "wrote {n} files under {}", root.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = format!("xtask: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            // Nothing else to report on when stderr is closed; the exit code still says it.
            let _ = writeln!(err, "{msg}");
            ExitCode::FAILURE
        }
    }
}
