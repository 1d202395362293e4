//! imago's generator of shell completions and man pages (run by `scripts/gen-docs.sh`):
//! each program's clap definition (`bins/NAME/src/args.rs`, shared by path) rendered
//! into `completions/` and `man/`, which are checked in; `tests/fresh.rs` fails when
//! they are stale.
//!
//! Never: part of any program; nothing at run time depends on this crate.

pub mod generate;
pub mod names;
pub mod programs;
pub mod zsh_names;

pub use generate::{files, write_all, GenError, OUTPUT_DIRS};

/// The repository root (this crate lives in `xtask/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ".".into())
}
