//! Helpers for the Slurm tests: whether the one-node cluster of scripts/slurm-start.sh is
//! up, and `srun`/`sbatch`/`squeue`/`scancel` commands run as a test user with a bound on
//! every wait. Never starts or stops the cluster (scripts/test.sh starts it as root).

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use imago_it::{have, skip, users, Cmd, Env, Out};

use crate::irun_support::setup_store;

/// Slurm's own limit on every test job, in minutes: a job a failed test leaves behind
/// ends by itself.
const JOB_MINUTES: &str = "5";
/// The test's bound on one `srun`/`sbatch --wait`, in seconds (a hang, not a speed check).
const WAIT_SECS: &str = "180";

/// Whether the cluster answers and its node takes jobs; skips (a failure in CI) if not.
fn cluster_up() -> bool {
    if !have("srun") || !have("sinfo") {
        skip("Slurm is not installed: scripts/setup-host.sh installs slurm-wlm and munge");
        return false;
    }
    let state = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match state.as_deref() {
        Some("idle" | "mixed" | "allocated" | "completing") => true,
        other => {
            skip(&format!(
                "no Slurm cluster up (node state {other:?}): run scripts/slurm-start.sh as root"
            ));
            false
        }
    }
}

/// Run `test` once per user of [`users`], each with the irun test images in a store of
/// its own; nothing (a skip) when the cluster is not up.
pub fn each_user(test: impl Fn(&Env)) {
    if !cluster_up() {
        return;
    }
    for u in users() {
        let env = Env::new(u);
        setup_store(&env);
        test(&env);
    }
}

/// A Slurm client program as the env's user. srun and sbatch hand the caller's whole
/// environment (`IMAGO_ROOT`, `HOME`) to the job; the runtime dir the harness gives
/// peers' tools is dropped, as on a cluster's login node.
pub fn slurm(env: &Env, program: &str) -> Cmd {
    let mut c = env.cmd_path(program);
    c.command().env_remove("XDG_RUNTIME_DIR");
    c
}

/// A job name unique to this test process, test and user (for `squeue -n`).
pub fn job_name(env: &Env, test: &str) -> String {
    format!("imago-it-{}-{test}-{}", std::process::id(), env.user.name())
}

/// `srun` with a job name and Slurm's time limit, bounded by `timeout`; the job's
/// working dir is the user's scratch dir (the harness's cwd), one the user can enter.
pub fn srun(env: &Env, name: &str) -> Cmd {
    slurm(env, "timeout")
        .args([
            "-k",
            "10",
            WAIT_SECS,
            "srun",
            "-N1",
            "--time",
            JOB_MINUTES,
            "-J",
        ])
        .arg(name)
}

/// `srun -n1 irun --rm -v VOL:/vol busybox sh -c SCRIPT` started in the background,
/// stdout and stderr piped; VOL (the env's dir "vol") is where the test and the
/// container's command meet.
pub fn spawn_with_vol(env: &Env, name: &str, script: &str) -> (Child, PathBuf) {
    let vol = env.mkdir("vol");
    let mut c = srun(env, name)
        .arg("-n1")
        .arg(imago_it::bin("irun"))
        .arg("--rm")
        .arg("-v")
        .arg(format!("{}:/vol", vol.display()))
        .args(["busybox", "sh", "-c", script]);
    let child = c
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, vol)
}

/// A batch job of `body` (shell lines), run with `sbatch --wait` (bounded by
/// `timeout`) from the user's scratch dir: the sbatch run and the job's output.
pub fn batch(env: &Env, test: &str, body: &str) -> (Out, String) {
    let script = env.write(&format!("{test}.sh"), format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = env.path(&format!("{test}.out"));
    let out = slurm(env, "timeout")
        .args(["-k", "10", WAIT_SECS, "sbatch", "--wait", "-N1", "-n1"])
        .args(["--time", JOB_MINUTES, "-J", &job_name(env, test), "-o"])
        .arg(&log)
        .arg(&script)
        .run();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (out, log)
}

/// The ids of the env's jobs named `name` that are still known to slurmctld.
pub fn job_ids(env: &Env, name: &str) -> Vec<String> {
    let out = slurm(env, "squeue")
        .args(["-h", "-o", "%A", "-n", name])
        .ok();
    out.stdout().lines().map(str::to_owned).collect()
}

/// `path` in single quotes for a job script (test paths hold no quote).
pub fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}
