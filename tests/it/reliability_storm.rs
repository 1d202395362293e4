//! The storm: 8 processes started at once on one store — two builds of different
//! Dockerfiles, two pulls of one image, two itags, an `iimage rm` and an `iimage gc`.
//! Each must succeed or fail with a clear "busy"/"in use" error; afterwards fsck is
//! clean, every name a successful command made is there (no lost tags), the built and
//! pulled images run (gc deleted nothing they use). Storms rotate over `users()`;
//! `IMAGO_CAMPAIGN_RUNS` × 0.4 storms (20 for 50), default 2. Prints
//! `CAMPAIGN scenario=storm …`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use imago_it::{users, Cmd, Env, Scratch, User};

use crate::registry_support::{have, Auth, Registry};
use crate::reliability_support::{big_tar, check_after, names, runs, say, Rng, Tally};

/// What a process of the storm did, and the name it makes or removes.
enum Job {
    Build(String),
    Pull,
    Tag(String),
    Rm,
    Gc,
}

fn build(env: &Env, k: usize, tag: &str) -> Cmd {
    let dir = env.path(&format!("ctx{k}"));
    let mut c = env.cmd("ibuild").args(["-t", tag]).arg(&dir);
    c.command().current_dir(&dir);
    c
}

/// A failure the storm allows: the store said it is busy or in use.
fn clear_busy(stderr: &str) -> bool {
    let s = stderr.to_lowercase();
    s.contains("busy") || s.contains("in use")
}

#[test]
fn storm() {
    let name = "storm";
    if !have("docker-registry") {
        imago_it::skip("docker-registry is not installed (scripts/setup-host.sh)");
        return;
    }
    let mut rng = Rng::new(name);
    let mut tally = Tally::new(name);
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    let image = format!("{}/storm/big:1", reg.addr);
    let seed = Env::new(User::Root);
    let tar = big_tar(&seed, &mut rng, 6);
    seed.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("big")
        .ok();
    seed.cmd("ipush").args(["big", &image]).ok();
    let users = users();
    for s in 0..runs(2, 0.4) {
        let env = Env::new(users[s % users.len()]);
        let what = format!("[{}] storm {s}", env.user.name());
        env.cmd("iimage")
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(env.busybox_tar())
            .arg("busybox")
            .ok();
        env.cmd("iimage")
            .args(["import", "--change", "LABEL storm=rm"])
            .arg(env.busybox_tar())
            .arg("rmme")
            .ok();
        for k in 0..2 {
            crate::ibuild_support::context(
                &env,
                &format!("ctx{k}"),
                &[(
                    "Dockerfile",
                    &format!(
                        "FROM busybox\nRUN head -c {} /dev/urandom > /data{k} && echo {k} > /id\n",
                        1_000_000 * (k + 1)
                    ),
                )],
            );
        }
        let before = names(&env.root());
        let jobs = [
            (
                Job::Build(format!("built{s}-0")),
                build(&env, 0, &format!("built{s}-0")),
            ),
            (
                Job::Build(format!("built{s}-1")),
                build(&env, 1, &format!("built{s}-1")),
            ),
            (Job::Pull, env.cmd("ipull").arg(&image)),
            (Job::Pull, env.cmd("ipull").arg(&image)),
            (
                Job::Tag(format!("t{s}-0")),
                env.cmd("itag").args(["busybox", &format!("t{s}-0")]),
            ),
            (
                Job::Tag(format!("t{s}-1")),
                env.cmd("itag").args(["busybox", &format!("t{s}-1")]),
            ),
            (Job::Rm, env.cmd("iimage").args(["rm", "rmme"])),
            (Job::Gc, env.cmd("iimage").arg("gc")),
        ];
        tally.runs += 1;
        let start = Instant::now();
        let running: Vec<(Job, std::process::Child)> = jobs
            .into_iter()
            .map(|(j, mut c)| {
                c.command()
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                (j, c.command().spawn().expect("spawn"))
            })
            .collect();
        let mut expected: BTreeSet<String> = before.clone();
        expected.remove("rmme");
        let mut rm_done = false;
        let (mut succeeded, mut busy) = (0, 0);
        for (job, child) in running {
            let out = child.wait_with_output().expect("wait");
            let ok = out.status.success();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            if !ok && !clear_busy(&err) {
                tally.fail(format!(
                    "{what}: a command failed without a busy/in-use error: {err}"
                ));
                continue;
            }
            if ok {
                succeeded += 1;
            } else {
                busy += 1;
            }
            match (job, ok) {
                (Job::Build(t), true) | (Job::Tag(t), true) => {
                    expected.insert(t);
                }
                (Job::Pull, true) => {
                    expected.insert(image.clone());
                }
                (Job::Rm, true) => rm_done = true,
                _ => {}
            }
        }
        say(&format!(
            "campaign {name} {what}: {succeeded} succeeded, {busy} refused as busy, in {:?}",
            start.elapsed()
        ));
        if start.elapsed() > Duration::from_secs(600) {
            tally.fail(format!("{what}: took {:?}", start.elapsed()));
        }
        check_after(&mut tally, &env, &env.root(), &expected, &what);
        if rm_done && names(&env.root()).contains("rmme") {
            tally.fail(format!("{what}: rm succeeded but rmme is still there"));
        }
        // gc deleted nothing the others used: what they made runs.
        for img in expected
            .iter()
            .filter(|n| n.starts_with("built") || **n == image)
        {
            let out = env.cmd("irun").args(["--rm", img, "true"]).run();
            if !out.output.status.success() {
                tally.lose(
                    1,
                    format!("{what}: {img} does not run after the storm: {out}"),
                );
            }
        }
        let gc = env.cmd("iimage").arg("gc").run();
        if !gc.output.status.success() {
            tally.fail(format!("{what}: gc after the storm: {gc}"));
        }
        check_after(
            &mut tally,
            &env,
            &env.root(),
            &expected,
            &format!("{what}, after gc"),
        );
    }
    tally.finish();
}
