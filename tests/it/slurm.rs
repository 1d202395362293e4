//! irun under a real one-node Slurm (scripts/slurm-start.sh), as root, imago-sub and
//! imago-nosub: ranks see their Slurm variables, exit codes and signals pass through
//! `srun`, output streams as it is written, `sbatch` jobs run containers, and the
//! network is the host's when no port is published.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::Path;

use imago_it::{bin, eventually, Env};

use crate::slurm_support::{
    batch, each_user, job_ids, job_name, quoted, slurm, spawn_with_vol, srun,
};

#[test]
fn four_ranks_each_see_their_procid() {
    each_user(|env| {
        // 4 tasks on a 2-CPU node: --overcommit, as on a real node with more ranks than cores.
        let out = srun(env, &job_name(env, "procid"))
            .args(["-n4", "--overcommit"])
            .arg(bin("irun"))
            .args(["--rm", "busybox", "sh", "-c", "echo $SLURM_PROCID"])
            .ok();
        let stdout = out.stdout();
        let mut ranks: Vec<&str> = stdout.lines().collect();
        ranks.sort_unstable();
        assert_eq!(ranks, ["0", "1", "2", "3"], "{out}");
    });
}

#[test]
fn exit_codes_pass_through_srun() {
    each_user(|env| {
        let name = job_name(env, "exit");
        let run = |script: &str| {
            srun(env, &name)
                .arg("-n1")
                .arg(bin("irun"))
                .args(["--rm", "busybox", "sh", "-c", script])
                .run()
        };
        run("exit 3").code_is(3);
        // killed by SIGKILL inside the container: irun's 128+9, which srun hands on
        run("kill -9 $$").code_is(137);
        run("true").code_is(0);
    });
}

#[test]
fn scancel_signals_reach_the_containers_command() {
    each_user(|env| {
        let name = job_name(env, "signal");
        // USR1 is noted and the command goes on; TERM ends it with 7.
        let script = "trap 'echo usr1 >> /vol/got' USR1; \
                      trap 'echo term >> /vol/got; exit 7' TERM; \
                      touch /vol/started; \
                      i=0; while [ $i -lt 1200 ]; do sleep 0.1 & wait; i=$((i+1)); done";
        let (mut child, vol) = spawn_with_vol(env, &name, script);
        let started = eventually(60, || vol.join("started").exists());
        let ids = job_ids(env, &name);
        if !started || ids.len() != 1 {
            // Best effort: the job ends by its time limit anyway.
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "[{}] container did not start (jobs {ids:?}): {}{}",
                env.user.name(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let got = || std::fs::read_to_string(vol.join("got")).unwrap_or_default();
        slurm(env, "scancel").args(["-s", "USR1", &ids[0]]).ok();
        assert!(
            eventually(30, || got().contains("usr1")),
            "[{}] USR1 from scancel did not reach the command: {:?}",
            env.user.name(),
            got()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "[{}] USR1 ended the job",
            env.user.name()
        );
        slurm(env, "scancel").arg(&ids[0]).ok();
        let child = RefCell::new(child);
        assert!(
            eventually(60, || child.borrow_mut().try_wait().unwrap().is_some()),
            "[{}] the job did not end after scancel",
            env.user.name()
        );
        let out = child.into_inner().wait_with_output().unwrap();
        // scancel signals every process of the step: irun and the container's init, which
        // both hand the signal on, and the command itself (Slurm tracks the container's
        // processes as irun's descendants). Deliveries may merge, so a trap runs one to
        // three times.
        let got = got();
        let lines: Vec<&str> = got.lines().collect();
        let usr1 = lines.iter().take_while(|l| **l == "usr1").count();
        let term = lines[usr1..].iter().take_while(|l| **l == "term").count();
        assert!(
            (1..=3).contains(&usr1) && (1..=3).contains(&term) && usr1 + term == lines.len(),
            "[{}] TERM from scancel did not reach the command: {got:?} {}",
            env.user.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

#[test]
fn output_streams_before_the_container_ends() {
    each_user(|env| {
        // The second line waits for a file the test makes only once it has read the first:
        // a first line held back would come only after the loop's bound, with "late".
        let script = "echo first; i=0; \
                      while [ ! -e /vol/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
                      if [ -e /vol/go ]; then echo second; else echo late; fi";
        let (mut child, vol) = spawn_with_vol(env, &job_name(env, "stream"), script);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().map(Result::unwrap);
        let running = child.try_wait().unwrap().is_none();
        std::fs::write(vol.join("go"), "").unwrap();
        let rest: Vec<String> = lines.map(Result::unwrap).collect();
        let status = child.wait().unwrap();
        assert_eq!(first.as_deref(), Some("first"), "[{}]", env.user.name());
        assert!(
            running,
            "[{}] the first line came only when the job ended",
            env.user.name()
        );
        assert_eq!(rest, ["second"], "[{}]", env.user.name());
        assert!(status.success(), "[{}] {status}", env.user.name());
    });
}

/// A batch job named `test` runs `irun IMAGE` of the "cfg" image with `store` as its
/// store: the image's config applies (its Env and WorkingDir, so this is the
/// container), and the command's exit code is the job's.
fn batch_runs_cfg(env: &Env, test: &str, store: &Path, image: &str) {
    let body = format!(
        "IMAGO_ROOT={} {} --rm -u 0 {image} sh -c 'echo \"$FOO $(pwd)\"; exit 4'",
        quoted(store),
        quoted(&bin("irun"))
    );
    let (out, log) = batch(env, test, &body);
    assert_eq!(out.code(), Some(4), "{out}\n--- job output\n{log}");
    assert_eq!(log, "from-image /app/sub\n", "{out}");
}

#[test]
fn sbatch_job_runs_a_container() {
    each_user(|env| batch_runs_cfg(env, "batch", &env.root(), "cfg"));
}

#[test]
fn sbatch_job_runs_a_sqsh_file() {
    each_user(|env| {
        let sqsh = env.path("cfg.sqsh");
        env.cmd("iimage")
            .args(["squash", "cfg", "-o"])
            .arg(&sqsh)
            .ok();
        // The job's store is empty: the image comes from the file alone, as on a node
        // that has only the shared file system.
        let node_store = env.mkdir("node-store");
        batch_runs_cfg(env, "sqsh", &node_store, &quoted(&sqsh));
    });
}

#[test]
fn network_is_the_hosts_without_published_ports() {
    each_user(|env| {
        let name = job_name(env, "net");
        let netns = |irun_args: &[&str]| {
            let out = srun(env, &name)
                .arg("-n1")
                .arg(bin("irun"))
                .args(irun_args)
                .args(["busybox", "readlink", "/proc/self/ns/net"])
                .ok();
            out.stdout().trim().to_owned()
        };
        // the namespace a plain task of the same step shape has
        let task = srun(env, &name)
            .args(["-n1", "readlink", "/proc/self/ns/net"])
            .ok();
        let host = task.stdout().trim().to_owned();
        assert!(host.starts_with("net:["), "{task}");
        assert_eq!(
            netns(&["--rm"]),
            host,
            "[{}] default network",
            env.user.name()
        );
        // the control: an explicit private network is not the host's
        assert_ne!(
            netns(&["--rm", "--network", "none"]),
            host,
            "[{}] --network none",
            env.user.name()
        );
    });
}
