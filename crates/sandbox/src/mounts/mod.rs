//! The mount plan of a container root: computed from a [`ContainerSpec`] (pure), applied
//! in the container's mount namespace *before* pivot_root, with every container path
//! resolved inside the root by [`InRoot`] (inroot.rs): an image's symlinks (`/etc ->
//! /host/dir`, `/data -> ../../..`) can never send a mount point, a created directory
//! or file, or a mount onto the host. Mounts go onto `/proc/self/fd/N` of the resolved
//! `O_PATH` fd; host sources (devices, /sys, `-v` sources, the /etc files imago wrote)
//! are ordinary host paths, named by imago or the user.
//! Owns: /proc (or the host's, bound, with `--pid host`), /dev (tmpfs + host device
//! binds + devpts + shm + mqueue, or the host's shm and mqueue with `--ipc host`), /sys
//! (read-only bind: a new sysfs needs a network namespace we do not own), the /etc
//! files, user binds and tmpfs, masked and read-only paths (runc's defaults),
//! `--read-only`.
//! Never: mounts the root itself or pivots (setup.rs), writes id maps, forks,
//! touches a container path by an ordinary (host-resolved) path call.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::statvfs::{fstatvfs, statvfs, FsFlags, Statvfs};

use crate::inroot::{fd_path, InRoot, InRootError};
use crate::spec::{ContainerSpec, UserMount};
use crate::sys::{RealSys, Sys};

/// Host devices bound into the tmpfs /dev (mknod is not allowed in a user namespace).
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// runc's default masked paths.
pub const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths.
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One step of the plan. Container paths are absolute inside the new root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// A fresh procfs on /proc.
    Proc,
    /// The host's /proc, recursively bound (`--pid host`: a new procfs needs a pid
    /// namespace owned by our user namespace).
    HostProc,
    /// A tmpfs on /dev.
    DevTmpfs,
    /// Bind the host's /dev/NAME on /dev/NAME.
    DevBind(&'static str),
    /// A symlink (link, target).
    Symlink(&'static str, &'static str),
    /// devpts (newinstance, ptmxmode=0666) on /dev/pts.
    Devpts,
    /// tmpfs on /dev/shm.
    Shm,
    /// mqueue on /dev/mqueue.
    Mqueue,
    /// The host's /dev/shm bound on /dev/shm (`--ipc host`: POSIX shared memory is
    /// files there); a tmpfs when the host has none.
    HostShm,
    /// The host's /dev/mqueue bound on /dev/mqueue when it has one (`--ipc host`: a new
    /// mqueue needs an IPC namespace of our own); nothing otherwise.
    HostMqueue,
    /// The host's /sys, recursively bound, read-only; `submounts_ro`: each mount under it
    /// too (needed for real root's identity map, whose uid 0 owns the host's cgroupfs
    /// files; unprivileged maps cannot write files of unmapped owners anyway).
    Sys {
        /// Remount every submount read-only as well.
        submounts_ro: bool,
    },
    /// Bind a host path (file or dir) on a container path.
    Bind {
        /// Host path.
        src: PathBuf,
        /// Container path.
        dst: PathBuf,
        /// Read-only.
        ro: bool,
    },
    /// tmpfs with options.
    Tmpfs {
        /// Container path.
        dst: PathBuf,
        /// Options.
        options: String,
    },
    /// Hide a path: /dev/null over a file, an empty read-only tmpfs over a dir.
    Mask(&'static str),
    /// Bind a path on itself read-only.
    ReadOnly(&'static str),
}

/// Errors of applying the plan; paths are container paths unless said otherwise.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// A mount call failed.
    #[error("mount {what} on `{dst}`")]
    Mount {
        /// What was mounted.
        what: String,
        /// Where.
        dst: PathBuf,
        /// Why.
        #[source]
        errno: Errno,
    },
    /// A mount point could not be resolved or made inside the container's root.
    #[error("mount point `{0}` inside the container")]
    MountPoint(PathBuf, #[source] InRootError),
    /// A bind source does not exist on the host.
    #[error("bind source `{0}` does not exist on the host")]
    NoSource(PathBuf),
    /// A symlink could not be created.
    #[error("create symlink `{0}`")]
    Symlink(PathBuf, #[source] InRootError),
    /// A read-only remount failed.
    #[error("remount `{0}` read-only")]
    Remount(PathBuf, #[source] Errno),
}

/// The plan for `spec` (pure).
pub fn plan(spec: &ContainerSpec) -> Vec<MountOp> {
    let proc = match spec.sharing.pid {
        true => MountOp::HostProc,
        false => MountOp::Proc,
    };
    let mut ops = vec![proc, MountOp::DevTmpfs];
    ops.extend(DEVICES.iter().map(|d| MountOp::DevBind(d)));
    ops.extend([
        MountOp::Devpts,
        MountOp::Symlink("/dev/ptmx", "pts/ptmx"),
        MountOp::Symlink("/dev/fd", "/proc/self/fd"),
        MountOp::Symlink("/dev/stdin", "/proc/self/fd/0"),
        MountOp::Symlink("/dev/stdout", "/proc/self/fd/1"),
        MountOp::Symlink("/dev/stderr", "/proc/self/fd/2"),
        MountOp::Symlink("/dev/core", "/proc/kcore"),
    ]);
    ops.extend(match spec.sharing.ipc {
        true => [MountOp::HostShm, MountOp::HostMqueue],
        false => [MountOp::Shm, MountOp::Mqueue],
    });
    ops.push(MountOp::Sys {
        submounts_ro: spec.id_map.kind == crate::idmap::MapKind::Identity,
    });
    for (src, dst) in &spec.etc_files {
        ops.push(MountOp::Bind {
            src: src.clone(),
            dst: dst.clone(),
            ro: false,
        });
    }
    for m in &spec.mounts {
        ops.push(match m {
            UserMount::Bind { src, dst, ro } => MountOp::Bind {
                src: src.clone(),
                dst: dst.clone(),
                ro: *ro,
            },
            UserMount::Tmpfs { dst, options } => MountOp::Tmpfs {
                dst: dst.clone(),
                options: options.clone(),
            },
        });
    }
    if !spec.privileged {
        ops.extend(MASKED.iter().map(|p| MountOp::Mask(p)));
        ops.extend(READONLY.iter().map(|p| MountOp::ReadOnly(p)));
    }
    ops
}

/// `ops` split for a container whose pid 1 mounts while its id maps are still being
/// written (setup.rs): first the steps that make no file (procfs, /sys, the masks and
/// read-only binds over them: every mount point is in trees this plan mounts itself),
/// then the rest in their order. Files made in the new namespaces fail until the maps
/// exist, so the /dev tree, binds and the user's mounts come second. The masks then
/// precede the user's mounts, which is the same only when no user mount lands in /proc
/// or /sys: when one does, everything stays second, in the plan's order.
pub fn split_before_maps(ops: Vec<MountOp>) -> (Vec<MountOp>, Vec<MountOp>) {
    let in_kernel_trees = |p: &Path| p.starts_with("/proc") || p.starts_with("/sys");
    let user_there = ops.iter().any(|op| match op {
        MountOp::Bind { dst, .. } | MountOp::Tmpfs { dst, .. } => in_kernel_trees(dst),
        _ => false,
    });
    if user_there {
        return (vec![], ops);
    }
    ops.into_iter().partition(|op| {
        matches!(
            op,
            MountOp::Proc
                | MountOp::HostProc
                | MountOp::Sys { .. }
                | MountOp::Mask(_)
                | MountOp::ReadOnly(_)
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn mnt(
    sys: &dyn Sys,
    what: &str,
    src: Option<&Path>,
    dst: BorrowedFd<'_>,
    name: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    let target = fd_path(dst);
    sys.mount(src, &target, fstype, flags, data)
        .map_err(|errno| MountError::Mount {
            what: what.into(),
            dst: name.into(),
            errno,
        })
}

fn mkdir_p(root: &InRoot<'_>, p: &Path) -> Result<OwnedFd, MountError> {
    root.mkdir_all(p)
        .map_err(|e| MountError::MountPoint(p.into(), e))
}

fn touch(root: &InRoot<'_>, p: &Path) -> Result<OwnedFd, MountError> {
    root.create_file(p)
        .map_err(|e| MountError::MountPoint(p.into(), e))
}

/// The mount now at `p` (resolved again: an fd taken before mounting holds the
/// directory beneath the new mount, and a remount through it would hit the wrong one).
fn reopen(root: &InRoot<'_>, p: &Path) -> Result<OwnedFd, MountError> {
    root.open(p)
        .map_err(|e| MountError::MountPoint(p.into(), e))
}

/// MS_ flags that must be repeated in a remount of a mount with these statvfs flags
/// (the kernel locks nosuid, nodev, noexec and atime flags of mounts a user namespace
/// inherited: clearing them fails with EPERM).
fn locked_flags(st: &Statvfs) -> MsFlags {
    let f = st.flags();
    let mut flags = MsFlags::empty();
    for (sf, mf) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(sf) {
            flags |= mf;
        }
    }
    flags
}

/// Remount the mount at the host path `p` read-only, keeping its locked flags. Used for
/// `/` after pivot_root (`--read-only`), where no image path is involved.
pub fn remount_ro(p: &Path) -> Result<(), MountError> {
    remount_ro_with(&RealSys, p)
}

/// [`remount_ro`] through `sys`.
pub(crate) fn remount_ro_with(sys: &dyn Sys, p: &Path) -> Result<(), MountError> {
    let st = statvfs(p).map_err(|e| MountError::Remount(p.into(), e))?;
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags(&st);
    sys.mount(None, p, None, flags, None)
        .map_err(|e| MountError::Remount(p.into(), e))
}

/// Remount the mount whose root `fd` holds read-only (see [`remount_ro`]); `name` is
/// the container path, for errors.
fn remount_ro_fd(sys: &dyn Sys, fd: BorrowedFd<'_>, name: &Path) -> Result<(), MountError> {
    let st = fstatvfs(fd).map_err(|e| MountError::Remount(name.into(), e))?;
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags(&st);
    sys.mount(None, &fd_path(fd), None, flags, None)
        .map_err(|e| MountError::Remount(name.into(), e))
}

/// Apply `ops` in order, before pivot_root, on the container root that `root` resolves
/// in (the host's /proc is still visible: a fresh procfs may be mounted, and
/// `/proc/self/fd/N` names the resolved targets).
pub fn apply(ops: &[MountOp], root: &InRoot<'_>) -> Result<(), MountError> {
    apply_with(&RealSys, ops, root)
}

/// [`apply`] with its mount calls made through `sys` (the kernel, or the recording fake
/// of the unit tests).
pub(crate) fn apply_with(
    sys: &dyn Sys,
    ops: &[MountOp],
    root: &InRoot<'_>,
) -> Result<(), MountError> {
    let nse = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let tmpfs = Some(Path::new("tmpfs"));
    for op in ops {
        match op {
            MountOp::Proc => {
                let d = Path::new("/proc");
                let fd = mkdir_p(root, d)?;
                let src = Some(Path::new("proc"));
                mnt(sys, "proc", src, fd.as_fd(), d, Some("proc"), nse, None)?;
            }
            MountOp::DevTmpfs => {
                let d = Path::new("/dev");
                let fd = mkdir_p(root, d)?;
                let flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
                let data = Some("mode=755,size=65536k");
                mnt(
                    sys,
                    "tmpfs",
                    tmpfs,
                    fd.as_fd(),
                    d,
                    Some("tmpfs"),
                    flags,
                    data,
                )?;
            }
            MountOp::DevBind(name) => {
                let dst = Path::new("/dev").join(name);
                if !dst.exists() {
                    continue; // a host without /dev/tty (no console) still runs containers
                }
                let fd = touch(root, &dst)?;
                // `dst` read as a host path names the host's device here.
                mnt(
                    sys,
                    "device",
                    Some(&dst),
                    fd.as_fd(),
                    &dst,
                    None,
                    MsFlags::MS_BIND,
                    None,
                )?;
            }
            MountOp::Symlink(link, target) => {
                root.symlink(Path::new(link), Path::new(target))
                    .map_err(|e| MountError::Symlink(link.into(), e))?;
            }
            MountOp::Devpts => {
                let d = Path::new("/dev/pts");
                let fd = mkdir_p(root, d)?;
                let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
                let data = Some("newinstance,ptmxmode=0666,mode=0620");
                let src = Some(Path::new("devpts"));
                mnt(
                    sys,
                    "devpts",
                    src,
                    fd.as_fd(),
                    d,
                    Some("devpts"),
                    flags,
                    data,
                )?;
            }
            MountOp::Shm => {
                let d = Path::new("/dev/shm");
                let fd = mkdir_p(root, d)?;
                let data = Some("mode=1777,size=65536k");
                let src = Some(Path::new("shm"));
                mnt(sys, "tmpfs", src, fd.as_fd(), d, Some("tmpfs"), nse, data)?;
            }
            MountOp::Mqueue => {
                let d = Path::new("/dev/mqueue");
                let fd = mkdir_p(root, d)?;
                // Needs the IPC namespace to belong to our user namespace (we unshare it).
                let src = Some(Path::new("mqueue"));
                mnt(sys, "mqueue", src, fd.as_fd(), d, Some("mqueue"), nse, None)?;
            }
            MountOp::HostProc => host_bind(sys, root, "/proc", "procfs (bind)")?,
            MountOp::HostShm if Path::new("/dev/shm").is_dir() => {
                host_bind(sys, root, "/dev/shm", "/dev/shm (bind)")?
            }
            MountOp::HostShm => {
                let d = Path::new("/dev/shm");
                let fd = mkdir_p(root, d)?;
                let data = Some("mode=1777,size=65536k");
                let src = Some(Path::new("shm"));
                mnt(sys, "tmpfs", src, fd.as_fd(), d, Some("tmpfs"), nse, data)?;
            }
            MountOp::HostMqueue if Path::new("/dev/mqueue").is_dir() => {
                host_bind(sys, root, "/dev/mqueue", "/dev/mqueue (bind)")?
            }
            MountOp::HostMqueue => {}
            MountOp::Sys { submounts_ro } => apply_sys(sys, root, *submounts_ro)?,
            MountOp::Bind { src, dst, ro } => {
                // The host source once, by fd: what was checked is what gets mounted.
                let s = rustix::fs::open(
                    src,
                    rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .map_err(|_| MountError::NoSource(src.clone()))?;
                let is_dir = rustix::fs::fstat(&s)
                    .map(|st| {
                        rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::Directory
                    })
                    .map_err(|_| MountError::NoSource(src.clone()))?;
                let fd = if is_dir {
                    mkdir_p(root, dst)?
                } else {
                    touch(root, dst)?
                };
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                let sp = fd_path(s.as_fd());
                mnt(sys, "bind", Some(&sp), fd.as_fd(), dst, None, flags, None)?;
                if *ro {
                    remount_ro_fd(sys, reopen(root, dst)?.as_fd(), dst)?;
                }
            }
            MountOp::Tmpfs { dst, options } => {
                let fd = mkdir_p(root, dst)?;
                let data = (!options.is_empty()).then_some(options.as_str());
                let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                mnt(
                    sys,
                    "tmpfs",
                    tmpfs,
                    fd.as_fd(),
                    dst,
                    Some("tmpfs"),
                    flags,
                    data,
                )?;
            }
            MountOp::Mask(p) => {
                let p = Path::new(p);
                let fd = match root.open(p) {
                    Err(InRootError::NotFound(_)) => continue,
                    r => r.map_err(|e| MountError::MountPoint(p.into(), e))?,
                };
                let is_dir = rustix::fs::fstat(&fd)
                    .map(|st| {
                        rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::Directory
                    })
                    .unwrap_or(false);
                if is_dir {
                    let (flags, data) = (MsFlags::MS_RDONLY, Some("size=0"));
                    mnt(
                        sys,
                        "tmpfs (mask)",
                        tmpfs,
                        fd.as_fd(),
                        p,
                        Some("tmpfs"),
                        flags,
                        data,
                    )?;
                } else {
                    let null = Some(Path::new("/dev/null")); // the host's
                    mnt(
                        sys,
                        "/dev/null (mask)",
                        null,
                        fd.as_fd(),
                        p,
                        None,
                        MsFlags::MS_BIND,
                        None,
                    )?;
                }
            }
            MountOp::ReadOnly(p) => {
                let p = Path::new(p);
                let fd = match root.open(p) {
                    Err(InRootError::NotFound(_)) => continue,
                    r => r.map_err(|e| MountError::MountPoint(p.into(), e))?,
                };
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                let sp = fd_path(fd.as_fd());
                mnt(
                    sys,
                    "bind (read-only)",
                    Some(&sp),
                    fd.as_fd(),
                    p,
                    None,
                    flags,
                    None,
                )?;
                remount_ro_fd(sys, reopen(root, p)?.as_fd(), p)?;
            }
        }
    }
    Ok(())
}

/// Bind the host's dir `p` on the same container path, recursively: its submounts are
/// locked to a user namespace, and a non-recursive bind of such a mount is refused.
fn host_bind(sys: &dyn Sys, root: &InRoot<'_>, p: &str, what: &str) -> Result<(), MountError> {
    let d = Path::new(p);
    let fd = mkdir_p(root, d)?;
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mnt(sys, what, Some(d), fd.as_fd(), d, None, flags, None)
}

/// A fresh sysfs needs a network namespace owned by our user namespace; with the host's
/// network we bind the host's /sys recursively (a non-recursive bind is refused: its
/// submounts are locked) and make it and each mount under it read-only (recursive
/// mount_setattr; on kernels without it, remounts: /sys, and with `submounts_ro` each
/// mount under it).
fn apply_sys(sys: &dyn Sys, root: &InRoot<'_>, submounts_ro: bool) -> Result<(), MountError> {
    let d = Path::new("/sys");
    let fd = mkdir_p(root, d)?;
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mnt(
        sys,
        "sysfs (bind)",
        Some(d),
        fd.as_fd(),
        d,
        None,
        flags,
        None,
    )?;
    let top = reopen(root, d)?;
    // One call for /sys and all its submounts when the kernel has mount_setattr (also
    // where `submounts_ro` is not needed: same cost, and nothing below /sys stays
    // writable); when it has not, or some submount refuses (all or none), the remounts
    // one by one below.
    if sys.read_only_tree(top.as_fd()).is_ok() {
        return Ok(());
    }
    remount_ro_fd(sys, top.as_fd(), d)?;
    if !submounts_ro {
        return Ok(());
    }
    // mountinfo names mount points by host path (we have not pivoted yet); resolve
    // each below the new /sys mount, never by that path.
    let Ok(host) = std::fs::read_link(fd_path(top.as_fd())) else {
        return Ok(());
    };
    let in_sys = InRoot::new(top.as_fd(), root.resolver());
    for m in mounts_under(&host.to_string_lossy()) {
        let Ok(rel) = m.strip_prefix(&host) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        // Ignoring failures on submounts: some (e.g. a locked fusectl) refuse remounts;
        // /sys itself succeeded above.
        if let Ok(sub) = in_sys.open(rel) {
            let _ = remount_ro_fd(sys, sub.as_fd(), &d.join(rel));
        }
    }
    Ok(())
}

/// Mount points at or under `prefix`, from /proc/self/mountinfo (field 5), in order.
fn mounts_under(prefix: &str) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p == prefix || p.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
