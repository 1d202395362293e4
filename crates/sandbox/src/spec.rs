//! What a container is asked to be: the root to mount, the mounts, the process and its
//! security settings. Plain data built by the runtime crate from an image config and the
//! user's flags; the sandbox never looks at images.
//! Never: touches the kernel (mounts.rs, setup.rs, exec.rs do).

use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::idmap::IdMap;

/// How the container's root is mounted on [`ContainerSpec::rootfs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootMount {
    /// Kernel overlayfs: `mount("overlay", rootfs, "overlay", 0, data)` made from `cwd`
    /// (relative lowerdir names), after creating `links` (link, target).
    Overlay {
        /// chdir here before mounting.
        cwd: Option<PathBuf>,
        /// The options.
        data: String,
        /// Short links to create first.
        links: Vec<(PathBuf, PathBuf)>,
    },
    /// Bind-mount a directory as the root (writes go to it).
    Bind(PathBuf),
    /// The FUSE overlay of these layers, mounted and served before the container starts
    /// by a process of the caller's ([`crate::fuse_root`]).
    Fuse(crate::fuse_root::FuseLayers),
    /// A single-file image served read-only by FUSE on a lower dir ([`crate::squash_root`]),
    /// with a root mounted over it.
    Squash(crate::squash_root::SquashRoot),
}

/// A mount the user asked for (`-v`, `--mount`, `--tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserMount {
    /// Bind `src` (host) on `dst` (container), read-only when `ro`.
    Bind {
        /// Host path.
        src: PathBuf,
        /// Container path.
        dst: PathBuf,
        /// Read-only.
        ro: bool,
    },
    /// A tmpfs on `dst` with extra options (`size=…,mode=…`).
    Tmpfs {
        /// Container path.
        dst: PathBuf,
        /// Options passed to tmpfs.
        options: String,
    },
}

/// Capabilities of the container process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapsPolicy {
    /// Bound to this set (names like `CAP_CHOWN`); root keeps them effective.
    Bounded(Vec<String>),
    /// Keep every capability (of the user namespace): `--privileged`.
    All,
}

/// The process to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// argv (`argv[0]` looked up in the container's PATH when it has no `/`).
    pub args: Vec<String>,
    /// `K=V` strings, complete (PATH, HOME, HOSTNAME, TERM already filled in).
    pub env: Vec<String>,
    /// Working directory (created when missing, as docker does).
    pub cwd: String,
    /// docker's `--user`: `name`, `uid`, `name:group`, `uid:gid`; empty = root.
    pub user: String,
    /// Allocate a pty (`-t`).
    pub terminal: bool,
    /// Keep stdin (`-i`); otherwise the process reads /dev/null.
    pub stdin: bool,
    /// Capabilities.
    pub caps: CapsPolicy,
    /// Install a seccomp filter.
    pub seccomp: bool,
    /// The docker/OCI profile to compile for it (JSON, checked by the caller); `None`:
    /// docker's default profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
}

/// Everything the sandbox needs to start a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The id mapping of the container's user namespace.
    pub id_map: IdMap,
    /// How the root is made.
    pub root: RootMount,
    /// An empty host dir to mount the root on.
    pub rootfs: PathBuf,
    /// The host name inside.
    pub hostname: String,
    /// Host files bound on /etc/hosts, /etc/hostname, /etc/resolv.conf: (src, dst).
    pub etc_files: Vec<(PathBuf, PathBuf)>,
    /// The user's mounts, in order.
    pub mounts: Vec<UserMount>,
    /// Remount / read-only at the end (`--read-only`).
    pub readonly_root: bool,
    /// Run a tiny init as pid 1 (`--no-init` turns it off).
    pub init: bool,
    /// `--privileged`: no masked or read-only /proc paths, all caps, no seccomp.
    pub privileged: bool,
    /// When Some, the container's pid 1 removes these dirs' contents after the process
    /// ended, from inside the mapping (`--rm`: upper and work hold files of mapped ids).
    pub cleanup: Vec<PathBuf>,
    /// The process.
    pub process: ProcessSpec,
    /// What the container shares with its caller (`--pid host`, `--ipc host`, keep-id's
    /// groups and HOME). Records and specs without it share nothing.
    #[serde(default)]
    pub sharing: Sharing,
}

/// What a container shares with the caller instead of having its own: the HPC run mode's
/// pieces. All off by default (docker's isolation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sharing {
    /// The host's pid namespace (`--pid host`): no CLONE_NEWPID, so the container's
    /// pid 1 is no pid 1; /proc is the host's, bound (a new procfs needs a pid namespace
    /// of our own).
    #[serde(default)]
    pub pid: bool,
    /// The host's IPC namespace (`--ipc host`): no CLONE_NEWIPC; /dev/shm is the host's,
    /// bound, and so is /dev/mqueue when the host has one.
    #[serde(default)]
    pub ipc: bool,
    /// Keep the supplementary groups the process inherited from the caller instead of
    /// setting the image's (`--userns keep-id`: your groups, as with Apptainer).
    #[serde(default)]
    pub keep_groups: bool,
    /// HOME when the image's /etc/passwd has no entry for the user (keep-id: the
    /// caller's own HOME).
    #[serde(default)]
    pub home: Option<String>,
}

/// Where the command's stdout and stderr go, given by the caller of
/// [`Pending::start_with_stdio`](crate::Pending::start_with_stdio): passed to the
/// container over its control channel and put on fds 1 and 2 in the command's own
/// process only, before exec. `None` leaves the slot as the container inherited it (the
/// caller's own). Ignored with a terminal (`-t`), which takes all three slots.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdioFds<'a> {
    /// The command's fd 1.
    pub stdout: Option<BorrowedFd<'a>>,
    /// The command's fd 2.
    pub stderr: Option<BorrowedFd<'a>>,
}

impl StdioFds<'_> {
    /// What `Go` says about the fds attached to it.
    pub(crate) fn passed(&self) -> StdioPassed {
        StdioPassed {
            stdout: self.stdout.is_some(),
            stderr: self.stderr.is_some(),
            fakeroot: false,
        }
    }
}

/// Which [`StdioFds`] travel with `Go` (stdout first, then stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioPassed {
    /// An fd for the command's stdout is attached.
    pub stdout: bool,
    /// An fd for the command's stderr is attached.
    pub stderr: bool,
    /// The recording fakeroot's socket is attached (after stdout and stderr).
    #[serde(default)]
    pub fakeroot: bool,
}

/// docker's default capability set (moby `oci/caps/defaults.go`): CapBnd `a80425fb`.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The container's network (chosen at clone time, see `container::prepare_with`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// The host's network namespace (irun's default today).
    #[default]
    Host,
    /// A new network namespace with only `lo`, brought up.
    None,
    /// A new network namespace with `lo` and a tap interface to the outside through
    /// `pasta` (else `slirp4netns`), started and reaped by the caller (see net.rs).
    Private,
}

#[cfg(test)]
impl ContainerSpec {
    /// A minimal spec for unit tests: `true` under the single mapping, root `/r` bound on
    /// `/m`, no extra mounts; tests change the fields they are about.
    pub(crate) fn for_tests() -> Self {
        ContainerSpec {
            id_map: IdMap::single(1000, 1000),
            root: RootMount::Bind("/r".into()),
            rootfs: "/m".into(),
            hostname: "h".into(),
            etc_files: vec![],
            mounts: vec![],
            readonly_root: false,
            init: true,
            privileged: false,
            cleanup: vec![],
            process: ProcessSpec {
                args: vec!["true".into()],
                env: vec![],
                cwd: "/".into(),
                user: String::new(),
                terminal: false,
                stdin: false,
                caps: CapsPolicy::All,
                seccomp: true,
                seccomp_profile: None,
                no_new_privs: false,
            },
            sharing: Sharing::default(),
        }
    }
}
