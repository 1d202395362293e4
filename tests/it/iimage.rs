//! iimage through the real binary, as root and the unprivileged test users: import →
//! ls/itag/save → podman load + run, skopeo reading and writing the store, hostile
//! layers, load killed at random moments, ownership round trips, info.

use std::time::Duration;

use imago_it::{users, Env, User};

use crate::reliability_support::{kill_after, timed, Rng};
use crate::store_support::{entries, fsck_clean, have, import_busybox, ls_names, podman, snapshot};

#[test]
fn import_ls_tag_save_and_interop_with_podman_and_skopeo() {
    let mut ids = vec![];
    for user in users() {
        let env = Env::new(user);
        let id = import_busybox(&env, "busybox");
        // Same input, same id: again in this store, and in a fresh one.
        assert_eq!(import_busybox(&env, "busybox"), id);
        let other = env
            .cmd("iimage")
            .args(["import"])
            .arg(env.busybox_tar())
            .env("IMAGO_ROOT", env.path("store2"))
            .ok();
        assert_eq!(
            other.stdout().trim(),
            id,
            "[{}] id differs in another store",
            user.name()
        );
        ids.push(id.clone());

        let ls = env.cmd("iimage").arg("ls").ok().stdout();
        let header = ls.lines().next().unwrap_or_default();
        for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
            assert!(header.contains(col), "{ls}");
        }
        let short = &id["sha256:".len().."sha256:".len() + 12];
        assert!(
            ls.lines()
                .any(|l| l.starts_with("busybox ") && l.contains("latest") && l.contains(short)),
            "{ls}"
        );
        assert_eq!(
            env.cmd("iimage").args(["ls", "-q"]).ok().stdout().trim(),
            short
        );

        // Three more names.
        let tag = format!(
            "localhost/imago-it-{}-{}:t",
            std::process::id(),
            user.name()
        );
        env.cmd("itag")
            .args(["busybox", "bb2", "bb3:v3", tag.as_str()])
            .ok();
        let names = ls_names(&env);
        let mut got = names[&id].clone();
        got.sort();
        let mut want = vec![
            "bb2".to_owned(),
            "bb3:v3".into(),
            "busybox".into(),
            tag.clone(),
        ];
        want.sort();
        assert_eq!(got, want);

        // skopeo reads the store as an OCI layout, by the short name.
        if have("skopeo") {
            let arch = env.path("skopeo-oci.tar");
            env.cmd_path("skopeo")
                .args(["copy", "--quiet"])
                .arg(format!("oci:{}:busybox", env.root().display()))
                .arg(format!("oci-archive:{}", arch.display()))
                .ok();
            assert!(std::fs::metadata(&arch)
                .map(|m| m.len() > 100_000)
                .unwrap_or(false));
            // And we load what skopeo wrote (oci-archive) into a fresh store: same id.
            let o = env
                .cmd("iimage")
                .args(["load", "-q", "-i"])
                .arg(&arch)
                .env("IMAGO_ROOT", env.path("store3"))
                .ok();
            assert_eq!(o.stdout().trim(), id, "{o}");
        } else {
            imago_it::skip("skopeo not installed: skopeo interop not checked");
        }

        // save → podman load → podman run.
        let saved = env.path("saved.tar");
        env.cmd("iimage")
            .args(["save", "-o"])
            .arg(&saved)
            .arg(&tag)
            .ok();
        // And an image skopeo puts into the store shows up (a docker-archive → a new manifest).
        if have("skopeo") {
            env.cmd_path("skopeo")
                .args(["copy", "--quiet"])
                .arg(format!("docker-archive:{}", saved.display()))
                .arg(format!("oci:{}:x", env.root().display()))
                .ok();
            let names = ls_names(&env);
            assert!(
                names.values().flatten().any(|n| n == "x"),
                "[{}] x not listed: {names:?}",
                user.name()
            );
            let ls = env.cmd("iimage").arg("ls").ok().stdout();
            assert!(
                ls.lines()
                    .any(|l| l.starts_with("x ") && l.contains("latest")),
                "{ls}"
            );
            fsck_clean(&env);
        }
        if !have("podman") {
            imago_it::skip("podman not installed: podman load not checked");
            continue;
        }
        podman(&env).args(["load", "-q", "-i"]).arg(&saved).ok();
        let mut run = podman(&env).args(["run", "--rm", "--network", "none"]);
        if user == User::Root {
            // Root here lacks CAP_SYS_RESOURCE: podman's default rlimits cannot be set.
            run = run.args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]);
        }
        let out = run.args([tag.as_str(), "true"]).run();
        // podman save → iimage load (a docker-archive written by podman).
        let psaved = env.path("podman-saved.tar");
        let save = podman(&env)
            .args(["save", "-q", "--format", "docker-archive", "-o"])
            .arg(&psaved)
            .arg(&tag)
            .run();
        let _ = podman(&env).args(["rmi", "-f", tag.as_str()]).run();
        assert!(save.output.status.success(), "podman save failed: {save}");
        env.give(&psaved);
        let o = env
            .cmd("iimage")
            .args(["load", "-i"])
            .arg(&psaved)
            .env("IMAGO_ROOT", env.path("store4"))
            .ok();
        assert!(o.stdout().contains(&format!("Loaded image: {tag}")), "{o}");
        env.cmd("iimage")
            .args(["export", "-o"])
            .arg(env.path("p.tar"))
            .arg(&tag)
            .env("IMAGO_ROOT", env.path("store4"))
            .ok();
        assert!(
            entries(&std::fs::read(env.path("p.tar")).expect("export")).contains_key("bin/busybox")
        );
        if !out.output.status.success()
            && out
                .stderr()
                .contains("cgroups in hybrid mode not supported")
        {
            // A host precondition, not our image: scripts/setup-host.sh moves hugetlb to v1.
            imago_it::skip(&format!("[{}] podman cannot run containers on this host (cgroup hybrid layout; run scripts/setup-host.sh): {}", user.name(), out.stderr().trim()));
            continue;
        }
        assert!(
            out.output.status.success(),
            "podman run of our saved image failed: {out}"
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "ids differ between users: {ids:?}");
}

#[test]
fn inspect_rm_prune_export_and_change() {
    for user in users() {
        let env = Env::new(user);
        let tar = env.busybox_tar();
        let id = env
            .cmd("iimage")
            .args([
                "import",
                "-c",
                r#"CMD ["/bin/sh","-c","echo hi"]"#,
                "-c",
                "ENV A=1",
                "-c",
                "WORKDIR /srv",
            ])
            .arg(&tar)
            .arg("app:1")
            .ok()
            .stdout()
            .trim()
            .to_owned();
        let v: serde_json::Value =
            serde_json::from_str(&env.cmd("iimage").args(["inspect", "app:1"]).ok().stdout())
                .expect("json");
        assert_eq!(v[0]["Id"], id.as_str());
        assert_eq!(
            v[0]["Config"]["Cmd"],
            serde_json::json!(["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(v[0]["Config"]["Env"], serde_json::json!(["A=1"]));
        assert_eq!(v[0]["Config"]["WorkingDir"], "/srv");
        assert_eq!(v[0]["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
        env.cmd("iimage")
            .args(["import", "-c", "RUN x"])
            .arg(&tar)
            .run()
            .fails_with("invalid --change `RUN x`");

        // export: the flattened rootfs holds busybox.
        let out = env.path("rootfs.tar");
        env.cmd("iimage")
            .args(["export", "-o"])
            .arg(&out)
            .arg("app:1")
            .ok();
        let e = entries(&std::fs::read(&out).expect("read export"));
        assert!(
            e.contains_key("bin/busybox") && e.contains_key("etc/passwd"),
            "{:?}",
            e.keys().take(10).collect::<Vec<_>>()
        );

        // rm by name with another name: untag only; by id with two names: refused without -f.
        env.cmd("itag").args(["app:1", "app:2"]).ok();
        env.cmd("iimage")
            .args(["rm", &id])
            .run()
            .fails_with("remove them one by one or force");
        let o = env.cmd("iimage").args(["rm", "app:1"]).ok();
        assert!(
            o.stdout().contains("Untagged: app:1") && !o.stdout().contains("Deleted"),
            "{o}"
        );
        // Last name: the image goes, and gc takes its blobs and unpacked layer.
        let o = env.cmd("iimage").args(["rm", "app:2"]).ok();
        assert!(o.stdout().contains(&format!("Deleted: {id}")), "{o}");
        assert_eq!(
            env.cmd("iimage").args(["ls", "-q"]).ok().stdout().trim(),
            ""
        );
        let blobs = std::fs::read_dir(env.root().join("blobs/sha256"))
            .expect("blobs")
            .count();
        assert_eq!(blobs, 0, "blobs left after rm");
        env.cmd("iimage")
            .args(["inspect", "app:2"])
            .run()
            .fails_with("image `app:2` not found");

        // A directory and stdin as sources; a directory's files belong to root inside.
        let d = env.mkdir("rootdir");
        env.write("rootdir/hello.txt", "hi\n");
        env.cmd("iimage").arg("import").arg(&d).arg("fromdir").ok();
        env.cmd("iimage")
            .args(["export", "-o"])
            .arg(env.path("fromdir.tar"))
            .arg("fromdir")
            .ok();
        let e = entries(&std::fs::read(env.path("fromdir.tar")).expect("export"));
        let h = &e["hello.txt"];
        assert_eq!(
            (h.uid, h.gid, h.data.as_slice()),
            (0, 0, &b"hi\n"[..]),
            "[{}]",
            user.name()
        );
        let stdin = std::fs::File::open(&tar).expect("open tar");
        let o = env
            .cmd("iimage")
            .args(["import", "-", "fromstdin"])
            .stdin(stdin)
            .ok();
        let v: serde_json::Value = serde_json::from_str(
            &env.cmd("iimage")
                .args(["inspect", "fromstdin"])
                .ok()
                .stdout(),
        )
        .expect("json");
        assert_eq!(v[0]["Id"], o.stdout().trim());
        env.cmd("iimage").args(["rm", "fromdir", "fromstdin"]).ok();

        // prune: unnamed images go.
        env.cmd("iimage").arg("import").arg(&tar).ok();
        assert_eq!(
            env.cmd("iimage")
                .args(["ls", "-q"])
                .ok()
                .stdout()
                .lines()
                .count(),
            1
        );
        let o = env.cmd("iimage").arg("prune").ok();
        assert!(o.stdout().contains("Deleted: sha256:"), "{o}");
        assert_eq!(
            env.cmd("iimage").args(["ls", "-q"]).ok().stdout().trim(),
            ""
        );
        fsck_clean(&env);
    }
}

#[test]
fn hostile_layers_are_refused_naming_the_entry_and_write_nothing_outside() {
    let corpus = imago_oci::layer::hostile::corpus();
    assert!(corpus.len() >= 20, "corpus has {} cases", corpus.len());
    let host_probe = || -> Vec<String> {
        let mut v = vec![];
        for dir in ["/", "/etc"] {
            if let Ok(rd) = std::fs::read_dir(dir) {
                v.extend(
                    rd.flatten()
                        .map(|e| e.path().display().to_string())
                        .filter(|p| p.contains("evil")),
                );
            }
        }
        v
    };
    let passwd = std::fs::metadata("/etc/passwd")
        .map(|m| (m.len(), m.modified().ok()))
        .ok();
    for user in users() {
        let env = Env::new(user);
        env.cmd("iimage").arg("ls").ok(); // make the store
        let dir = env.mkdir("hostile");
        for case in &corpus {
            let tar = dir.join(format!("{}.tar", case.name));
            std::fs::write(&tar, &case.tar).expect("write tar");
            env.give(&tar);
        }
        let before = snapshot(env.scratch.path());
        let host_before = host_probe();
        for case in &corpus {
            let cap = case.max_cap.unwrap_or(1 << 20).min(1 << 20);
            let out = env
                .cmd("iimage")
                .args(["import", "--max-size", &cap.to_string()])
                .arg(dir.join(format!("{}.tar", case.name)))
                .arg(format!("hostile-{}", case.name.to_lowercase()))
                .run();
            assert!(
                !out.output.status.success(),
                "[{}] {} was accepted: {out}",
                user.name(),
                case.name
            );
            assert!(
                out.stderr().contains(case.expect),
                "[{}] {}: stderr lacks {:?}: {out}",
                user.name(),
                case.name,
                case.expect
            );
            assert!(!out.stderr().contains("panicked"), "{out}");
        }
        let after = snapshot(env.scratch.path());
        // The store's own bookkeeping may change: lock files, and the mtime of its tmp dir
        // (temp entries made and removed). Anything left in tmp still shows as new.
        let bookkeeping =
            |k: &str| k.contains("/store/imago/locks") || k.ends_with("/store/imago/tmp");
        let changed: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v) && !bookkeeping(k))
            .map(|(k, _)| k.clone())
            .collect();
        let gone: Vec<_> = before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .cloned()
            .collect();
        assert!(
            changed.is_empty() && gone.is_empty(),
            "[{}] files changed: {changed:?}, gone: {gone:?}",
            user.name()
        );
        assert_eq!(host_probe(), host_before, "files appeared on the host");
        assert_eq!(
            env.cmd("iimage").args(["ls", "-q"]).ok().stdout().trim(),
            ""
        );
        fsck_clean(&env);
    }
    assert_eq!(
        std::fs::metadata("/etc/passwd")
            .map(|m| (m.len(), m.modified().ok()))
            .ok(),
        passwd
    );
}

#[test]
fn load_killed_at_random_moments_leaves_a_clean_store() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let archive = env.path("bb.tar");
        env.cmd("iimage")
            .args(["save", "-o"])
            .arg(&archive)
            .arg("busybox")
            .ok();
        // Start from an empty store each round, so the load has work to do.
        let target = env.path("killstore");
        let load = |quiet: bool| {
            let mut c = env.cmd("iimage");
            c = c.arg("load");
            if quiet {
                c = c.arg("-q");
            }
            c.arg("-i").arg(&archive).env("IMAGO_ROOT", &target)
        };
        let rm = || {
            env.cmd("iimage")
                .args(["rm", "busybox"])
                .env("IMAGO_ROOT", &target)
                .ok()
        };
        // The kill window is the shortest of three whole loads as the rounds run them (it
        // varies with the machine and the user: runuser adds its own start), so most
        // kills land mid-run on a fast machine and a slow one alike.
        let window = (0..3)
            .map(|_| {
                let (out, took) = timed(load(true));
                assert!(out.output.status.success(), "{out}");
                rm();
                took
            })
            .min()
            .unwrap_or_default();
        let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        let seed = 0x5eed ^ u64::from(std::process::id());
        let mut rng = Rng::seeded(seed);
        let mut killed_mid_run = 0;
        for round in 0..20 {
            let delay = Duration::from_micros(rng.below(window_us));
            if kill_after(load(true), delay) {
                killed_mid_run += 1;
            }
            let fsck = env
                .cmd("iimage")
                .arg("fsck")
                .env("IMAGO_ROOT", &target)
                .run();
            assert!(
                fsck.output.status.success() && fsck.stdout().contains(" 0 problems"),
                "[{}] round {round} (seed {seed:#x}): fsck after kill: {fsck}",
                user.name()
            );
            let loaded = load(false).ok();
            assert!(
                loaded
                    .stdout()
                    .contains("Loaded image: docker.io/library/busybox:latest"),
                "{loaded}"
            );
            // rm deletes the image and collects its blobs: the next round starts empty.
            rm();
        }
        eprintln!(
            "[{}] {killed_mid_run}/20 loads were killed while running (window {window_us} µs)",
            user.name()
        );
        assert!(
            killed_mid_run >= 5,
            "[{}] too few kills landed mid-run ({killed_mid_run} of 20, window {window_us} µs, seed {seed:#x})",
            user.name()
        );
    }
}

/// A layer with owners 0, 33 and 65534, a hardlink, a symlink, an xattr and a setuid file.
fn crafted_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str,
                   kind: tar::EntryType,
                   mode: u32,
                   uid: u64,
                   gid: u64,
                   link: Option<&str>,
                   data: &[u8],
                   xattr: Option<(&str, &[u8])>| {
        if let Some((k, v)) = xattr {
            let key = format!("SCHILY.xattr.{k}");
            b.append_pax_extensions([(key.as_str(), v)]).expect("pax");
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).expect("link name");
        }
        h.set_path(path).expect("path");
        h.set_cksum();
        b.append(&h, data).expect("append");
    };
    use tar::EntryType as T;
    add("bin/", T::Directory, 0o755, 0, 0, None, b"", None);
    add(
        "bin/su",
        T::Regular,
        0o4755,
        0,
        0,
        None,
        b"#!/bin/sh\n",
        None,
    );
    add(
        "data.txt",
        T::Regular,
        0o644,
        0,
        0,
        None,
        b"with an xattr\n",
        Some(("user.imago.test", b"hello")),
    );
    add(
        "link",
        T::Symlink,
        0o777,
        0,
        0,
        Some("var/www/index.html"),
        b"",
        None,
    );
    add(
        "nobody",
        T::Regular,
        0o600,
        65534,
        65534,
        None,
        b"nobody's\n",
        None,
    );
    add("var/", T::Directory, 0o755, 0, 0, None, b"", None);
    add("var/www/", T::Directory, 0o750, 33, 33, None, b"", None);
    add(
        "var/www/index.html",
        T::Regular,
        0o640,
        33,
        33,
        None,
        b"<html>\n",
        None,
    );
    add(
        "var/www/index2.html",
        T::Link,
        0o640,
        33,
        33,
        Some("var/www/index.html"),
        b"",
        None,
    );
    b.into_inner().expect("finish tar")
}

#[test]
fn ownership_round_trips_through_import_and_export() {
    let layer = crafted_layer();
    let want = entries(&layer);
    for user in users() {
        let env = Env::new(user);
        let tar = env.write("crafted.tar", &layer);
        env.cmd("iimage")
            .args(["import"])
            .arg(&tar)
            .arg("crafted")
            .ok();
        let out = env.path("export.tar");
        env.cmd("iimage")
            .args(["export", "-o"])
            .arg(&out)
            .arg("crafted")
            .ok();
        let got = entries(&std::fs::read(&out).expect("export"));
        for (path, w) in &want {
            let g = got.get(path).unwrap_or_else(|| {
                panic!(
                    "[{}] {path} missing from export: {:?}",
                    user.name(),
                    got.keys()
                )
            });
            // A hardlink's data lives in its target.
            assert_eq!(g, w, "[{}] {path} differs", user.name());
        }
        assert_eq!(
            got.len(),
            want.len(),
            "[{}] extra entries: {:?}",
            user.name(),
            got.keys()
        );
        // The store records which ownership model it used.
        let info = env.cmd("iimage").arg("info").ok().stdout();
        let mode = if user == User::NoSub { "xattr" } else { "real" };
        assert!(
            info.contains(&format!("unpacked layer ownership: {mode}")),
            "[{}] {info}",
            user.name()
        );
        fsck_clean(&env);
        // rm + gc remove the unpacked layer, files of ids 33 and 65534 included (rootless:
        // inside the mapping, since those files belong to subordinate ids).
        env.cmd("iimage").args(["rm", "crafted"]).ok();
        let left: Vec<String> = std::fs::read_dir(env.root().join("imago/layers"))
            .expect("layers dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "MODE")
            .collect();
        assert!(
            left.is_empty(),
            "[{}] unpacked layers left after rm: {left:?}",
            user.name()
        );
        fsck_clean(&env);
    }
}

#[test]
fn info_names_what_is_missing_and_the_fix() {
    for user in users() {
        let env = Env::new(user);
        let out = env.cmd("iimage").arg("info").ok();
        let s = out.stdout();
        assert!(
            s.contains(&format!("store: {}", env.root().display())),
            "{out}"
        );
        for key in [
            "kernel",
            "userns",
            "overlay_in_userns",
            "fuse",
            "newuidmap",
            "subuid",
        ] {
            assert!(
                s.lines().any(|l| l.starts_with(&format!("{key}:"))),
                "[{}] no {key} line: {out}",
                user.name()
            );
        }
        let missing_subuid = s.lines().find(|l| l.starts_with("missing: subuid"));
        match user {
            User::NoSub => {
                let l = missing_subuid
                    .unwrap_or_else(|| panic!("imago-nosub: subuid not reported missing: {out}"));
                assert!(
                    l.contains("/etc/subuid") || l.contains("usermod"),
                    "no fix given: {l}"
                );
            }
            User::Sub => assert!(missing_subuid.is_none(), "{out}"),
            User::Root | User::Current => {}
        }
        let json = env.cmd("iimage").args(["info", "--format", "json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&json.stdout()).expect("info json");
        assert!(v["host"]["fixes"].is_array(), "{json}");
    }
}

#[test]
fn concurrent_loads_imports_and_gcs_all_succeed() {
    for user in users() {
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        let archive = env.path("bb.tar");
        env.cmd("iimage")
            .args(["save", "-o"])
            .arg(&archive)
            .arg("busybox")
            .ok();
        let target = env.path("shared");
        let tar = env.busybox_tar();
        let mut children = vec![];
        for i in 0..9 {
            let mut c = match i % 3 {
                0 => env.cmd("iimage").args(["load", "-q", "-i"]).arg(&archive),
                1 => env
                    .cmd("iimage")
                    .arg("import")
                    .arg(&tar)
                    .arg(format!("imp{i}")),
                _ => env.cmd("iimage").arg("gc"),
            }
            .env("IMAGO_ROOT", &target);
            let child = c
                .command()
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn");
            children.push((i, child));
        }
        for (i, ch) in children {
            let out = ch.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "[{}] #{i} failed: {}",
                user.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let names = env
            .cmd("iimage")
            .args(["ls"])
            .env("IMAGO_ROOT", &target)
            .ok()
            .stdout();
        for n in ["busybox", "imp1", "imp4", "imp7"] {
            assert!(
                names.lines().any(|l| l.starts_with(&format!("{n} "))),
                "[{}] {n} missing: {names}",
                user.name()
            );
        }
        // Every image is whole: export works and fsck is clean.
        env.cmd("iimage")
            .args(["export", "-o"])
            .arg(env.path("x.tar"))
            .arg("imp4")
            .env("IMAGO_ROOT", &target)
            .ok();
        let out = env
            .cmd("iimage")
            .arg("fsck")
            .env("IMAGO_ROOT", &target)
            .run();
        assert!(
            out.output.status.success() && out.stdout().contains(" 0 problems"),
            "{out}"
        );
    }
}

#[test]
fn fsck_repair_takes_the_damage_out_and_keeps_the_rest() {
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        import_busybox(&env, "busybox");
        env.cmd("irun")
            .args(["--name", "c1", "busybox", "sh", "-c", "echo 1 > /f"])
            .ok();
        let id = env.cmd("ictr").args(["commit", "c1", "changed:1"]).ok();
        let id = id.stdout().trim().to_owned();
        let hex = id.strip_prefix("sha256:").unwrap();
        // The committed image's config changes under the store (a disk or NFS fault).
        let config = env.root().join("blobs/sha256").join(hex);
        std::fs::write(&config, b"{}").unwrap();
        let fsck = env.cmd("iimage").arg("fsck").run();
        assert_eq!(fsck.code(), Some(125), "[{who}] {fsck}");
        assert!(
            fsck.stderr().contains("iimage fsck --repair"),
            "[{who}] {fsck}"
        );
        let repair = env.cmd("iimage").args(["fsck", "--repair"]).ok();
        let out = repair.stdout();
        assert!(
            out.contains(&format!("deleted damaged blob {id}")),
            "[{who}] {repair}"
        );
        assert!(
            out.contains("dropped image changed:1 ("),
            "[{who}] {repair}"
        );
        assert!(out.contains(": 0 problems"), "[{who}] {repair}");
        // The rest works; the dropped name is gone, and a second repair has nothing to do.
        env.cmd("irun").args(["--rm", "busybox", "true"]).ok();
        let names = ls_names(&env);
        assert!(
            !names.values().flatten().any(|n| n.contains("changed")),
            "[{who}] {names:?}"
        );
        env.cmd("iimage").arg("fsck").ok();
        let again = env.cmd("iimage").args(["fsck", "--repair"]).ok();
        assert!(
            !again.stdout().contains("deleted") && !again.stdout().contains("dropped"),
            "[{who}] {again}"
        );
    }
}
