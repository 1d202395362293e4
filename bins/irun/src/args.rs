//! `irun`'s command line, as clap reads it. Shared with the completion and man page
//! generator (xtask), which includes this file by path: so it names only `clap`, `imago_cli`
//! and `std`, never `crate::`.
//!
//! Never: acts on what it parses (main.rs does).

use clap::Parser;

/// Run a command in a new container (docker run's flags).
#[derive(Debug, Parser)]
#[command(name = "irun", version, trailing_var_arg = true)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run the container in the background and print its id (its monitor keeps it;
    /// see `ictr`)
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open (otherwise the container reads /dev/null)
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (K=V, or K to pass irun's own value)
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file (K=V lines, # comments)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container (created if missing)
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the image's ENTRYPOINT ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name (default: the short container id)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Bind mount a host path: HOST:CONTAINER[:ro]
    #[arg(short, long = "volume", value_name = "HOST:CTR[:ro]")]
    pub volume: Vec<String>,
    /// Attach a mount: type=bind,source=…,target=…[,readonly] | type=tmpfs,target=…
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs: /path[:options]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Add a host device (HOST[:CONTAINER][:PERMS], bound from the host; PERMS is not
    /// enforced) or a CDI device (vendor.com/class=name, or =all) from the specs in
    /// /etc/cdi and /var/run/cdi ($IMAGO_CDI_SPEC_DIRS); repeatable
    #[arg(long, value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Mount the container's root file system read-only
    #[arg(long)]
    pub read_only: bool,
    /// Add a capability (e.g. NET_ADMIN, ALL)
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability (e.g. CHOWN, ALL)
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// All capabilities (of the user namespace), no seccomp, no masked or read-only
    /// paths. Run by root this is host root, as docker's --privileged: the container
    /// can write host-wide sysctls (/proc/sys), remount /sys read-write and change
    /// kernel.core_pattern. Run by any other user it stays within that user's rights.
    #[arg(long)]
    pub privileged: bool,
    /// Security options: no-new-privileges[:true|false], seccomp=unconfined,
    /// seccomp=FILE (a docker/OCI seccomp profile, JSON; default: docker's). As root,
    /// seccomp=unconfined with --cap-add SYS_ADMIN is as strong as --privileged.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Network: host (the host's), none (only a loopback interface) or private (a
    /// namespace of its own with outbound access through pasta or slirp4netns). Default:
    /// host, but private with -d, -p or -P
    #[arg(long, visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// Publish a container port on the host: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]
    /// (ranges A-B too; no HOST_PORT: a free one); repeatable
    #[arg(short = 'p', long = "publish", value_name = "[IP:][HOST:]CTR[/PROTO]")]
    pub publish: Vec<String>,
    /// Publish every port the image EXPOSEs on a free host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// When to pull the image from its registry: missing (only when the store has none),
    /// always, never
    #[arg(long, value_name = "POLICY", default_value = "missing", value_parser = ["missing", "always", "never"])]
    pub pull: String,
    /// Platform to run (OS/ARCH[/VARIANT]): picked from a multi-platform image when it
    /// is pulled; an image in the store of another platform is pulled again
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<imago_cli::remote::Platform>,
    /// Do not run an init as pid 1 (the command becomes pid 1)
    #[arg(long)]
    pub no_init: bool,
    /// User namespace mode: keep-id (inside you are your own uid and gid, with your
    /// groups; root stays root)
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// PID namespace: host (see and signal the host's processes; no init as pid 1) or
    /// private (default)
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// IPC namespace: host (the host's SysV IPC and /dev/shm) or private (default)
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// Pass the host's environment in, but PATH, HOME, HOSTNAME, PWD, LD_* and a few
    /// more (see docs/irun.md); -e and --env-file win
    #[arg(long)]
    pub env_host: bool,
    /// Bind your $HOME at the same path (read-write) and set HOME to it
    #[arg(long)]
    pub bind_home: bool,
    /// Bind the current directory at the same path and make it the working directory
    #[arg(long)]
    pub bind_cwd: bool,
    /// The HPC profile: --userns keep-id --pid host --ipc host --network host --env-host
    /// --bind-cwd, the host's /tmp, $TMPDIR and name, and NUMA calls (SYS_NICE); for
    /// MPI ranks and Slurm tasks
    #[arg(long)]
    pub hpc: bool,
    /// Run a directory as the container's (read-only, overlaid) root instead of an image
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<std::path::PathBuf>,
    /// How the container's root is made: overlay (kernel overlayfs in a user namespace),
    /// fuse, or copy (a private copy of the image: slow, for hosts without either).
    /// Default: $IMAGO_STORAGE_DRIVER, else the config key storage_driver, else what
    /// this host supports
    #[arg(long, value_name = "DRIVER")]
    pub storage_driver: Option<String>,
    /// Limit the container's processes and threads (0 or -1: no limit). Needs a
    /// cgroup: root on cgroup v1, or a delegated cgroup v2 (see docs/irun.md)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Limit the container's memory (b, k, m, g; at least 6m); no swap on top: over it,
    /// the kernel kills the biggest process (exit 137). Needs a cgroup, as --pids-limit
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Limit the container's CPU time to N CPUs (e.g. 1.5). Needs a cgroup, as
    /// --pids-limit
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// IMAGE [COMMAND] [ARG...] (with --rootfs: COMMAND [ARG...]). Options go before
    /// the image; from the image on, everything (`-l` too) belongs to the command.
    #[arg(value_name = "IMAGE [COMMAND]")]
    pub rest: Vec<String>,
}
