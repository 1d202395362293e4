//! Shared read-only stores: a store filled by root and mounted read-only (a read-only
//! bind mount), used by every user of `users()` through `--additional-store` and
//! through `$IMAGO_ADDITIONAL_STORES`: `irun` runs its image, `iimage ls` lists it,
//! `ibuild` builds FROM it, `iimage rm` refuses it with a clear error, and afterwards
//! nothing in the shared store changed (a listing with sizes and mtimes, compared as
//! root, who could have written there but for the read-only mount).

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use imago_it::{users, Env, Scratch, User};

/// The image the shared store holds.
const IMAGE: &str = "site/bb:1";

/// A read-only bind mount of a directory, unmounted on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    /// `src` bound read-only at `at` (made); `None` where this process may not mount.
    fn new(src: &Path, at: &Path) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        if !ok(Command::new("mount").arg("--bind").arg(src).arg(at)) {
            return None;
        }
        let mount = ReadOnlyMount(at.to_path_buf());
        ok(Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(at))
        .then_some(mount)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        // Nothing else to do when it fails: the scratch dir's removal reports it.
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every path under `root` with its size, mode and mtime.
fn listing(root: &Path) -> Vec<(PathBuf, u64, u32, SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = vec![];
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push((e.path(), m.len(), m.mode(), m.modified().unwrap()));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The shared store, filled by root: busybox as `IMAGE`, its layer unpacked by a run.
fn fill_shared(base: &Scratch) -> PathBuf {
    let root_env = Env::new(User::Root);
    let store = base.path().join("shared-store");
    // From a directory of mode 0755: the busybox tar's own root entry is 0700 (a
    // mktemp dir), and a root directory only root may enter is no image to share.
    let rootfs = root_env.mkdir("rootfs");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-xf")
        .arg(root_env.busybox_tar())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    root_env
        .cmd("iimage")
        .arg("--root")
        .arg(&store)
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&rootfs)
        .arg(IMAGE)
        .ok();
    root_env
        .cmd("irun")
        .arg("--root")
        .arg(&store)
        .args(["--rm", IMAGE, "true"])
        .ok();
    store
}

/// A user's command with the shared store named by `how`.
fn with_shared(env: &Env, program: &str, how: &str, shared: &Path) -> imago_it::Cmd {
    match how {
        "flag" => env.cmd(program).arg("--additional-store").arg(shared),
        _ => env.cmd(program).env("IMAGO_ADDITIONAL_STORES", shared),
    }
}

#[test]
fn a_read_only_shared_store_is_used_in_place_and_never_written() {
    if !imago_it::running_as_root() {
        imago_it::skip("not root: the shared store is filled by root and mounted read-only");
        return;
    }
    let base = Scratch::new(User::Root);
    let filled = fill_shared(&base);
    let ro = base.path().join("ro");
    let Some(_mount) = ReadOnlyMount::new(&filled, &ro) else {
        imago_it::skip("cannot make a read-only bind mount here");
        return;
    };
    let before = listing(&filled);
    for user in users() {
        for how in ["flag", "env"] {
            let env = Env::new(user);
            let who = format!("[{} {how}]", user.name());
            let out = with_shared(&env, "irun", how, &ro)
                .args(["--rm", IMAGE, "sh", "-c", "echo ok"])
                .ok();
            assert_eq!(out.stdout().trim(), "ok", "{who} {out}");
            // Root filled the store: root uses its unpacked layer in place; the other
            // users (whose mappings cannot own root's files) unpack a copy of their own
            // from the shared store's blob.
            let own_layers = std::fs::read_dir(env.root().join("imago/layers"))
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name() != "MODE")
                .count();
            let want = usize::from(user != User::Root);
            assert_eq!(own_layers, want, "{who} layers unpacked in the own store");

            // Detached: the monitor (irun run again) finds the shared store too.
            let id = with_shared(&env, "irun", how, &ro)
                .args(["-d", IMAGE, "sh", "-c", "echo started; sleep 60"])
                .ok()
                .stdout();
            let id = id.trim();
            let started = imago_it::eventually(20, || {
                env.cmd("ictr")
                    .args(["logs", id])
                    .run()
                    .stdout()
                    .contains("started")
            });
            env.cmd("ictr").args(["rm", "-f", id]).ok();
            assert!(started, "{who} the detached container did not start");

            let ls = with_shared(&env, "iimage", how, &ro)
                .arg("ls")
                .ok()
                .stdout();
            assert!(
                ls.lines()
                    .any(|l| l.starts_with("site/bb ") && l.contains(" 1 ")),
                "{who} not listed:\n{ls}"
            );

            let ctx = env.mkdir("ctx");
            env.write("ctx/hello.txt", "built on the shared image\n");
            env.write(
                "ctx/Dockerfile",
                format!("FROM {IMAGE}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n"),
            );
            with_shared(&env, "ibuild", how, &ro)
                .args(["-t", "mine"])
                .arg(&ctx)
                .ok();
            // The built image is whole in the user's own store: it runs without the
            // shared store.
            let out = env
                .cmd("irun")
                .args(["--rm", "mine", "cat", "/hello.txt"])
                .ok();
            assert_eq!(out.stdout(), "built on the shared image\n", "{who} {out}");

            with_shared(&env, "iimage", how, &ro)
                .args(["rm", IMAGE])
                .run()
                .code_is(125)
                .fails_with("is in the shared read-only store");
            // prune -a leaves it alone (it removes only the user's own images).
            with_shared(&env, "iimage", how, &ro)
                .args(["prune", "-a"])
                .ok();
            // Still there.
            with_shared(&env, "irun", how, &ro)
                .args(["--rm", IMAGE, "true"])
                .ok();
        }
    }
    assert!(listing(&filled) == before, "the shared store changed");
}

#[test]
fn a_shared_store_that_is_not_a_store_is_named_in_the_error() {
    for user in users() {
        let env = Env::new(user);
        let nothing = env.mkdir("not-a-store");
        env.cmd("iimage")
            .arg("ls")
            .env("IMAGO_ADDITIONAL_STORES", &nothing)
            .run()
            .fails_with("IMAGO_ADDITIONAL_STORES");
        env.cmd("iimage")
            .args(["ls", "--additional-store", "relative/dir"])
            .run()
            .fails_with("not an imago store");
    }
}
