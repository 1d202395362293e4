//! The crash campaign: each program that writes the store (ibuild, ipull, ipush,
//! `iimage load`, `iimage rm`, `iimage gc`, itag, irun's create and a detached
//! container's monitor) is started and killed with SIGKILL at a random moment within its
//! measured duration; then `iimage fsck` and our own walk of the store must be clean, no
//! name may be lost, the rerun must succeed, and after `iimage gc` no debris of the
//! killed process is left. Runs rotate over `users()` (root, imago-sub, imago-nosub).
//! `IMAGO_CAMPAIGN_RUNS` sets the kills per command (default 3, one per user);
//! `IMAGO_CAMPAIGN_SEED` replays a run. Each scenario prints its `CAMPAIGN` line
//! (reliability_support.rs); the full disk and the storm are in reliability_disk.rs and
//! reliability_storm.rs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use imago_it::{users, Cmd, Env, Scratch, User};

use crate::registry_support::{have, Registry};
use crate::reliability_support::{
    big_tar, check_after, kill_after, kill_pid, names, runs, say, temp_debris, timed, Rng, Tally,
};

/// Kills per command in CI (one per user).
const CI_RUNS: usize = 3;
/// The big image's random file: big enough that a kill lands inside a transfer.
const BIG_MIB: usize = 8;

/// One command under test.
struct Crash<'a> {
    name: &'static str,
    /// Once per user: images and files the runs need.
    setup: &'a dyn Fn(&Env, &mut Rng),
    /// Before each run (never killed): give the command work to do.
    prepare: &'a dyn Fn(&Env, usize),
    /// The command killed in run `i`.
    command: &'a dyn Fn(&Env, usize) -> Cmd,
    /// After the kill and the store check: run again and check what it made.
    rerun: &'a dyn Fn(&Env, usize) -> Result<(), String>,
    /// Names a successful rerun of run `i` adds, which must stay.
    adds: &'a dyn Fn(usize) -> Vec<String>,
}

/// Run `cmd`; Err with its output unless it succeeded.
fn ok(cmd: Cmd) -> Result<imago_it::Out, String> {
    let out = cmd.run();
    if out.output.status.success() {
        Ok(out)
    } else {
        Err(out.to_string())
    }
}

fn has_name(env: &Env, name: &str) -> Result<(), String> {
    if names(&env.root()).contains(name) {
        Ok(())
    } else {
        Err(format!("`{name}` is not in the store after the rerun"))
    }
}

/// Remove every container of the env's user (what a killed irun leaves is a record).
fn remove_containers(env: &Env) -> Result<(), String> {
    let ids = ok(env.cmd("ictr").args(["ps", "-aq", "--no-trunc"]))?;
    let ids: Vec<String> = ids.stdout().lines().map(str::to_owned).collect();
    if !ids.is_empty() {
        ok(env.cmd("ictr").args(["rm", "-f"]).args(&ids))?;
    }
    Ok(())
}

/// After the run: the store must be whole (`what` labels the findings), the names kept;
/// then the rerun, then gc must leave no debris.
fn after_kill(
    tally: &mut Tally,
    env: &Env,
    expected: &mut BTreeSet<String>,
    what: &str,
    rerun: impl FnOnce() -> Result<(), String>,
    adds: Vec<String>,
) {
    let root = env.root();
    check_after(
        tally,
        env,
        &root,
        expected,
        &format!("{what}, after the kill"),
    );
    match rerun() {
        Ok(()) => expected.extend(adds),
        Err(e) => tally.fail(format!("{what}: rerun failed: {e}")),
    }
    if let Err(e) = ok(env.cmd("iimage").arg("gc")) {
        tally.fail(format!("{what}: gc after the rerun: {e}"));
    }
    let debris = temp_debris(env, &root);
    if debris != 0 {
        let left: Vec<String> = std::fs::read_dir(root.join("imago/tmp"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        tally.fail(format!(
            "{what}: {debris} temp entries left after gc: {left:?}"
        ));
    }
    check_after(
        tally,
        env,
        &root,
        expected,
        &format!("{what}, after the rerun"),
    );
}

/// The campaign for one command; see the module doc.
fn campaign(c: Crash) {
    let mut rng = Rng::new(c.name);
    let mut tally = Tally::new(c.name);
    let users = users();
    let n = runs(CI_RUNS, 1.0);
    // Per user: env, measured duration, names that must stay.
    let mut slots: Vec<Option<(Env, Duration, BTreeSet<String>)>> =
        users.iter().map(|_| None).collect();
    for i in 0..n {
        let k = i % users.len();
        if slots[k].is_none() {
            let env = Env::new(users[k]);
            (c.setup)(&env, &mut rng);
            (c.prepare)(&env, i + 100_000);
            let (out, took) = timed((c.command)(&env, i + 100_000));
            assert!(out.output.status.success(), "{}: measure: {out}", c.name);
            remove_containers(&env).unwrap();
            say(&format!(
                "campaign {} [{}]: one run takes {took:?}",
                c.name,
                users[k].name()
            ));
            let expected = names(&env.root());
            slots[k] = Some((env, took, expected));
        }
        let (env, took, expected) = slots[k].as_mut().unwrap();
        (c.prepare)(env, i);
        // What the preparation removed on purpose is no longer expected.
        let now = names(&env.root());
        expected.retain(|n| now.contains(n));
        let delay = Duration::from_micros(rng.below(took.as_micros() as u64));
        tally.runs += 1;
        if kill_after((c.command)(env, i), delay) {
            tally.mid_run += 1;
        }
        let what = format!("[{}] run {i} killed after {delay:?}", env.user.name());
        after_kill(
            &mut tally,
            env,
            expected,
            &what,
            || (c.rerun)(env, i),
            (c.adds)(i),
        );
    }
    tally.finish();
}

fn nothing(_: &Env, _: usize) {}
fn no_names(_: usize) -> Vec<String> {
    Vec::new()
}

fn setup_busybox(env: &Env, _: &mut Rng) {
    env.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(env.busybox_tar())
        .arg("busybox")
        .ok();
}

/// busybox plus `big` (busybox with BIG_MIB MiB of random bytes).
fn setup_big(env: &Env, rng: &mut Rng) {
    setup_busybox(env, rng);
    let tar = big_tar(env, rng, BIG_MIB);
    env.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("big")
        .ok();
}

fn big_tar_path(env: &Env) -> PathBuf {
    env.path(&format!("big-{BIG_MIB}.tar"))
}

#[test]
fn crash_ibuild() {
    campaign(Crash {
        name: "crash-ibuild",
        setup: &|env, rng| {
            setup_busybox(env, rng);
            crate::ibuild_support::context(
                env,
                "ctx",
                &[(
                    "Dockerfile",
                    "FROM busybox\nARG N\nRUN head -c 4000000 /dev/urandom > /data && echo $N > /n\n",
                )],
            );
        },
        prepare: &nothing,
        command: &|env, i| build(env, i),
        rerun: &|env, i| {
            ok(build(env, i))?;
            has_name(env, &format!("built:{i}"))
        },
        adds: &|i| vec![format!("built:{i}")],
    });
}

fn build(env: &Env, i: usize) -> Cmd {
    let mut c = env
        .cmd("ibuild")
        .args([
            "-t",
            &format!("built:{i}"),
            "--build-arg",
            &format!("N={i}"),
        ])
        .arg(env.path("ctx"));
    c.command().current_dir(env.path("ctx"));
    c
}

/// A registry holding `camp/big:1` (the big image), pushed by root.
fn registry_with_big(base: &Scratch, rng: &mut Rng) -> Option<(Registry, String)> {
    if !have("docker-registry") {
        imago_it::skip("docker-registry is not installed (scripts/setup-host.sh)");
        return None;
    }
    let reg = Registry::start(
        &base.path().join("reg"),
        crate::registry_support::Auth::None,
        None,
    );
    let seed = Env::new(User::Root);
    setup_big(&seed, rng);
    let name = format!("{}/camp/big:1", reg.addr);
    ok(seed.cmd("ipush").args(["big", &name])).unwrap();
    Some((reg, name))
}

#[test]
fn crash_ipull() {
    let base = Scratch::new(User::Root);
    let mut rng = Rng::new("crash-ipull-registry");
    let Some((_reg, image)) = registry_with_big(&base, &mut rng) else {
        return;
    };
    let image = image.as_str();
    campaign(Crash {
        name: "crash-ipull",
        setup: &setup_busybox,
        // The image goes (and gc with it), so each pull downloads it again.
        prepare: &|env, _| {
            // Absent after a kill before the name was written: nothing to remove.
            let _ = env.cmd("iimage").args(["rm", image]).run();
        },
        command: &|env, _| env.cmd("ipull").arg(image),
        rerun: &|env, _| {
            ok(env.cmd("ipull").arg(image))?;
            has_name(env, image)
        },
        adds: &no_names,
    });
}

#[test]
fn crash_ipush() {
    let base = Scratch::new(User::Root);
    let mut rng = Rng::new("crash-ipush-registry");
    let Some((reg, _)) = registry_with_big(&base, &mut rng) else {
        return;
    };
    let addr = reg.addr.as_str();
    let dest = |env: &Env, i: usize| format!("{addr}/push-{}-{i}/big:1", env.user.name());
    campaign(Crash {
        name: "crash-ipush",
        setup: &setup_big,
        // A new layer each run, so the push uploads it rather than mounting it from
        // another repository of the registry.
        prepare: &|env, i| {
            env.cmd("iimage").arg("prune").ok();
            let tar = big_tar(env, &mut Rng::seeded(i as u64), BIG_MIB);
            env.cmd("iimage")
                .args(["import", "--change", "CMD [\"sh\"]"])
                .arg(&tar)
                .arg("big")
                .ok();
        },
        command: &|env, i| env.cmd("ipush").args(["big", &dest(env, i)]),
        rerun: &|env, i| {
            ok(env.cmd("ipush").args(["big", &dest(env, i)]))?;
            // What the registry has must be whole: pull it into a fresh store.
            let verify = env.mkdir(&format!("verify-{i}"));
            let r = ok(env
                .cmd("ipull")
                .arg(dest(env, i))
                .env("IMAGO_ROOT", verify.join("store")))
            .map(drop);
            // Scratch space only; a leftover goes with the scratch dir.
            let _ = std::fs::remove_dir_all(&verify);
            r
        },
        adds: &no_names,
    });
}

#[test]
fn crash_iimage_load() {
    campaign(Crash {
        name: "crash-iimage-load",
        setup: &|env, rng| {
            setup_big(env, rng);
            env.cmd("iimage")
                .args(["save", "-o"])
                .arg(env.path("big-archive.tar"))
                .arg("big")
                .ok();
        },
        prepare: &|env, _| {
            // Absent after a kill before the name was written: nothing to remove.
            let _ = env.cmd("iimage").args(["rm", "big"]).run();
        },
        command: &|env, _| {
            env.cmd("iimage")
                .args(["load", "-q", "-i"])
                .arg(env.path("big-archive.tar"))
        },
        rerun: &|env, _| {
            ok(env
                .cmd("iimage")
                .args(["load", "-q", "-i"])
                .arg(env.path("big-archive.tar")))?;
            has_name(env, "big")
        },
        adds: &no_names,
    });
}

#[test]
fn crash_iimage_rm() {
    campaign(Crash {
        name: "crash-iimage-rm",
        setup: &setup_big,
        // A named image with unpacked layers: rm untags, deletes and collects them.
        prepare: &|env, _| {
            if !names(&env.root()).contains("rmme") {
                env.cmd("iimage")
                    .args(["import", "--change", "CMD [\"sh\"]"])
                    .arg(big_tar_path(env))
                    .arg("rmme")
                    .ok();
            }
            env.cmd("irun").args(["--rm", "rmme", "true"]).ok();
        },
        command: &|env, _| env.cmd("iimage").args(["rm", "rmme"]),
        rerun: &|env, _| {
            if names(&env.root()).contains("rmme") {
                ok(env.cmd("iimage").args(["rm", "rmme"]))?;
            }
            match names(&env.root()).contains("rmme") {
                true => Err("rmme still there".into()),
                false => Ok(()),
            }
        },
        adds: &no_names,
    });
}

#[test]
fn crash_iimage_gc() {
    campaign(Crash {
        name: "crash-iimage-gc",
        setup: &setup_big,
        // Unpacked layers for `gc --layers` to remove.
        prepare: &|env, _| {
            env.cmd("irun").args(["--rm", "big", "true"]).ok();
        },
        command: &|env, _| env.cmd("iimage").args(["gc", "--layers"]),
        rerun: &|env, _| {
            ok(env.cmd("iimage").args(["gc", "--layers"]))?;
            // What gc left must still run.
            ok(env.cmd("irun").args(["--rm", "big", "true"])).map(drop)
        },
        adds: &no_names,
    });
}

#[test]
fn crash_itag() {
    campaign(Crash {
        name: "crash-itag",
        setup: &setup_busybox,
        prepare: &nothing,
        command: &|env, i| env.cmd("itag").args(["busybox", &format!("tag-{i}")]),
        rerun: &|env, i| {
            ok(env.cmd("itag").args(["busybox", &format!("tag-{i}")]))?;
            has_name(env, &format!("tag-{i}"))
        },
        adds: &|i| vec![format!("tag-{i}")],
    });
}

#[test]
fn crash_irun_create() {
    let run = |env: &Env, i: usize| {
        env.cmd("irun").args([
            "--name",
            &format!("c{i}"),
            "--rm",
            "busybox",
            "sh",
            "-c",
            "head -c 1000000 /dev/urandom > /x",
        ])
    };
    campaign(Crash {
        name: "crash-irun",
        setup: &setup_busybox,
        // Unpacked layers go, so each run unpacks them again.
        prepare: &|env, _| {
            env.cmd("iimage").args(["gc", "--layers"]).ok();
        },
        command: &run,
        rerun: &|env, i| {
            // A killed irun may leave its container's record: the name is taken until
            // it is removed, as in docker.
            remove_containers(env)?;
            ok(run(env, i))?;
            let left = ok(env.cmd("ictr").args(["ps", "-aq"]))?;
            match left.stdout().trim().is_empty() {
                true => Ok(()),
                false => Err(format!("containers left after --rm: {left}")),
            }
        },
        adds: &no_names,
    });
}

/// `ictr commit` of a container that wrote a few MiB, killed while it packs and stores
/// the layer: the store stays whole, the container keeps its files, a rerun commits.
#[test]
fn crash_ictr_commit() {
    let commit = |env: &Env, i: usize| {
        env.cmd("ictr")
            .args(["commit", "changed", &format!("commit-{i}")])
    };
    campaign(Crash {
        name: "crash-ictr-commit",
        setup: &setup_busybox,
        // The campaign removes every container after its first, measured run: the
        // container to commit is made again when it is missing.
        prepare: &|env, _| {
            let names = env
                .cmd("ictr")
                .args(["ps", "-a", "--format", "{{.Names}}"])
                .ok();
            if !names.stdout().lines().any(|n| n == "changed") {
                env.cmd("irun")
                    .args(["--name", "changed", "busybox", "sh", "-c"])
                    .arg("head -c 4000000 /dev/urandom > /x && echo kept > /y")
                    .ok();
            }
        },
        command: &commit,
        rerun: &|env, i| {
            ok(commit(env, i))?;
            has_name(env, &format!("commit-{i}"))?;
            let y = ok(env
                .cmd("irun")
                .args(["--rm", &format!("commit-{i}"), "cat", "/y"]))?;
            match y.stdout().trim() {
                "kept" => Ok(()),
                other => Err(format!("the committed image's /y holds `{other}`")),
            }
        },
        adds: &|i| vec![format!("commit-{i}")],
    });
}

/// The monitor of `irun -d`: killed at a random moment of its container's life.
#[test]
fn crash_detached_monitor() {
    let name = "crash-monitor";
    let mut rng = Rng::new(name);
    let mut tally = Tally::new(name);
    let users = users();
    let n = runs(CI_RUNS, 1.0);
    let detach = |env: &Env, i: usize, cmd: &str| {
        let out = ok(env.cmd("irun").args([
            "-d",
            "--name",
            &format!("m{i}"),
            "busybox",
            "sh",
            "-c",
            cmd,
        ]))?;
        let id = out.stdout().trim().to_owned();
        let rec = env.root().join("containers").join(&id).join("config.json");
        let rec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&rec).map_err(|e| format!("{}: {e}", rec.display()))?,
        )
        .map_err(|e| e.to_string())?;
        Ok::<_, String>(rec["monitor"]["pid"].as_i64().unwrap_or(0))
    };
    let wait = |env: &Env, i: usize| ok(env.cmd("ictr").args(["wait", &format!("m{i}")]));
    let mut slots: Vec<Option<(Env, Duration, BTreeSet<String>)>> =
        users.iter().map(|_| None).collect();
    for i in 0..n {
        let k = i % users.len();
        if slots[k].is_none() {
            let env = Env::new(users[k]);
            setup_busybox(&env, &mut rng);
            let t = Instant::now();
            detach(&env, 999_999, "sleep 1").unwrap();
            wait(&env, 999_999).unwrap();
            let took = t.elapsed();
            remove_containers(&env).unwrap();
            let expected = names(&env.root());
            slots[k] = Some((env, took, expected));
        }
        let (env, took, expected) = slots[k].as_mut().unwrap();
        let delay = Duration::from_micros(rng.below(took.as_micros() as u64));
        tally.runs += 1;
        let what = format!(
            "[{}] run {i} monitor killed after {delay:?}",
            env.user.name()
        );
        let t = Instant::now();
        match detach(env, i, "sleep 1") {
            Ok(monitor) if monitor > 0 => {
                std::thread::sleep(delay.saturating_sub(t.elapsed()));
                if crate::ictr_support::alive(monitor) {
                    tally.mid_run += 1;
                }
                kill_pid(monitor);
            }
            Ok(_) => tally.fail(format!("{what}: no monitor pid in the record")),
            Err(e) => tally.fail(format!("{what}: irun -d: {e}")),
        }
        after_kill(
            &mut tally,
            env,
            expected,
            &what,
            || {
                // The container ends as exited (its pid 1 dies with the monitor); rm
                // takes it, and its name can be used again.
                ok(env.cmd("ictr").args(["ps", "-a"]))?;
                ok(env.cmd("ictr").args(["rm", "-f", &format!("m{i}")]))?;
                detach(env, i, "true")?;
                wait(env, i)?;
                ok(env.cmd("ictr").args(["rm", &format!("m{i}")])).map(drop)
            },
            Vec::new(),
        );
    }
    tally.finish();
}
