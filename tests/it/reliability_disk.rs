//! Full disk: a store on a small tmpfs (mounted by the test, as root, and given to the
//! user). A pull, a load and a build that run out of space there must fail with a
//! message that names the store and says the disk is full; the store must stay
//! consistent (fsck, names kept); once the tmpfs is made bigger the same command works.
//! Runs rotate over `users()` and the three commands; `IMAGO_CAMPAIGN_RUNS` × 0.4 runs
//! (20 for 50), default 3. Prints `CAMPAIGN scenario=enospc …`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use imago_it::{users, Cmd, Env, Scratch, User};

use crate::registry_support::{have, Auth, Registry};
use crate::reliability_support::{big_tar, check_after, names, runs, say, Rng, Tally};

/// The random payload: more than the small file system holds.
const BIG_MIB: usize = 12;
/// The small file system.
const SMALL: &str = "size=9m";
/// The same one made big enough, as "space was freed".
const LARGE: &str = "size=96m";

/// A tmpfs mounted at `dir`, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(dir: &Path, opts: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "imago-enospc"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", dir.display());
        Mount(dir.to_owned())
    }

    fn resize(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {}", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazy: a process of the test user may still hold a file there for a moment.
        // A failed umount is ignored: the test's result is decided, and a tmpfs left
        // mounted holds only memory the scratch dir's removal cannot free.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Which command fills the disk.
#[derive(Clone, Copy, Debug)]
enum Fill {
    Pull,
    Load,
    Build,
}

fn small_cmd(env: &Env, root: &Path, fill: Fill, image: &str) -> Cmd {
    let c = match fill {
        Fill::Pull => env.cmd("ipull").arg(image),
        Fill::Load => env
            .cmd("iimage")
            .args(["load", "-q", "-i"])
            .arg(env.path("big-archive.tar")),
        Fill::Build => {
            let mut c = env
                .cmd("ibuild")
                .args(["-t", "filled"])
                .arg(env.path("ctx"));
            c.command().current_dir(env.path("ctx"));
            c
        }
    };
    c.env("IMAGO_ROOT", root)
}

#[test]
fn enospc() {
    let name = "enospc";
    if !imago_it::running_as_root() {
        imago_it::skip("the full-disk test mounts a tmpfs: run it as root");
        return;
    }
    if !have("docker-registry") {
        imago_it::skip("docker-registry is not installed (scripts/setup-host.sh)");
        return;
    }
    let mut rng = Rng::new(name);
    let mut tally = Tally::new(name);
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    let image = format!("{}/full/big:1", reg.addr);
    let seed = Env::new(User::Root);
    let tar = big_tar(&seed, &mut rng, BIG_MIB);
    seed.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("big")
        .ok();
    seed.cmd("ipush").args(["big", &image]).ok();
    seed.cmd("iimage")
        .args(["save", "-o"])
        .arg(seed.path("big-archive.tar"))
        .arg("big")
        .ok();
    let users = users();
    let envs: Vec<Env> = users.iter().map(|u| Env::new(*u)).collect();
    for env in &envs {
        let archive = env.path("big-archive.tar");
        std::fs::copy(seed.path("big-archive.tar"), &archive).unwrap();
        env.give(&archive);
        crate::ibuild_support::context(
            env,
            "ctx",
            &[(
                "Dockerfile",
                // Fits as a RUN's upper dir; the layer blob made from it does not.
                "FROM busybox\nRUN head -c 4500000 /dev/urandom > /data\n",
            )],
        );
    }
    let fills = [Fill::Pull, Fill::Load, Fill::Build];
    for i in 0..runs(3, 0.4) {
        let env = &envs[i % envs.len()];
        let fill = fills[(i / envs.len() + i) % fills.len()];
        let what = format!("[{}] run {i} ({fill:?})", env.user.name());
        let mnt = Mount::new(&env.path(&format!("small-{i}")), SMALL);
        env.give(&mnt.0);
        let root = mnt.0.join("store");
        // busybox for the build to start from (and every store gets the same start).
        env.cmd("iimage")
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(env.busybox_tar())
            .arg("busybox")
            .env("IMAGO_ROOT", &root)
            .ok();
        let expected = names(&root);
        tally.runs += 1;
        let out = small_cmd(env, &root, fill, &image).run();
        let err = out.stderr();
        if out.output.status.success() {
            tally.fail(format!("{what}: succeeded on a full disk: {out}"));
        } else if !err.contains(&root.display().to_string())
            || !err.to_lowercase().contains("no space left")
        {
            tally.fail(format!(
                "{what}: the message does not name the store `{}` and the full disk: {err}",
                root.display()
            ));
        } else {
            say(&format!("campaign {name} {what}: {}", err.trim()));
        }
        check_after(&mut tally, env, &root, &expected, &format!("{what}, full"));
        mnt.resize(LARGE);
        let again = small_cmd(env, &root, fill, &image).run();
        if !again.output.status.success() {
            tally.fail(format!("{what}: rerun after freeing space: {again}"));
        }
        // gc takes what the failed command left behind.
        let gc = env.cmd("iimage").arg("gc").env("IMAGO_ROOT", &root).run();
        if !gc.output.status.success() {
            tally.fail(format!("{what}: gc: {gc}"));
        }
        check_after(&mut tally, env, &root, &expected, &format!("{what}, rerun"));
    }
    tally.finish();
}
