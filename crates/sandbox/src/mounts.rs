//! The mount plan of a container root: computed from a [`ContainerSpec`] (pure), applied
//! in the container's mount namespace *after* pivot_root, while the old root is still
//! reachable at [`OLD_ROOT`]. Applying after the pivot means every container path
//! (including symlinks the image planted, e.g. `/etc/hosts -> /x`) resolves inside the
//! container's root, never on the host; host sources are read through the old root.
//! Owns: /proc, /dev (tmpfs + host device binds + devpts + shm + mqueue), /sys
//! (read-only bind: a new sysfs needs a network namespace we do not own), the /etc
//! files, user binds and tmpfs, masked and read-only paths (runc's defaults),
//! `--read-only`.
//! Never: mounts the root itself or pivots (container.rs), writes id maps, forks.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::spec::{ContainerSpec, UserMount};

/// Where the old root stays reachable between pivot_root and its detach.
pub const OLD_ROOT: &str = "/.imago-oldroot";

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

/// Errors of applying the plan.
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
    /// A mount point could not be created.
    #[error("create mount point `{0}`")]
    MountPoint(PathBuf, #[source] std::io::Error),
    /// A bind source does not exist on the host.
    #[error("bind source `{0}` does not exist on the host")]
    NoSource(PathBuf),
    /// A symlink could not be created.
    #[error("create symlink `{0}`")]
    Symlink(PathBuf, #[source] std::io::Error),
    /// A read-only remount failed.
    #[error("remount `{0}` read-only")]
    Remount(PathBuf, #[source] Errno),
}

/// The plan for `spec` (pure).
pub fn plan(spec: &ContainerSpec) -> Vec<MountOp> {
    let mut ops = vec![MountOp::Proc, MountOp::DevTmpfs];
    ops.extend(DEVICES.iter().map(|d| MountOp::DevBind(d)));
    ops.extend([
        MountOp::Devpts,
        MountOp::Symlink("/dev/ptmx", "pts/ptmx"),
        MountOp::Symlink("/dev/fd", "/proc/self/fd"),
        MountOp::Symlink("/dev/stdin", "/proc/self/fd/0"),
        MountOp::Symlink("/dev/stdout", "/proc/self/fd/1"),
        MountOp::Symlink("/dev/stderr", "/proc/self/fd/2"),
        MountOp::Symlink("/dev/core", "/proc/kcore"),
        MountOp::Shm,
        MountOp::Mqueue,
        MountOp::Sys {
            submounts_ro: spec.id_map.kind == crate::idmap::MapKind::Identity,
        },
    ]);
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

fn old(p: &Path) -> PathBuf {
    Path::new(OLD_ROOT).join(p.strip_prefix("/").unwrap_or(p))
}

fn mnt(
    what: &str,
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    mount(src, dst, fstype, flags, data).map_err(|errno| MountError::Mount {
        what: what.into(),
        dst: dst.into(),
        errno,
    })
}

fn mkdir_p(p: &Path) -> Result<(), MountError> {
    std::fs::create_dir_all(p).map_err(|e| MountError::MountPoint(p.into(), e))
}

fn touch(p: &Path) -> Result<(), MountError> {
    if let Some(parent) = p.parent() {
        mkdir_p(parent)?;
    }
    if p.exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .map(drop)
        .map_err(|e| MountError::MountPoint(p.into(), e))
}

/// Remount the mount at `p` read-only, keeping the flags the kernel locked on it
/// (nosuid, nodev, noexec, atime: a user namespace may not clear them, EPERM otherwise).
pub fn remount_ro(p: &Path) -> Result<(), MountError> {
    let st = statvfs(p).map_err(|e| MountError::Remount(p.into(), e))?;
    let f = st.flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
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
    mount(None::<&str>, p, None::<&str>, flags, None::<&str>)
        .map_err(|e| MountError::Remount(p.into(), e))
}

/// Apply `ops` in order (after pivot_root; the old root at [`OLD_ROOT`]).
pub fn apply(ops: &[MountOp]) -> Result<(), MountError> {
    let nse = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for op in ops {
        match op {
            MountOp::Proc => {
                let d = Path::new("/proc");
                mkdir_p(d)?;
                mnt("proc", Some(Path::new("proc")), d, Some("proc"), nse, None)?;
            }
            MountOp::DevTmpfs => {
                let d = Path::new("/dev");
                mkdir_p(d)?;
                mnt(
                    "tmpfs",
                    Some(Path::new("tmpfs")),
                    d,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
                    Some("mode=755,size=65536k"),
                )?;
            }
            MountOp::DevBind(name) => {
                let dst = Path::new("/dev").join(name);
                let src = old(&dst);
                if !src.exists() {
                    continue; // a host without /dev/tty (no console) still runs containers
                }
                touch(&dst)?;
                mnt("device", Some(&src), &dst, None, MsFlags::MS_BIND, None)?;
            }
            MountOp::Symlink(link, target) => {
                std::os::unix::fs::symlink(target, link)
                    .map_err(|e| MountError::Symlink(link.into(), e))?;
            }
            MountOp::Devpts => {
                let d = Path::new("/dev/pts");
                mkdir_p(d)?;
                mnt(
                    "devpts",
                    Some(Path::new("devpts")),
                    d,
                    Some("devpts"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                    Some("newinstance,ptmxmode=0666,mode=0620"),
                )?;
            }
            MountOp::Shm => {
                let d = Path::new("/dev/shm");
                mkdir_p(d)?;
                mnt(
                    "tmpfs",
                    Some(Path::new("shm")),
                    d,
                    Some("tmpfs"),
                    nse,
                    Some("mode=1777,size=65536k"),
                )?;
            }
            MountOp::Mqueue => {
                let d = Path::new("/dev/mqueue");
                mkdir_p(d)?;
                // Needs the IPC namespace to belong to our user namespace (we unshare it).
                mnt(
                    "mqueue",
                    Some(Path::new("mqueue")),
                    d,
                    Some("mqueue"),
                    nse,
                    None,
                )?;
            }
            MountOp::Sys { submounts_ro } => {
                // A fresh sysfs needs a network namespace owned by our user namespace; we
                // share the host's network (part 1), so bind the host's /sys recursively
                // (a non-recursive bind is refused: its submounts are locked) and make
                // each mount under it read-only.
                let d = Path::new("/sys");
                mkdir_p(d)?;
                mnt(
                    "sysfs (bind)",
                    Some(&old(d)),
                    d,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                remount_ro(d)?;
                let subs = if *submounts_ro {
                    mounts_under("/sys")
                } else {
                    vec![]
                };
                for m in subs.into_iter().filter(|m| m != Path::new("/sys")) {
                    // Ignoring failures on submounts: some (e.g. a locked fusectl) refuse
                    // remounts; /sys itself succeeded above.
                    let _ = remount_ro(&m);
                }
            }
            MountOp::Bind { src, dst, ro } => {
                let s = old(src);
                let meta = std::fs::metadata(&s).map_err(|_| MountError::NoSource(src.clone()))?;
                if meta.is_dir() {
                    mkdir_p(dst)?;
                } else {
                    touch(dst)?;
                }
                mnt(
                    "bind",
                    Some(&s),
                    dst,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                if *ro {
                    remount_ro(dst)?;
                }
            }
            MountOp::Tmpfs { dst, options } => {
                mkdir_p(dst)?;
                let data = if options.is_empty() {
                    None
                } else {
                    Some(options.as_str())
                };
                mnt(
                    "tmpfs",
                    Some(Path::new("tmpfs")),
                    dst,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    data,
                )?;
            }
            MountOp::Mask(p) => {
                let p = Path::new(p);
                match std::fs::symlink_metadata(p) {
                    Err(_) => continue,
                    Ok(m) if m.is_dir() => mnt(
                        "tmpfs (mask)",
                        Some(Path::new("tmpfs")),
                        p,
                        Some("tmpfs"),
                        MsFlags::MS_RDONLY,
                        Some("size=0"),
                    )?,
                    Ok(_) => mnt(
                        "/dev/null (mask)",
                        Some(Path::new("/dev/null")),
                        p,
                        None,
                        MsFlags::MS_BIND,
                        None,
                    )?,
                }
            }
            MountOp::ReadOnly(p) => {
                let p = Path::new(p);
                if !p.exists() {
                    continue;
                }
                mnt(
                    "bind (read-only)",
                    Some(p),
                    p,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                remount_ro(p)?;
            }
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
mod tests {
    use super::*;
    use crate::idmap::IdMap;
    use crate::spec::{CapsPolicy, ProcessSpec, RootMount};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            id_map: IdMap::single(1000, 1000),
            root: RootMount::Bind("/r".into()),
            rootfs: "/m".into(),
            hostname: "h".into(),
            etc_files: vec![("/c/hosts".into(), "/etc/hosts".into())],
            mounts: vec![UserMount::Bind {
                src: "/data".into(),
                dst: "/d".into(),
                ro: true,
            }],
            readonly_root: false,
            init: true,
            privileged: false,
            cleanup: vec![],
            process: ProcessSpec {
                args: vec!["true".into()],
                env: vec![],
                cwd: "/".into(),
                user: String::new(),
                terminal: false,
                stdin: false,
                caps: CapsPolicy::All,
                seccomp: true,
                no_new_privs: false,
            },
        }
    }

    #[test]
    fn proc_first_devices_bound_masks_last() {
        let ops = plan(&spec());
        assert_eq!(ops[0], MountOp::Proc);
        assert!(ops.contains(&MountOp::DevBind("null")));
        assert!(ops.contains(&MountOp::Mask("/proc/kcore")));
        assert_eq!(ops.last(), Some(&MountOp::ReadOnly("/proc/sysrq-trigger")));
        let hosts = ops
            .iter()
            .position(|o| matches!(o, MountOp::Bind { dst, .. } if dst == Path::new("/etc/hosts")));
        let vol = ops.iter().position(
            |o| matches!(o, MountOp::Bind { dst, ro: true, .. } if dst == Path::new("/d")),
        );
        assert!(
            hosts < vol,
            "etc files before user mounts, so a -v can override them"
        );
    }

    #[test]
    fn privileged_has_no_masks() {
        let mut s = spec();
        s.privileged = true;
        assert!(!plan(&s)
            .iter()
            .any(|o| matches!(o, MountOp::Mask(_) | MountOp::ReadOnly(_))));
    }

    #[test]
    fn old_root_paths() {
        assert_eq!(
            old(Path::new("/dev/null")),
            PathBuf::from("/.imago-oldroot/dev/null")
        );
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
