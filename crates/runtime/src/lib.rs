//! Running containers from images in the store: container records and dirs, runtime
//! dirs, image config → process spec (docker's rules), and the foreground run path
//! shared by irun (and later ictr). docs/runtime.md describes the on-disk layout.
//!
//! # Public entry points
//! - [`run(&RunOptions) -> Result<i32, RunError>`](run()): resolve the image, unpack its
//!   layers inside the id mapping when needed, create `<store>/containers/<id>/`, mount
//!   the overlay and run the container in the foreground; returns the exit code irun
//!   exits with. Single-threaded callers only.
//! - [`config`]: [`config::command`] (ENTRYPOINT × CMD), [`config::environment`],
//!   [`config::workdir`], [`config::volume`] / [`config::mount`] / [`config::tmpfs`]
//!   flag parsers. Pure.
//! - [`record`]: [`ContainerId`] (64 hex, `short()` 12), [`Containers`] (dirs, names
//!   claimed atomically with docker's conflict message, `config.json` records),
//!   [`record::runtime_dir`] (`$XDG_RUNTIME_DIR/imago`, else private `/tmp/imago-<uid>`).
//!
//! Never: prints, parses argv, talks to registries.

pub mod config;
pub mod record;
pub mod run;

pub use imago_sandbox::Network;
pub use record::{ContainerId, ContainerRecord, Containers};
pub use run::{run, RunError, RunOptions};
