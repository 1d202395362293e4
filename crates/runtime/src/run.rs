//! The foreground run path of irun: clone the container's pid 1 (under the single
//! mapping only once the spec is made, see launch.rs) → resolve the image and
//! the flags (launch.rs, unpacking layers inside the mapping when needed) → container dir
//! and record (create.rs) → overlay plan → the published ports' forwarder (ports/) →
//! `Pending::start` → record the exit or remove
//! everything (`--rm`). Also [`RunOptions`] and [`RunError`], shared with the detached
//! path (detach.rs).
//! Never: parses command lines (bins do), prints (returns codes and errors).

use std::path::PathBuf;

use imago_sandbox::{ChildError, IdMap, UserMount};
use imago_store::StoreError;

use crate::config::ConfigError;
use crate::live::ProcRef;
use crate::record::{ContainerId, Containers, RecordError, State};
use crate::{clone, create, launch};

/// Everything `irun` can ask for (already split from the command line).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The store root.
    pub store_root: PathBuf,
    /// The image (name, id, digest), unless `rootfs` is given.
    pub image: Option<String>,
    /// `image` as the caller already found it in the store at `store_root` (irun's
    /// look-up of a short name): used as it is instead of a second look-up.
    pub found: Option<FoundImage>,
    /// `--rootfs DIR`: run a directory as the (read-only) lower layer instead of an image.
    pub rootfs: Option<PathBuf>,
    /// A single-file image (`FILE.sqsh`) instead of an image from the store.
    pub sqsh: Option<PathBuf>,
    /// Arguments after the image (replace CMD).
    pub args: Vec<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// `-e`.
    pub env: Vec<String>,
    /// Contents of the `--env-file`s.
    pub env_files: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-v`, `--mount`, `--tmpfs`, parsed.
    pub mounts: Vec<UserMount>,
    /// `--device`, resolved ([`crate::devices::plan`]).
    pub devices: crate::devices::DevicePlan,
    /// `--read-only`.
    pub read_only: bool,
    /// `--rm`.
    pub rm: bool,
    /// `--name`.
    pub name: Option<String>,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// Run the tiny init as pid 1 (`--no-init` clears it).
    pub init: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privs: bool,
    /// `--security-opt seccomp=unconfined` clears it.
    pub seccomp: bool,
    /// `--security-opt seccomp=FILE`: the profile's JSON (checked); `None`: docker's.
    pub seccomp_profile: Option<String>,
    /// `--network host|none|private`.
    pub network: imago_sandbox::Network,
    /// `-p`, parsed.
    pub ports: Vec<crate::ports::PortSpec>,
    /// `-P`: publish every EXPOSEd port on a free host port.
    pub publish_all: bool,
    /// Told the published ports whose host port irun chose (`-P`, `-p CTR`), once they
    /// listen and before the container starts.
    pub on_chosen_ports: Option<fn(&[crate::ports::PortSpec])>,
    /// The storage driver (`imago_cli::storage::choose`): how the root is made.
    pub storage: imago_overlay::RootfsMethod,
    /// `--userns keep-id`: run as the caller's own uid:gid, mapped at themselves.
    pub keep_id: bool,
    /// `--pid host`: the host's pid namespace.
    pub pid_host: bool,
    /// `--ipc host`: the host's IPC namespace and /dev/shm.
    pub ipc_host: bool,
    /// `--env-host`: the caller's environment but [`crate::hpc::DENIED`] (a launcher's
    /// variables pass without it).
    pub env_host: bool,
    /// `--pids-limit`, `--memory`, `--cpus` ([`crate::limits`]).
    pub limits: crate::limits::Limits,
}

/// An image found in a store, and that store (open).
#[derive(Debug, Clone)]
pub struct FoundImage {
    pub store: imago_store::Store,
    pub image: imago_store::Image,
}

/// Failures of the run path (exit 125 in irun).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Neither an image nor `--rootfs`.
    #[error("no image given: `irun [OPTIONS] IMAGE [COMMAND] [ARG...]`")]
    NoImage,
    /// The store failed.
    #[error("image store")]
    Store(#[from] StoreError),
    /// Unpacking in the mapping failed.
    #[error("unpack the image's layers (in the user namespace)")]
    Unpack(#[source] ChildError),
    /// A flag was wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A capability name was wrong.
    #[error(transparent)]
    Caps(#[from] imago_sandbox::caps::CapsError),
    /// Container records.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The overlay could not be planned.
    #[error("plan the container's root file system")]
    Overlay(#[from] imago_overlay::OverlayError),
    /// `--rootfs` is no directory.
    #[error("--rootfs `{0}` is not a directory")]
    Rootfs(PathBuf),
    /// A single-file image could not be run.
    #[error(transparent)]
    Squash(#[from] crate::squash::SquashError),
    /// A file of the container could not be written.
    #[error("write `{0}`")]
    Write(PathBuf, #[source] std::io::Error),
    /// The container failed to start.
    #[error(transparent)]
    Container(#[from] imago_sandbox::ContainerError),
    /// A detached container's monitor failed or reported a failure.
    #[error(transparent)]
    Detach(#[from] crate::detach::DetachError),
    /// Ports could not be published.
    #[error(transparent)]
    Ports(#[from] crate::ports::PortsError),
    /// `--pids-limit`, `--memory`, `--cpus` could not be applied.
    #[error(transparent)]
    Limits(#[from] crate::limits::LimitsError),
}

impl RunError {
    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Store(e) => e.hint(),
            RunError::Unpack(e) => e.hint(),
            RunError::Container(e) => e.hint(),
            RunError::Detach(e) => e.hint(),
            RunError::Limits(e) => e.hint(),
            _ => None,
        }
    }
}

/// Run a container in the foreground; returns irun's exit code (the command's status,
/// 128+N for a signal). Call while single-threaded (see `imago_sandbox::run`).
pub fn run(opts: &RunOptions) -> Result<i32, RunError> {
    let map = IdMap::detect();
    // Clone the container's pid 1 first when its maps do not depend on the image (not
    // under the single mapping: see clone::prepare_early).
    let early = clone::prepare_early(&map, &clone::CloneAs::of_options(opts))?;
    let id = ContainerId::random();
    let (launch, lowers) = launch::resolve(opts, &map, id.short())?;
    let publish = crate::ports::to_publish(opts, launch.image_id.as_deref())?;
    let containers = Containers::new(&opts.store_root);
    let (dir, mut rec) = create::create(&containers, &id, &launch, opts.name.as_deref())?;
    let result = (|| {
        let mut spec = launch::spec(&launch, &dir, &map, &lowers, opts.rm)?;
        let pending = clone::prepare_late(early, &mut spec, opts.network)?;
        // Before it runs anything: whatever it forks inherits the cgroup (removed on drop).
        let _cgroup = crate::limits::apply(&opts.limits, pending.pid())?;
        // Before the container starts: its ports listen by the time it runs.
        let forwarder = crate::ports::Forwarder::start(pending.pid(), &publish)
            .map_err(crate::ports::PortsError::from)?;
        rec.ports = forwarder
            .published()
            .iter()
            .map(ToString::to_string)
            .collect();
        match (opts.on_chosen_ports, forwarder.chosen()) {
            (Some(tell), chosen) if !chosen.is_empty() => tell(&chosen),
            _ => {}
        }
        // irun itself is the process that runs it: `ictr ps` shows it up while irun lives.
        rec.state = State::Running;
        rec.started = Some(create::now_rfc3339());
        rec.monitor = ProcRef::current();
        rec.pid = ProcRef::of(pending.pid());
        containers.write_record(&rec)?;
        let code = pending.start(&spec)?;
        forwarder.stop();
        if !opts.rm {
            rec.state = State::Exited;
            rec.exit_code = Some(code);
            rec.finished = Some(create::now_rfc3339());
            rec.pid = None;
            containers.write_record(&rec)?;
        }
        Ok(code)
    })();
    if opts.rm || result.is_err() {
        create::remove(&containers, &id, opts.name.as_deref(), &map);
    }
    result
}
