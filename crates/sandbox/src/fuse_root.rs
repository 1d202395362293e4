//! A container root served by the FUSE overlay (`imago_overlay::fuse`), for hosts where
//! kernel overlayfs cannot be mounted in a user namespace.
//! Owns: the server process of one container — forked by irun (or the monitor, or ibuild)
//! once the id maps are written, before `Go` — and its start report and end.
//! Never: decides when FUSE is used (the runtime's driver choice does), mounts anything
//! else.
//!
//! Processes, for a container whose pid 1 is C:
//! - **S** (fork of the caller): opens C's user and mount namespace files, joins C's
//!   user namespace only — root there, with its capabilities, so it can read every layer
//!   file whatever its owner and chown new files to mapped ids — and opens /dev/fuse.
//!   S stays in the host's mount and pid namespaces: it sees the layer dirs at their
//!   host paths, is not a process of the container (not in `ps` inside), and does not
//!   keep the container's mount namespace alive. Its workers serve until the mount is
//!   gone, which happens when the container's mount namespace dies with its last
//!   process; then S exits.
//! - **M** (fork of S): joins C's mount namespace and mounts `fuse` on the container's
//!   root path with S's /dev/fuse fd (`fd=N`), then exits. C, still waiting for `Go`,
//!   finds its root mounted (setup.rs leaves a FUSE root alone).
//!
//! S reports "ok" or its error on a pipe within [`START_TIMEOUT`]; it dies with its
//! parent (PR_SET_PDEATHSIG), and [`FuseRoot`]'s drop reaps it (SIGKILL after
//! [`END_WAIT`] if the mount outlived the container, which it cannot).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::sys;

/// How long the server may take to mount and answer the kernel's INIT.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may outlive its container before it is killed.
pub const END_WAIT: Duration = Duration::from_secs(5);
/// Worker threads of a container's server.
const WORKERS: usize = 4;

/// The FUSE root of a container: the lower dirs top first, the upper and work dirs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FuseLayers {
    /// Read-only lower dirs, topmost first.
    pub lowers_top_first: Vec<PathBuf>,
    /// The writable upper dir.
    pub upper: PathBuf,
    /// A work dir on the upper's file system.
    pub work: PathBuf,
}

/// Failures of starting a FUSE root.
#[derive(Debug, thiserror::Error)]
pub enum FuseRootError {
    /// A namespace file of the container could not be opened.
    #[error("open `{0}` of the container")]
    OpenNs(PathBuf, #[source] std::io::Error),
    /// The report pipe or the fork failed.
    #[error("start the FUSE overlay's server process")]
    Fork(#[source] Errno),
    /// The server said why it could not serve.
    #[error("the FUSE overlay could not be mounted on `{root}`: {said}")]
    Failed {
        /// The container's root path.
        root: PathBuf,
        /// The server's message.
        said: String,
    },
    /// The server said nothing in time.
    #[error("the FUSE overlay's server did not start within {0:?}")]
    Timeout(Duration),
}

/// A running server; dropping it waits for its end (bounded) and reaps it.
#[derive(Debug)]
pub struct FuseRoot {
    pid: Pid,
}

impl Drop for FuseRoot {
    fn drop(&mut self) {
        let deadline = Instant::now() + END_WAIT;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(WaitStatus::StillAlive) => {
                    // Ignoring ESRCH: it may end between the two calls; the reap follows.
                    let _ = kill(self.pid, Signal::SIGKILL);
                    // Only to reap it: its status means nothing now.
                    let _ = waitpid(self.pid, None);
                    return;
                }
                Err(Errno::EINTR) => {}
                _ => return,
            }
        }
    }
}

/// Mount the FUSE overlay of `layers` on `root` in the mount namespace of `container`
/// (waiting for `Go`, maps written) and serve it from a process of the caller's; returns
/// once the kernel's INIT is answered. Call while single-threaded (it forks).
pub fn start(container: i32, root: &Path, layers: &FuseLayers) -> Result<FuseRoot, FuseRootError> {
    start_server(container, root, |user_ns, mnt_ns, write| {
        serve(user_ns, mnt_ns, write, root, layers)
    })
}

/// Fork a server process S running `serve` (given C's user and mount namespace files and
/// the report pipe's write end) and wait for its report about the mount on `root`.
pub(crate) fn start_server(
    container: i32,
    root: &Path,
    serve: impl FnOnce(OwnedFd, OwnedFd, OwnedFd) -> i32,
) -> Result<FuseRoot, FuseRootError> {
    let ns = |name: &str| -> Result<OwnedFd, FuseRootError> {
        let p = PathBuf::from(format!("/proc/{container}/ns/{name}"));
        std::fs::File::open(&p)
            .map(OwnedFd::from)
            .map_err(|e| FuseRootError::OpenNs(p, e))
    };
    let (user_ns, mnt_ns) = (ns("user")?, ns("mnt")?);
    let (read, write) = sys::pipe().map_err(FuseRootError::Fork)?;
    let keep = [user_ns.as_raw_fd(), mnt_ns.as_raw_fd(), write.as_raw_fd()];
    let pid =
        sys::fork_child(&keep, || serve(user_ns, mnt_ns, write)).map_err(FuseRootError::Fork)?;
    let server = FuseRoot { pid };
    match read_report(read)? {
        Some(said) if said == "ok" => Ok(server),
        Some(said) => Err(FuseRootError::Failed {
            root: root.to_path_buf(),
            said,
        }),
        None => Err(FuseRootError::Failed {
            root: root.to_path_buf(),
            said: "the server ended without a word".into(),
        }),
    }
}

/// The report: up to 4 KiB until EOF, or None when the pipe closed empty.
fn read_report(read: OwnedFd) -> Result<Option<String>, FuseRootError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut f = std::fs::File::from(read);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(FuseRootError::Timeout(START_TIMEOUT));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            f.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(FuseRootError::Fork(e)),
        }
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) if buf.len() < 4096 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(FuseRootError::Fork(Errno::from_raw(
                    e.raw_os_error().unwrap_or(0),
                )))
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).trim().to_string();
    Ok((!text.is_empty()).then_some(text))
}

/// S: join the user namespace, mount through M, report, serve until unmounted.
fn serve(
    user_ns: OwnedFd,
    mnt_ns: OwnedFd,
    report: OwnedFd,
    root: &Path,
    layers: &FuseLayers,
) -> i32 {
    let mut report = std::fs::File::from(report);
    let mut fail = |what: String| {
        // Ignoring a failed write: the caller then reads EOF and says so.
        let _ = report.write_all(what.as_bytes());
        1
    };
    // Ignoring the result: PR_SET_PDEATHSIG fails only for an invalid signal number.
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    if let Err(e) = join_user_ns(&user_ns) {
        return fail(e);
    }
    drop(user_ns);
    let fs = match imago_overlay::fuse::FuseOverlay::new(
        &layers.lowers_top_first,
        &layers.upper,
        &layers.work,
    ) {
        Ok(fs) => fs,
        Err(e) => return fail(chain(&e)),
    };
    let flags = nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
    let dev = match open_and_mount(mnt_ns, root, "imago-overlay", flags) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let session = match imago_overlay::fuse::serve_on(dev, fs, WORKERS) {
        Ok(s) => s,
        Err(e) => return fail(chain(&e)),
    };
    // Ignoring a failed write: the caller then reads EOF and fails the start.
    let _ = report.write_all(b"ok");
    drop(report);
    match session.join() {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// S: enter the container's user namespace `ns` (root there, with its capabilities).
/// The kernel refuses it with EINVAL to a caller with threads, one sharing its fs with
/// another task, or one in that namespace already; a fork of irun is none of those, so
/// the message says which holds, should it ever happen.
fn join_user_ns(ns: &OwnedFd) -> Result<(), String> {
    nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| {
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|st| {
                st.lines()
                    .find_map(|l| Some(l.strip_prefix("Threads:")?.trim().to_string()))
            })
            .unwrap_or_else(|| "?".into());
        let id = |st: nix::sys::stat::FileStat| (st.st_dev, st.st_ino);
        let inside = match (
            nix::sys::stat::fstat(ns.as_fd()).map(id),
            nix::sys::stat::stat("/proc/self/ns/user").map(id),
        ) {
            (Ok(a), Ok(b)) => (a == b).to_string(),
            _ => "?".into(),
        };
        format!(
            "join the container's user namespace: {e} (threads: {threads}, in it already: \
             {inside})"
        )
    })
}

/// Open `/dev/fuse` and mount it on `root` in the container's mount namespace
/// ([`mount_in`]); the fd to serve.
pub(crate) fn open_and_mount(
    mnt_ns: OwnedFd,
    root: &Path,
    name: &str,
    flags: nix::mount::MsFlags,
) -> Result<OwnedFd, String> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map(OwnedFd::from)
        .map_err(|e| format!("open /dev/fuse: {e}"))?;
    mount_in(mnt_ns, dev.as_raw_fd(), root, name, flags)?;
    Ok(dev)
}

/// Whether this process's user namespace maps exactly one uid and one gid (the single
/// mapping); false when a map cannot be read.
fn maps_one_id() -> bool {
    let count = |file: &str| -> Option<u64> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines()
            .map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
            .sum()
    };
    count("/proc/self/uid_map") == Some(1) && count("/proc/self/gid_map") == Some(1)
}

/// M: a child that joins the container's mount namespace and mounts the FUSE fd on
/// `root` there (type `fuse.NAME`, source NAME, `flags`); its exit status and
/// stderr-free message come back through a pipe.
fn mount_in(
    mnt_ns: OwnedFd,
    dev: i32,
    root: &Path,
    name: &str,
    flags: nix::mount::MsFlags,
) -> Result<(), String> {
    let (read, write) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    // The ids as this process has them in the container's user namespace: 0 for root,
    // the container's user under a single mapping placed there (0 is then unmapped).
    // `allow_other` lets the container's other ids in, and only processes of its user
    // namespace; with one id mapped there are no others, and leaving it out lets the
    // same user's processes outside in as well: the recording fakeroot's supervisor,
    // which writes ownership records through `/proc/PID/root`.
    let others = if maps_one_id() { "" } else { ",allow_other" };
    let data = format!(
        "fd={dev},rootmode=40000,user_id={},group_id={},default_permissions{others}",
        nix::unistd::geteuid(),
        nix::unistd::getegid()
    );
    let fstype = format!("fuse.{name}");
    let keep = [mnt_ns.as_raw_fd(), dev, write.as_raw_fd()];
    let child = sys::fork_child(&keep, || {
        let mut w = std::fs::File::from(write);
        let said = match nix::sched::setns(mnt_ns.as_fd(), CloneFlags::CLONE_NEWNS) {
            Err(e) => format!("join the container's mount namespace: {e}"),
            Ok(()) => match nix::mount::mount(
                Some(name),
                root,
                Some(fstype.as_str()),
                flags,
                Some(data.as_str()),
            ) {
                Ok(()) => return 0,
                Err(e) => format!("mount fuse on `{}`: {e}", root.display()),
            },
        };
        // Ignoring a failed write: the parent then reports the exit status alone.
        let _ = w.write_all(said.as_bytes());
        1
    })
    .map_err(|e| format!("fork: {e}"))?;
    drop(mnt_ns);
    let mut said = String::new();
    // Ignoring a read error: the exit status below decides.
    let _ = std::fs::File::from(read)
        .take(4096)
        .read_to_string(&mut said);
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, 0)) => Ok(()),
        Ok(status) => Err(if said.is_empty() {
            format!("mount helper ended: {status:?}")
        } else {
            said
        }),
        Err(e) => Err(format!("wait for the mount helper: {e}")),
    }
}

/// An error with its sources, on one line (the report pipe carries text).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::child::RemoteError::from_chain(e).chain().join(": ")
}
