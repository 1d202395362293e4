//! A detached container's monitor: the one process that runs it (started by `irun -d`
//! and `ictr start`, see detach.rs), alive exactly as long as the container.
//!
//! The starter runs its own binary again with [`ENV`] set, the [`Request`] (JSON) on the
//! monitor's stdin and a pipe on its stdout for one [`Reply`] line. The monitor:
//! 1. reads the request; keeps the reply pipe on a close-on-exec fd and puts /dev/null
//!    on fds 0 and 1 (the container's pid 1 keeps fds 0-2: it must hold nothing of the
//!    starter's); becomes a session leader (setsid: closing the starter's terminal or
//!    killing its session does not reach it); sends its own diagnostics to
//!    `<container dir>/monitor.log`;
//! 2. clones the container's pid 1 (`imago_sandbox::prepare_with`, while still
//!    single-threaded), finds the image's layers (holding them against gc) and builds
//!    the spec from the record's `launch` (under the single mapping the clone comes
//!    after the spec, whose map is placed at the container's user: launch.rs);
//! 3. makes the output channel: two pipes (stdout, stderr) or, with `-t`, a host
//!    terminal whose slave becomes its own fds 0 and 1, where the sandbox's terminal
//!    relay reads and writes, and whose master it serves on `<live dir>/attach.sock`;
//! 4. starts the I/O thread (io.rs: log file, attach clients, the start watch), then
//!    runs the container in the main thread (`start_with_stdio`), which forwards
//!    SIGTERM & co sent to the monitor and returns the exit code;
//! 5. records `running` (pids, start time) and replies `Started` once the container
//!    runs, or replies `Failed` with the error chain when the start failed; records
//!    `exited` with the code at the end; removes the container with `--rm`.
//!
//! Threads: only the main thread exists until the clone; the I/O thread starts after it
//! (it inherits the blocked signal mask, so signals still reach the main thread's wait)
//! and is joined before anything forks again (the `--rm` removal may run in the
//! mapping). The container's pid 1 dies with the monitor (its parent-death signal), so
//! a killed monitor leaves no container running.
//! Never: prints on the starter's terminal, parses command lines.

mod io;
mod pty;
mod state;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use imago_sandbox::{IdMap, RemoteError, StdioFds};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};

use crate::logfile::{self, Stream};
use crate::record::{live_dir, ContainerId, Containers};
use crate::run::RunError;
use io::{Io, StartWatch};
use state::{Running, Shared};

/// Set (to anything) in the environment of a monitor process.
pub const ENV: &str = "IMAGO_MONITOR";
/// The largest request read.
const MAX_REQUEST: u64 = 1024 * 1024;

/// What the starter asks of a monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The store.
    pub store_root: PathBuf,
    /// The container (created, with a `launch`).
    pub id: String,
    /// The starting terminal's size (rows, columns), for `-t`.
    pub winsize: Option<(u16, u16)>,
}

/// The monitor's one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The container runs (or already ran and ended).
    Started,
    /// It could not be started: the error chain and what the user can do.
    Failed {
        /// The chain.
        error: RemoteError,
        /// A hint.
        hint: Option<String>,
    },
}

/// Failures inside the monitor (sent back in [`Reply::Failed`]).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The request could not be read or decoded.
    #[error("read the monitor's request")]
    Request(#[source] std::io::Error),
    /// There is no such container.
    #[error("no container `{0}` in this store")]
    NoContainer(String),
    /// A record without launch settings (made by an older imago).
    #[error("container {0} was made by an older imago and cannot be started again")]
    NoLaunch(String),
    /// The run path failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A file or socket could not be made.
    #[error("{what} `{}`", path.display())]
    Io {
        /// The operation.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{0}")]
    Sys(&'static str, #[source] Errno),
}

impl MonitorError {
    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            MonitorError::Run(e) => e.hint(),
            _ => None,
        }
    }
}

/// Be the monitor when this process was started as one ([`ENV`] set): install the
/// caller's logger at `warn`, run until the container has ended (or failed to start)
/// and return the exit code for `main`; `None` for an ordinary start. A bin that may be
/// re-run as a monitor (irun, ictr) calls this first thing in `main`, while
/// single-threaded.
pub fn run_if_requested(init_logging: fn(&str)) -> Option<ExitCode> {
    std::env::var_os(ENV)?;
    init_logging("warn");
    Some(run())
}

/// Be the monitor: returns when the container has ended (or failed to start).
fn run() -> ExitCode {
    // Nothing the monitor starts needs to see it.
    std::env::remove_var(ENV);
    let Ok((req, reply)) = take_stdio() else {
        return ExitCode::from(125);
    };
    // Ignoring the result: setsid fails only for a process group leader, and the
    // starter spawned us as an ordinary child of its own group.
    let _ = nix::unistd::setsid();
    // Keep no directory of the starter busy (every path in the request is absolute).
    // Ignoring failure: "/" is always there to change to.
    let _ = nix::unistd::chdir("/");
    let shared = Shared {
        reply: Mutex::new(Some(reply)),
        running: Mutex::new(None),
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            shared.fail(&e);
            return ExitCode::from(125);
        }
    };
    match serve(&req, &shared) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !shared.fail(&e) {
                tracing::error!("{e}");
            }
            ExitCode::from(125)
        }
    }
}

/// Read the request from stdin, keep stdout (the reply pipe) on a close-on-exec fd and
/// put /dev/null on fds 0 and 1.
fn take_stdio() -> std::io::Result<(Result<Request, MonitorError>, File)> {
    let mut bytes = vec![];
    let read = std::io::stdin()
        .take(MAX_REQUEST)
        .read_to_end(&mut bytes)
        .map(|_| ());
    let reply = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let null = File::options().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    let req = read
        .and_then(|()| serde_json::from_slice(&bytes).map_err(std::io::Error::other))
        .map_err(MonitorError::Request);
    Ok((req, reply))
}

pub(super) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> MonitorError + 'a {
    move |source| MonitorError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Our fd 2 to `<dir>/monitor.log` (best effort: without it diagnostics are lost).
fn redirect_stderr(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path);
    if let Ok(f) = opened {
        // Ignoring failure: fd 2 then stays /dev/null.
        let _ = nix::unistd::dup2_stderr(&f);
    }
}

/// The writing ends the container gets, held until it ended.
enum Outputs {
    Pipes(OwnedFd, OwnedFd),
    Terminal,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), MonitorError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| MonitorError::Sys("create a pipe", e))
}

fn serve(req: &Request, shared: &Shared) -> Result<(), MonitorError> {
    let id =
        ContainerId::parse(&req.id).ok_or_else(|| MonitorError::NoContainer(req.id.clone()))?;
    let containers = Containers::new(&req.store_root);
    let dir = containers.dir(&id);
    let rec = containers
        .read_record(&id)
        .ok_or_else(|| MonitorError::NoContainer(req.id.clone()))?;
    redirect_stderr(&dir.join("monitor.log"));
    let launch = rec
        .launch
        .clone()
        .ok_or_else(|| MonitorError::NoLaunch(req.id.clone()))?;
    let map = IdMap::detect();
    let before = io::sockets();
    let early = crate::clone::prepare_early(&map, &crate::clone::CloneAs::of_launch(&launch))?;
    let (lowers, _hold) = crate::launch::lowers_again(&req.store_root, &launch, &map)?;
    let mut spec = crate::launch::spec(&launch, &dir, &map, &lowers, launch.auto_remove)?;
    let pending = crate::clone::prepare_late(early, &mut spec, launch.network)?;
    // Before it runs anything, as irun in the foreground does; removed when the monitor
    // ends with its container.
    let _cgroup = crate::limits::apply(&launch.limits, pending.pid()).map_err(RunError::from)?;
    let watch = StartWatch::new(&before, io::sockets(), pending.pid());
    // Before any pipe or terminal is made: the forwarder is a forked child and must hold
    // none of them (their ends would outlive the container).
    let forwarder =
        crate::ports::Forwarder::start(pending.pid(), &crate::launch::publish_specs(&launch))
            .map_err(|e| RunError::Ports(e.into()))?;
    let ports: Vec<String> = forwarder
        .published()
        .iter()
        .map(ToString::to_string)
        .collect();
    let live = live_dir(&id).map_err(RunError::from)?;
    std::fs::create_dir_all(&live).map_err(io_err("create directory", &live))?;
    let log_path = logfile::path(&dir, id.as_str());
    let log = logfile::Writer::open(&log_path).map_err(io_err("open the log", &log_path))?;
    let (done_r, done_w) = pipe()?;
    let (streams, pty, outputs) = if launch.tty {
        let (master, pty) = pty::terminal(req, &live, launch.interactive)?;
        (vec![(master, Stream::Stdout)], Some(pty), Outputs::Terminal)
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let streams = vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)];
        (streams, None, Outputs::Pipes(out_w, err_w))
    };
    let io = Io {
        streams,
        pty,
        log,
        done: done_r,
        watch,
    };
    *shared.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(Running {
        containers: containers.clone(),
        rec,
        container_pid: pending.pid(),
        socket: launch.tty.then(|| live.join(crate::attach::SOCKET)),
        ports,
    });
    let result = std::thread::scope(|s| {
        let io_thread = s.spawn(|| io.run(&|| shared.started()));
        let stdio = match &outputs {
            Outputs::Pipes(o, e) => StdioFds {
                stdout: Some(o.as_fd()),
                stderr: Some(e.as_fd()),
            },
            Outputs::Terminal => StdioFds::default(),
        };
        let r = pending.start_with_stdio(&spec, stdio);
        // The container ended: close our writing ends so the I/O thread sees the end
        // of its output (the terminal's slave is our fds 0 and 1).
        drop(outputs);
        if launch.tty {
            pty::release_terminal();
        }
        drop(done_w);
        if io_thread.join().is_err() {
            tracing::error!("the monitor's I/O thread panicked");
        }
        r
    });
    forwarder.stop();
    let code = match result {
        Ok(code) => {
            shared.started();
            code
        }
        Err(e) => {
            let err = MonitorError::Run(RunError::Container(e));
            if shared.fail(&err) {
                // Never ran: the record stays as it was.
                let _ = std::fs::remove_dir_all(&live); // only a dead socket in it
                return Ok(());
            }
            tracing::error!("{err}");
            125
        }
    };
    shared.exited(code);
    // Best effort: a live dir left behind holds only a dead socket.
    let _ = std::fs::remove_dir_all(&live);
    if launch.auto_remove {
        crate::create::remove(&containers, &id, shared.name().as_deref(), &map);
    }
    Ok(())
}
