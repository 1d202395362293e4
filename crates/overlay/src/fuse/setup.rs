//! Opening an overlay: the layer dirs, the work dir (cleared of leftovers of an earlier
//! run), the whiteout and opaque forms the upper's file system allows, the fd budget.
//! Owns: every check [`super::FuseOverlay::new`] makes. Never: touches a lower or the
//! upper beyond opening them.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::process::{Resource, Rlimit};

use super::inode::{Inodes, Key, Stack, UPPER};
use super::sys;
use super::{Forms, FuseError, FuseOverlay, DEFAULT_TTL};

/// The work dir's subdirectory this module owns.
const WORK: &std::ffi::CStr = c"fuse";

fn open_dir(what: &'static str, path: &Path) -> Result<OwnedFd, FuseError> {
    // The caller's own path is trusted: symlinks in it are followed, as mount(8) does.
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(path, flags, Mode::empty()).map_err(|e| FuseError::Open {
        what,
        path: path.to_path_buf(),
        source: e.into(),
    })
}

pub(super) fn open<P: AsRef<Path>>(
    lowers: &[P],
    upper: &Path,
    work: &Path,
) -> Result<FuseOverlay, FuseError> {
    let upper_fd = open_dir("upper", upper)?;
    let work_root = open_dir("work", work)?;
    let same_fs = match (rustix::fs::fstat(&upper_fd), rustix::fs::fstat(&work_root)) {
        (Ok(u), Ok(w)) => u.st_dev == w.st_dev,
        _ => false,
    };
    if !same_fs {
        return Err(FuseError::WorkNotOnUpperFs {
            upper: upper.to_path_buf(),
            work: work.to_path_buf(),
        });
    }
    if rustix::fs::stat("/proc/self/fd").is_err() {
        return Err(FuseError::NoProc);
    }
    let work_err = |e: rustix::io::Errno| FuseError::Work {
        path: work.to_path_buf(),
        source: e.into(),
    };
    sys::remove_all(work_root.as_fd(), WORK).map_err(work_err)?;
    rustix::fs::mkdirat(&work_root, WORK, Mode::from_raw_mode(0o700)).map_err(work_err)?;
    let work_fd = sys::open_dir(work_root.as_fd(), WORK).map_err(work_err)?;
    let forms = probe_forms(&work_fd);

    let root_st = rustix::fs::fstat(&upper_fd).map_err(|e| FuseError::Open {
        what: "upper",
        path: upper.to_path_buf(),
        source: e.into(),
    })?;
    let mut layers = vec![upper_fd];
    for l in lowers {
        layers.push(open_dir("lower", l.as_ref())?);
    }
    let budget = raise_nofile();
    let stack = root_stack(&layers).map_err(|e| FuseError::Open {
        what: "upper",
        path: upper.to_path_buf(),
        source: e.into(),
    })?;
    let root_key = Key {
        layer: UPPER,
        dev: root_st.st_dev,
        ino: root_st.st_ino,
        alias: 0,
    };
    Ok(FuseOverlay {
        layers,
        work: work_fd,
        forms,
        inodes: Inodes::new(root_key, stack, budget),
        files: Default::default(),
        dirs: Default::default(),
        ns: Mutex::new(()),
        ttl: DEFAULT_TTL,
        tmp: AtomicU64::new(0),
        allow_zero_open: true,
        zero_open: false,
        allow_direct_create: true,
        direct_create: false,
        changes: AtomicU64::new(0),
        notifier: Default::default(),
    })
}

/// The root's layer dirs: the upper, then each lower down to the first opaque one.
fn root_stack(layers: &[OwnedFd]) -> rustix::io::Result<Stack> {
    let mut out = Vec::new();
    for (i, fd) in layers.iter().enumerate() {
        let own = sys::open_dir(fd.as_fd(), c".")?;
        let opaque = i + 1 < layers.len() && sys::is_opaque(own.as_fd())?;
        let layer = u16::try_from(i).map_err(|_| rustix::io::Errno::TOOBIG)?;
        out.push((layer, own));
        if opaque {
            break;
        }
    }
    Ok(Stack(out))
}

/// Which whiteout and opaque forms the work dir's (so the upper's) file system takes.
fn probe_forms(work: &OwnedFd) -> Forms {
    let w = work.as_fd();
    let whiteout_chardev = sys::make_whiteout(w, c"probe", true).is_ok();
    // Best effort: a leftover probe is cleared on the next start.
    let _ = rustix::fs::unlinkat(w, c"probe", AtFlags::empty());
    let opaque_xattr = rustix::fs::mkdirat(w, c"probe-dir", Mode::from_raw_mode(0o700)).is_ok()
        && sys::set_opaque(w, c"probe-dir", true).is_ok();
    // Best effort, as above.
    let _ = sys::remove_all(w, c"probe-dir");
    Forms {
        whiteout_chardev,
        opaque_xattr,
    }
}

/// Raise RLIMIT_NOFILE's soft limit to the hard one; the number of directory fds the
/// inode table may keep cached.
fn raise_nofile() -> usize {
    let lim = rustix::process::getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(1 << 20);
    // Refused (a seccomp profile, say): the current limit stays and the budget follows it.
    let _ = rustix::process::setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: lim.maximum,
        },
    );
    let soft = rustix::process::getrlimit(Resource::Nofile)
        .current
        .unwrap_or(1024);
    let budget = soft.saturating_sub(256) / 2;
    usize::try_from(budget.clamp(64, 1 << 16)).unwrap_or(1 << 16)
}
