//! The private network's helper ([`Network::Private`](crate::Network::Private)): `pasta`
//! (Debian's `passt` package), else `slirp4netns`, started by the caller of
//! `Pending::start` for the container's new network namespace once its id maps are
//! written, and stopped and reaped when the container ends.
//! Owns: finding the helper on PATH, its command line, waiting until it has configured
//! the namespace (a tap interface with an address, a default route; `lo` up), stopping
//! and reaping it. Never: enters a namespace itself, touches the container's files
//! (/etc/resolv.conf stays the runtime's), decides the network kind (container.rs).
//!
//! What the container gets: pasta copies the host's address and routes onto its tap
//! interface; the gateway address reaches the host's loopback (pasta's default mapping;
//! slirp4netns: 10.0.2.2); no port is forwarded in either direction.
//!
//! Neither installed: the namespace keeps only `lo` (pid 1 brings it up), which is
//! enough for published ports; [`helper`] tells the caller, who says so to the user.
//!
//! pasta runs in the foreground, as the caller's child (so it is reaped like one); it is
//! ready when it has written its pid file (where it would otherwise daemonize). pasta
//! given a pid does not quit when that namespace goes away: it is killed, and it dies
//! with its parent (PR_SET_PDEATHSIG), so a SIGKILLed irun or monitor leaves none behind
//! (slirp4netns quits when its exit fd closes). As root, pasta would
//! switch to `nobody` and then could not join a root-owned user namespace: it is told
//! `--runas 0:0` instead.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Failures of starting the network helper.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The helper could not be started.
    #[error("start `{tool}` for the container's network")]
    Spawn {
        /// pasta or slirp4netns.
        tool: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The helper ran but did not set the namespace up.
    #[error("`{tool}` could not set up the container's network namespace: {detail}")]
    Failed {
        /// pasta or slirp4netns.
        tool: &'static str,
        /// What it said (or what went wrong waiting for it).
        detail: String,
    },
}

/// A running helper (or none: loopback only); dropping it stops it (SIGKILL: it holds
/// no state) and reaps it.
#[derive(Debug)]
pub(crate) struct Helper {
    pid: Option<Pid>,
    /// slirp4netns' exit fd (its write end): closing it makes slirp4netns exit too.
    _exit: Option<OwnedFd>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let Some(pid) = self.pid else { return };
        // ESRCH is fine: it may have quit with the namespace.
        let _ = kill(pid, Signal::SIGKILL);
        // until reaped, or not ours (ECHILD): nothing more to do then
        while let Err(Errno::EINTR) = waitpid(pid, None) {}
    }
}

/// The helper a private network gets: `pasta`, else `slirp4netns`, else none (the
/// namespace then has only `lo`).
pub fn helper() -> Option<&'static str> {
    ["pasta", "slirp4netns"]
        .into_iter()
        .find(|h| find(h).is_some())
}

/// Start the helper for the network namespace of `pid` (the container's pid 1, whose
/// maps are written) and return once the namespace is configured; with neither helper
/// installed, nothing is started (loopback only).
pub(crate) fn start(pid: i32) -> Result<Helper, NetError> {
    if let Some(pasta) = find("pasta") {
        return start_pasta(&pasta, pid);
    }
    if let Some(slirp) = find("slirp4netns") {
        return start_slirp(&slirp, pid);
    }
    Ok(Helper {
        pid: None,
        _exit: None,
    })
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// pasta's arguments for the namespace of `pid`: configure it, forward no port.
fn pasta_args(pid: i32, pidfile: &Path, root: bool) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = [
        "--config-net",
        "--quiet",
        "--foreground",
        "--tcp-ports",
        "none",
        "--udp-ports",
        "none",
        "--tcp-ns",
        "none",
        "--udp-ns",
        "none",
        "--pid",
    ]
    .iter()
    .map(Into::into)
    .collect();
    a.push(pidfile.into());
    if root {
        a.extend(["--runas".into(), "0:0".into()]);
    }
    a.push(pid.to_string().into());
    a
}

fn start_pasta(exe: &Path, pid: i32) -> Result<Helper, NetError> {
    const TOOL: &str = "pasta";
    let spawn = |source| NetError::Spawn { tool: TOOL, source };
    let dir = PrivateDir::new(pid).map_err(spawn)?;
    let pidfile = dir.0.join("pasta.pid");
    let errfile = dir.0.join("pasta.err");
    let err = std::fs::File::create(&errfile).map_err(spawn)?;
    let root = nix::unistd::geteuid().is_root();
    let mut cmd = Command::new(exe);
    cmd.args(pasta_args(pid, &pidfile, root))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    crate::sys::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(spawn)?;
    let helper = Helper {
        pid: Some(Pid::from_raw(child.id() as i32)),
        _exit: None,
    };
    let failed = |detail: String| NetError::Failed { tool: TOOL, detail };
    let said_err = || said(&std::fs::read(&errfile).unwrap_or_default());
    // In the foreground, pasta writes its pid file once the namespace is configured (where
    // it would otherwise daemonize): poll for it, or for pasta's end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if std::fs::read(&pidfile).is_ok_and(|b| !b.is_empty()) {
            return Ok(helper);
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                drop(helper); // reaped already: the kill finds nothing
                return Err(failed(format!("{} ({status})", said_err())));
            }
            Ok(None) => {}
            Err(e) => return Err(failed(format!("waiting for it: {e}"))),
        }
        if std::time::Instant::now() > deadline {
            return Err(failed(format!(
                "not ready after 20 s ({}); it was stopped",
                said_err()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// What a helper printed, without pasta's syslog noise, on one line.
fn said(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Failed to send") && !l.contains("syslog"))
        .collect();
    if lines.is_empty() {
        "no message".into()
    } else {
        lines.join("; ")
    }
}

/// slirp4netns' arguments: configure the tap, signal readiness on `ready`, exit when
/// `exit` reaches EOF.
fn slirp_args(pid: i32, ready: i32, exit: i32) -> Vec<String> {
    vec![
        "--configure".into(),
        "--mtu=65520".into(),
        format!("--ready-fd={ready}"),
        format!("--exit-fd={exit}"),
        pid.to_string(),
        "tap0".into(),
    ]
}

fn start_slirp(exe: &Path, pid: i32) -> Result<Helper, NetError> {
    const TOOL: &str = "slirp4netns";
    let spawn = |source| NetError::Spawn { tool: TOOL, source };
    let io = |e: Errno| std::io::Error::from_raw_os_error(e as i32);
    let (ready_r, ready_w) = crate::sys::pipe().map_err(|e| spawn(io(e)))?;
    let (exit_r, exit_w) = crate::sys::pipe().map_err(|e| spawn(io(e)))?;
    let (rw, er) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
    let mut cmd = Command::new(exe);
    cmd.args(slirp_args(pid, rw, er))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child =
        crate::fd::spawn_keeping(&mut cmd, &[ready_w.as_fd(), exit_r.as_fd()]).map_err(spawn)?;
    drop(ready_w);
    drop(exit_r);
    let helper = Helper {
        pid: Some(Pid::from_raw(child.id() as i32)),
        _exit: Some(exit_w),
    };
    let mut byte = [0u8; 1];
    let mut ready = std::fs::File::from(ready_r);
    match ready.read(&mut byte) {
        Ok(1) if byte[0] == b'1' => Ok(helper),
        r => Err(NetError::Failed {
            tool: TOOL,
            detail: format!("it did not report ready ({r:?})"),
        }),
    }
}

/// A 0700 directory of our own for pasta's pid file (not a guessable name in a shared
/// /tmp that someone else could have made), removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new(pid: i32) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("imago-net-{}-{pid}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?; // fails if it exists
        Ok(Self(dir))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // Best effort in Drop: a leftover 0700 dir under $TMPDIR holds only a pid file.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasta_forwards_no_port_and_runs_as_root_only_for_root() {
        let a = pasta_args(42, Path::new("/d/p.pid"), false);
        let s: Vec<String> = a.iter().map(|x| x.to_string_lossy().into_owned()).collect();
        assert_eq!(s.first().map(String::as_str), Some("--config-net"));
        assert_eq!(s.last().map(String::as_str), Some("42"));
        for opt in ["--tcp-ports", "--udp-ports", "--tcp-ns", "--udp-ns"] {
            let i = s.iter().position(|x| x == opt).unwrap();
            assert_eq!(s[i + 1], "none", "{opt}");
        }
        assert!(!s.iter().any(|x| x == "--runas"));
        let i = s.iter().position(|x| x == "--pid").unwrap();
        assert_eq!(s[i + 1], "/d/p.pid");
        let r = pasta_args(42, Path::new("/d/p.pid"), true);
        let r: Vec<String> = r.iter().map(|x| x.to_string_lossy().into_owned()).collect();
        let i = r.iter().position(|x| x == "--runas").unwrap();
        assert_eq!(r[i + 1], "0:0");
        assert_eq!(r.last().map(String::as_str), Some("42"));
    }

    #[test]
    fn slirp_args_name_the_fds_pid_and_tap() {
        let a = slirp_args(7, 5, 6);
        assert!(a.contains(&"--configure".to_string()));
        assert!(a.contains(&"--ready-fd=5".to_string()));
        assert!(a.contains(&"--exit-fd=6".to_string()));
        assert_eq!(&a[a.len() - 2..], ["7", "tap0"]);
    }

    #[test]
    fn said_drops_syslog_noise() {
        let s = said(b"Failed to send 47 bytes to syslog\nCouldn't open user namespace /proc/1/ns/user: Permission denied\n");
        assert_eq!(
            s,
            "Couldn't open user namespace /proc/1/ns/user: Permission denied"
        );
        assert_eq!(said(b"\n"), "no message");
    }

    #[test]
    fn private_dirs_are_unique_0700_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let a = PrivateDir::new(1).unwrap();
        let b = PrivateDir::new(1).unwrap();
        assert_ne!(a.0, b.0);
        let mode = std::fs::metadata(&a.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let p = a.0.clone();
        drop(a);
        assert!(!p.exists());
    }
}
