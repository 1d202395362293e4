//! The plan's order and the apply step, on real dirs through the recording fake.

use super::*;
use crate::inroot::Resolver;
use crate::sys::fake::{Call, FakeSys};

fn spec() -> ContainerSpec {
    let mut spec = ContainerSpec::for_tests();
    spec.etc_files = vec![("/c/hosts".into(), "/etc/hosts".into())];
    spec.mounts = vec![UserMount::Bind {
        src: "/data".into(),
        dst: "/d".into(),
        ro: true,
    }];
    spec
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
    let vol = ops
        .iter()
        .position(|o| matches!(o, MountOp::Bind { dst, ro: true, .. } if dst == Path::new("/d")));
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
fn user_mounts_and_tmpfs_follow_the_etc_files_and_precede_the_masks() {
    let mut s = spec();
    s.mounts.push(UserMount::Tmpfs {
        dst: "/run/x".into(),
        options: "size=1m".into(),
    });
    let ops = plan(&s);
    let pos = |f: &dyn Fn(&MountOp) -> bool| ops.iter().position(f).unwrap();
    let tmpfs = pos(&|o| matches!(o, MountOp::Tmpfs { dst, .. } if dst == Path::new("/run/x")));
    let hosts = pos(&|o| matches!(o, MountOp::Bind { dst, .. } if dst == Path::new("/etc/hosts")));
    let first_mask = pos(&|o| matches!(o, MountOp::Mask(_)));
    assert!(hosts < tmpfs && tmpfs < first_mask, "{ops:?}");
}

/// The kernel part of `apply`, in a user and mount namespace of a child: a bind and a
/// tmpfs whose targets' parents are hostile links land inside the root.
#[test]
fn apply_through_hostile_links_stays_in_the_root() {
    use std::os::unix::fs::symlink;
    if !crate::probe::probe_userns() {
        eprintln!("SKIP: unprivileged user namespaces not usable here");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (root, canary, src) = (
        t.path().join("root"),
        t.path().join("c"),
        t.path().join("s"),
    );
    for d in [&root, &canary, &src] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(src.join("f"), b"src\n").unwrap();
    let c = canary.display().to_string();
    symlink(&c, root.join("abs")).unwrap();
    symlink(format!("../../../../../../..{c}"), root.join("dots")).unwrap();
    let r = root.clone();
    let ops = vec![
        MountOp::Tmpfs {
            dst: "/abs/t".into(),
            options: String::new(),
        },
        MountOp::Bind {
            src: src.clone(),
            dst: "/dots/x".into(),
            ro: true,
        },
        MountOp::Symlink("/abs/l", "target"),
    ];
    let (tmpfs_type, bound, ro) =
        crate::run_in_mapping(&crate::IdMap::detect(), move || -> Result<_, MountError> {
            let fd = rustix::fs::open(
                &r,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            apply(&ops, &InRoot::new(fd.as_fd(), Resolver::detect()))?;
            let inside = r.join(c.trim_start_matches('/'));
            let st = nix::sys::statfs::statfs(&inside.join("t")).unwrap();
            let bound = std::fs::read_to_string(inside.join("x/f")).unwrap();
            let ro = std::fs::write(inside.join("x/g"), b"").is_err();
            Ok((st.filesystem_type().0 as u64, bound, ro))
        })
        .unwrap();
    assert_eq!(tmpfs_type, libc::TMPFS_MAGIC as u64);
    assert_eq!((bound.as_str(), ro), ("src\n", true));
    assert_eq!(
        std::fs::read_dir(&canary).unwrap().count(),
        0,
        "host touched"
    );
    assert_eq!(std::fs::read_dir(&src).unwrap().count(), 1);
    let made = root.join(canary.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_link(made.join("l")).unwrap(),
        Path::new("target")
    );
}

/// A root with what the masks and read-only paths act on, a host bind source, the
/// spec's user mounts pointing at both; (tempdir, root, spec).
fn fake_root() -> (tempfile::TempDir, PathBuf, ContainerSpec) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    for d in ["proc/acpi", "proc/sys", "src"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("proc/kcore"), b"").unwrap();
    std::fs::write(t.path().join("hosts"), b"").unwrap();
    let mut s = spec();
    s.etc_files = vec![(t.path().join("hosts"), "/etc/hosts".into())];
    s.mounts = vec![
        UserMount::Bind {
            src: root.join("src"),
            dst: "/d".into(),
            ro: true,
        },
        UserMount::Tmpfs {
            dst: "/run/x".into(),
            options: "size=1m".into(),
        },
    ];
    let root = std::fs::canonicalize(root).unwrap();
    (t, root, s)
}

fn fake_apply(sys: &FakeSys, root: &Path, s: &ContainerSpec) -> Result<(), MountError> {
    let fd = rustix::fs::open(
        root,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    apply_with(sys, &plan(s), &InRoot::new(fd.as_fd(), Resolver::detect()))
}

/// The mounts of `calls` as (container path, call), the path read from where the
/// fd target pointed.
fn fake_mounts(calls: &[Call], root: &Path) -> Vec<(PathBuf, Call)> {
    calls
        .iter()
        .map(|c| match c {
            Call::Mount {
                resolved: Some(r), ..
            }
            | Call::ReadOnlyTree(r) => (
                Path::new("/").join(r.strip_prefix(root).unwrap()),
                c.clone(),
            ),
            other => panic!("not a mount on an fd path: {other:?}"),
        })
        .collect()
}

#[test]
fn fake_apply_mounts_on_fd_paths_only_in_plan_order() {
    let (_t, root, s) = fake_root();
    let sys = FakeSys::new();
    fake_apply(&sys, &root, &s).unwrap();
    let calls = sys.calls();
    for c in &calls {
        let target = match c {
            Call::Mount { target, .. } => target,
            Call::ReadOnlyTree(_) => continue, // an fd, recorded by where it pointed
            other => panic!("{other:?}"),
        };
        let n = target.strip_prefix("/proc/self/fd").unwrap();
        assert!(n.to_str().unwrap().parse::<u32>().is_ok(), "{c:?}");
    }
    let mounts = fake_mounts(&calls, &root);
    let at = |p: &str| mounts.iter().position(|(m, _)| m == Path::new(p)).unwrap();
    assert_eq!(mounts[0].0, Path::new("/proc"));
    assert!(matches!(&mounts[0].1, Call::Mount { fstype: Some(f), .. } if f == "proc"));
    assert!(at("/etc/hosts") < at("/d") && at("/d") < at("/run/x"));
    for mask in ["/proc/acpi", "/proc/kcore", "/proc/sys"] {
        assert!(at("/run/x") < at(mask), "{mask} after the user mounts");
    }
    // each read-only bind is followed at once by its remount, on the same path; /sys
    // (a recursive bind) by one recursive read-only mount_setattr
    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    assert!(matches!(&mounts[at("/sys") + 1].1, Call::ReadOnlyTree(_)));
    for p in ["/d", "/proc/sys"] {
        let i = at(p);
        let Call::Mount { flags, .. } = &mounts[i].1 else {
            unreachable!()
        };
        assert!(flags.contains(MsFlags::MS_BIND) && !flags.contains(MsFlags::MS_REMOUNT));
        let (next, call) = &mounts[i + 1];
        assert_eq!(next, Path::new(p));
        assert!(
            matches!(call, Call::Mount { flags, .. } if flags.contains(remount)),
            "{call:?}"
        );
    }
}

#[test]
fn fake_without_mount_setattr_sys_is_remounted_read_only() {
    let (_t, root, s) = fake_root();
    let sys = FakeSys::failing(|c| matches!(c, Call::ReadOnlyTree(_)), Errno::ENOSYS);
    fake_apply(&sys, &root, &s).unwrap();
    let mounts = fake_mounts(&sys.calls(), &root);
    let i = mounts
        .iter()
        .position(|(m, _)| m == Path::new("/sys"))
        .unwrap();
    assert!(matches!(&mounts[i + 1].1, Call::ReadOnlyTree(_)));
    let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    assert_eq!(mounts[i + 2].0, Path::new("/sys"));
    assert!(
        matches!(&mounts[i + 2].1, Call::Mount { flags, .. } if flags.contains(remount)),
        "{:?}",
        mounts[i + 2]
    );
}

#[test]
fn fake_a_failing_mount_stops_the_plan_naming_the_container_path() {
    let (_t, root, s) = fake_root();
    let sys = FakeSys::failing(
        |c| matches!(c, Call::Mount { data: Some(d), .. } if d == "size=1m"),
        Errno::EPERM,
    );
    let err = fake_apply(&sys, &root, &s).unwrap_err();
    assert!(
        matches!(&err, MountError::Mount { dst, errno: Errno::EPERM, .. } if dst == Path::new("/run/x")),
        "{err:?}"
    );
    assert!(err.to_string().contains("`/run/x`"), "{err}");
    let calls = sys.calls();
    let last = fake_mounts(&calls, &root).pop().unwrap();
    assert_eq!(last.0, Path::new("/run/x"), "nothing after the failure");
}

#[test]
fn mountinfo_unescape() {
    assert_eq!(unescape("/a\\040b"), "/a b");
    assert_eq!(unescape("/plain"), "/plain");
}
