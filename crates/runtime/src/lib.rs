//! Running containers from images in the store: container records and dirs, runtime
//! dirs, image config → process spec (docker's rules), the foreground run path of irun,
//! detached containers and their monitors, and what `ictr` does to containers.
//! docs/runtime.md describes the on-disk layout and the processes.
//!
//! # Public entry points
//! - [`run(&RunOptions) -> Result<i32, RunError>`](run()): resolve the image, unpack its
//!   layers inside the id mapping when needed, create `<store>/containers/<id>/` (and
//!   the container's own dir there, or node-local on a shared store), mount
//!   the overlay and run the container in the foreground; returns the exit code irun
//!   exits with. Single-threaded callers only.
//! - [`detach::run_detached`] (`irun -d`): create the container and start its monitor;
//!   returns the id once it runs. [`detach::start_existing`] (`ictr start`).
//! - [`monitor`]: [`monitor::run_if_requested`]: a bin that may be re-run as a
//!   monitor (irun, ictr) calls this first thing in `main`.
//! - [`control`]: signal, stop, wait, remove. [`status::of`]: a container's state now
//!   (a `running` record whose monitor is gone is exited, code 255).
//! - [`logfile`]: the docker json-file log of a detached container (writer, reader).
//! - [`attach`]: the attach socket's protocol and [`attach::connect`].
//! - [`config`]: [`config::command`] (ENTRYPOINT × CMD), [`config::environment`],
//!   [`config::workdir`], [`config::volume`] / [`config::mount`] / [`config::tmpfs`]
//!   flag parsers. Pure. [`launch::Launch`]: the resolved settings a record keeps.
//! - [`devices`]: `--device` values (host nodes, CDI names) → [`devices::DevicePlan`]
//!   (binds, env, notes), resolved once at creation and kept in the record.
//! - [`clone`]: when a container's pid 1 is cloned ([`clone::prepare_early`] while the
//!   image is resolved, [`clone::prepare_late`]), with which mapping, and into which user
//!   namespace (`--hpc`'s shared one).
//! - [`hpc`]: the HPC run mode's host side: [`hpc::passed`] (the caller's variables
//!   that reach the container: `--env-host` but [`hpc::DENIED`]; a launcher's always),
//!   [`hpc::mounts`] (`--bind-home`, `--bind-cwd`, `--hpc`'s /tmp), [`hpc::Host`].
//! - [`record`]: [`ContainerId`] (64 hex, `short()` 12), [`Containers`] (dirs, names
//!   claimed atomically with docker's conflict message, `config.json` records, `list`,
//!   `find` by id, name or unique id prefix, `record_dir` (the record) and `dir` (its own
//!   dir: writable layer, lock, log; node-local on a shared store, see
//!   `imago_store::local`), `place` → [`Place`] (here, gone, or on another node)).
//! - [`live::ProcRef`]: a pid with its start time (pids are reused).
//!   [`live::runtime_dir`] (`$XDG_RUNTIME_DIR/imago`, else `run/` of the node-local dir),
//!   [`live::live_dir`].
//!
//! Never: prints, parses argv, talks to registries.

pub mod attach;
pub mod clone;
pub mod config;
pub mod control;
pub mod create;
pub mod detach;
pub mod devices;
pub mod hpc;
pub mod launch;
pub mod limits;
pub mod live;
pub mod logfile;
mod lookup;
pub mod monitor;
pub mod ports;
pub mod record;
pub mod run;
pub mod squash;
pub mod status;
mod userns;

pub use imago_sandbox::Network;
pub use lookup::Place;
pub use record::{ContainerId, ContainerRecord, Containers, State};
pub use run::{run, FoundImage, RunError, RunOptions};
