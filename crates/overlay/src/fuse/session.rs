//! Serving the overlay: on a `/dev/fuse` fd someone else mounted ([`serve_on`]: the
//! user-namespace path), or mounting it here first ([`mount`]: needs CAP_SYS_ADMIN).
//! Owns: the worker threads (fuser's session, all reading the one `/dev/fuse` fd), the
//! session handle.
//! Never: forks or enters namespaces.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

use super::{FuseError, FuseOverlay};

/// A running session: ends when the mount is gone.
#[derive(Debug)]
pub struct FuseSession {
    thread: Option<JoinHandle<io::Result<()>>>,
    /// Set for sessions [`mount`] made: [`FuseSession::unmount`] unmounts it, a drop
    /// detaches it.
    mountpoint: Option<PathBuf>,
}

impl FuseSession {
    /// Wait until the file system is unmounted and the workers stopped.
    pub fn join(mut self) -> Result<(), FuseError> {
        self.mountpoint = None;
        self.wait()
    }

    /// Unmount (a session from [`mount`]) and wait for the workers. A busy mount stays
    /// mounted and is detached when the handle drops.
    pub fn unmount(mut self) -> Result<(), FuseError> {
        if let Some(mp) = self.mountpoint.take() {
            if let Err(e) = rustix::mount::unmount(&mp, UnmountFlags::empty()) {
                self.mountpoint = Some(mp.clone());
                return Err(FuseError::Unmount {
                    target: mp,
                    source: e.into(),
                });
            }
        }
        self.wait()
    }

    fn wait(&mut self) -> Result<(), FuseError> {
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        match t.join() {
            Ok(r) => r.map_err(FuseError::Session),
            Err(_) => Err(FuseError::Session(io::Error::other(
                "FUSE session thread panicked",
            ))),
        }
    }
}

impl Drop for FuseSession {
    fn drop(&mut self) {
        if let Some(mp) = self.mountpoint.take() {
            // Nothing to report to in a drop: a failed detach leaves the mount, which
            // the caller sees.
            let _ = rustix::mount::unmount(&mp, UnmountFlags::DETACH);
        }
    }
}

/// Serve `fs` on `fd`, an open `/dev/fuse` already mounted with `fd=N` (see the module
/// doc), with `threads` workers. Returns once the kernel's INIT is answered; the
/// session runs until the mount is gone ([`FuseSession::join`]).
pub fn serve_on(fd: OwnedFd, fs: FuseOverlay, threads: usize) -> Result<FuseSession, FuseError> {
    let mut config = fuser::Config::default();
    let threads = threads.max(1);
    config.n_threads = Some(threads);
    // The workers share the one fd (the kernel hands each read one request): a clone per
    // worker (FUSE_DEV_IOC_CLONE) measured no faster here, and a clone that fails when
    // the session starts (no /dev/fuse where the server runs) would leave the mount
    // unserved.
    config.clone_fd = false;
    let notifier = fs.notifier.clone();
    let session = fuser::Session::from_fd(fs, fd, fuser::SessionACL::All, config)
        .map_err(FuseError::Session)?;
    // Before any request: the workers start in `run`. A second set cannot happen.
    let _ = notifier.set(session.notifier());
    let thread = std::thread::Builder::new()
        .name("fuse-overlay".into())
        .spawn(move || session.run())
        .map_err(FuseError::Session)?;
    Ok(FuseSession {
        thread: Some(thread),
        mountpoint: None,
    })
}

/// How [`mount`] mounts.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Worker threads.
    pub threads: usize,
    /// Let every user in (`allow_other`); else only the mounting user.
    pub allow_other: bool,
    /// Honour device nodes (else `nodev`).
    pub dev: bool,
    /// Honour setuid bits (else `nosuid`).
    pub suid: bool,
    /// The source shown in the mount table.
    pub fsname: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            threads: 4,
            allow_other: true,
            dev: false,
            suid: false,
            fsname: "imago-overlay".into(),
        }
    }
}

/// Mount `fs` on `mountpoint` and serve it (CAP_SYS_ADMIN over the mount namespace).
pub fn mount(
    mountpoint: impl AsRef<Path>,
    fs: FuseOverlay,
    opts: &MountOptions,
) -> Result<FuseSession, FuseError> {
    let target = mountpoint.as_ref();
    let err = |source: io::Error| FuseError::Mount {
        target: target.to_path_buf(),
        source,
    };
    let dev = rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| err(e.into()))?;
    let data = format!(
        "fd={},rootmode=40000,user_id={},group_id={},default_permissions{}",
        dev.as_raw_fd(),
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
        if opts.allow_other { ",allow_other" } else { "" },
    );
    let data = std::ffi::CString::new(data).map_err(|e| err(io::Error::other(e)))?;
    let mut flags = MountFlags::empty();
    if !opts.dev {
        flags |= MountFlags::NODEV;
    }
    if !opts.suid {
        flags |= MountFlags::NOSUID;
    }
    rustix::mount::mount(
        opts.fsname.as_str(),
        target,
        "fuse.imago-overlay",
        flags,
        data.as_c_str(),
    )
    .map_err(|e| err(e.into()))?;
    match serve_on(dev, fs, opts.threads) {
        Ok(mut s) => {
            s.mountpoint = Some(target.to_path_buf());
            Ok(s)
        }
        Err(e) => {
            // The error that matters is the session's; the mount goes either way.
            let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
            Err(e)
        }
    }
}
