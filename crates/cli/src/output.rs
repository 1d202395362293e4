//! Data on stdout: aligned tables for people, JSON for pipelines; and data a flag asks
//! to have in a file (`ipush --digestfile`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Print rows as a table with columns padded to the widest cell, like `docker images`.
/// The last column is not padded. Errors (a closed pipe) go back to the caller.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = io::stdout().lock();
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let cells: Vec<&str> = cells.collect();
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<w$}   ", c, w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&mut header.iter().copied()))?;
    for row in rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
    }
    out.flush()
}

/// Print one value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> io::Result<()> {
    // Render first, then write: a closed pipe then surfaces as io::ErrorKind::BrokenPipe
    // (which `report` turns into exit 0) instead of hiding inside a serde_json error.
    let mut text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    text.push(b'\n');
    let mut out = io::stdout().lock();
    out.write_all(&text)?;
    out.flush()
}

/// Print text as is on stdout (what a `--format` template rendered).
pub fn print_text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Print lines on stdout (ids for `-q`, and the like).
pub fn print_lines<I: IntoIterator<Item = S>, S: AsRef<str>>(lines: I) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for l in lines {
        writeln!(out, "{}", l.as_ref())?;
    }
    out.flush()
}

/// An output file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("write {what} `{}`", path.display())]
pub struct WriteFileError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Write `contents` to `path` (the `what` names it in the error).
pub fn write_file(what: &'static str, path: &Path, contents: &[u8]) -> Result<(), WriteFileError> {
    std::fs::write(path, contents).map_err(|source| WriteFileError {
        what,
        path: path.to_owned(),
        source,
    })
}
