//! Single-file images: `iimage squash IMG -o FILE.sqsh` writes a squashfs that
//! squashfs-tools reads back with the image's files, and `irun FILE.sqsh` runs it from a
//! read-only dir with no image in the store, no XDG_RUNTIME_DIR (the harness sets
//! none), the image's config applied, writes going to the container's upper and the
//! file unchanged; damaged files fail cleanly. As root, imago-sub and imago-nosub.

#![allow(clippy::unwrap_used)] // tests: a failed step is a test failure

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use imago_it::{users, Env};

use crate::ibuild_support::env_with_busybox;

fn sha256(p: &Path) -> String {
    let out = Command::new("sha256sum").arg(p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// busybox with a config, squashed into `ro/img.sqsh`, the dir and file then read-only.
fn squashed(env: &Env) -> PathBuf {
    env.cmd("iimage")
        .args([
            "import",
            "--change",
            r#"CMD ["sh", "-c", "echo $GREETING; pwd; id -u"]"#,
            "--change",
            "ENV GREETING=hello-from-config",
            "--change",
            "WORKDIR /srv/app",
        ])
        .arg(env.path("busybox-rootfs.tar"))
        .arg("cfgbox")
        .ok();
    let ro = env.mkdir("ro");
    let img = ro.join("img.sqsh");
    env.cmd("iimage")
        .args(["squash", "cfgbox", "-o"])
        .arg(&img)
        .ok();
    std::fs::set_permissions(&img, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    img
}

/// Sorted paths of a listing, `./`, `/` and `squashfs-root` prefixes dropped.
fn paths(lines: &str) -> Vec<String> {
    let mut v: Vec<String> = lines
        .lines()
        .map(|l| {
            let l = l.trim_start_matches("squashfs-root");
            let l = l.trim_start_matches("./").trim_start_matches('/');
            l.trim_end_matches('/').to_string()
        })
        .filter(|l| !l.is_empty() && l != ".")
        .collect();
    v.sort();
    v
}

#[test]
fn squash_writes_what_unsquashfs_lists_as_the_export() {
    if !imago_it::have("unsquashfs") {
        // scripts/setup-host.sh installs squashfs-tools.
        return imago_it::skip("unsquashfs (squashfs-tools) is not installed");
    }
    for user in users() {
        let env = env_with_busybox(user);
        let img = squashed(&env);
        let tar = env.path("export.tar");
        env.cmd("iimage")
            .args(["export", "cfgbox", "-o"])
            .arg(&tar)
            .ok();
        let listed = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
        let unsq = Command::new("unsquashfs")
            .args(["-n", "-l"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            unsq.status.success(),
            "{}",
            String::from_utf8_lossy(&unsq.stderr)
        );
        let (want, got) = (
            paths(&String::from_utf8_lossy(&listed.stdout)),
            paths(&String::from_utf8_lossy(&unsq.stdout)),
        );
        assert!(want.len() > 100, "{want:?}");
        assert_eq!(got, want, "[{}] unsquashfs lists other files", user.name());
    }
}

#[test]
fn irun_runs_a_sqsh_from_a_read_only_dir_without_a_store() {
    for user in users() {
        let env = env_with_busybox(user);
        let img = squashed(&env);
        let before = sha256(&img);
        // A store root that does not exist: nothing is read from a store.
        let empty = env.path("no-store");
        let irun = |args: &[&str]| {
            env.cmd("irun")
                .env("IMAGO_ROOT", &empty)
                .args(["--rm"])
                .arg(&img)
                .args(args)
                .run()
        };
        let out = irun(&[]).success().stdout();
        assert_eq!(out, "hello-from-config\n/srv/app\n0\n", "[{}]", user.name());
        // Writes go to the upper: a new file, an appended image file, a removal.
        let out = irun(&[
            "sh",
            "-c",
            "echo new > /etc/added && cat /etc/added && echo extra >> /etc/passwd \
             && tail -n1 /etc/passwd && rm /bin/ls && ! test -e /bin/ls && echo removed \
             && stat -c %u:%g /etc/group",
        ])
        .success()
        .stdout();
        assert_eq!(out, "new\nextra\nremoved\n0:0\n", "[{}]", user.name());
        // A fresh container sees the image as it was.
        let out = irun(&[
            "sh",
            "-c",
            "test -e /bin/ls && ! test -e /etc/added && echo clean",
        ])
        .success()
        .stdout();
        assert_eq!(out, "clean\n", "[{}]", user.name());
        // A named user resolves from the image's passwd (under the single mapping too).
        let out = env
            .cmd("irun")
            .env("IMAGO_ROOT", &empty)
            .args(["--rm", "-u", "www-data"])
            .arg(&img)
            .args(["id", "-u"])
            .run()
            .success()
            .stdout();
        assert_eq!(out, "33\n", "[{}]", user.name());
        // Exit codes pass through.
        irun(&["sh", "-c", "exit 7"]).code_is(7);
        // A named container keeps its upper: `ictr start` serves the file again.
        let keep =
            |program: &str, args: &[&str]| env.cmd(program).env("IMAGO_ROOT", &empty).args(args);
        keep("irun", &["--name", "keep"])
            .arg(&img)
            .args(["sh", "-c", "cat /kept 2>/dev/null; echo kept > /kept"])
            .run()
            .success();
        let again = keep("ictr", &["start", "-a", "keep"])
            .run()
            .success()
            .stdout();
        assert_eq!(again, "kept\n", "[{}]", user.name());
        keep("ictr", &["rm", "keep"]).run().success();
        assert_eq!(sha256(&img), before, "[{}] the .sqsh changed", user.name());
    }
}

#[test]
fn a_squashfs_from_mksquashfs_runs_without_a_config() {
    if !imago_it::have("mksquashfs") {
        // scripts/setup-host.sh installs squashfs-tools.
        return imago_it::skip("mksquashfs (squashfs-tools) is not installed");
    }
    for user in users() {
        let env = env_with_busybox(user);
        let tree = env.path("tree");
        std::fs::create_dir_all(&tree).unwrap();
        let st = Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .arg("-xf")
            .arg(env.path("busybox-rootfs.tar"))
            .status()
            .unwrap();
        assert!(st.success());
        let img = env.path("foreign.sqsh");
        let st = Command::new("mksquashfs")
            .arg(&tree)
            .arg(&img)
            .args(["-comp", "gzip", "-quiet", "-no-progress"])
            .status()
            .unwrap();
        assert!(st.success());
        env.give(&img);
        let out = env
            .cmd("irun")
            .args(["--rm"])
            .arg(&img)
            .args([
                "/bin/busybox",
                "sh",
                "-c",
                "echo foreign; wc -c < /bin/busybox",
            ])
            .run()
            .success()
            .stdout();
        let size = std::fs::metadata(tree.join("bin/busybox")).unwrap().len();
        assert_eq!(out, format!("foreign\n{size}\n"), "[{}]", user.name());
        // No config: no CMD to run.
        env.cmd("irun").args(["--rm"]).arg(&img).run().code_is(125);
    }
}

#[test]
fn damaged_or_foreign_files_fail_cleanly() {
    for user in users() {
        let env = env_with_busybox(user);
        let img = squashed(&env);
        let bytes = std::fs::read(&img).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage.sqsh", b"not a squashfs at all".repeat(20)),
            ("truncated.sqsh", bytes[..bytes.len() / 3].to_vec()),
            ("flipped.sqsh", {
                let mut b = bytes.clone();
                for i in (100..b.len()).step_by(4099) {
                    b[i] ^= 0x5a;
                }
                b
            }),
        ];
        for (name, data) in cases {
            let p = env.write(name, data);
            let out = env
                .cmd("irun")
                .args(["--rm"])
                .arg(&p)
                .args([
                    "sh",
                    "-c",
                    "cat /bin/busybox /etc/passwd > /dev/null; echo ran",
                ])
                .run();
            // Either refused at the start (125, a message) or run with I/O errors inside:
            // never a hang or a crash of irun.
            match out.code() {
                Some(125) => assert!(!out.stderr().is_empty(), "[{}] {name}", user.name()),
                Some(_) => {}
                None => panic!(
                    "[{}] {name}: irun was killed: {}",
                    user.name(),
                    out.stderr()
                ),
            }
        }
        // A missing image writes no file.
        let target = env.path("none.sqsh");
        env.cmd("iimage")
            .args(["squash", "no-such-image", "-o"])
            .arg(&target)
            .run()
            .code_is(125);
        assert!(!target.exists());
    }
}
