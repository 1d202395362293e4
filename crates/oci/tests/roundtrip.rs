//! unpack + pack round trips (header fields + data identical), whiteouts both ways,
//! flatten of a layer stack, and the on-disk ownership of both owner modes.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::{entries, TarBuilder, E};
use imago_oci::layer::{
    flatten, pack, unpack, OwnerMode, PackOptions, UnpackOptions, OVERRIDE_STAT_XATTR,
};
use tar::EntryType as T;

/// Files owned by 0, 33 and 65534, a hardlink, a symlink, an xattr, a setuid file, a
/// sticky dir, a fifo, a long name (PAX path), sorted as pack sorts.
fn fixture() -> Vec<u8> {
    let long = format!("deep/{}/{}", "d".repeat(120), "f".repeat(110));
    let mut b = TarBuilder::new();
    b.add(E {
        path: "bin/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "bin/app",
        mode: 0o4755,
        data: b"#!app",
        ..E::default()
    })
    .add(E {
        path: "deep/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: &format!("deep/{}/", "d".repeat(120)),
        kind: T::Directory,
        mode: 0o700,
        mtime: 1_600_000_000,
        ..E::default()
    })
    .add(E {
        path: &long,
        mode: 0o600,
        data: b"long",
        ..E::default()
    })
    .add(E {
        path: "fifo",
        kind: T::Fifo,
        mode: 0o640,
        ..E::default()
    })
    .add(E {
        path: "link-to-app",
        kind: T::Link,
        mode: 0o4755,
        link: "bin/app",
        ..E::default()
    })
    .add(E {
        path: "nobody/",
        kind: T::Directory,
        mode: 0o700,
        uid: 65534,
        gid: 65534,
        ..E::default()
    })
    .add(E {
        path: "nobody/file",
        mode: 0o600,
        uid: 65534,
        gid: 65534,
        data: b"nobody's",
        ..E::default()
    })
    .add(E {
        path: "srv/",
        kind: T::Directory,
        mode: 0o2750,
        uid: 33,
        gid: 33,
        mtime: 1_500_000_000,
        ..E::default()
    })
    .add(E {
        path: "srv/www",
        mode: 0o640,
        uid: 33,
        gid: 33,
        data: b"<html>",
        xattrs: &[("user.test", b"hello")],
        ..E::default()
    })
    .add(E {
        path: "sym",
        kind: T::Symlink,
        mode: 0o777,
        link: "bin/app",
        ..E::default()
    })
    .add(E {
        path: "tmp/",
        kind: T::Directory,
        mode: 0o1777,
        ..E::default()
    });
    b.finish()
}

fn round_trip(owner: OwnerMode) {
    let dir = common::tempdir();
    if !common::user_xattrs(dir.path()) {
        eprintln!(
            "SKIP: {} takes no user.* xattrs (point IMAGO_TEST_TMP at ext4, or tmpfs on Linux >= 6.6)",
            dir.path().display()
        );
        return;
    }
    let input = fixture();
    let stats = unpack(
        &input[..],
        dir.path(),
        &UnpackOptions {
            owner,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (stats.files, stats.hardlinks, stats.symlinks, stats.fifos),
        (4, 1, 1, 1)
    );
    let mut out = Vec::new();
    let ps = pack(
        dir.path(),
        &mut out,
        &PackOptions {
            owner,
            default_owner: Some((0, 0)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ps.tar_bytes, out.len() as u64);
    let (want, got) = (entries(&input), entries(&out));
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g, "{owner:?}");
    }
    assert_eq!(want.len(), got.len(), "{owner:?}");
    // Deterministic: a second pack is byte-identical.
    let mut again = Vec::new();
    pack(
        dir.path(),
        &mut again,
        &PackOptions {
            owner,
            default_owner: Some((0, 0)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(out, again);
}

#[test]
fn round_trip_real_owners() {
    if !common::is_root() {
        eprintln!("SKIP: OwnerMode::Real needs root (CI runs as root)");
        return;
    }
    round_trip(OwnerMode::Real);
    // On disk: real owners and modes.
    let dir = common::tempdir();
    unpack(&fixture()[..], dir.path(), &UnpackOptions::default()).unwrap();
    let m = |p: &str| std::fs::symlink_metadata(dir.path().join(p)).unwrap();
    assert_eq!((m("srv/www").uid(), m("srv/www").gid()), (33, 33));
    assert_eq!(m("nobody/file").uid(), 65534);
    assert_eq!(m("bin/app").mode() & 0o7777, 0o4755);
    assert_eq!(m("srv").mode() & 0o7777, 0o2750);
    assert_eq!(m("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(m("srv").mtime(), 1_500_000_000);
    assert_eq!(m("bin/app").ino(), m("link-to-app").ino());
    assert!(m("fifo").file_type().is_fifo());
}

#[test]
fn round_trip_xattr_owners() {
    round_trip(OwnerMode::Xattr);
    let dir = common::tempdir();
    if !common::user_xattrs(dir.path()) {
        return; // said above
    }
    unpack(
        &fixture()[..],
        dir.path(),
        &UnpackOptions {
            owner: OwnerMode::Xattr,
            ..Default::default()
        },
    )
    .unwrap();
    let m = |p: &str| std::fs::symlink_metadata(dir.path().join(p)).unwrap();
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(m("srv/www").uid(), me, "Xattr mode must not chown");
    // No setuid/setgid on disk; the real mode is in the record.
    assert_eq!(m("bin/app").mode() & 0o7777, 0o755);
    assert_eq!(m("srv").mode() & 0o7777, 0o750);
    let rec = read_xattr(&dir.path().join("srv/www"), OVERRIDE_STAT_XATTR);
    assert_eq!(rec, "33:33:0640:file");
    assert_eq!(
        read_xattr(&dir.path().join("bin/app"), OVERRIDE_STAT_XATTR),
        "0:0:04755:file"
    );
    assert_eq!(
        read_xattr(&dir.path().join("srv"), OVERRIDE_STAT_XATTR),
        "33:33:02750:dir"
    );
}

fn read_xattr(p: &std::path::Path, k: &str) -> String {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, k, &mut buf[..]).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn whiteout_layer() -> Vec<u8> {
    let mut b = TarBuilder::new();
    b.add(E {
        path: "a/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "a/.wh.gone",
        ..E::default()
    })
    .add(E {
        path: "c/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "c/.wh..wh..opq",
        ..E::default()
    })
    .add(E {
        path: "c/new",
        data: b"new",
        ..E::default()
    })
    .add(E {
        path: "d",
        data: b"d",
        ..E::default()
    });
    b.finish()
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_back() {
    if !common::is_root() {
        eprintln!("SKIP: mknod of a whiteout needs root or a user namespace (CI runs as root)");
        return;
    }
    let dir = common::tempdir();
    let s = unpack(&whiteout_layer()[..], dir.path(), &UnpackOptions::default()).unwrap();
    assert_eq!((s.whiteouts, s.opaque_dirs), (1, 1));
    let wh = std::fs::symlink_metadata(dir.path().join("a/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        read_xattr(&dir.path().join("c"), "user.overlay.opaque"),
        "y"
    );
    let mut out = Vec::new();
    let ps = pack(dir.path(), &mut out, &PackOptions::default()).unwrap();
    assert_eq!((ps.whiteouts, ps.opaque_dirs), (1, 1));
    let names: Vec<_> = entries(&out).into_iter().map(|e| e.path).collect();
    assert_eq!(
        names,
        ["a/", "a/.wh.gone", "c/", "c/.wh..wh..opq", "c/new", "d"]
    );
    // With whiteout entries shaped as pack writes them (moby's convention: `.wh.` 0600,
    // the opaque marker with its dir's mode and mtime), the round trip is exact.
    let mut b = TarBuilder::new();
    b.add(E {
        path: "a/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "a/.wh.gone",
        mode: 0o600,
        mtime: 1_600_000_000,
        ..E::default()
    })
    .add(E {
        path: "c/",
        kind: T::Directory,
        mode: 0o750,
        mtime: 1_500_000_000,
        ..E::default()
    })
    .add(E {
        path: "c/.wh..wh..opq",
        mode: 0o750,
        mtime: 1_500_000_000,
        ..E::default()
    })
    .add(E {
        path: "c/new",
        data: b"new",
        ..E::default()
    });
    let input = b.finish();
    let dir = common::tempdir();
    unpack(&input[..], dir.path(), &UnpackOptions::default()).unwrap();
    let mut out = Vec::new();
    pack(dir.path(), &mut out, &PackOptions::default()).unwrap();
    assert_eq!(entries(&input), entries(&out));
}

#[test]
fn flatten_applies_whiteouts_and_opaque_dirs() {
    if !common::is_root() {
        eprintln!("SKIP: mknod of a whiteout needs root or a user namespace (CI runs as root)");
        return;
    }
    let mut b = TarBuilder::new();
    b.add(E {
        path: "a/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "a/gone",
        data: b"old",
        ..E::default()
    })
    .add(E {
        path: "a/kept",
        data: b"kept",
        ..E::default()
    })
    .add(E {
        path: "c/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "c/hidden",
        data: b"hidden",
        ..E::default()
    })
    .add(E {
        path: "d",
        data: b"lower d",
        ..E::default()
    });
    let lower = b.finish();
    let (l1, l2) = (common::tempdir(), common::tempdir());
    unpack(&lower[..], l1.path(), &UnpackOptions::default()).unwrap();
    unpack(&whiteout_layer()[..], l2.path(), &UnpackOptions::default()).unwrap();
    let mut out = Vec::new();
    flatten(&[l1.path(), l2.path()], &mut out, &PackOptions::default()).unwrap();
    let got: Vec<_> = entries(&out)
        .into_iter()
        .map(|e| (e.path, e.data))
        .collect();
    let want: Vec<(String, Vec<u8>)> = vec![
        ("a/".into(), vec![]),
        ("a/kept".into(), b"kept".to_vec()),
        ("c/".into(), vec![]),
        ("c/new".into(), b"new".to_vec()),
        ("d".into(), b"d".to_vec()),
    ];
    assert_eq!(got, want);
}

/// A layer that lacks a directory hides nothing of it: `etc/` of the bottom layer shows
/// through a middle layer that has no `etc/` at all (what three RUNs touching /etc, /usr
/// and /etc again give).
#[test]
fn flatten_looks_past_a_layer_without_the_directory() {
    let layer = |files: &[(&str, &[u8])]| {
        let mut b = TarBuilder::new();
        for (p, d) in files {
            let dir = &p[..p.find('/').unwrap() + 1];
            b.add(E {
                path: dir,
                kind: T::Directory,
                mode: 0o755,
                ..E::default()
            })
            .add(E {
                path: p,
                data: d,
                ..E::default()
            });
        }
        b.finish()
    };
    let dirs = [common::tempdir(), common::tempdir(), common::tempdir()];
    let tars = [
        layer(&[("etc/passwd", b"root"), ("usr/old", b"o")]),
        layer(&[("usr/y1", b"y")]),
        layer(&[("etc/z1", b"z")]),
    ];
    for (d, t) in dirs.iter().zip(&tars) {
        unpack(&t[..], d.path(), &UnpackOptions::default()).unwrap();
    }
    let mut out = Vec::new();
    let paths: Vec<_> = dirs.iter().map(|d| d.path()).collect();
    flatten(&paths, &mut out, &PackOptions::default()).unwrap();
    let got: Vec<String> = entries(&out).into_iter().map(|e| e.path).collect();
    assert_eq!(
        got,
        ["etc/", "etc/passwd", "etc/z1", "usr/", "usr/old", "usr/y1"],
        "{got:?}"
    );
}

#[test]
fn mtime_clamp_and_unknown_owner_default() {
    let dir = common::tempdir();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    let mut out = Vec::new();
    let opts = PackOptions {
        owner: OwnerMode::Xattr,
        default_owner: Some((0, 0)),
        mtime_clamp: Some(1000),
        ..Default::default()
    };
    pack(dir.path(), &mut out, &opts).unwrap();
    let e = &entries(&out)[0];
    assert_eq!((e.path.as_str(), e.mtime, e.uid, e.gid), ("f", 1000, 0, 0));
}

#[test]
fn skipped_paths_are_left_out_with_what_is_below_them() {
    let dir = common::tempdir();
    let d = dir.path();
    for sub in ["etc", "mnt/vol/deep"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    for f in ["etc/hosts", "etc/keep", "mnt/vol/deep/f", "hosts"] {
        std::fs::write(d.join(f), b"x").unwrap();
    }
    let mut out = Vec::new();
    let opts = PackOptions {
        skip: vec!["etc/hosts".into(), "mnt/vol".into()],
        ..Default::default()
    };
    pack(d, &mut out, &opts).unwrap();
    let got: Vec<String> = entries(&out).into_iter().map(|e| e.path).collect();
    // `hosts` at the top is another path: only exact paths are skipped.
    assert_eq!(got, ["etc/", "etc/keep", "hosts", "mnt/"], "{got:?}");
}

#[test]
fn unpack_refuses_a_non_empty_destination() {
    let dir = common::tempdir();
    std::fs::write(dir.path().join("x"), b"").unwrap();
    let err = unpack(&whiteout_layer()[..], dir.path(), &UnpackOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("must be an existing empty directory"),
        "{err}"
    );
}

#[test]
fn later_entries_replace_earlier_ones_like_docker() {
    let mut b = TarBuilder::new();
    b.add(E {
        path: "x",
        data: b"file",
        ..E::default()
    })
    .add(E {
        path: "x/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "x/y",
        data: b"y",
        ..E::default()
    })
    .add(E {
        path: "z/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "z/w",
        data: b"w",
        ..E::default()
    })
    .add(E {
        path: "z",
        kind: T::Symlink,
        link: "x",
        ..E::default()
    })
    .add(E {
        path: "parentless/a/b",
        data: b"b",
        ..E::default()
    });
    let dir = common::tempdir();
    unpack(
        &b.finish()[..],
        dir.path(),
        &UnpackOptions {
            owner: OwnerMode::Xattr,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(std::fs::read(dir.path().join("x/y")).unwrap(), b"y");
    assert_eq!(
        std::fs::read_link(dir.path().join("z")).unwrap().to_str(),
        Some("x")
    );
    assert_eq!(
        std::fs::read(dir.path().join("parentless/a/b")).unwrap(),
        b"b"
    );
    let m = std::fs::metadata(dir.path().join("parentless/a")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o755);
}

#[test]
fn flatten_applies_whiteout_files_too() {
    // WhiteoutFormat::Files (no mknod needed): `.wh.` files mark deletions.
    let mut b = TarBuilder::new();
    b.add(E {
        path: "a/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "a/gone",
        data: b"old",
        ..E::default()
    })
    .add(E {
        path: "a/kept",
        data: b"kept",
        ..E::default()
    })
    .add(E {
        path: "c/",
        kind: T::Directory,
        mode: 0o755,
        ..E::default()
    })
    .add(E {
        path: "c/hidden",
        data: b"hidden",
        ..E::default()
    });
    let lower = b.finish();
    let files = UnpackOptions {
        owner: OwnerMode::Xattr,
        whiteouts: imago_oci::layer::WhiteoutFormat::Files,
        ..Default::default()
    };
    let (l1, l2) = (common::tempdir(), common::tempdir());
    unpack(&lower[..], l1.path(), &files).unwrap();
    unpack(&whiteout_layer()[..], l2.path(), &files).unwrap();
    assert!(l2.path().join("a/.wh.gone").is_file());
    let mut out = Vec::new();
    let opts = PackOptions {
        owner: OwnerMode::Xattr,
        whiteouts: imago_oci::layer::WhiteoutFormat::Files,
        ..Default::default()
    };
    flatten(&[l1.path(), l2.path()], &mut out, &opts).unwrap();
    let got: Vec<_> = entries(&out).into_iter().map(|e| e.path).collect();
    assert_eq!(got, ["a/", "a/kept", "c/", "c/new", "d"]);
    // pack keeps the marker files as they are.
    let mut diff = Vec::new();
    pack(l2.path(), &mut diff, &opts).unwrap();
    let got: Vec<_> = entries(&diff).into_iter().map(|e| e.path).collect();
    assert_eq!(
        got,
        ["a/", "a/.wh.gone", "c/", "c/.wh..wh..opq", "c/new", "d"]
    );
}

#[test]
fn unpack_accepts_gzip_and_zstd_layers() {
    use std::io::Write;
    let mut b = TarBuilder::new();
    b.add(E {
        path: "f",
        data: b"compressed",
        ..E::default()
    });
    let tar = b.finish();
    for c in [imago_oci::Compression::Gzip, imago_oci::Compression::Zstd] {
        let mut w = imago_oci::Compressor::new(Vec::new(), c, imago_oci::Level::Fast).unwrap();
        w.write_all(&tar).unwrap();
        let blob = w.finish().unwrap();
        let dir = common::tempdir();
        let opts = UnpackOptions {
            owner: OwnerMode::Xattr,
            ..Default::default()
        };
        unpack(&blob[..], dir.path(), &opts).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("f")).unwrap(),
            b"compressed",
            "{c}"
        );
    }
}

#[test]
fn the_walk_resolver_is_really_used_when_forced() {
    let dir = common::tempdir();
    let opts = UnpackOptions {
        owner: OwnerMode::Xattr,
        resolver: imago_oci::layer::Resolver::Walk,
        ..Default::default()
    };
    let mut b = TarBuilder::new();
    b.add(E {
        path: "a/b/c/d",
        data: b"deep",
        ..E::default()
    });
    let stats = unpack(&b.finish()[..], dir.path(), &opts).unwrap();
    assert!(!stats.openat2);
    assert_eq!(std::fs::read(dir.path().join("a/b/c/d")).unwrap(), b"deep");
}

#[test]
fn flatten_of_many_deep_layers_stays_within_the_fd_budget() {
    // 40 layers × 8 levels = 320 directory fds if all were held: the walk closes and
    // reopens levels instead, and the merge is still right.
    let deep = "a/b/c/d/e/f/g/h";
    let tmp = common::tempdir();
    let mut layers = Vec::new();
    for n in 0..40 {
        let l = tmp.path().join(format!("l{n:02}"));
        std::fs::create_dir_all(l.join(deep)).unwrap();
        std::fs::write(l.join(deep).join(format!("f{n:02}")), format!("{n}")).unwrap();
        layers.push(l);
    }
    let mut out = Vec::new();
    let opts = PackOptions {
        owner: OwnerMode::Xattr,
        default_owner: Some((0, 0)),
        ..Default::default()
    };
    let stats = flatten(&layers, &mut out, &opts).unwrap();
    assert_eq!(stats.entries, 8 + 40);
    let files: Vec<_> = entries(&out)
        .into_iter()
        .filter(|e| e.kind == b'0')
        .map(|e| (e.path, e.data))
        .collect();
    assert_eq!(files.len(), 40);
    assert_eq!(files[7], (format!("{deep}/f07"), b"7".to_vec()));
}
