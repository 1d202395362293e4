//! Renders the checked-in files: per program, bash, zsh and fish completions
//! (`completions/{bash,zsh,fish}/`; with names from the store, names.rs) and man pages (`man/NAME.1`, plus `man/NAME-VERB.1`
//! for each verb of ictr and iimage), and writes them under a directory.
//!
//! Never: stamps a date or a path into a file (the output must be the same on every
//! machine, or the staleness test would fail for nothing).

use std::path::{Path, PathBuf};

use clap_complete::Shell;

use crate::programs::{self, Program};

/// The directories the generator owns, relative to the repository root.
pub const OUTPUT_DIRS: [&str; 2] = ["completions", "man"];

/// Writing a generated file failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("render the man page {0}")]
    Render(String, #[source] std::io::Error),
    #[error("write {}", .0.display())]
    Write(PathBuf, #[source] std::io::Error),
}

/// One generated file: its path relative to the repository root, and its bytes.
pub struct File {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Every generated file, in a fixed order.
pub fn files() -> Result<Vec<File>, GenError> {
    let mut out = Vec::new();
    for p in programs::all() {
        out.extend(completions(&p));
        out.extend(man_pages(&p)?);
    }
    Ok(out)
}

/// Where a shell looks for a program's completion, under `completions/`.
pub fn completion_path(shell: Shell, name: &str) -> PathBuf {
    let file = match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    };
    Path::new("completions").join(shell.to_string()).join(file)
}

fn completions(p: &Program) -> Vec<File> {
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| {
            let mut cmd = p.command.clone();
            let mut bytes = Vec::new();
            clap_complete::generate(shell, &mut cmd, p.name(), &mut bytes);
            // Names from the store: bash's wraps clap's function and registers itself
            // after it; fish's adds one more `complete` line; zsh's name arguments get
            // an action of their own (names.rs, zsh_names.rs).
            let names = match shell {
                Shell::Bash => crate::names::bash(p.name(), &p.command),
                Shell::Fish => crate::names::fish(p.name(), &p.command),
                Shell::Zsh => {
                    let script = String::from_utf8_lossy(&bytes).into_owned();
                    bytes = crate::zsh_names::zsh(p.name(), &p.command, &script).into_bytes();
                    None
                }
                _ => None,
            };
            bytes.extend(names.unwrap_or_default().bytes());
            File {
                path: completion_path(shell, p.name()),
                bytes,
            }
        })
        .collect()
}

/// The program's page and one per verb; `help` is clap's, not a verb (and each page
/// documents `--help`).
fn man_pages(p: &Program) -> Result<Vec<File>, GenError> {
    let mut cmd = p.command.clone().disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![page(cmd.clone())?];
    for verb in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(page(verb.clone())?);
    }
    Ok(pages)
}

fn page(cmd: clap::Command) -> Result<File, GenError> {
    // The verbs have no version of their own: every page names imago's.
    let man = clap_mangen::Man::new(cmd)
        .manual("imago")
        .source(concat!("imago ", env!("CARGO_PKG_VERSION")));
    let name = man.get_filename();
    let mut bytes = Vec::new();
    man.render(&mut bytes)
        .map_err(|e| GenError::Render(name.clone(), e))?;
    Ok(File {
        path: Path::new("man").join(name),
        bytes,
    })
}

/// Replace `root/completions` and `root/man` with the generated files (a file removed
/// from the definitions disappears from the tree too).
pub fn write_all(root: &Path, files: &[File]) -> Result<(), GenError> {
    for dir in OUTPUT_DIRS {
        let d = root.join(dir);
        match std::fs::remove_dir_all(&d) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(GenError::Write(d, e))
            }
            _ => {}
        }
    }
    for f in files {
        let path = root.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| GenError::Write(parent.into(), e))?;
        }
        std::fs::write(&path, &f.bytes).map_err(|e| GenError::Write(path.clone(), e))?;
    }
    Ok(())
}
