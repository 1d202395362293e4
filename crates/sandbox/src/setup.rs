//! The container's setup sequence, in its pid 1 after `Go`: the root mount (overlay or
//! bind), the mount plan (mounts.rs) applied before pivot_root with every container
//! path resolved inside the root (inroot.rs), the working dir, the user from the
//! image's passwd and group (bounded reads), pivot_root with the old root detached at
//! once, the hostname, `--read-only`. Everything here fails with an imago error (exit
//! 125), never with the command's. In two parts when irun's setuid helpers are still
//! writing the id maps at `Early` ([`before_maps`]: the root and the mounts that make no
//! file, since a file made in the new namespaces fails until its owner is mapped; then
//! [`after_maps`]); in one when the maps came first (`Go`). Also the same root mount and user lookup on the
//! caller's side, in a run-in-mapping child, for the single mapping that must know the
//! container's user before its maps are written ([`resolve_in_image`]).
//! Owns: that order and its errors. Never: talks to irun (pid1.rs), execs (exec.rs),
//! decides a mount (mounts.rs), touches a container path by an ordinary path call
//! before pivot_root.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::child::ChildError;
use crate::idmap::{IdMap, IdMapEntry, MapKind};
use crate::inroot::{InRoot, InRootError, Resolver};
use crate::mounts;
use crate::spec::{ContainerSpec, RootMount};
use crate::sys::{self, RealSys, Sys};
use crate::user::{self, Ids};

/// Image files read during setup are bounded: a passwd of more is refused.
const MAX_ETC_FILE: u64 = 16 << 20;

/// Errors of the setup sequence (sent back to irun as a RemoteError chain).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The FUSE overlay could not be mounted for a user lookup.
    #[error("mount the FUSE overlay on `{0}`")]
    Fuse(PathBuf, #[source] imago_overlay::fuse::FuseError),
    /// The overlay's short links could not be made.
    #[error("create short links for the overlay")]
    Links(#[source] std::io::Error),
    /// chdir to the dir the overlay's relative lowerdirs start from failed.
    #[error("mount the root file system on `{dst}`: chdir to the layers' dir `{dir}`")]
    LayersDir {
        /// The root's mount point.
        dst: PathBuf,
        /// The dir.
        dir: PathBuf,
        /// Why.
        #[source]
        errno: Errno,
    },
    /// mount of the overlay failed.
    #[error("mount the root file system on `{dst}` (overlay {data})")]
    Overlay {
        /// The root's mount point.
        dst: PathBuf,
        /// The overlay's options.
        data: String,
        /// Why.
        #[source]
        errno: Errno,
    },
    /// The bind mount of a root dir failed.
    #[error("mount the root file system on `{dst}` (bind {src})")]
    BindRoot {
        /// The root's mount point.
        dst: PathBuf,
        /// The dir bound.
        src: PathBuf,
        /// Why.
        #[source]
        errno: Errno,
    },
    /// The mounted root could not be opened.
    #[error("open the container root `{0}`")]
    OpenRoot(PathBuf, #[source] Errno),
    /// The mount plan failed.
    #[error("container mounts")]
    Mounts(#[source] mounts::MountError),
    /// The working dir could not be made in the root.
    #[error("create the working directory `{0}`")]
    Workdir(String, #[source] InRootError),
    /// The image's passwd or group could not be read.
    #[error("read the container's `{0}`")]
    EtcFile(&'static str, #[source] InRootError),
    /// The user spec names no user of the image.
    #[error("resolve the user `{spec}`")]
    User {
        /// `-u` or the image's USER.
        spec: String,
        /// Why.
        #[source]
        source: user::UserError,
    },
    /// The user's uid or gid has no host id in the container's mapping.
    #[error("user {what} {id} is not mapped in this container (its {what}s: {mapped}){}", unmapped_advice(*.single))]
    Unmapped {
        /// `uid` or `gid`.
        what: &'static str,
        /// The id.
        id: u32,
        /// The ids the mapping has, as `0-65535` or `33`.
        mapped: String,
        /// The single mapping (one id, the container's own user's).
        single: bool,
    },
    /// The old root could not be opened before pivot_root.
    #[error("open the old root `/` before pivot_root")]
    OpenOldRoot(#[source] Errno),
    /// fchdir into the new root failed.
    #[error("enter the new root `{0}` (fchdir)")]
    EnterNewRoot(PathBuf, #[source] Errno),
    /// pivot_root failed.
    #[error("pivot_root into `{0}`")]
    Pivot(PathBuf, #[source] Errno),
    /// fchdir to the old root (stacked on the new one) failed.
    #[error("enter the old root after pivot_root (fchdir)")]
    EnterOldRoot(#[source] Errno),
    /// The old root could not be detached.
    #[error("detach the old root (umount2 MNT_DETACH)")]
    Detach(#[source] Errno),
    /// chdir to the new `/` failed.
    #[error("chdir to the new root `/`")]
    ChdirRoot(#[source] Errno),
    /// sethostname failed.
    #[error("set the hostname to `{0}`")]
    Hostname(String, #[source] Errno),
    /// `--read-only`: the remount of `/` failed.
    #[error("remount / read-only")]
    ReadOnly(#[source] mounts::MountError),
}

/// What [`before_maps`] did: mounts made private, the root mounted (and held by its
/// fd), and how many of the plan's first steps ([`mounts::split_before_maps`]) are done.
#[derive(Default)]
pub struct Before {
    private: bool,
    root_mounted: bool,
    root: Option<OwnedFd>,
    first_done: usize,
}

/// The part of the setup that needs no id maps, done by pid 1 while irun's setuid helpers
/// write them: the root mount and the plan's first steps (procfs, /sys, the masks).
/// Every step that fails is left, with all after it, to [`after_maps`], which does it
/// again and reports its error: nothing here fails the container.
pub fn before_maps(spec: &ContainerSpec) -> Before {
    before_maps_with(&RealSys, spec)
}

fn before_maps_with(sys: &dyn Sys, spec: &ContainerSpec) -> Before {
    let mut done = Before {
        // Best effort, as in after_maps_with.
        private: sys::make_mounts_private(sys).is_ok(),
        ..Before::default()
    };
    if mount_root(sys, spec).is_err() {
        return done;
    }
    done.root_mounted = true;
    let Ok(root_fd) = open_root(&spec.rootfs) else {
        return done;
    };
    let (first, _) = mounts::split_before_maps(mounts::plan(spec));
    {
        let in_root = InRoot::new(root_fd.as_fd(), Resolver::detect());
        for op in &first {
            if mounts::apply_with(sys, std::slice::from_ref(op), &in_root).is_err() {
                break;
            }
            done.first_done += 1;
        }
    }
    done.root = Some(root_fd);
    done
}

/// Root mount, mount plan, workdir, user, pivot, hostname, `--read-only`, once the id
/// maps are written, after [`before_maps`] did `before` (or nothing: `Before::default()`):
/// the user's ids to exec with.
pub fn after_maps(spec: &ContainerSpec, before: Before) -> Result<Ids, SetupError> {
    after_maps_with(&RealSys, spec, before)
}

/// The whole setup in one go, its privileged calls made through `sys`.
#[cfg(test)]
fn setup_with(sys: &dyn Sys, spec: &ContainerSpec) -> Result<Ids, SetupError> {
    after_maps_with(sys, spec, Before::default())
}

fn after_maps_with(sys: &dyn Sys, spec: &ContainerSpec, before: Before) -> Result<Ids, SetupError> {
    // Best effort: the namespace is new and a user namespace's copies of the host's
    // mounts receive from the host at most (mount_namespaces(7)); this only makes sure
    // nothing mounted here propagates back.
    let private = before.private || sys::make_mounts_private(sys).is_ok();
    let root = &spec.rootfs;
    if !before.root_mounted {
        mount_root(sys, spec)?;
    }
    // Everything below resolves container paths from this fd, inside the root (inroot.rs):
    // the image's symlinks cannot reach the host. It must be opened after the root
    // mount, to hold the mount and not the empty dir beneath.
    let root_fd = match before.root {
        Some(fd) => fd,
        None => open_root(root)?,
    };
    let in_root = InRoot::new(root_fd.as_fd(), Resolver::detect());
    // The plan before pivot_root: the host's /proc (needed to mount a fresh procfs in a
    // user namespace, and for /proc/self/fd/N) and host sources are still in view, and
    // no image path is ever reached by an ordinary path call.
    let (first, then) = mounts::split_before_maps(mounts::plan(spec));
    let rest: Vec<_> = first
        .into_iter()
        .skip(before.first_done)
        .chain(then)
        .collect();
    mounts::apply_with(sys, &rest, &in_root).map_err(SetupError::Mounts)?;
    let cwd = if spec.process.cwd.is_empty() {
        "/"
    } else {
        spec.process.cwd.as_str()
    };
    in_root
        .mkdir_all(Path::new(cwd))
        .map_err(|e| SetupError::Workdir(cwd.into(), e))?;
    let ids = resolve_ids(&spec.process.user, &spec.id_map, &in_root)?;
    pivot(sys, root_fd, root, private)?;
    sys.sethostname(&spec.hostname)
        .map_err(|e| SetupError::Hostname(spec.hostname.clone(), e))?;
    if spec.readonly_root {
        mounts::remount_ro_with(sys, Path::new("/")).map_err(SetupError::ReadOnly)?;
    }
    Ok(ids)
}

/// An `O_PATH` fd of the mounted root `root`.
fn open_root(root: &Path) -> Result<OwnedFd, SetupError> {
    rustix::fs::open(
        root,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| SetupError::OpenRoot(root.to_path_buf(), Errno::from_raw(e.raw_os_error())))
}

/// The container's root on `spec.rootfs`: kernel overlayfs (after its short links and
/// the chdir its relative lowerdirs need) or a bind of a dir.
fn mount_root(sys: &dyn Sys, spec: &ContainerSpec) -> Result<(), SetupError> {
    mount_root_as(sys, &spec.root, &spec.rootfs)
}

/// [`mount_root`] of the root `how` on `root`.
fn mount_root_as(sys: &dyn Sys, how: &RootMount, root: &PathBuf) -> Result<(), SetupError> {
    match how {
        RootMount::Overlay { cwd, data, links } => {
            for (link, target) in links {
                if let Some(p) = link.parent() {
                    std::fs::create_dir_all(p).map_err(SetupError::Links)?;
                }
                // A link left by an earlier run is replaced; when none is there (the usual
                // case) or it cannot go, the symlink call below says so.
                let _ = std::fs::remove_file(link);
                std::os::unix::fs::symlink(target, link).map_err(SetupError::Links)?;
            }
            if let Some(c) = cwd {
                sys.chdir(c.as_path())
                    .map_err(|errno| SetupError::LayersDir {
                        dst: root.clone(),
                        dir: c.clone(),
                        errno,
                    })?;
            }
            sys.mount(
                Some(Path::new("overlay")),
                root.as_path(),
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(|errno| SetupError::Overlay {
                dst: root.clone(),
                data: data.clone(),
                errno,
            })
        }
        RootMount::Bind(dir) => sys
            .mount(
                Some(dir.as_path()),
                root.as_path(),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|errno| SetupError::BindRoot {
                dst: root.clone(),
                src: dir.clone(),
                errno,
            }),
        // Mounted already, from outside, by the container's FUSE server (fuse_root.rs).
        RootMount::Fuse(_) => Ok(()),
        // Its lower is mounted already, from outside (squash_root.rs); the root over it
        // mounts as asked.
        RootMount::Squash(s) => mount_root_as(sys, &s.over, root),
    }
}

/// pivot_root(".", ".") (runc's way): the old root ends up stacked on the new one and is
/// detached at once, so no directory is made in the image and nothing of the host stays
/// reachable after this returns. `private`: every mount of the namespace was made
/// private before the root was mounted.
/// The detach must come before pid 2 is forked, not while pid 2 gets ready: until then
/// `..` at the new root steps onto the stacked old root (the kernel follows mounts on
/// the parent it returns), so pid 2's own path walks (`/dev/null`, the workdir, PATH)
/// through an image's `..` links would reach the host. The hostile-image tests catch it.
fn pivot(sys: &dyn Sys, new_root: OwnedFd, root: &Path, private: bool) -> Result<(), SetupError> {
    let old_root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(SetupError::OpenOldRoot)?;
    let dot = Path::new(".");
    sys.fchdir(new_root.as_fd())
        .map_err(|e| SetupError::EnterNewRoot(root.into(), e))?;
    sys.pivot_root(dot, dot)
        .map_err(|e| SetupError::Pivot(root.into(), e))?;
    drop(new_root);
    // After pivot_root the kernel gives no guarantee what "." is; go to the old root
    // explicitly (it is on top of the stack at "/").
    sys.fchdir(old_root.as_fd())
        .map_err(SetupError::EnterOldRoot)?;
    drop(old_root);
    // Private first, so the detach does not propagate to the host's peers: done already
    // when setup made every mount private (the old root's tree is those mounts; the ones
    // made since are private as their parents are), else tried again here. Ignoring a
    // failure: that first try failed the same way.
    if !private {
        let _ = sys.mount(None, dot, None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None);
    }
    sys.umount2(dot, MntFlags::MNT_DETACH)
        .map_err(SetupError::Detach)?;
    sys.chdir(Path::new("/")).map_err(SetupError::ChdirRoot)
}

/// The ids of `user` from the image's /etc/passwd and /etc/group (read in the root,
/// bounded); refused when `map` has no host id for the uid or the gid (under the single
/// mapping: any but the container's own user's). Also for a process joining a running
/// container (join/enter.rs), with the same errors.
pub(crate) fn resolve_ids(
    user: &str,
    map: &IdMap,
    in_root: &InRoot<'_>,
) -> Result<Ids, SetupError> {
    let ids = lookup_ids(user, in_root)?;
    let single = map.kind == MapKind::Single;
    let checks = [
        ("uid", ids.uid, map.host_uid(ids.uid), &map.uid),
        ("gid", ids.gid, map.host_gid(ids.gid), &map.gid),
    ];
    for (what, id, host, entries) in checks {
        if host.is_none() {
            return Err(SetupError::Unmapped {
                what,
                id,
                mapped: ranges(entries),
                single,
            });
        }
    }
    Ok(ids)
}

/// The ids of `user` in the image's passwd and group, unchecked against a mapping.
fn lookup_ids(user: &str, in_root: &InRoot<'_>) -> Result<Ids, SetupError> {
    let read = |p: &'static str| -> Result<String, SetupError> {
        let bytes = in_root
            .read_file(Path::new(p), MAX_ETC_FILE)
            .map_err(|e| SetupError::EtcFile(p, e))?;
        Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    user::resolve(user, &passwd, &group).map_err(|source| SetupError::User {
        spec: user.into(),
        source,
    })
}

/// The ids `spec.process.user` will resolve to in the container, found before the
/// container exists (the single mapping places its one id at them, and a map cannot be
/// changed once written): in a run-in-mapping child under `map` (user and mount
/// namespaces of its own, gone when it returns) the root is mounted as [`after_maps`]
/// mounts it and the image's passwd and group are read there through the same inroot resolver,
/// bounded. An unknown user fails here with [`after_maps`]' own error (in the chain).
pub(crate) fn resolve_in_image(spec: &ContainerSpec, map: &IdMap) -> Result<Ids, ChildError> {
    crate::child::run_in_mapping(map, || -> Result<Ids, SetupError> {
        // A FUSE root is served by this child itself while it looks (it is root in its
        // own user and mount namespaces); the other roots mount as in setup.
        let _session = match &spec.root {
            RootMount::Fuse(l) => Some(mount_fuse_here(l, &spec.rootfs)?),
            _ => {
                mount_root(&RealSys, spec)?;
                None
            }
        };
        let root_fd = open_root(&spec.rootfs)?;
        lookup_ids(
            &spec.process.user,
            &InRoot::new(root_fd.as_fd(), Resolver::detect()),
        )
    })
}

/// Mount and serve the FUSE overlay of `layers` on `root` from this process (root in its
/// own user and mount namespaces); unmounted when the session drops.
fn mount_fuse_here(
    layers: &crate::fuse_root::FuseLayers,
    root: &Path,
) -> Result<imago_overlay::fuse::FuseSession, SetupError> {
    let err = |e| SetupError::Fuse(root.to_path_buf(), e);
    let fs = imago_overlay::fuse::FuseOverlay::new(
        &layers.lowers_top_first,
        &layers.upper,
        &layers.work,
    )
    .map_err(err)?;
    let opts = imago_overlay::fuse::MountOptions {
        threads: 1,
        ..Default::default()
    };
    imago_overlay::fuse::mount(root, fs, &opts).map_err(err)
}

/// The inside ids of map lines, as `0-65535, 100` (for an error).
fn ranges(entries: &[IdMapEntry]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|e| match e.count {
            0 | 1 => e.inside.to_string(),
            n => format!("{}-{}", e.inside, u64::from(e.inside) + u64::from(n) - 1),
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// What to do about an unmapped id, by mapping kind.
fn unmapped_advice(single: bool) -> &'static str {
    if single {
        ": without a subuid/subgid range for your user a container has only its own \
         user's uid and gid (give your user a range in /etc/subuid and /etc/subgid, or run \
         as root)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::{Call, FakeSys};

    /// A spec binding an image dir on a mount point, both in a tempdir; with the fake
    /// nothing is mounted, so the plan runs in the (empty) mount point.
    fn spec(t: &Path) -> ContainerSpec {
        for d in ["img", "mnt"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        let mut spec = ContainerSpec::for_tests();
        spec.root = RootMount::Bind(t.join("img"));
        spec.rootfs = t.join("mnt");
        spec.readonly_root = true;
        spec.process.cwd = "/work".into();
        spec
    }

    fn is_fd_mount(c: &Call) -> bool {
        matches!(c, Call::Mount { target, .. } if target.starts_with("/proc/self/fd"))
    }

    #[test]
    fn fake_setup_pivots_after_the_plan_and_detaches_the_old_root_at_once() {
        let t = tempfile::tempdir().unwrap();
        let s = spec(t.path());
        let sys = FakeSys::new();
        let ids = setup_with(&sys, &s).unwrap();
        assert_eq!((ids.uid, ids.gid), (0, 0));
        let calls = sys.calls();
        let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
        assert!(
            matches!(&calls[0], Call::Mount { target, flags, .. } if target == Path::new("/") && *flags == private)
        );
        assert!(
            matches!(&calls[1], Call::Mount { src: Some(src), target, .. } if *src == t.path().join("img") && *target == s.rootfs)
        );
        let pivot = calls
            .iter()
            .position(|c| matches!(c, Call::PivotRoot { .. }))
            .unwrap();
        let last_plan_mount = calls.iter().rposition(is_fd_mount).unwrap();
        assert!(last_plan_mount < pivot, "{calls:#?}");
        let mnt = std::fs::canonicalize(&s.rootfs).unwrap();
        let dot = PathBuf::from(".");
        assert_eq!(calls[pivot - 1], Call::Fchdir(mnt));
        // Every mount was made private first: the old root's detach needs no remount.
        assert_eq!(
            calls[pivot..pivot + 4],
            [
                Call::PivotRoot {
                    new_root: dot.clone(),
                    put_old: dot.clone()
                },
                Call::Fchdir("/".into()),
                Call::Umount2 {
                    target: dot,
                    flags: MntFlags::MNT_DETACH
                },
                Call::Chdir("/".into()),
            ]
        );
        assert_eq!(calls[pivot + 4], Call::Sethostname("h".into()));
        assert!(
            matches!(&calls[pivot + 5], Call::Mount { target, flags, .. } if target == Path::new("/") && flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)),
            "--read-only remounts the new / last"
        );
        assert_eq!(calls.len(), pivot + 6);
        assert!(s.rootfs.join("work").is_dir(), "workdir made in the root");
    }

    #[test]
    fn fake_the_old_root_is_made_private_before_its_detach_when_setup_could_not() {
        let t = tempfile::tempdir().unwrap();
        let s = spec(t.path());
        let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
        let sys = FakeSys::failing(
            move |c| matches!(c, Call::Mount { target, flags, .. } if target == Path::new("/") && *flags == private),
            Errno::EPERM,
        );
        setup_with(&sys, &s).unwrap();
        let calls = sys.calls();
        let detach = calls
            .iter()
            .position(|c| matches!(c, Call::Umount2 { .. }))
            .unwrap();
        let dot = PathBuf::from(".");
        assert_eq!(
            calls[detach - 1],
            Call::Mount {
                src: None,
                target: dot,
                resolved: None,
                fstype: None,
                flags: private,
                data: None
            },
            "{calls:#?}"
        );
    }

    /// An image dir with a passwd and a group, in `t/img`.
    fn image_with_users(t: &Path) {
        std::fs::create_dir_all(t.join("img/etc")).unwrap();
        std::fs::write(
            t.join("img/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.join("img/etc/group"), "root:x:0:\nwww-data:x:33:\n").unwrap();
    }

    #[test]
    fn ids_outside_the_mapping_are_refused_naming_what_is_mapped() {
        let t = tempfile::tempdir().unwrap();
        image_with_users(t.path());
        let root = std::fs::File::open(t.path().join("img")).unwrap();
        let in_root = InRoot::new(root.as_fd(), Resolver::detect());
        let at_www = IdMap::single(1000, 1000).at_user(33, 33);
        let ids = resolve_ids("www-data", &at_www, &in_root).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.home.as_str()), (33, 33, "/var/www"));
        let err = resolve_ids("root", &at_www, &in_root).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("user uid 0 is not mapped in this container (its uids: 33): without a subuid/subgid range"), "{text}");
        let err = resolve_ids("33:0", &at_www, &in_root).unwrap_err();
        assert!(
            err.to_string().starts_with("user gid 0 is not mapped"),
            "{err}"
        );
        let identity = IdMap::plan(&crate::idmap::IdMapInput::default());
        let err = resolve_ids("70000", &identity, &in_root).unwrap_err();
        assert_eq!(
            err.to_string(),
            "user uid 70000 is not mapped in this container (its uids: 0-65535)"
        );
        let unknown = resolve_ids("nobody2", &at_www, &in_root).unwrap_err();
        assert!(matches!(unknown, SetupError::User { .. }), "{unknown:?}");
    }

    #[test]
    fn the_user_is_found_in_the_mounted_root_before_the_container_exists() {
        if !crate::probe::probe_userns() {
            eprintln!("SKIP: unprivileged user namespaces not usable here");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let s = spec(t.path());
        image_with_users(t.path());
        let map = IdMap::detect();
        let mut s = s;
        s.process.user = "www-data".into();
        let ids = resolve_in_image(&s, &map).unwrap();
        assert_eq!((ids.uid, ids.gid), (33, 33));
        s.process.user = "nobody2".into();
        let err = resolve_in_image(&s, &map).unwrap_err();
        let ChildError::Remote(chain) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            chain.chain(),
            [
                "resolve the user `nobody2`",
                "unable to find user nobody2: no matching entries in passwd file"
            ]
        );
        // Mounted in the child's own namespace only: nothing is left on the mount point.
        assert!(!s.rootfs.join("etc").exists());
    }

    #[test]
    fn fake_a_failing_plan_mount_stops_setup_naming_the_container_path() {
        let t = tempfile::tempdir().unwrap();
        let s = spec(t.path());
        let sys = FakeSys::failing(
            |c| matches!(c, Call::Mount { fstype: Some(f), .. } if f == "mqueue"),
            Errno::EPERM,
        );
        let err = setup_with(&sys, &s).unwrap_err();
        let chain = crate::child::RemoteError::from_chain(&err);
        assert!(
            chain.chain().iter().any(|m| m.contains("`/dev/mqueue`")),
            "{chain:?}"
        );
        let calls = sys.calls();
        assert!(matches!(calls.last(), Some(Call::Mount { fstype: Some(f), .. }) if f == "mqueue"));
        assert!(!calls.iter().any(|c| matches!(c, Call::PivotRoot { .. })));
    }

    fn mounts(calls: &[Call]) -> Vec<Call> {
        calls
            .iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .cloned()
            .collect()
    }

    fn is_proc(c: &Call) -> bool {
        matches!(c, Call::Mount { fstype: Some(f), .. } if f == "proc")
    }

    #[test]
    fn fake_mounts_before_the_maps_stop_at_a_failure_and_the_rest_come_after_once() {
        let whole = FakeSys::new();
        let t = tempfile::tempdir().unwrap();
        setup_with(&whole, &spec(t.path())).unwrap();
        // A fresh root: the first run left its symlinks in the fake's dirs.
        let t = tempfile::tempdir().unwrap();
        let s = spec(t.path());
        // Before the maps: private, the root, procfs; the /sys bind fails and is left.
        let early = FakeSys::failing(
            |c| matches!(c, Call::Mount { src: Some(src), .. } if src == Path::new("/sys")),
            Errno::EOVERFLOW,
        );
        let before = before_maps_with(&early, &s);
        assert_eq!((before.private, before.root_mounted), (true, true));
        assert_eq!(before.first_done, 1, "{:#?}", early.calls());
        let early_calls = mounts(&early.calls());
        assert!(is_proc(&early_calls[2]), "{early_calls:#?}");
        let late = FakeSys::new();
        after_maps_with(&late, &s, before).unwrap();
        let late_calls = mounts(&late.calls());
        assert!(
            !late_calls.iter().any(is_proc),
            "procfs is mounted once: {late_calls:#?}"
        );
        assert!(
            matches!(&late_calls[0], Call::Mount { src: Some(src), .. } if src == Path::new("/sys")),
            "the failed step comes first after the maps: {late_calls:#?}"
        );
        // Every mount of the one-phase setup, once: the failed try is the only extra.
        assert_eq!(
            early_calls.len() - 1 + late_calls.len(),
            mounts(&whole.calls()).len()
        );
        assert!(matches!(late.calls().last(), Some(Call::Mount { .. })));
    }

    #[test]
    fn kernel_trees_first_unless_a_user_mount_lands_in_them() {
        let mut s = ContainerSpec::for_tests();
        let (first, then) = mounts::split_before_maps(mounts::plan(&s));
        assert!(matches!(first[0], mounts::MountOp::Proc), "{first:?}");
        assert!(first.iter().any(|o| matches!(o, mounts::MountOp::Mask(_))));
        assert!(matches!(then[0], mounts::MountOp::DevTmpfs), "{then:?}");
        s.mounts.push(crate::spec::UserMount::Tmpfs {
            dst: "/sys/fs/x".into(),
            options: String::new(),
        });
        let plan = mounts::plan(&s);
        let (first, then) = mounts::split_before_maps(plan.clone());
        assert!(first.is_empty());
        assert_eq!(then, plan, "the plan's order stands");
    }

    #[test]
    fn fake_a_failing_pivot_root_names_the_call_and_the_root() {
        let t = tempfile::tempdir().unwrap();
        let s = spec(t.path());
        let sys = FakeSys::failing(|c| matches!(c, Call::PivotRoot { .. }), Errno::EINVAL);
        let err = setup_with(&sys, &s).unwrap_err();
        assert!(matches!(err, SetupError::Pivot(..)), "{err:?}");
        assert!(err.to_string().starts_with("pivot_root into `"), "{err}");
        assert!(matches!(sys.calls().last(), Some(Call::PivotRoot { .. })));
    }
}
