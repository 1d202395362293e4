//! docker-archive and oci-archive: our own round trips, and interop with skopeo and
//! podman (real tools; a loud SKIP when one is missing).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use imago_oci::archive::{
    read_archive, write_archive, ArchiveFormat, BlobSink, DirBlobs, LoadOptions, SaveImage,
};
use imago_oci::{Compression, Compressor, Digest, Level, Reference};

/// A one-layer image (gzip layer with a file and a dir) in `blobs`; returns the manifest
/// digest and the config digest.
fn make_image(blobs: &mut DirBlobs, content: &[u8]) -> (Digest, Digest) {
    let mut b = common::TarBuilder::new();
    b.add(common::E {
        path: "etc/",
        kind: tar::EntryType::Directory,
        mode: 0o755,
        ..Default::default()
    })
    .add(common::E {
        path: "etc/hello",
        data: content,
        ..Default::default()
    });
    let tar = b.finish();
    let diff_id = Digest::of(&tar);
    let mut c = Compressor::new(Vec::new(), Compression::Gzip, Level::Fast).unwrap();
    c.write_all(&tar).unwrap();
    let gz = c.finish().unwrap();
    let (layer, layer_size) = blobs.put_blob(&mut &gz[..], None).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let (cd, cs) = blobs.put_blob(&mut &config[..], None).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.to_string(), "size": layer_size}],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let (md, _) = blobs.put_blob(&mut &manifest[..], None).unwrap();
    (md, cd)
}

fn blobs_in(dir: &Path) -> DirBlobs {
    DirBlobs {
        dir: dir.to_path_buf(),
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn oci_archive_round_trip_keeps_digests_and_names() {
    let tmp = common::tempdir();
    let mut src = blobs_in(&tmp.path().join("src"));
    let (md, _) = make_image(&mut src, b"hi");
    let names = vec![
        Reference::parse("busybox").unwrap(),
        Reference::parse("localhost:5000/x:1").unwrap(),
    ];
    let mut out = Vec::new();
    let stats = write_archive(
        &mut out,
        ArchiveFormat::OciArchive,
        &src,
        &[SaveImage {
            manifest: md.clone(),
            names,
        }],
    )
    .unwrap();
    assert_eq!((stats.images, stats.blobs), (1, 3));
    // Deterministic.
    let mut again = Vec::new();
    let names = vec![
        Reference::parse("busybox").unwrap(),
        Reference::parse("localhost:5000/x:1").unwrap(),
    ];
    write_archive(
        &mut again,
        ArchiveFormat::OciArchive,
        &src,
        &[SaveImage {
            manifest: md.clone(),
            names,
        }],
    )
    .unwrap();
    assert_eq!(out, again);
    let mut dst = blobs_in(&tmp.path().join("dst"));
    let loaded = read_archive(&out[..], &mut dst, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].digest, md);
    assert_eq!(loaded[0].format, ArchiveFormat::OciArchive);
    assert_eq!(
        loaded[0].names,
        ["docker.io/library/busybox:latest", "localhost:5000/x:1"]
    );
}

#[test]
fn docker_archive_round_trip_keeps_the_image_id() {
    let tmp = common::tempdir();
    let mut src = blobs_in(&tmp.path().join("src"));
    let (md, config) = make_image(&mut src, b"hello docker");
    let mut out = Vec::new();
    let names = vec![Reference::parse("busybox:1").unwrap()];
    write_archive(
        &mut out,
        ArchiveFormat::DockerArchive,
        &src,
        &[SaveImage {
            manifest: md,
            names,
        }],
    )
    .unwrap();
    let listing: Vec<String> = common::entries(&out).into_iter().map(|e| e.path).collect();
    assert!(listing.contains(&"manifest.json".to_owned()), "{listing:?}");
    let mut dst = blobs_in(&tmp.path().join("dst"));
    let loaded = read_archive(&out[..], &mut dst, &LoadOptions::default()).unwrap();
    assert_eq!(loaded[0].names, ["docker.io/library/busybox:1"]);
    // The synthesised manifest points at the same config (same image id) and a gzip layer.
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("dst/sha256").join(loaded[0].digest.hex())).unwrap(),
    )
    .unwrap();
    assert_eq!(m["config"]["digest"], config.to_string());
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // Without recompression the layer is the uncompressed tar, digest = diff id.
    let mut raw = blobs_in(&tmp.path().join("raw"));
    let loaded = read_archive(
        &out[..],
        &mut raw,
        &LoadOptions {
            compress_layers: None,
            ..Default::default()
        },
    )
    .unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("raw/sha256").join(loaded[0].digest.hex())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
}

#[test]
fn refuses_broken_archives_with_named_errors() {
    let tmp = common::tempdir();
    let mut src = blobs_in(&tmp.path().join("src"));
    let (md, _) = make_image(&mut src, b"x");
    let mut good = Vec::new();
    write_archive(
        &mut good,
        ArchiveFormat::OciArchive,
        &src,
        &[SaveImage {
            manifest: md,
            names: vec![],
        }],
    )
    .unwrap();
    // Drop one blob: the index's manifest needs it.
    let mut b = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(&good[..]);
    let mut dropped = String::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if p.starts_with("blobs/sha256/") && dropped.is_empty() && e.size() > 200 {
            dropped = p;
            continue;
        }
        let h = e.header().clone();
        b.append(&h, &mut e).unwrap();
    }
    let broken = b.into_inner().unwrap();
    let err = read_archive(
        &broken[..],
        &mut blobs_in(&tmp.path().join("d1")),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        common::chain(&err).contains("lacks"),
        "{}",
        common::chain(&err)
    );
    // Not an archive at all.
    let mut plain = common::TarBuilder::new();
    plain.add(common::E {
        path: "x",
        data: b"x",
        ..Default::default()
    });
    let err = read_archive(
        &plain.finish()[..],
        &mut blobs_in(&tmp.path().join("d2")),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not an image archive"), "{err}");
    // A blob whose content does not match its name.
    let mut bad = common::TarBuilder::new();
    let name = format!("blobs/sha256/{}", Digest::of(b"a").hex());
    bad.add(common::E {
        path: &name,
        data: b"b",
        ..Default::default()
    });
    let err = read_archive(
        &bad.finish()[..],
        &mut blobs_in(&tmp.path().join("d3")),
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        common::chain(&err).contains("content hashes to"),
        "{}",
        common::chain(&err)
    );
}

/// An OCI layout made by umoci, copied by skopeo into both archive formats; we read
/// both, and skopeo/podman read what we write.
#[test]
fn interop_with_skopeo_umoci_and_podman() {
    for t in ["umoci", "skopeo"] {
        if !have(t) {
            eprintln!("SKIP: {t} is not installed (apt-get install {t}); interop not checked");
            return;
        }
    }
    let tmp = common::tempdir();
    let w = tmp.path();
    std::fs::create_dir_all(w.join("rootfs/etc")).unwrap();
    std::fs::write(w.join("rootfs/etc/hello"), b"from umoci").unwrap();
    let mut tb = Vec::new();
    // Owned by 0:0 whoever runs the test.
    let opts = imago_oci::layer::PackOptions {
        owner: imago_oci::layer::OwnerMode::Xattr,
        default_owner: Some((0, 0)),
        ..Default::default()
    };
    imago_oci::layer::pack(&w.join("rootfs"), &mut tb, &opts).unwrap();
    std::fs::write(w.join("base.tar"), &tb).unwrap();
    let layout = w.join("L");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:latest", layout.display())));
    run(Command::new("umoci")
        .args(["raw", "add-layer", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(w.join("base.tar")));
    run(Command::new("umoci")
        .args(["config", "--config.cmd", "sh", "--image"])
        .arg(format!("{}:latest", layout.display())));
    let l = layout.display().to_string();
    let da = w.join("skopeo-docker.tar");
    let oa = w.join("skopeo-oci.tar");
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &format!("oci:{l}:latest"),
        &format!("docker-archive:{}:busybox:latest", da.display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        &format!("oci:{l}:latest"),
        &format!("oci-archive:{}:busybox:latest", oa.display()),
    ]));

    // We read both.
    let mut store = blobs_in(&w.join("store"));
    let from_docker = read_archive(
        std::fs::File::open(&da).unwrap(),
        &mut store,
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(from_docker[0].names, ["docker.io/library/busybox:latest"]);
    let from_oci = read_archive(
        std::fs::File::open(&oa).unwrap(),
        &mut store,
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(from_oci[0].names, ["busybox:latest"]);
    let umoci_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        umoci_index["manifests"][0]["digest"],
        from_oci[0].digest.to_string(),
        "oci-archive keeps the manifest digest"
    );

    // skopeo reads what we write, in both formats (from the docker-archive-loaded image).
    let img = SaveImage {
        manifest: from_docker[0].digest.clone(),
        names: vec![Reference::parse("imago/test:1").unwrap()],
    };
    for (fmt, transport) in [
        (ArchiveFormat::DockerArchive, "docker-archive"),
        (ArchiveFormat::OciArchive, "oci-archive"),
    ] {
        let ours = w.join(format!("ours-{transport}.tar"));
        let f = std::fs::File::create(&ours).unwrap();
        write_archive(
            std::io::BufWriter::new(f),
            fmt,
            &store,
            std::slice::from_ref(&img),
        )
        .unwrap();
        let dest = w.join(format!("back-{transport}"));
        run(Command::new("skopeo").args([
            "copy",
            "-q",
            &format!("{transport}:{}", ours.display()),
            &format!("oci:{}:x", dest.display()),
        ]));
        let idx = std::fs::read_to_string(dest.join("index.json")).unwrap();
        assert!(idx.contains("\"x\""), "{idx}");
    }
    // podman load accepts our docker-archive (isolated storage, vfs driver: no mounts).
    if !have("podman") {
        eprintln!("SKIP: podman is not installed; podman load not checked");
        return;
    }
    if !common::is_root() {
        // Rootless podman leaves a pause process behind; the store's binary-level tests
        // cover podman as the unprivileged users.
        eprintln!("SKIP: podman load/save checked only as root here");
        return;
    }
    let ours = w.join("ours-docker-archive.tar");
    let root = w.join("podman-root");
    let runroot = w.join("podman-run");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .args(args);
        c
    };
    let out = run(&mut podman(&["load", "-i", &ours.display().to_string()]));
    assert!(out.contains("imago/test:1"), "podman load said: {out}");
    let images = run(&mut podman(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]));
    assert!(images.contains("docker.io/imago/test:1"), "{images}");
    // And our oci-archive.
    let ours = w.join("ours-oci-archive.tar");
    run(&mut podman(&["rmi", "-a", "-f"]));
    let out = run(&mut podman(&["load", "-i", &ours.display().to_string()]));
    let images = run(&mut podman(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]));
    assert!(
        images.contains("docker.io/imago/test:1"),
        "podman load said: {out}; images: {images}"
    );
    // We read what `podman save` writes, in both formats, and get the same image back.
    for (fmt, file) in [
        ("docker-archive", "podman-docker.tar"),
        ("oci-archive", "podman-oci.tar"),
    ] {
        let f = w.join(file);
        let fs = f.display().to_string();
        run(&mut podman(&[
            "save",
            "--format",
            fmt,
            "-o",
            &fs,
            "docker.io/imago/test:1",
        ]));
        let mut again = blobs_in(&w.join(format!("store-{fmt}")));
        let loaded = read_archive(
            std::fs::File::open(&f).unwrap(),
            &mut again,
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(loaded.len(), 1, "{fmt}");
        assert!(
            loaded[0].names.iter().any(|n| n.contains("imago/test:1")),
            "{fmt}: {:?}",
            loaded[0].names
        );
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                w.join(format!("store-{fmt}/sha256"))
                    .join(loaded[0].digest.hex()),
            )
            .unwrap(),
        )
        .unwrap();
        let orig: serde_json::Value = serde_json::from_slice(
            &std::fs::read(w.join("store/sha256").join(img.manifest.hex())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            m["config"]["digest"], orig["config"]["digest"],
            "{fmt}: the image id changed"
        );
    }
}

#[test]
fn multi_platform_indexes_round_trip_and_may_be_partial() {
    let tmp = common::tempdir();
    let mut src = blobs_in(&tmp.path().join("src"));
    let (m1, _) = make_image(&mut src, b"amd64");
    let (m2, _) = make_image(&mut src, b"arm64");
    let size = |d: &Digest| {
        std::fs::metadata(tmp.path().join("src/sha256").join(d.hex()))
            .unwrap()
            .len()
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m1.to_string(), "size": size(&m1),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m2.to_string(), "size": size(&m2),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let index = serde_json::to_vec(&index).unwrap();
    let (idx, _) = src.put_blob(&mut &index[..], None).unwrap();
    let mut out = Vec::new();
    let img = SaveImage {
        manifest: idx.clone(),
        names: vec![Reference::parse("multi:1").unwrap()],
    };
    let stats = write_archive(
        &mut out,
        ArchiveFormat::OciArchive,
        &src,
        std::slice::from_ref(&img),
    )
    .unwrap();
    assert_eq!(stats.blobs, 7, "index + 2 × (manifest, config, layer)");
    let loaded = read_archive(
        &out[..],
        &mut blobs_in(&tmp.path().join("d1")),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(loaded[0].digest, idx);
    assert_eq!(
        loaded[0].media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    // docker-archive holds one platform: refused with a clear message.
    let err = write_archive(Vec::new(), ArchiveFormat::DockerArchive, &src, &[img]).unwrap_err();
    assert!(err.to_string().contains("multi-platform"), "{err}");
    // Drop the second platform's manifest: the first one is complete, so it loads.
    let mut b = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(&out[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().ends_with(m2.hex()) {
            continue;
        }
        let h = e.header().clone();
        b.append(&h, &mut e).unwrap();
    }
    let partial = b.into_inner().unwrap();
    let loaded = read_archive(
        &partial[..],
        &mut blobs_in(&tmp.path().join("d2")),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(loaded[0].digest, idx);
}

/// Old `docker save` layout: `<id>/layer.tar` (here a symlink, as skopeo writes for
/// duplicates), `<id>/json`, `<id>/VERSION`, `repositories`.
#[test]
fn reads_the_legacy_docker_save_layout() {
    let tmp = common::tempdir();
    let mut layer = common::TarBuilder::new();
    layer.add(common::E {
        path: "hello",
        data: b"legacy",
        ..Default::default()
    });
    let layer = layer.finish();
    let diff = Digest::of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]},
    }))
    .unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["old:1"], "Layers": ["abc/layer.tar"]}
    ]))
    .unwrap();
    let data_name = format!("{}.tar", diff.hex());
    let mut b = common::TarBuilder::new();
    b.add(common::E {
        path: &data_name,
        data: &layer,
        ..Default::default()
    })
    .add(common::E {
        path: "abc/",
        kind: tar::EntryType::Directory,
        mode: 0o755,
        ..Default::default()
    })
    .add(common::E {
        path: "abc/VERSION",
        data: b"1.0",
        ..Default::default()
    })
    .add(common::E {
        path: "abc/json",
        data: b"{}",
        ..Default::default()
    })
    .add(common::E {
        path: "abc/layer.tar",
        kind: tar::EntryType::Symlink,
        link: &format!("../{data_name}"),
        ..Default::default()
    })
    .add(common::E {
        path: &config_name,
        data: &config,
        ..Default::default()
    })
    .add(common::E {
        path: "repositories",
        data: b"{}",
        ..Default::default()
    })
    .add(common::E {
        path: "manifest.json",
        data: &manifest,
        ..Default::default()
    });
    let loaded = read_archive(
        &b.finish()[..],
        &mut blobs_in(tmp.path()),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(loaded[0].names, ["old:1"]);
    // Only the config, the (recompressed) layer and the new manifest were stored.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("sha256"))
            .unwrap()
            .count(),
        3
    );
}
