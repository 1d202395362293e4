//! The node-local dir rules, through their pure parts and real temp dirs.

use super::*;

fn p(s: &str) -> Option<PathBuf> {
    Some(PathBuf::from(s))
}

#[test]
fn statfs_magic_numbers_classify() {
    assert_eq!(shared_fs(0x6969), Some("NFS"));
    assert_eq!(shared_fs(0x0BD00BD0), Some("Lustre"));
    assert_eq!(shared_fs(0x47504653), Some("GPFS"));
    assert_eq!(shared_fs(0x19830326), Some("BeeGFS"));
    assert_eq!(shared_fs(0xFF534D42), Some("CIFS"));
    assert_eq!(shared_fs(0xFE534D42), Some("SMB"));
    assert_eq!(shared_fs(0x00C36400), Some("CephFS"));
    assert_eq!(shared_fs(0x01021997), Some("9p"));
    assert_eq!(shared_fs(0x65735546), Some("FUSE"));
    // ext4, xfs, btrfs, tmpfs, overlayfs: local
    for m in [0xEF53, 0x58465342, 0x9123683E, 0x01021994, 0x794C7630] {
        assert_eq!(shared_fs(m), None, "{m:#x}");
    }
    // a negative C long (32-bit f_type of CIFS) compares by its 32 bits
    assert_eq!(shared_fs(0xFF534D42_u32 as i32 as i64 as u32), Some("CIFS"));
}

#[test]
fn this_machines_temp_dir_is_local_and_a_missing_path_uses_its_parent() {
    let t = tempfile::tempdir().unwrap();
    let m = fs_magic(t.path()).unwrap();
    assert_eq!(fs_magic(&t.path().join("not/yet/made")).unwrap(), m);
}

#[test]
fn config_key() {
    let t = "# imago\nstorage_driver = \"overlay\"\nlocal_dir = \"/scratch/me\" # fast\n[x]\nlocal_dir = \"/no\"\n";
    assert_eq!(config_value(t, "local_dir").as_deref(), Some("/scratch/me"));
    assert_eq!(
        config_value("local_dir = /a/b # c", "local_dir").as_deref(),
        Some("/a/b")
    );
    assert_eq!(config_value("[t]\nlocal_dir = \"/x\"", "local_dir"), None);
    assert_eq!(config_value("local_dir = \"\"", "local_dir"), None);
    assert_eq!(config_value("local_dirs = \"/x\"", "local_dir"), None);
}

#[test]
fn dir_precedence() {
    let all = Candidates {
        env: p("/e"),
        config: p("/c"),
        xdg_runtime_dir: p("/run/user/7"),
        tmpdir: p("/scratch/tmp"),
        uid: 7,
    };
    assert_eq!(choose(&all), (PathBuf::from("/e"), Source::Env));
    let c = Candidates { env: None, ..all };
    assert_eq!(choose(&c), (PathBuf::from("/c"), Source::Config));
    let c = Candidates { config: None, ..c };
    assert_eq!(
        choose(&c),
        (PathBuf::from("/run/user/7/imago"), Source::XdgRuntime)
    );
    let c = Candidates {
        xdg_runtime_dir: None,
        ..c
    };
    assert_eq!(
        choose(&c),
        (PathBuf::from("/scratch/tmp/imago-7"), Source::TmpDir)
    );
    let c = Candidates { tmpdir: None, ..c };
    assert_eq!(
        choose(&c),
        (PathBuf::from("/var/tmp/imago-7"), Source::VarTmp)
    );
    assert!(Source::Env.forces() && Source::Config.forces());
    assert!(!Source::XdgRuntime.forces() && !Source::VarTmp.forces());
}

#[test]
fn only_a_private_dir_of_ours_is_accepted() {
    let ok = DirFacts {
        is_dir: true,
        is_symlink: false,
        uid: 1000,
        mode: 0o40700,
    };
    assert_eq!(check_private(&ok, 1000), Ok(()));
    assert_eq!(
        check_private(
            &DirFacts {
                mode: 0o40755,
                ..ok
            },
            1000
        ),
        Ok(())
    );
    assert_eq!(check_private(&ok, 1001), Err(Refusal::Owner(1000)));
    assert_eq!(
        check_private(
            &DirFacts {
                mode: 0o40777,
                ..ok
            },
            1000
        ),
        Err(Refusal::Writable(0o777))
    );
    assert_eq!(
        check_private(
            &DirFacts {
                mode: 0o41777,
                ..ok
            },
            1000
        ),
        Err(Refusal::Writable(0o1777))
    );
    assert_eq!(
        check_private(
            &DirFacts {
                mode: 0o40770,
                ..ok
            },
            1000
        ),
        Err(Refusal::Writable(0o770))
    );
    let link = DirFacts {
        is_symlink: true,
        is_dir: false,
        ..ok
    };
    assert_eq!(check_private(&link, 1000), Err(Refusal::Symlink));
    let file = DirFacts {
        is_dir: false,
        ..ok
    };
    assert_eq!(check_private(&file, 1000), Err(Refusal::NotADir));
}

#[test]
fn make_creates_0700_and_refuses_a_world_writable_one() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let uid = rustix::process::geteuid().as_raw();
    let c = Candidates {
        tmpdir: Some(t.path().to_path_buf()),
        uid,
        ..Default::default()
    };
    let d = make(&c).unwrap();
    assert_eq!(d.path, t.path().join(format!("imago-{uid}")));
    assert_eq!(d.source, Source::TmpDir);
    let mode = std::fs::metadata(&d.path).unwrap().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    make(&c).unwrap(); // again: it exists, still ours
    std::fs::set_permissions(&d.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = make(&c).unwrap_err();
    assert!(
        matches!(
            e,
            LocalError::Refused {
                why: Refusal::Writable(0o777),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("others may write to it"), "{e}");
    // a link where the default name should be is refused, a named one is followed
    std::fs::remove_dir(&d.path).unwrap();
    let real = t.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &d.path).unwrap();
    assert!(matches!(
        make(&c),
        Err(LocalError::Refused {
            why: Refusal::Symlink,
            ..
        })
    ));
    let named = Candidates {
        env: Some(d.path.clone()),
        ..c.clone()
    };
    assert_eq!(make(&named).unwrap().source, Source::Env);
    let deep = Candidates {
        env: Some(t.path().join("a/b/c")),
        ..c
    };
    assert!(make(&deep).unwrap().path.is_dir());
}
