//! The storage driver choice and the fallback drivers, through the real binaries, as root
//! and as the unprivileged users: `--storage-driver`, `$IMAGO_STORAGE_DRIVER` and the
//! config key, `iimage info`'s line and the probe cache, containers on a private copy
//! (writes stay out of the image's layers, `ictr start` keeps the copy, `--rm` and `ictr
//! rm` remove it) and on the FUSE overlay, and an ibuild whose RUN layers under `copy`
//! and `fuse` are the same as the kernel overlay's.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use imago_it::{bin, skip, users, Env, Out, User};

use crate::ibuild_support::{context, env_with_busybox, layers, Entry};

const NOTE: &str = "the copy storage driver copies the image's files";

/// Every entry under `dir` with what a write would change (type, mode, owner, size,
/// mtime, link target or content).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let what = if m.is_dir() {
                stack.push(p.clone());
                String::new()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .expect("readlink")
                    .display()
                    .to_string()
            } else if m.is_file() {
                format!("{:x}", md5ish(&std::fs::read(&p).expect("read")))
            } else {
                String::new()
            };
            let key = p.strip_prefix(dir).expect("prefix").display().to_string();
            let meta = format!(
                "{:o} {}:{} {} {} {what}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.len(),
                m.mtime()
            );
            out.insert(key, meta);
        }
    }
    out
}

/// A cheap content fingerprint (FNV-1a): enough to see a changed file.
fn md5ish(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x100000001b3)
    })
}

/// The container dirs (64-hex names) in the store.
fn container_dirs(env: &Env) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(env.root().join("containers")) else {
        return vec![];
    };
    rd.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

fn irun(env: &Env, args: &[&str]) -> Out {
    env.cmd("irun").args(args).run()
}

/// `ictr ARGS` under `timeout 60` (start -a waits for the container).
fn ictr(env: &Env, args: &[&str]) -> Out {
    env.cmd_path("timeout")
        .arg("60")
        .arg(bin("ictr"))
        .args(args)
        .run()
}

/// The driver `iimage info --format json` names, and the whole document.
fn info_driver(env: &Env) -> (String, serde_json::Value) {
    let out = env.cmd("iimage").args(["info", "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("info json");
    let d = v["storage_driver"]["driver"]
        .as_str()
        .unwrap_or_else(|| panic!("no driver: {out}"))
        .to_string();
    (d, v)
}

#[test]
fn copy_driver_runs_containers_on_a_private_copy() {
    for user in users() {
        let env = env_with_busybox(user);
        // Unpacks the layers (with the default driver) so the snapshot sees them.
        irun(&env, &["--rm", "busybox", "true"]).success();
        let layers_dir = env.root().join("imago/layers");
        let before = snapshot(&layers_dir);
        assert!(
            before.keys().any(|k| k.ends_with("diff/bin/ls")),
            "{before:?}"
        );
        let script = "echo hi > /etc/x; rm /bin/ls; chmod 700 /bin; touch /etc/passwd; \
                      mkdir /tmp/d; cat /etc/x; ls /bin/ls 2>/dev/null || echo gone";
        let out = irun(
            &env,
            &[
                "--rm",
                "--storage-driver",
                "copy",
                "busybox",
                "sh",
                "-c",
                script,
            ],
        )
        .success();
        assert_eq!(out.stdout(), "hi\ngone\n", "[{}] {out}", user.name());
        assert!(out.stderr().contains(NOTE), "{out}");
        assert!(out.stderr().contains("forced by --storage-driver"), "{out}");
        assert_eq!(
            snapshot(&layers_dir),
            before,
            "[{}] a layer changed",
            user.name()
        );
        assert!(
            container_dirs(&env).is_empty(),
            "--rm left {:?}",
            container_dirs(&env)
        );

        // The env var; a kept container keeps its copy across `ictr start`.
        let keep = env
            .cmd("irun")
            .env("IMAGO_STORAGE_DRIVER", "copy")
            .args(["--name", "keep", "busybox", "sh", "-c"])
            .arg("echo run >> /data; cat /data; chown 33:33 /data 2>/dev/null; true")
            .run()
            .success();
        assert_eq!(keep.stdout(), "run\n", "{keep}");
        assert!(
            keep.stderr().contains("forced by $IMAGO_STORAGE_DRIVER"),
            "{keep}"
        );
        let dirs = container_dirs(&env);
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        let copy = env.root().join("containers").join(&dirs[0]).join("copy");
        assert!(copy.join("data").is_file(), "no {}", copy.display());
        // `ictr start` runs it on the same copy, whatever the environment says now.
        let again = ictr(&env, &["start", "-a", "keep"]).success();
        assert_eq!(again.stdout(), "run\nrun\n", "[{}] {again}", user.name());
        // Owners are kept in the copy: container uid 33 is 33 as root, the 33rd
        // subordinate id with a range (without one, only one id exists: chown fails).
        let uid = std::fs::metadata(copy.join("data")).unwrap().uid();
        match user {
            User::Root => assert_eq!(uid, 33),
            User::Sub => assert!(uid >= 100000 && uid != user.ids().unwrap().0, "{uid}"),
            _ => {}
        }
        assert_eq!(snapshot(&layers_dir), before);
        ictr(&env, &["rm", "keep"]).success();
        assert!(
            container_dirs(&env).is_empty(),
            "ictr rm left {:?}",
            container_dirs(&env)
        );
        assert!(!copy.exists());

        // Detached, then removed with its copy by `--rm` when it ends.
        let id = env
            .cmd("irun")
            .args([
                "-d",
                "--rm",
                "--storage-driver",
                "copy",
                "busybox",
                "sh",
                "-c",
                "echo x > /y",
            ])
            .run()
            .success()
            .stdout();
        assert!(
            imago_it::eventually(30, || container_dirs(&env).is_empty()),
            "detached --rm {} left {:?}",
            id.trim(),
            container_dirs(&env)
        );
    }
}

#[test]
fn choice_by_flag_env_config_and_probe_and_info_says_why() {
    for user in users() {
        let env = env_with_busybox(user);
        let (probed, v) = info_driver(&env);
        assert_eq!(v["storage_driver"]["source"]["kind"], "probe", "{v}");
        if probed != "overlay" {
            skip(&format!(
                "kernel overlayfs does not mount in a user namespace here (probed {probed})"
            ));
        }
        let cache = v["storage_driver"]["probe_cache"]
            .as_str()
            .expect("cache path")
            .to_string();
        let text = std::fs::read_to_string(&cache).expect("probe cache written");
        assert!(text.contains("\"overlay_in_userns\""), "{text}");
        let table = env.cmd("iimage").arg("info").ok().stdout();
        assert!(
            table.contains(&format!(
                "storage driver: {probed} (probed, cached in {cache}"
            )),
            "{table}"
        );
        // An unreadable cache is probed again and rewritten.
        std::fs::write(&cache, b"{ not json").unwrap();
        let table = env.cmd("iimage").arg("info").ok().stdout();
        assert!(
            table.contains(&format!("storage driver: {probed} (probed: ")),
            "{table}"
        );
        assert!(std::fs::read_to_string(&cache)
            .unwrap()
            .contains("kernel_release"));

        // The config key, then env over config, then flag over env.
        env.write(
            "home/.config/imago/config.toml",
            "# imago\nstorage_driver = \"copy\"\n",
        );
        env.give(&env.home().join(".config"));
        env.give(&env.home().join(".config/imago"));
        let table = env.cmd("iimage").arg("info").ok().stdout();
        assert!(
            table.contains("storage driver: copy (forced by `storage_driver` in "),
            "{table}"
        );
        let out = irun(&env, &["--rm", "busybox", "true"]).success();
        assert!(out.stderr().contains(NOTE), "{out}");
        let out = env
            .cmd("irun")
            .env("IMAGO_STORAGE_DRIVER", "overlay")
            .args(["--rm", "busybox", "true"])
            .run()
            .success();
        assert!(
            !out.stderr().contains(NOTE),
            "env should beat config: {out}"
        );
        let out = env
            .cmd("irun")
            .env("IMAGO_STORAGE_DRIVER", "overlay")
            .args(["--rm", "--storage-driver", "copy", "busybox", "true"])
            .run()
            .success();
        assert!(out.stderr().contains("forced by --storage-driver"), "{out}");

        // fuse works from every place; a wrong name says where it was.
        context(
            &env,
            "fz",
            &[("Dockerfile", "FROM busybox\nRUN echo built > /b\n")],
        );
        let out = irun(
            &env,
            &[
                "--rm",
                "--storage-driver",
                "fuse",
                "busybox",
                "sh",
                "-c",
                "grep -c ' / fuse' /proc/mounts; echo w > /w; cat /w",
            ],
        )
        .success();
        assert_eq!(out.stdout(), "1\nw\n", "{out}");
        env.cmd("ibuild")
            .args(["--storage-driver", "fuse", "-t", "fz"])
            .arg(env.path("fz"))
            .run()
            .success();
        let out = irun(&env, &["--rm", "fz", "cat", "/b"]).success();
        assert_eq!(out.stdout(), "built\n", "{out}");
        env.cmd("irun")
            .env("IMAGO_STORAGE_DRIVER", "btrfs")
            .args(["--rm", "busybox", "true"])
            .run()
            .code_is(125)
            .fails_with("unknown storage driver `btrfs` from $IMAGO_STORAGE_DRIVER");
        let out = env
            .cmd("iimage")
            .env("IMAGO_STORAGE_DRIVER", "fuse")
            .args(["info"])
            .ok();
        assert!(
            out.stdout()
                .contains("storage driver: fuse (forced by $IMAGO_STORAGE_DRIVER)"),
            "{out}"
        );
    }
}

/// A RUN layer's entries without mtimes, sorted (the drivers may order whiteouts apart).
fn comparable(layer: &[Entry]) -> Vec<String> {
    let mut v: Vec<String> = layer
        .iter()
        .map(|e| {
            format!(
                "{} {} {:o} {}:{} {}",
                e.kind,
                e.path,
                e.mode,
                e.uid,
                e.gid,
                String::from_utf8_lossy(&e.data)
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn fallback_drivers_build_the_overlay_layers() {
    let dockerfile = "FROM busybox\n\
        RUN mkdir -p /app/sub /app/gone /app/keep && echo a > /app/a && echo b > /app/sub/b \
            && ln -s a /app/link && echo g > /app/gone/g && echo k > /app/keep/k \
            && mkdir /data && echo x > /data/f && chmod 777 /data\n\
        RUN echo changed > /app/a && rm -rf /app/sub && mkdir /app/sub && echo c > /app/sub/c \
            && rm /bin/vi && chmod 700 /app && touch /new && rm -rf /app/gone \
            && mkdir -p /etc/new && sed -i s/root:x/root:y/ /etc/passwd \
            && ln -sf /new /app/link && rm /app/keep/k\n\
        USER nobody\n\
        RUN rm /data/f && echo y > /data/g && mkdir /data/d\n";
    for user in users() {
        let env = env_with_busybox(user);
        context(&env, "ctx", &[("Dockerfile", dockerfile)]);
        let mut built = Vec::new();
        for driver in ["overlay", "copy", "fuse"] {
            let name = format!("t-{driver}");
            let out = env
                .cmd("ibuild")
                .args(["--no-cache", "--progress", "plain", "-t", &name])
                .args(["--storage-driver", driver])
                .arg(env.path("ctx"))
                .run()
                .success();
            assert_eq!(out.stderr().contains(NOTE), driver == "copy", "{out}");
            let l = layers(&env, &name);
            assert_eq!(l.len(), 4, "[{}] {driver}: {l:?}", user.name());
            built.push(l);
        }
        let overlay = &built[0];
        for (driver, other) in [("copy", &built[1]), ("fuse", &built[2])] {
            for (n, (o, c)) in overlay.iter().zip(other).enumerate().skip(1) {
                assert_eq!(
                    comparable(c),
                    comparable(o),
                    "[{}] RUN layer {n}: {driver} (left) vs overlay (right)",
                    user.name()
                );
            }
        }
        // What the second RUN did is all there: so the comparison above compared something.
        let second = comparable(&built[1][2]);
        for want in [
            "- bin/.wh.vi ",
            "- app/.wh.gone ",
            "- app/sub/.wh..wh..opq ",
            "- app/keep/.wh.k ",
            "- app/a 644 0:0 changed",
            "- app/sub/c 644 0:0 c",
            "- etc/passwd ",
            "- new ",
            "l app/link ",
            "d etc/new ",
        ] {
            assert!(
                second.iter().any(|e| e.starts_with(want)),
                "[{}] no {want:?} in {second:#?}",
                user.name()
            );
        }
        // A chmod in a RUN under the single mapping does not reach the layer with either
        // driver (the copied-up dir keeps its ownership record's mode): checked where
        // it does.
        if user != User::NoSub {
            assert!(
                second.iter().any(|e| e.starts_with("d app 700 ")),
                "{second:#?}"
            );
        }
        // The image built with the copy driver runs and shows the RUNs' result.
        let out = irun(
            &env,
            &[
                "--rm",
                "-u",
                "0",
                "t-copy",
                "sh",
                "-c",
                "cat /app/a /app/sub/c; readlink /app/link; ls /app; ls /data",
            ],
        )
        .success();
        assert_eq!(
            out.stdout(),
            "changed\nc\n/new\na\nkeep\nlink\nsub\nd\ng\n",
            "{out}"
        );
        // The RUN scratch (with its copy) is gone.
        let tmp = env.root().join("imago/tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "[{}] left in imago/tmp: {left:?}",
            user.name()
        );
    }
}
