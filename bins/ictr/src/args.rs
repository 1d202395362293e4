//! `ictr`'s command line: the options of every verb, as clap reads them. Shared with the
//! completion and man page generator (xtask), which includes this file by path: so it
//! names only `clap`, `imago_cli` and `std`, never `crate::`.
//!
//! Never: acts on what it parses (each verb's module does).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Manage containers (docker's container verbs).
#[derive(Debug, Parser)]
#[command(name = "ictr", version)]
pub struct Opts {
    #[command(flatten)]
    pub global: imago_cli::GlobalOpts,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// List containers
    #[command(alias = "ls", alias = "list")]
    Ps(PsArgs),
    /// Print a container's output
    Logs(LogsArgs),
    /// Stop running containers (the stop signal, then SIGKILL after a timeout)
    Stop(StopArgs),
    /// Send a signal to running containers
    Kill(KillArgs),
    /// Remove containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Show containers as JSON (docker's shape)
    Inspect(InspectArgs),
    /// Start stopped containers again
    Start(StartArgs),
    /// Wait until containers end and print their exit codes
    Wait(WaitArgs),
    /// List a container's published ports
    Port(PortArgs),
    /// Attach to a running container's terminal or output
    Attach(AttachArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
}

/// `ictr ps` flags.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Only container ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the last N created containers (all states)
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Show the latest created container (all states)
    #[arg(short, long)]
    pub latest: bool,
    /// table, json (one object per line) or a Go template (`{{.Names}} {{.Status}}`,
    /// `table {{.ID}}\t{{.Names}}`); fields: ID, Image, Command, CreatedAt,
    /// RunningFor, Status, Ports, Names, State, Labels
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
}

/// `ictr logs` flags.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow the output until the container ends
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all" for all)
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Show each line's time
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines since this time: RFC 3339, Unix seconds, or relative (10m, 1h30m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The container (name, id or unique id prefix)
    pub container: String,
}

/// `ictr stop` flags.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        default_value_t = 10
    )]
    pub time: u64,
    /// The signal to stop with (default: the image's STOPSIGNAL, else SIGTERM)
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ictr kill` flags.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// The signal: a name (KILL, SIGTERM) or a number
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ictr rm` flags.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill a running container first (and ignore missing ones)
    #[arg(short, long)]
    pub force: bool,
    /// Accepted for docker compatibility (imago has no anonymous volumes)
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ictr commit` flags.
#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The image's author (`Jane <jane@example.com>`)
    #[arg(short, long)]
    pub author: Option<String>,
    /// A Dockerfile instruction applied to the image's config: CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// A commit message (the history entry's comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// The container (name, id or unique id prefix)
    pub container: String,
    /// The new image's name, `REPOSITORY[:TAG]` (none: an unnamed image)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

/// `ictr inspect` flags.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A Go template applied to each container (`{{.State.Status}}`)
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ictr start` flags.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach to the container's output (or terminal) and exit with its code
    #[arg(short, long)]
    pub attach: bool,
    /// Pass our input to the container's terminal (with -a)
    #[arg(short, long)]
    pub interactive: bool,
    /// The keys that detach (with -a and a terminal)
    #[arg(long, default_value = "ctrl-p,ctrl-q", value_name = "KEYS")]
    pub detach_keys: String,
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ictr wait` flags.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Containers (name, id or unique id prefix)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ictr port` flags.
#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// The container (name, id or unique id prefix)
    pub container: String,
    /// Only this container port: PORT or PORT/PROTO
    pub private_port: Option<String>,
}

/// `ictr attach` flags.
#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Do not send our input to the container
    #[arg(long)]
    pub no_stdin: bool,
    /// The keys that detach: ctrl-<key> or single characters, comma separated
    #[arg(long, default_value = "ctrl-p,ctrl-q", value_name = "KEYS")]
    pub detach_keys: String,
    /// The container (name, id or unique id prefix)
    pub container: String,
}

/// `ictr exec` flags (docker exec's).
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Keep STDIN open (otherwise the command reads /dev/null)
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Detached mode: start the command and return (its output is discarded)
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables (K=V, or K to pass ictr's own value)
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file (K=V lines, # comments)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (default: the container's)
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid] (default: the container's)
    #[arg(short, long)]
    pub user: Option<String>,
    /// CONTAINER COMMAND [ARG...]: options go before the container; from it on,
    /// everything belongs to the command.
    #[arg(trailing_var_arg = true, value_name = "CONTAINER COMMAND")]
    pub rest: Vec<String>,
}
