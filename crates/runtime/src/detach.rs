//! Running a container detached (`irun -d`) and starting one again (`ictr start`): the
//! starter's side of the monitor (monitor/mod.rs). It runs its own binary again
//! (`/proc/self/exe`) with the monitor's environment marker, writes the request on its
//! stdin and waits, at most [`START_TIMEOUT`], for the one reply line on its stdout; a
//! monitor that does not answer in time is killed (and the container with it).
//! Never: waits for the container itself, prints.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imago_sandbox::{IdMap, RemoteError};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::monitor::{Reply, Request, ENV};
use crate::record::{ContainerId, Containers, RecordError};
use crate::run::{RunError, RunOptions};
use crate::status;

/// How long a start may take (the monitor's own setup, the id maps, the mounts).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a monitor that answered `Failed` may take to exit.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// The longest reply read.
const MAX_REPLY: usize = 1024 * 1024;

/// Failures of starting a monitor.
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    /// The binary could not be run again.
    #[error("start the container's monitor (/proc/self/exe)")]
    Spawn(#[source] std::io::Error),
    /// Talking to it failed.
    #[error("talk to the container's monitor")]
    Pipe(#[source] std::io::Error),
    /// No answer in time.
    #[error("the container did not start within {} seconds; its monitor was stopped", START_TIMEOUT.as_secs())]
    Timeout,
    /// It ended without answering.
    #[error("the container's monitor ended without an answer ({0})")]
    Silent(String),
    /// The start failed (the monitor's error chain).
    #[error("start the container")]
    Failed {
        /// The chain.
        #[source]
        error: RemoteError,
        /// What the user can do.
        hint: Option<String>,
    },
    /// Another start holds the container.
    #[error("lock the container")]
    Lock(#[source] imago_store::StoreError),
    /// The container's record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A record without launch settings (made by an older imago).
    #[error("container {0} was made by an older imago and cannot be started again")]
    NoLaunch(String),
}

impl DetachError {
    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            DetachError::Failed { hint, .. } => hint.clone(),
            DetachError::Timeout => {
                Some("run it in the foreground (without -d) to see where its start hangs".into())
            }
            _ => None,
        }
    }
}

/// The size of our terminal (stdin), if it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdin()).ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Start the monitor for `req` and wait until the container runs.
pub fn start(req: &Request) -> Result<(), DetachError> {
    // The monitor works from `/`: a relative `--root` must not change meaning there.
    let req = Request {
        store_root: std::path::absolute(&req.store_root).map_err(DetachError::Pipe)?,
        ..req.clone()
    };
    let req = &req;
    let short: String = req.id.chars().take(12).collect();
    let mut child = Command::new("/proc/self/exe")
        // What `ps` shows for it (and for the container's pid 1, its clone).
        .arg0(format!("imago-monitor {short}"))
        .env(ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(DetachError::Spawn)?;
    let sent = child.stdin.take().map(|mut stdin| {
        let body = serde_json::to_vec(req).unwrap_or_default();
        stdin.write_all(&body)
    });
    if let Some(Err(e)) = sent {
        stop(&mut child);
        return Err(DetachError::Pipe(e));
    }
    let line = match read_reply(&mut child) {
        Ok(Some(l)) => l,
        Ok(None) => {
            let how = wait_bounded(&mut child);
            return Err(DetachError::Silent(how));
        }
        Err(e) => {
            stop(&mut child);
            return Err(e);
        }
    };
    match serde_json::from_slice::<Reply>(&line) {
        Ok(Reply::Started) => Ok(()),
        Ok(Reply::Failed { error, hint }) => {
            // Let it finish its own cleanup before the caller removes anything.
            wait_bounded(&mut child);
            Err(DetachError::Failed { error, hint })
        }
        Err(e) => {
            stop(&mut child);
            Err(DetachError::Pipe(std::io::Error::other(e)))
        }
    }
}

/// One line from the monitor's stdout within [`START_TIMEOUT`]; `None` at EOF.
fn read_reply(child: &mut Child) -> Result<Option<Vec<u8>>, DetachError> {
    let Some(mut out) = child.stdout.take() else {
        return Ok(None);
    };
    let deadline = Instant::now() + START_TIMEOUT;
    let mut line = vec![];
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DetachError::Timeout);
        }
        let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
        let ready = poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        );
        match ready {
            Ok(0) => continue,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(DetachError::Pipe(e.into())),
        }
        let n = match out.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DetachError::Pipe(e)),
        };
        if n == 0 {
            return Ok((!line.is_empty()).then_some(line));
        }
        line.extend_from_slice(&buf[..n]);
        if let Some(i) = line.iter().position(|&b| b == b'\n') {
            line.truncate(i);
            return Ok(Some(line));
        }
        if line.len() > MAX_REPLY {
            return Err(DetachError::Pipe(std::io::Error::other(
                "the monitor's answer is too long",
            )));
        }
    }
}

/// Kill the monitor (its container dies with it) and reap it.
fn stop(child: &mut Child) {
    // Ignoring errors: it may have ended already; the wait below reaps it either way.
    let _ = child.kill();
    wait_bounded(child);
}

/// Wait for the monitor to exit, at most [`EXIT_WAIT`]; how it ended.
fn wait_bounded(child: &mut Child) -> String {
    let deadline = Instant::now() + EXIT_WAIT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(st)) => return st.to_string(),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return e.to_string(),
        }
    }
    "still running".into()
}

/// `irun -d`: create the container (resolving the image, unpacking its layers if
/// needed: no time limit applies to that part) and start its monitor. The container is
/// removed again when the start fails. Single-threaded callers only.
pub fn run_detached(opts: &RunOptions) -> Result<ContainerId, RunError> {
    let map = IdMap::detect();
    let id = ContainerId::random();
    let (mut launch, _lowers) = crate::launch::resolve(opts, &map, id.short())?;
    launch.publish = crate::ports::to_publish(opts, launch.image_id.as_deref())?
        .iter()
        .map(ToString::to_string)
        .collect();
    let containers = Containers::new(&opts.store_root);
    crate::create::create(&containers, &id, &launch, opts.name.as_deref())?;
    let req = Request {
        store_root: opts.store_root.clone(),
        id: id.as_str().to_string(),
        winsize: if launch.tty { terminal_size() } else { None },
    };
    if let Err(e) = start(&req) {
        crate::create::remove(&containers, &id, opts.name.as_deref(), &map);
        return Err(e.into());
    }
    Ok(id)
}

/// What [`start_existing`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// It runs now.
    Now,
    /// It was running already (docker's start does nothing then).
    Already,
}

/// `ictr start`: start the existing container `id` again, with its writable layer as
/// it was. Holds the container's lock, so two starts cannot both run it.
pub fn start_existing(containers: &Containers, id: &ContainerId) -> Result<Started, DetachError> {
    let dir = containers.dir(id);
    let _lock = imago_store::lock::exclusive(&dir.join("lock")).map_err(DetachError::Lock)?;
    let rec = containers
        .read_record(id)
        .ok_or_else(|| RecordError::NotFound(id.as_str().into()))?;
    if status::of(&rec).running() {
        return Ok(Started::Already);
    }
    let launch = rec
        .launch
        .as_ref()
        .ok_or_else(|| DetachError::NoLaunch(id.short().into()))?;
    let req = Request {
        store_root: containers.store_root(),
        id: id.as_str().to_string(),
        winsize: if launch.tty { terminal_size() } else { None },
    };
    start(&req)?;
    Ok(Started::Now)
}
