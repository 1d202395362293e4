//! Acting on containers that run: signals to the container's pid 1 (which forwards them
//! to the command, or is the command with `--no-init`), stop (the stop signal, SIGKILL
//! after a timeout), waiting for the end, and removal (`-f` kills first; whatever is
//! left of a container whose monitor was killed is killed too).
//! Never: starts containers (detach.rs), prints.

use std::time::{Duration, Instant};

use imago_sandbox::IdMap;
use nix::errno::Errno;
use nix::sys::signal::Signal;

use crate::live::{parse_signal, ProcRef};
use crate::record::{ContainerId, ContainerRecord, Containers, RecordError};
use crate::status::{self, Status};

/// How long a container may take to go after SIGKILL.
pub const KILL_WAIT: Duration = Duration::from_secs(10);
/// How often the record is read while waiting.
const POLL: Duration = Duration::from_millis(20);

/// Failures of acting on a container.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Its record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Not running (docker's message).
    #[error("container {0} is not running")]
    NotRunning(String),
    /// Running, and removal was not forced (docker's message).
    #[error("cannot remove container \"/{0}\": container is running: stop the container before removing or force remove")]
    Running(String),
    /// The signal could not be sent.
    #[error("send {sig} to the container's pid 1 (pid {pid})")]
    Signal {
        /// The signal.
        sig: Signal,
        /// The host pid.
        pid: i32,
        /// Why.
        #[source]
        source: Errno,
    },
    /// The stop signal of the image is not one we know.
    #[error("unknown signal `{0}`")]
    BadSignal(String),
    /// Still running after SIGKILL.
    #[error("container {name} did not end within {} seconds of SIGKILL", KILL_WAIT.as_secs())]
    Stuck {
        /// Its name or short id.
        name: String,
    },
    /// Another start or removal holds it.
    #[error("lock the container")]
    Lock(#[source] imago_store::StoreError),
}

/// The record of `id`, or `NotFound`.
pub fn record(containers: &Containers, id: &ContainerId) -> Result<ContainerRecord, ControlError> {
    containers
        .read_record(id)
        .ok_or_else(|| RecordError::NotFound(id.as_str().into()).into())
}

/// The name docker shows in messages: the name, else the short id.
pub fn label(rec: &ContainerRecord) -> String {
    rec.name
        .clone()
        .unwrap_or_else(|| rec.id.chars().take(12).collect())
}

/// Send `sig` to the running container `rec`: to its pid 1, else (not recorded yet) to
/// its monitor, which forwards the usual ones.
pub fn signal(rec: &ContainerRecord, sig: Signal) -> Result<(), ControlError> {
    if !status::of(rec).running() {
        return Err(ControlError::NotRunning(label(rec)));
    }
    let target = rec.pid.or(rec.monitor);
    let sent = match target {
        Some(p) => p.signal(sig).map_err(|source| ControlError::Signal {
            sig,
            pid: p.pid,
            source,
        })?,
        None => false,
    };
    if !sent {
        return Err(ControlError::NotRunning(label(rec)));
    }
    Ok(())
}

/// Wait until container `id` is not running, at most `limit` (`None`: no limit); its
/// status then (`None` for a container removed meanwhile, e.g. by `--rm`), or `Err` with
/// the last status when the time is up.
pub fn wait_stopped(
    containers: &Containers,
    id: &ContainerId,
    limit: Option<Duration>,
) -> Result<Option<Status>, Status> {
    let start = Instant::now();
    loop {
        let Some(st) = status::settled(|| containers.read_record(id)) else {
            return Ok(None);
        };
        if !st.running() {
            return Ok(Some(st));
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            return Err(st);
        }
        std::thread::sleep(POLL);
    }
}

/// The signal `stop` sends: `flag`, else the image's STOPSIGNAL, else SIGTERM.
pub fn stop_signal(rec: &ContainerRecord, flag: Option<&str>) -> Result<Signal, ControlError> {
    let name = flag.or(rec.launch.as_ref().and_then(|l| l.stop_signal.as_deref()));
    match name {
        Some(n) => parse_signal(n).ok_or_else(|| ControlError::BadSignal(n.into())),
        None => Ok(Signal::SIGTERM),
    }
}

/// docker stop: `sig`, then SIGKILL after `timeout`; returns once the container is gone.
/// A container that is not running is left as it is.
pub fn stop(
    containers: &Containers,
    id: &ContainerId,
    sig: Signal,
    timeout: Duration,
) -> Result<(), ControlError> {
    let rec = record(containers, id)?;
    if !status::of(&rec).running() {
        return Ok(());
    }
    match signal(&rec, sig) {
        Ok(()) | Err(ControlError::NotRunning(_)) => {}
        Err(e) => return Err(e),
    }
    if wait_stopped(containers, id, Some(timeout)).is_ok() {
        return Ok(());
    }
    kill_and_wait(containers, id)
}

fn kill_and_wait(containers: &Containers, id: &ContainerId) -> Result<(), ControlError> {
    let rec = record(containers, id)?;
    match signal(&rec, Signal::SIGKILL) {
        Ok(()) | Err(ControlError::NotRunning(_)) => {}
        Err(e) => return Err(e),
    }
    wait_stopped(containers, id, Some(KILL_WAIT))
        .map(|_| ())
        .map_err(|_| ControlError::Stuck { name: label(&rec) })
}

/// docker rm: refuse a running container unless `force` (then kill it first), kill
/// what is left of a container whose monitor died, remove everything.
pub fn remove(containers: &Containers, id: &ContainerId, force: bool) -> Result<(), ControlError> {
    let dir = containers.dir(id);
    let _lock = imago_store::lock::exclusive(&dir.join("lock")).map_err(ControlError::Lock)?;
    let rec = record(containers, id)?;
    let st = status::of(&rec);
    if st.running() {
        if !force {
            return Err(ControlError::Running(label(&rec)));
        }
        kill_and_wait(containers, id)?;
    }
    if let Some(p) = rec.pid {
        kill_leftover(p);
    }
    crate::create::remove(containers, id, rec.name.as_deref(), &IdMap::detect());
    Ok(())
}

/// What a container whose monitor died may leave: its pid 1, should it have outlived
/// its parent (SIGKILL ends its whole pid namespace), and the private network's helper
/// (pasta or slirp4netns, the monitor's child: it does not quit by itself when the
/// namespace goes).
fn kill_leftover(p: ProcRef) {
    // Ignoring errors: it is gone already (the usual case: it died with its monitor).
    let _ = p.signal(Signal::SIGKILL);
    let deadline = Instant::now() + KILL_WAIT;
    while p.alive() && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    if !p.alive() {
        for helper in net_helpers_of(p.pid) {
            // Ignoring errors: not ours to kill (another user's), or it just ended.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(helper), Signal::SIGKILL);
        }
    }
}

/// Network helpers whose command line names `pid1` (pasta takes the pid last,
/// slirp4netns before the interface name); `pid1` no longer exists, so a helper naming
/// it serves nothing.
fn net_helpers_of(pid1: i32) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let target = pid1.to_string();
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmd.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
            let prog = args
                .first()
                .and_then(|a| a.rsplit(|&b| b == b'/').next())
                .unwrap_or_default();
            let helper = prog.starts_with(b"pasta") || prog == b"slirp4netns";
            helper && args.iter().rev().take(2).any(|a| *a == target.as_bytes())
        })
        .collect()
}
