//! A FUSE overlay file system: the fallback for hosts whose kernel cannot mount
//! overlayfs inside a user namespace (Linux < 5.11).
//!
//! Owns: [`FuseOverlay`] (a [`fuser::Filesystem`] over read-only lower dirs, top first,
//! and one writable upper dir with a work dir on the same file system), its setup checks
//! ([`FuseError`]) and the session entry points [`serve_on`] and [`mount`].
//! Never: forks, enters namespaces, follows a symlink found in a layer, or writes a lower.
//!
//! # Semantics (those of kernel overlayfs, `userxattr`, no `redirect_dir`, no `index`)
//! - Lookup goes top-down: the first layer that has a name decides. A directory merges
//!   with the directories of the same name below it until one is opaque or a lower layer
//!   has a non-directory there.
//! - Whiteouts: a 0:0 character device, or a `.wh.NAME` file (the OCI/aufs form), in any
//!   layer hides NAME below it; both forms are honoured wherever found and never shown.
//!   An opaque directory (`user.overlay.opaque`, `trusted.overlay.opaque` or
//!   `user.fuseoverlayfs.opaque` = `y`, or a `.wh..wh..opq` file inside it) hides every
//!   lower layer. Names starting with `.wh.` cannot be created through the mount
//!   (`EINVAL`): they would turn into whiteouts on the next start.
//! - Whiteouts this module writes into the upper are 0:0 character devices (creating one
//!   needs no privilege since Linux 5.8); when the upper's file system refuses that, they
//!   are `.wh.NAME` empty files. Opaque dirs get `user.overlay.opaque=y`, or a
//!   `.wh..wh..opq` file when the upper has no user xattrs. [`FuseOverlay::forms`] says
//!   which forms were chosen; imago's layer committer reads all of them.
//! - Copy-up on any change (data, mode, owner, times, xattrs, hardlink), keeping data
//!   (holes stay holes), owner, mode, times and xattrs; built in the work dir and renamed
//!   into place, so a crash never leaves a half-copied file in the upper.
//! - Renaming a directory that has lower parts fails with `EXDEV`, as kernel overlay
//!   without `redirect_dir` does (and `mv` then copies); files are copied up and renamed.
//! - Inode numbers come from a map (layer, host dev, host ino) → number, so a file keeps
//!   its number across copy-up and for the life of the mount; merged dirs report nlink 1.
//!   Each name of a hardlinked lower file is an inode of its own (copying one up changes
//!   nothing the others show, as on kernel overlay without `index`); readdir shows them
//!   the lower file's number.
//! - Xattrs: a user's `user.overlay.X` is stored escaped as `user.overlay.overlay.X` (as
//!   kernel overlay does since Linux 6.7); `trusted.overlay.*` and `user.fuseoverlayfs.*`
//!   are refused (`EOPNOTSUPP`: imago's committer takes them for opaque markers).
//! - Ownership: host uid/gid pass through as stored; new entries belong to the caller
//!   (the request's uid/gid, the group of a setgid parent), with the mode and umask the
//!   kernel passes. Permission checks are the kernel's (`default_permissions`).
//! - Unlike kernel overlay: POSIX ACLs are stored but not enforced (the kernel checks
//!   mode bits); `RENAME_EXCHANGE` and `RENAME_WHITEOUT` are refused (`EINVAL`); with
//!   zero-message opens a copy-up happens at the first write, not at the open.
//!
//! # Speed
//! Several worker threads (on the one `/dev/fuse` fd), long entry and attribute
//! TTLs (every change goes through this server), negative entries cached, page cache
//! kept across opens (`FOPEN_KEEP_CACHE`), readdir results cached by the kernel,
//! readdirplus on every listing (its entries counted in chunks under one inode-table
//! lock), FLUSH and ACCESS switched off. Zero-message opens where
//! the kernel has them (`FUSE_NO_OPEN_SUPPORT`, in the protocol since 7.26 at the
//! latest): no OPEN or RELEASE per opened file; reads and writes without a handle go by
//! `pread`/`pwrite` to a host fd cached per inode (within the fd budget), and a lower
//! file is copied up at its first write (or truncation) rather than at an open for
//! writing; a created file's fd becomes its inode's (no handle: Linux 6.18 sends no
//! RELEASE for it once OPEN was refused). Without them, each open gets a handle with
//! its own host fd. The fd a CREATE opens does direct I/O where the kernel allows
//! shared mmap with it (Linux 6.6): no `security.capability` GETXATTR before its first
//! write; this server clears setuid/setgid on such writes
//! (`FUSE_WRITE_KILL_SUIDGID`). A readdirplus worker, having sent its part, stats the
//! next part while the kernel links the entries it sent (dropped if anything changed
//! meanwhile). Kernel FUSE
//! passthrough is not used: it needs CAP_SYS_ADMIN in the initial namespace and Linux
//! 6.9, which the hosts this fallback is for never have.
//!
//! # Mounting from inside a user namespace
//! The sandbox child, root in its user and mount namespaces:
//! ```text
//! fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
//! mount("fuse", target, "fuse", MS_NOSUID | MS_NODEV,
//!       "fd=N,rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other")
//! ```
//! then hands `fd` to [`serve_on`] (in a thread or process that stays outside the
//! container's root; it needs the layer dirs and `/proc/self/fd`). `default_permissions`
//! is required: this server checks no permissions itself. The session ends when the
//! mount is gone (unmounted, or its mount namespace dies); [`FuseSession::join`] returns
//! then. [`mount`] does the same for a caller with CAP_SYS_ADMIN (tests, root).
//!
//! The process-wide side effect: [`FuseOverlay::new`] raises RLIMIT_NOFILE's soft limit
//! to the hard limit (directory fds are cached, within a budget derived from it).

mod attr;
mod copy_up;
mod file;
mod inode;
mod lookup;
mod namespace;
mod ops;
mod readdir;
mod remove;
mod reply;
mod session;
mod setup;
mod sys;
#[cfg(test)]
mod tests;
mod xattr;

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use session::{mount, serve_on, FuseSession, MountOptions};

/// Errors of setting up or serving the FUSE overlay (requests never fail with these:
/// they get an errno).
#[derive(Debug, thiserror::Error)]
pub enum FuseError {
    /// A layer, upper or work dir cannot be opened as a directory.
    #[error("open {what} dir `{path}`")]
    Open {
        /// "lower", "upper" or "work".
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The work dir is not on the upper's file system (copy-up renames across them).
    #[error("work dir `{work}` is not on the file system of upper dir `{upper}`")]
    WorkNotOnUpperFs {
        /// The upper dir.
        upper: PathBuf,
        /// The work dir.
        work: PathBuf,
    },
    /// Preparing the work dir (clearing leftovers, probing whiteout forms) failed.
    #[error("prepare work dir `{path}`")]
    Work {
        /// The work dir.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `/proc/self/fd` is needed for xattrs and chmod without following symlinks.
    #[error("/proc/self/fd is not available: mount /proc where the FUSE server runs")]
    NoProc,
    /// Opening `/dev/fuse` or mounting failed.
    #[error("mount the FUSE overlay on `{target}`")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The FUSE session failed (handshake, worker threads).
    #[error("FUSE session")]
    Session(#[source] std::io::Error),
    /// Unmounting failed.
    #[error("unmount `{target}`")]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How whiteouts and opaque markers are written into the upper dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forms {
    /// Whiteouts are 0:0 character devices (else `.wh.NAME` files).
    pub whiteout_chardev: bool,
    /// Opaque dirs get `user.overlay.opaque=y` (else a `.wh..wh..opq` file inside).
    pub opaque_xattr: bool,
}

/// The overlay file system; serve it with [`serve_on`] or [`mount`].
pub struct FuseOverlay {
    /// Layer roots: index 0 is the upper, 1.. the lowers top first.
    layers: Vec<OwnedFd>,
    /// `work/fuse`: where copy-ups and whiteouts are built before a rename.
    work: OwnedFd,
    forms: Forms,
    inodes: inode::Inodes,
    files: file::Handles,
    dirs: readdir::DirHandles,
    /// Serializes namespace changes and copy-ups (lookups, reads and writes run freely;
    /// the kernel already serializes changes within one directory).
    ns: Mutex<()>,
    ttl: Duration,
    tmp: AtomicU64,
    /// Zero-message opens are allowed (the default), and in use (the kernel has them).
    allow_zero_open: bool,
    zero_open: bool,
    /// Files opened by CREATE get direct I/O (the default), and the kernel allows it
    /// with shared mmap (`FUSE_DIRECT_IO_ALLOW_MMAP`, Linux 6.6).
    allow_direct_create: bool,
    direct_create: bool,
    /// Counts finished changes to the layers (each namespace-lock holder, each write):
    /// work done ahead of a request is stale when it moved.
    changes: AtomicU64,
    /// Set once the session runs: invalidations this server sends the kernel.
    notifier: Arc<OnceLock<fuser::Notifier>>,
}

impl std::fmt::Debug for FuseOverlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuseOverlay")
            .field("layers", &self.layers.len())
            .field("forms", &self.forms)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Entry and attribute TTL by default: every change goes through this server, so the
/// kernel's cache can only go stale if someone edits the upper dir behind its back.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

impl FuseOverlay {
    /// Open the layers: `lowers_top_first` (as [`crate::Layers::lowers_top_first`]),
    /// `upper` (writable) and `work` (empty or ours, on the upper's file system; a
    /// `fuse` dir inside it is cleared and used).
    pub fn new<P: AsRef<Path>>(
        lowers_top_first: &[P],
        upper: impl AsRef<Path>,
        work: impl AsRef<Path>,
    ) -> Result<Self, FuseError> {
        setup::open(lowers_top_first, upper.as_ref(), work.as_ref())
    }

    /// Set the entry and attribute TTL ([`DEFAULT_TTL`] otherwise).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The whiteout and opaque forms written into the upper.
    pub fn forms(&self) -> Forms {
        self.forms
    }

    /// Answer every open with a file handle even where the kernel supports zero-message
    /// opens (`false`; the default `true` saves an OPEN and a RELEASE per open file).
    pub fn with_zero_message_open(mut self, on: bool) -> Self {
        self.allow_zero_open = on;
        self
    }

    /// Give files opened by CREATE cached I/O even where the kernel allows direct I/O
    /// with shared mmap (`false`; the default `true` saves a GETXATTR per new file).
    pub fn with_direct_create(mut self, on: bool) -> Self {
        self.allow_direct_create = on;
        self
    }

    /// Write these forms instead of the probed ones (the OCI `.wh.` files for a reader
    /// that only knows those; a form the upper's file system refuses makes removals fail).
    pub fn with_forms(mut self, forms: Forms) -> Self {
        self.forms = forms;
        self
    }

    /// A fresh name for a temporary entry in the work dir.
    fn tmp_name(&self) -> CString {
        let n = self.tmp.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Digits only: never contains NUL.
        CString::new(format!("#{n}")).unwrap_or_default()
    }

    fn lock_ns(&self) -> NsGuard<'_> {
        NsGuard {
            _lock: self.ns.lock().unwrap_or_else(|p| p.into_inner()),
            changes: &self.changes,
        }
    }

    /// Something in the layers changed (counted before the reply goes out).
    fn changed(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// The namespace lock; releasing it counts a change (holders change the layers).
struct NsGuard<'a> {
    _lock: std::sync::MutexGuard<'a, ()>,
    changes: &'a AtomicU64,
}

impl Drop for NsGuard<'_> {
    fn drop(&mut self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}
