//! imago's container process: user namespaces and id mapping, the run-in-mapping
//! primitive, the host probe, and (as they land) the container launch: mounts,
//! pivot_root, capabilities, seccomp, init as pid 1, tty.
//!
//! Knows nothing of images or the store: it takes a prepared root and a process spec.
//!
//! # Public entry points (stable; additions only)
//!
//! ## Id mapping — [`idmap`]
//! - [`IdMap::detect()`] → [`IdMap`]: cheap (no fork). Decided at run time:
//!   - real root → [`MapKind::Identity`]: `0 0 65536` in a *new* user namespace (same
//!     ownership as the host, capabilities namespaced);
//!   - subuid+subgid range and newuidmap/newgidmap present → [`MapKind::SubIds`]:
//!     `0 → uid`, `1..=min(65536, range) → range` (written by [`IdMapWriter::Helper`]);
//!   - else → [`MapKind::Single`]: `0 → uid/gid`, setgroups `deny` ([`IdMapWriter::Direct`]);
//!     for a container with a non-root user U:G, `U → uid`, `G → gid` instead
//!     ([`IdMap::for_container`]).
//!   - `IMAGO_IDMAP=single` forces the single mapping (also for root: `0 0 1`).
//! - [`IdMap::ownership()`] → [`OwnerMode::Real`] (Identity, SubIds) or [`OwnerMode::Xattr`]
//!   (Single: ownership of layer files kept in `user.containers.override_stat`); the type
//!   is `imago_oci::layer::OwnerMode`, re-exported here.
//! - [`IdMap::plan(&IdMapInput)`](IdMap::plan): the pure decision (unit-testable);
//!   [`IdMap::write(pid)`](IdMap::write): write a waiting child's maps (helper exit
//!   status and stderr checked: [`IdMapError::Helper`]).
//! - helpers: [`idmap::find_range`], [`idmap::user_name_for`], [`idmap::find_program`].
//!
//! ## Run in the mapping — [`child`]
//! - [`run_in_mapping(&map, || -> Result<T, E>)`](run_in_mapping) → `Result<T, ChildError>`:
//!   forks a child that unshares user+mount namespaces, the parent writes the maps, the
//!   child (uid 0 inside, mounts private) runs the closure and sends `Result` back as
//!   JSON. `T: Serialize + DeserializeOwned`, `E: std::error::Error + 'static`. A closure
//!   error comes back as [`ChildError::Remote`] holding a [`RemoteError`] with the whole
//!   `source()` chain; a panic as [`ChildError::Panic`]. Always forks (also for root:
//!   identity map, so ownership is unchanged). Threading: uses `fork()` (atfork handlers
//!   keep malloc usable) but prefer calling while single-threaded; the closure must not
//!   take locks other threads may hold. The closure's stdout/stderr are the caller's.
//!
//! ## Host probe — [`probe`]
//! - [`HostProbe::detect()`] / [`HostProbe::detect_in(dir)`](HostProbe::detect_in) →
//!   [`HostProbe`] (Serialize): kernel version, `userns`, `overlay_in_userns`, `fuse`,
//!   `newuidmap`/`newgidmap`, `subuid`/`subgid`, `id_map` (the kind irun will use),
//!   `openat2`, and `fixes: Vec<Fix { item, text }>`, one per missing item. Forks twice
//!   (a few ms); call once and pass `&HostProbe` down.
//!
//! ## Containers — [`container`], [`spec`]
//! - [`run(&ContainerSpec)`](run) → exit code (the command's; 128+N if killed by N):
//!   clones pid 1 in new user/mount/pid/uts/ipc namespaces (host network), writes the
//!   maps, mounts the root ([`RootMount::Overlay`] options from the `imago-overlay`
//!   crate, or a bind), the mount plan ([`mounts::plan`]: /proc, /dev tmpfs + host
//!   device binds + devpts + shm + mqueue, /sys ro, /etc files, user mounts, runc's
//!   masked and read-only paths) with every container path resolved inside the root
//!   ([`inroot::InRoot`]: an image's symlinks never reach the host), workdir, user
//!   (resolved in the image's /etc/passwd, read bounded), then pivot_root with the old
//!   root detached at once, hostname, caps ([`caps::compute`] for `--cap-add/--cap-drop`),
//!   seccomp ([`seccomp::program`]: docker's default profile or the user's, or for root under
//!   [`MapKind::Single`] the fakeroot variant where chown &
//!   co to unmapped ids, setgroups and mknod of devices succeed doing nothing; none with
//!   `spec.process.seccomp == false`), no_new_privs, tiny init ([`init`]) and exec.
//!   `-t`: a pty from the container's own devpts, relayed by [`tty::relay`].
//!   Single-threaded callers only. Setup errors: [`ContainerError::Setup`] (chain kept).
//! - [`prepare(&IdMap)`](prepare) → [`Pending`], then [`Pending::start(&spec)`](Pending::start):
//!   the same in two steps — clone pid 1 and start newuidmap/newgidmap first, do your own
//!   work (image lookup, dirs) while they run, then hand over the spec (sent as JSON over
//!   the control channel in frames, up to [`container::MAX_MESSAGE`] = 64 MiB; more is
//!   [`ContainerError::TooLarge`]). Dropping a `Pending` kills the waiting child.
//!   [`prepare_with(&IdMap, Network)`](prepare_with): [`Network::None`] gives the container
//!   a network namespace of its own with only `lo` (up); `prepare` = `Network::Host`;
//!   [`Network::Private`] adds a tap interface with outbound access through `pasta` (else
//!   `slirp4netns`), started by [`Pending::start`] and reaped when the container ends
//!   (with neither installed, the namespace has only `lo`: [`net::helper`] says which).
//!   [`prepare_shared`] shares the host's pid and/or IPC namespace ([`Sharing`]);
//!   [`prepare_joining`] enters an existing user namespace instead of making one (MPI
//!   ranks in one namespace may use each other's memory: CMA).
//!   [`Pending::start_with_stdio`] gives the command its stdout/stderr as fds
//!   ([`StdioFds`]), passed with the spec and put on fds 1 and 2 in the command's own
//!   process; the caller's fds 0, 1, 2 are never touched.
//! - [`IdMap::start_write(pid)`](IdMap::start_write) → [`MapWrite`] (`finish()`): the
//!   helpers run concurrently; [`IdMap::write`] is both in one call.
//!
//! ## Paths inside a root — [`inroot`]
//! - [`inroot::InRoot::new(root_fd, Resolver::detect())`](inroot::InRoot::new):
//!   `open`, `mkdir_all`, `create_file`, `symlink`, `read_file(path, max)` resolve a
//!   container path inside the root (openat2 `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`,
//!   or an `O_NOFOLLOW` component walk on kernels without it); `O_PATH` fds out,
//!   [`inroot::InRootError`] naming the path.
//!
//! ## Host processes — [`proc`]
//! - [`proc::start_time(pid)`](proc::start_time): field 22 of `/proc/PID/stat` of a
//!   running process (`None` once it ended), to tell it from a later one with its pid;
//!   the parsers of a stat line ([`proc::parse_start_time`], [`proc::has_ended`]).
//! - [`proc::fork_child(&keep, body)`](proc::fork_child): fork a child that closes every
//!   inherited fd above 2 but `keep`, runs `body` and `_exit`s. Single-threaded callers.
//!
//! Errors carry `hint()` methods ([`IdMapError::hint`], [`ChildError::hint`]).

pub mod caps;
mod channel;
pub mod child;
pub mod container;
mod exec;
mod fd;
pub mod fuse_root;
pub mod idmap;
pub mod init;
pub mod inroot;
pub mod join;
pub mod mounts;
pub mod net;
mod pid1;
pub mod probe;
pub mod proc;
pub mod seccomp;
mod setup;
pub mod spec;
pub mod squash_root;
mod sys;
pub mod tty;
pub mod user;
mod wait;

/// PATH when neither the image nor the user sets one (docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub use child::{run_in_mapping, ChildError, RemoteError};
pub use container::{
    prepare, prepare_joining, prepare_shared, prepare_with, run, ContainerError, Pending,
};
pub use idmap::{
    IdMap, IdMapEntry, IdMapError, IdMapInput, IdMapWriter, IdRange, MapKind, MapWrite,
};
pub use imago_oci::layer::OwnerMode;
pub use probe::{Fix, HostProbe, KernelVersion};
pub use spec::{
    CapsPolicy, ContainerSpec, Network, ProcessSpec, RootMount, Sharing, StdioFds, UserMount,
    DEFAULT_CAPS,
};
