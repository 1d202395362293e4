use std::path::Path;

use super::*;

fn one() -> Vec<IdMapEntry> {
    vec![IdMapEntry {
        inside: 0,
        outside: 1000,
        count: 1,
    }]
}

#[test]
fn a_helper_that_succeeds_is_reaped_without_error() {
    let h = spawn_helper(Path::new("/bin/true"), 42, &one()).unwrap();
    finish_helper(h).unwrap();
}

#[test]
fn a_failing_helper_reports_its_status_and_stderr() {
    // sh -c: the helper's arguments (pid, inside, outside, count) go to $0…
    let dir = std::env::temp_dir().join(format!("imago-helper-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("fails");
    std::fs::write(
        &bin,
        "#!/bin/sh\necho \"map for $1: refused\" >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = finish_helper(spawn_helper(&bin, 42, &one()).unwrap()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("map for 42: refused"), "{text}");
    assert!(text.contains("42 0 1000 1"), "{text}");
    assert!(matches!(err, IdMapError::Helper { status, .. } if status.code() == Some(3)));
    let missing = spawn_helper(&dir.join("none"), 42, &one())
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(missing, IdMapError::Spawn { .. }), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn helpers() -> Option<(PathBuf, PathBuf)> {
    Some((
        PathBuf::from("/usr/bin/newuidmap"),
        PathBuf::from("/usr/bin/newgidmap"),
    ))
}

#[test]
fn subuid_matched_by_name_or_uid_comments_skipped() {
    let text = "# c\n\nalice:100000:65536\nbad line\n1001:300000:1000\n";
    assert_eq!(
        find_range(text, Some("alice"), 1000),
        Some(IdRange {
            start: 100000,
            count: 65536
        })
    );
    assert_eq!(
        find_range(text, Some("bob"), 1001),
        Some(IdRange {
            start: 300000,
            count: 1000
        })
    );
    assert_eq!(find_range(text, Some("carol"), 1002), None);
    assert_eq!(
        find_range("alice:1:0\n", Some("alice"), 5),
        None,
        "empty range ignored"
    );
}

#[test]
fn root_gets_identity_direct() {
    let m = IdMap::plan(&IdMapInput {
        uid: 0,
        gid: 0,
        helpers: helpers(),
        ..Default::default()
    });
    assert_eq!(m.kind, MapKind::Identity);
    assert_eq!(m.writer, IdMapWriter::Direct);
    assert_eq!(render(&m.uid), "0 0 65536\n");
    assert_eq!(m.ownership(), OwnerMode::Real);
    assert!(!m.setgroups_deny);
}

#[test]
fn range_and_helpers_give_subids() {
    let r = Some(IdRange {
        start: 200000,
        count: 100000,
    });
    let m = IdMap::plan(&IdMapInput {
        uid: 1000,
        gid: 1001,
        subuid: r,
        subgid: r,
        helpers: helpers(),
        ..Default::default()
    });
    assert_eq!(m.kind, MapKind::SubIds);
    assert_eq!(render(&m.uid), "0 1000 1\n1 200000 65536\n");
    assert_eq!(render(&m.gid), "0 1001 1\n1 200000 65536\n");
    assert!(matches!(m.writer, IdMapWriter::Helper { .. }));
    assert_eq!(m.host_uid(33), Some(200032));
    assert_eq!(m.host_uid(0), Some(1000));
    assert_eq!(m.host_uid(65537), None);
}

#[test]
fn no_range_or_no_helper_gives_single() {
    let r = Some(IdRange {
        start: 200000,
        count: 65536,
    });
    let no_helper = IdMap::plan(&IdMapInput {
        uid: 1000,
        gid: 1000,
        subuid: r,
        subgid: r,
        ..Default::default()
    });
    assert_eq!(no_helper.kind, MapKind::Single);
    let no_range = IdMap::plan(&IdMapInput {
        uid: 1000,
        gid: 7,
        helpers: helpers(),
        ..Default::default()
    });
    assert_eq!(no_range.kind, MapKind::Single);
    assert_eq!(render(&no_range.gid), "0 7 1\n");
    assert!(no_range.setgroups_deny);
    assert_eq!(no_range.ownership(), OwnerMode::Xattr);
    assert_eq!(no_range.host_uid(1), None);
}

#[test]
fn single_placed_at_the_user_other_kinds_unchanged() {
    let single = IdMap::single(1000, 1001);
    let at = single.at_user(33, 44);
    assert_eq!(render(&at.uid), "33 1000 1\n");
    assert_eq!(render(&at.gid), "44 1001 1\n");
    assert_eq!((at.kind, at.setgroups_deny), (MapKind::Single, true));
    assert_eq!(at.host_uid(33), Some(1000));
    assert_eq!(at.host_uid(0), None, "root is not mapped any more");
    assert_eq!(
        single.at_user(0, 0),
        single,
        "root keeps the mapping as it is"
    );
    let identity = IdMap::plan(&IdMapInput::default());
    assert_eq!(identity.at_user(33, 44), identity);
}

#[test]
fn for_container_needs_no_lookup_for_root_or_number_pairs() {
    // The spec's root does not exist: a lookup would fail, so these did none.
    let mut spec = ContainerSpec::for_tests();
    let single = IdMap::single(1000, 1001);
    assert_eq!(single.for_container(&spec).unwrap(), single);
    spec.process.user = "33:44".into();
    let m = single.for_container(&spec).unwrap();
    assert_eq!((m.uid[0].inside, m.gid[0].inside), (33, 44));
    spec.process.user = "www-data".into();
    let identity = IdMap::plan(&IdMapInput::default());
    assert_eq!(identity.for_container(&spec).unwrap(), identity);
}

#[test]
fn keep_id_maps_the_caller_at_itself() {
    let r = Some(IdRange {
        start: 200000,
        count: 65536,
    });
    let sub = IdMap::plan(&IdMapInput {
        uid: 1001,
        gid: 1002,
        subuid: r,
        subgid: r,
        helpers: helpers(),
        ..Default::default()
    });
    let k = sub.keep_id();
    assert_eq!(
        render(&k.uid),
        "0 201000 1\n1 200000 1000\n1001 1001 1\n1002 201001 64535\n"
    );
    assert_eq!(
        render(&k.gid),
        "0 201001 1\n1 200000 1001\n1002 1002 1\n1003 201002 64534\n"
    );
    assert_eq!(
        (k.host_uid(1001), k.host_uid(33)),
        (Some(1001), Some(200032))
    );
    assert_eq!(k.host_uid(1000), Some(200999));
    assert_eq!(
        k.host_uid(65536),
        Some(265535),
        "the range's end keeps its place"
    );
    assert_eq!(k.kind, MapKind::SubIds);
    // A uid beyond the range: root is left unmapped.
    let small = IdRange {
        start: 300000,
        count: 10,
    };
    let s = IdMap::plan(&IdMapInput {
        uid: 5000,
        gid: 5000,
        subuid: Some(small),
        subgid: Some(small),
        helpers: helpers(),
        ..Default::default()
    })
    .keep_id();
    assert_eq!(render(&s.uid), "1 300000 10\n5000 5000 1\n");
    assert_eq!(s.host_uid(0), None);
    // Single: the one id at the caller's; identity: unchanged.
    let single = IdMap::single(1000, 1001).keep_id();
    assert_eq!(single, IdMap::single(1000, 1001).at_user(1000, 1001));
    let identity = IdMap::plan(&IdMapInput::default());
    assert_eq!(identity.keep_id(), identity);
}

#[test]
fn passwd_lookup() {
    let p = "root:x:0:0::/root:/bin/sh\nimago-sub:x:1001:1001::/home:/bin/sh\n";
    assert_eq!(user_name_for(p, 1001).as_deref(), Some("imago-sub"));
    assert_eq!(user_name_for(p, 5), None);
}
