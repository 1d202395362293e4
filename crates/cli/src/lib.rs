//! What every imago program shares: the global flags (`--root`, `--log-level`,
//! `--format`), command-line parsing with docker's exit codes, the store location rules,
//! error reporting with hints, the documented exit codes, the table/json output helpers and docker's Go-template `--format` (`template`),
//! the registry programs' flags (`remote`), progress on stderr (`progress`: transfer
//! bars for `ipull`/`ipush`, the step display for `ibuild`), the config file (`config`)
//! and the storage driver choice (`storage`: flag, env, config, else the host probe,
//! cached per kernel).
//!
//! Never: talks to the network; reads the store or the kernel only for the storage
//! driver's probe and its cache. Libraries never depend on this crate; only the bins do.

pub mod args;
pub mod config;
pub mod exit;
pub mod global;
pub mod logging;
pub mod output;
pub mod progress;
pub mod prompt;
pub mod remote;
pub mod report;
pub mod run_image;
pub mod shortnames;
pub mod storage;
pub mod template;

pub use exit::ExitCodes;
pub use global::{GlobalOpts, OutputFormat};
pub use report::{fail, hints, report, CarriedError, Hint};
