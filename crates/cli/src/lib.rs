//! What every imago program shares: the global flags (`--root`, `--log-level`,
//! `--format`), command-line parsing with docker's exit codes, the store location rules,
//! error reporting with hints, the documented exit codes, the table/json output helpers,
//! the registry programs' flags (`remote`), and progress on stderr (`progress`: transfer
//! bars for `ipull`/`ipush`, the step display for `ibuild`).
//!
//! Never: talks to the store, the kernel or the network. Libraries never depend
//! on this crate; only the bins do.

pub mod args;
pub mod exit;
pub mod global;
pub mod logging;
pub mod output;
pub mod progress;
pub mod remote;
pub mod report;

pub use exit::ExitCodes;
pub use global::{GlobalOpts, OutputFormat};
pub use report::{fail, hints, report, CarriedError, Hint};
