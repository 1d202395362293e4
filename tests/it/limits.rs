//! Resource limits: `irun --pids-limit/--memory/--cpus`, also with `-d` (they bite as
//! root on this cgroup v1 host; anyone without a writable cgroup gets exit 125 saying
//! why), the default bound on a build's processes (a RUN that forks without end stops
//! at "can't fork"), and a RUN that fills the disk (fails clearly, the store stays
//! intact, the next build works). The fork bomb and the disk filler print `CAMPAIGN scenario=…`.
//! Every fork loop is bounded by itself (a fixed count of short sleeps), so a broken
//! limit cannot hurt the machine.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::path::{Path, PathBuf};
use std::process::Command;

use imago_it::{users, Env, Out, User};

use crate::ictr_support::Ctr;
use crate::irun_support::setup_store;
use crate::reliability_support::{check_after, names, runs, Tally};

/// A shell loop that forks `n` short sleeps: more than the limits below allow.
fn fork_loop(n: u32) -> String {
    format!("i=0; while [ $i -lt {n} ]; do sleep 2 & i=$((i+1)); done; wait; echo loop-done")
}

/// A command that takes 64 MiB at once: killed under `--memory 32m`, fine without.
const MEMORY_HOG: [&str; 6] = [
    "busybox",
    "dd",
    "if=/dev/zero",
    "of=/dev/null",
    "bs=64M",
    "count=1",
];

fn cgroup_v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn irun(env: &Env, args: &[&str]) -> Out {
    env.cmd("irun").args(args).run()
}

#[test]
fn irun_limits_bite_as_root_and_explain_elsewhere() {
    for u in users() {
        let env = Env::new(u);
        setup_store(&env);
        let loop50 = fork_loop(50);
        let pids = irun(
            &env,
            &["--rm", "--pids-limit", "20", "busybox", "sh", "-c", &loop50],
        );
        if u == User::Root {
            assert!(
                pids.stderr().contains("can't fork"),
                "[root] 50 forks under --pids-limit 20: {pids}"
            );
            let hog = irun(
                &env,
                &[&["--rm", "--memory", "32m"][..], &MEMORY_HOG].concat(),
            );
            hog.code_is(137);
            // The same hog without a limit runs (the limit, not the hog, killed it).
            irun(&env, &[&["--rm"][..], &MEMORY_HOG].concat()).success();
            irun(&env, &["--rm", "--cpus", "0.5", "busybox", "true"]).success();
        } else if !cgroup_v2_host() {
            let out = pids.code_is(125);
            assert!(
                out.stderr().contains("need a cgroup you may write")
                    && out.stderr().contains("cgroup v1")
                    && out.stderr().contains("Delegate=yes"),
                "[{}] {out}",
                u.name()
            );
        }
        // Bad values are refused before anything runs; no flag needs no cgroup.
        irun(&env, &["--rm", "--memory", "1k", "busybox", "true"])
            .code_is(125)
            .fails_with("invalid --memory");
        irun(&env, &["--rm", "--cpus", "0", "busybox", "true"])
            .code_is(125)
            .fails_with("invalid --cpus");
        irun(&env, &["--rm", "--pids-limit", "-1", "busybox", "true"]).success();
        irun(&env, &["--rm", "busybox", "true"]).success();
    }
    // No run left a cgroup behind: every `imago-<pid>` belongs to a live process
    // (another test's run).
    for ctrl in ["pids", "memory", "cpu"] {
        let dir = Path::new("/sys/fs/cgroup").join(ctrl);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("imago-") {
                assert!(
                    Path::new("/proc").join(pid).exists(),
                    "cgroup {name} of a gone process left in {ctrl}"
                );
            }
        }
    }
}

/// A build context with one Dockerfile, given to the user.
fn context(env: &Env, dir: &str, dockerfile: &str) -> PathBuf {
    crate::ibuild_support::context(env, dir, &[("Dockerfile", dockerfile)])
}

fn ibuild(env: &Env, root: &Path, tag: &str, ctx: &Path) -> Out {
    let mut c = env
        .cmd("ibuild")
        .args(["--progress", "plain", "-t", tag])
        .arg(ctx)
        .env("IMAGO_ROOT", root);
    c.command().current_dir(ctx);
    c.run()
}

fn import_busybox(env: &Env, root: &Path) {
    env.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(env.busybox_tar())
        .arg("busybox")
        .env("IMAGO_ROOT", root)
        .ok();
}

/// `irun -d` with limits: the detached container's monitor puts it in the cgroup, at
/// its first start and again at `ictr start`; without a writable cgroup `irun -d` fails
/// as the foreground run does, and no container is left.
#[test]
fn detached_containers_get_their_limits_at_every_start() {
    for u in users() {
        let who = u.name();
        // Its drop removes every container of the store, passed or failed.
        let t = Ctr::new(u);
        let loop50 = fork_loop(50);
        let started = t.irun(&[
            "-d",
            "--name",
            "lim",
            "--pids-limit",
            "20",
            "busybox",
            "sh",
            "-c",
            &loop50,
        ]);
        if u != User::Root {
            if !cgroup_v2_host() {
                let out = started.code_is(125);
                assert!(
                    out.stderr().contains("need a cgroup you may write"),
                    "[{who}] {out}"
                );
                let left = t.ictr(&["ps", "-aq"]).success();
                assert!(left.stdout().trim().is_empty(), "[{who}] {left}");
            }
            continue;
        }
        started.success();
        // The log keeps every start's output: each start must add refused forks.
        let mut refused_before = 0;
        for round in ["first start", "ictr start"] {
            // busybox sh gives up (exit 2) at the first fork the limit refuses.
            t.ictr_bounded(&["wait", "lim"]).success();
            let logs = t.ictr(&["logs", "lim"]).success();
            let forks_refused = logs.stdout().matches("can't fork").count()
                + logs.stderr().matches("can't fork").count();
            assert!(
                forks_refused > refused_before,
                "[{who}] {round}: 50 forks under --pids-limit 20: {logs}"
            );
            refused_before = forks_refused;
            if round == "first start" {
                t.ictr(&["start", "lim"]).success();
            }
        }
        // The memory limit of a detached container kills its hog.
        t.irun(&[&["-d", "--name", "hog", "--memory", "32m"][..], &MEMORY_HOG].concat())
            .success();
        let hog = t.ictr_bounded(&["wait", "hog"]).success();
        assert_eq!(hog.stdout().trim(), "137", "[{who}] {hog}");
    }
}

#[test]
fn build_fork_bomb_is_bounded() {
    let mut tally = Tally::new("fork-bomb");
    for u in users() {
        let env = Env::new(u);
        let root = env.path("store");
        import_busybox(&env, &root);
        let before = names(&root);
        let bomb = context(
            &env,
            "bomb",
            &format!("FROM busybox\nRUN {}\n", fork_loop(120)),
        );
        let after = context(&env, "after", "FROM busybox\nRUN echo fine > /ok\n");
        for i in 0..runs(2, 0.04) {
            tally.runs += 1;
            let what = format!("[{}] run {i}", u.name());
            // A low allowance so the bound bites at a count this machine easily holds.
            let mut c = env
                .cmd("ibuild")
                .args(["--progress", "plain", "--no-cache", "-t", "bomb"])
                .arg(&bomb)
                .env("IMAGO_ROOT", &root)
                .env("IMAGO_BUILD_PIDS", "40");
            c.command().current_dir(&bomb);
            let out = c.run();
            let text = format!("{}{}", out.stdout(), out.stderr());
            if !text.contains("can't fork") {
                tally.fail(format!(
                    "{what}: 120 forks under a bound of 40 all ran: {out}"
                ));
            }
            check_after(&mut tally, &env, &root, &before, &what);
            // The machine and the store still work.
            let next = ibuild(&env, &root, "after", &after);
            if next.code() != Some(0) {
                tally.fail(format!("{what}: the build after the bomb failed: {next}"));
            }
        }
    }
    tally.finish();
}

/// A tmpfs of `size` at `dir`, lazily unmounted on drop.
struct SmallFs(PathBuf);

impl SmallFs {
    fn new(dir: &Path, size: &str) -> SmallFs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "imago-filler"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", dir.display());
        SmallFs(dir.to_owned())
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazy: a process of the test user may hold a file there for a moment.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn build_disk_filler_fails_clearly_and_keeps_the_store() {
    if !imago_it::running_as_root() {
        imago_it::skip("the disk filler mounts a small tmpfs: run it as root");
        return;
    }
    let mut tally = Tally::new("disk-filler");
    for u in users() {
        let env = Env::new(u);
        let fill = context(
            &env,
            "fill",
            "FROM busybox\nRUN dd if=/dev/zero of=/fill bs=1M count=200\n",
        );
        let after = context(&env, "after", "FROM busybox\nRUN echo fine > /ok\n");
        for i in 0..runs(2, 0.04) {
            tally.runs += 1;
            let what = format!("[{}] run {i}", u.name());
            let fs = SmallFs::new(&env.path(&format!("small-{i}")), "40m");
            env.give(&fs.0);
            let root = fs.0.join("store");
            import_busybox(&env, &root);
            let before = names(&root);
            let out = ibuild(&env, &root, "filled", &fill);
            let text = format!("{}{}", out.stdout(), out.stderr());
            if out.code() == Some(0) || !text.contains("No space left on device") {
                tally.fail(format!(
                    "{what}: the filler did not fail with ENOSPC: {out}"
                ));
            }
            check_after(&mut tally, &env, &root, &before, &what);
            // The failed step's scratch is gone: the next build fits again.
            let next = ibuild(&env, &root, "after", &after);
            if next.code() != Some(0) {
                tally.fail(format!("{what}: the build after the filler failed: {next}"));
            }
        }
    }
    tally.finish();
}
