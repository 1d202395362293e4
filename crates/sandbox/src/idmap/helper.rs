//! Writing a child's id maps: directly through /proc (real root, or one id of one's
//! own), or through the setuid helpers newuidmap and newgidmap, spawned at once and
//! reaped by [`MapWrite::finish`] with their status and stderr.
//!
//! Never: decides which maps to write (mod.rs does).

use std::path::{Path, PathBuf};

use super::{IdMapEntry, IdMapError};

/// Id maps being written by the helpers; [`MapWrite::finish`] waits and checks them.
#[must_use = "finish() reaps the helpers and reports their failure"]
pub struct MapWrite {
    pub(super) helpers: Vec<Helper>,
}

impl MapWrite {
    /// Helpers still run (newuidmap/newgidmap); written maps (through /proc) are done.
    pub fn pending(&self) -> bool {
        !self.helpers.is_empty()
    }

    /// Wait for every helper; the first failure (status and stderr) is returned.
    pub fn finish(self) -> Result<(), IdMapError> {
        let mut first = Ok(());
        for h in self.helpers {
            let r = finish_helper(h);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

pub(super) fn write_proc(path: &Path, what: &str) -> Result<(), IdMapError> {
    std::fs::write(path, what).map_err(|source| IdMapError::Write {
        path: path.to_path_buf(),
        what: what.trim_end().replace('\n', "; "),
        source,
    })
}

/// A started helper: its path, arguments, process and the read end of its stderr.
pub(super) struct Helper {
    bin: PathBuf,
    args: Vec<String>,
    pid: i32,
    child: nix::unistd::Pid,
    stderr: std::fs::File,
}

/// At most this much of a failing helper's stderr is kept for the error.
const MAX_HELPER_STDERR: u64 = 16 * 1024;

pub(super) fn spawn_helper(bin: &Path, pid: i32, map: &[IdMapEntry]) -> Result<Helper, IdMapError> {
    let mut args = vec![pid.to_string()];
    for e in map {
        args.extend([
            e.inside.to_string(),
            e.outside.to_string(),
            e.count.to_string(),
        ]);
    }
    let spawn_err = |source: std::io::Error| IdMapError::Spawn {
        bin: bin.to_path_buf(),
        pid,
        source,
    };
    // std's Command (posix_spawn: a vfork, no page-table copy) measured faster than a
    // fork that does not wait for the exec: after a fork every page irun writes is
    // copied until the child has exec'd.
    let mut child = std::process::Command::new(bin)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let read = child
        .stderr
        .take()
        .ok_or_else(|| spawn_err(std::io::Error::other("no stderr pipe")))?;
    let child = nix::unistd::Pid::from_raw(child.id() as i32);
    Ok(Helper {
        bin: bin.to_path_buf(),
        args,
        pid,
        child,
        stderr: std::fs::File::from(std::os::fd::OwnedFd::from(read)),
    })
}

pub(super) fn finish_helper(h: Helper) -> Result<(), IdMapError> {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let Helper {
        bin,
        args,
        pid,
        child,
        stderr,
    } = h;
    // Read to the end first (the helper may fill the pipe), bounded; then reap.
    let mut err = Vec::new();
    let read = stderr.take(MAX_HELPER_STDERR).read_to_end(&mut err);
    let status = loop {
        match nix::sys::wait::waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let status = match status {
        Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => return Ok(()),
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => {
            std::process::ExitStatus::from_raw(code << 8)
        }
        Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => {
            std::process::ExitStatus::from_raw(sig as i32)
        }
        Ok(_) => std::process::ExitStatus::from_raw(0xff << 8),
        Err(e) => {
            return Err(IdMapError::Spawn {
                bin,
                pid,
                source: e.into(),
            })
        }
    };
    if let Err(e) = read {
        return Err(IdMapError::Spawn {
            bin,
            pid,
            source: e,
        });
    }
    Err(IdMapError::Helper {
        bin,
        args: args.join(" "),
        status,
        stderr: String::from_utf8_lossy(&err).trim().to_string(),
    })
}
