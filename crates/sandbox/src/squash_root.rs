//! A single-file image (`.sqsh`) as a container's read-only lower layer, for hosts and
//! users without a store: `imago_squash`'s FUSE server, forked by irun (or the monitor)
//! once the id maps are written and before `Go`, mounts the archive read-only on a lower
//! dir in the container's mount namespace and serves it; the container then mounts its
//! root over that dir as usual (kernel overlayfs with the writable upper on the
//! container's node-local dir).
//! Owns: [`SquashRoot`] and the server process of one container.
//! Never: reads the image config (the runtime does), writes the archive (it is opened
//! read-only and never changes), mounts the root over it (setup.rs does).
//!
//! The processes are those of [`crate::fuse_root`] (its report pipe, mount helper and
//! reaping are reused): S opens the archive as the calling user, joins the container's
//! user namespace, decides how owners show ([`imago_squash::Owners`]: ids the container
//! maps pass through, any other shows as S's own ids there, which are the container
//! user's under the single mapping), mounts `fuse.imago-squash` (read-only, nosuid,
//! nodev) through M, reports, then serves with several worker threads until the
//! container's mount namespace, and with it the mount, is gone.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::fuse_root::{chain, open_and_mount, start_server, FuseRoot, FuseRootError};
use crate::spec::RootMount;
use crate::sys;

/// Worker threads of a squashfs server: reads of different files proceed at once.
const WORKERS: usize = 4;

/// A container's root over a single-file image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SquashRoot {
    /// The `.sqsh` file (host path, read-only).
    pub file: PathBuf,
    /// An empty dir the archive is mounted on (host path, in the container's namespace).
    pub lower: PathBuf,
    /// The root mounted over `lower` (kernel overlayfs whose lowerdir is `lower`).
    pub over: Box<RootMount>,
}

/// Mount `s.file` on `s.lower` in the mount namespace of `container` (waiting for `Go`,
/// maps written) and serve it from a process of the caller's; returns once mounted.
/// Call while single-threaded (it forks).
pub fn start(container: i32, s: &SquashRoot) -> Result<FuseRoot, FuseRootError> {
    start_server(container, &s.lower, |user_ns, mnt_ns, write| {
        serve(user_ns, mnt_ns, write, s)
    })
}

/// S: open the archive, join the user namespace, mount through M, report, serve.
fn serve(user_ns: OwnedFd, mnt_ns: OwnedFd, report: OwnedFd, s: &SquashRoot) -> i32 {
    let mut report = std::fs::File::from(report);
    let mut fail = |what: String| {
        // Ignoring a failed write: the caller then reads EOF and says so.
        let _ = report.write_all(what.as_bytes());
        1
    };
    // Ignoring the result: PR_SET_PDEATHSIG fails only for an invalid signal number.
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    let archive = match imago_squash::Archive::open(&s.file) {
        Ok(a) => a,
        Err(e) => return fail(chain(&e)),
    };
    if let Err(e) = nix::sched::setns(user_ns.as_fd(), CloneFlags::CLONE_NEWUSER) {
        return fail(format!("join the container's user namespace: {e}"));
    }
    drop(user_ns);
    let owners = match imago_squash::Owners::of_this_process() {
        Ok(o) => o,
        Err(e) => return fail(format!("read this process's id maps: {e}")),
    };
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let dev = match open_and_mount(mnt_ns, &s.lower, "imago-squash", flags) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    // Ignoring a failed write: the caller then reads EOF and fails the start.
    let _ = report.write_all(b"ok");
    drop(report);
    let fs = imago_squash::SquashFs::new(archive, owners);
    match imago_squash::serve_on(dev, fs, WORKERS) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}
