//! The hostile-tar corpus against `unpack`: every case refused with its expected error,
//! and nothing written outside the destination (a sentinel parent dir is snapshotted
//! before and after; a few absolute paths the cases aim at are checked too).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use imago_oci::layer::hostile::{corpus, corpus_options};
use imago_oci::layer::{unpack, OwnerMode, Resolver};

const AIMED_AT: &[&str] = &[
    "/evil",
    "/evil-abs",
    "/evil-dir",
    "/tmp/evil",
    "/etc/evil",
    "/evil-null",
    "/evil-sda",
];

#[test]
fn corpus_has_20_plus_distinct_cases() {
    let c = corpus();
    assert!(c.len() >= 20, "only {} cases", c.len());
    let mut names: Vec<_> = c.iter().map(|h| h.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), c.len(), "duplicate case names");
}

#[test]
fn every_hostile_tar_is_refused_without_writing_outside() {
    if !common::is_root() {
        eprintln!("SKIP: the corpus run needs root for OwnerMode::Real (CI runs as root); Xattr mode runs below");
    }
    // Paths the cases aim at: what exists now must be unchanged, what does not must
    // not appear.
    let exists = |a: &str| std::fs::symlink_metadata(a).is_ok();
    let aimed_before: Vec<bool> = AIMED_AT.iter().map(|a| exists(a)).collect();
    let owners: &[OwnerMode] = if common::is_root() {
        &[OwnerMode::Real, OwnerMode::Xattr]
    } else {
        &[OwnerMode::Xattr]
    };
    for case in corpus() {
        for resolver in [Resolver::Auto, Resolver::Walk] {
            for owner in owners {
                let sentinel = common::tempdir();
                let dest = sentinel.path().join("layer");
                std::fs::create_dir(&dest).unwrap();
                std::fs::write(sentinel.path().join("outside"), b"keep").unwrap();
                std::fs::create_dir(sentinel.path().join("etc")).unwrap();
                std::fs::write(sentinel.path().join("etc/passwd"), b"root:x:0:0").unwrap();
                let before = common::snapshot(sentinel.path(), &dest);
                let opts = imago_oci::layer::UnpackOptions {
                    resolver,
                    owner: *owner,
                    ..corpus_options()
                };
                let res = unpack(&case.tar[..], &dest, &opts);
                let after = common::snapshot(sentinel.path(), &dest);
                let what = format!("case `{}` ({resolver:?}, {owner:?})", case.name);
                let err = match res {
                    Ok(stats) => panic!("{what}: accepted ({stats:?})"),
                    Err(e) => common::chain(&e),
                };
                assert!(
                    err.contains(case.expect),
                    "{what}: error `{err}` lacks `{}`",
                    case.expect
                );
                assert_eq!(
                    before, after,
                    "{what}: something changed outside the layer dir"
                );
                for (a, was) in AIMED_AT.iter().zip(&aimed_before) {
                    assert!(*was || !exists(a), "{what}: created {a}");
                }
            }
        }
    }
}

#[test]
fn size_cap_cases_pass_under_a_large_enough_cap() {
    // The cap is the only thing stopping them: with no cap the sparse bomb unpacks
    // sparsely (10 GiB apparent, a few KiB on disk).
    let case = corpus()
        .into_iter()
        .find(|c| c.name == "sparse-10GiB-bomb")
        .unwrap();
    let dir = common::tempdir();
    let opts = imago_oci::layer::UnpackOptions {
        max_bytes: None,
        owner: OwnerMode::Xattr,
        ..Default::default()
    };
    let stats = unpack(&case.tar[..], dir.path(), &opts).unwrap();
    assert_eq!(stats.bytes, 10 << 30);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir.path().join("bomb")).unwrap();
    assert_eq!(m.len(), 10 << 30);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "not sparse: {} blocks",
        m.blocks()
    );
}
