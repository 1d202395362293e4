//! One pull per node: 16 `irun` (and 16 `ipull`) started at once for an image the
//! store does not have yet all succeed, and the registry's access log shows each blob
//! fetched (`GET …/blobs/sha256:…`) exactly once: the first process downloads and
//! unpacks, the others wait on the store's keyed locks and reuse what it stored. And
//! a lock held by another process: a pull gives up after `$IMAGO_PULL_WAIT` saying what
//! it waited for, and one waiting goes on by itself once the holder is killed.
//! Run as each of `users()`, each with a store of its own.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use imago_it::{users, Env, Scratch, User};

use crate::registry_support::{have, Registry};

/// How many processes ask at once.
const RANKS: usize = 16;
/// The repository the test image is pushed to.
const REPO: &str = "me/once";

/// A registry holding `REPO:1`: busybox plus a layer of 4 MiB of random bytes (big
/// enough that the first download is still running when the others ask).
fn registry_with_image(base: &Scratch) -> Registry {
    let reg = Registry::start_logged(&base.path().join("reg"));
    let env = Env::new(User::Root);
    let tar = env.busybox_tar();
    env.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]"])
        .arg(&tar)
        .arg("base")
        .ok();
    let ctx = env.mkdir("ctx");
    let mut bytes = vec![0u8; 4 << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    std::fs::write(ctx.join("big.bin"), &bytes).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY big.bin /big.bin\n").unwrap();
    env.cmd("ibuild").args(["-t", "once"]).arg(&ctx).ok();
    env.cmd("ipush")
        .args(["once", &format!("{}/{REPO}:1", reg.addr)])
        .env("XDG_CONFIG_HOME", env.home().join(".config"))
        .ok();
    reg
}

/// GETs of each blob of `REPO` in `log` (the access log's request lines).
fn blob_gets(log: &str) -> BTreeMap<String, usize> {
    let needle = format!("\"GET /v2/{REPO}/blobs/sha256:");
    let mut out = BTreeMap::new();
    for line in log.lines() {
        if let Some(at) = line.find(&needle) {
            let rest = &line[at + needle.len()..];
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            *out.entry(hex).or_insert(0) += 1;
        }
    }
    out
}

/// Run `RANKS` copies of `program args` as `env`'s user at once (log level info); every
/// one must exit 0 (and print `want` on stdout, when given). Returns the registry log's
/// new part and every process's stderr.
fn all_at_once(
    env: &Env,
    reg: &Registry,
    program: &str,
    args: &[&str],
    want: Option<&str>,
) -> (String, String) {
    let before = reg.log().len();
    let mut stderrs = String::new();
    let children: Vec<_> = (0..RANKS)
        .map(|_| {
            let mut c = env
                .cmd(program)
                .args(args)
                .env("XDG_CONFIG_HOME", env.home().join(".config"))
                .env("IMAGO_LOG", "info");
            c.command()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "[{}] {program} #{i} failed: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            env.user.name(),
            out.status
        );
        stderrs.push_str(&stderr);
        if let Some(w) = want {
            assert_eq!(
                stdout.trim(),
                w,
                "[{}] {program} #{i}: {stderr}",
                env.user.name()
            );
        }
    }
    (reg.log()[before..].to_owned(), stderrs)
}

/// Each blob of the image was fetched exactly once, and all three (config, two layers)
/// were fetched.
fn assert_each_blob_once(user: User, what: &str, log: &str) {
    let gets = blob_gets(log);
    assert_eq!(
        gets.len(),
        3,
        "[{}] {what}: blobs fetched: {gets:?}\n{log}",
        user.name()
    );
    assert!(
        gets.values().all(|&n| n == 1),
        "[{}] {what}: a blob was fetched more than once: {gets:?}",
        user.name()
    );
}

/// The registry with the image, and the image's reference; `None` (a loud skip) without
/// docker-registry.
fn test_bed() -> Option<(Scratch, Registry, String)> {
    if !have("docker-registry") {
        imago_it::skip("`docker-registry` is not installed (apt-get install docker-registry)");
        return None;
    }
    let base = Scratch::new(User::Root);
    let reg = registry_with_image(&base);
    let image = format!("{}/{REPO}:1", reg.addr);
    Some((base, reg, image))
}

#[test]
fn sixteen_concurrent_iruns_download_and_unpack_once() {
    let Some((_base, reg, image)) = test_bed() else {
        return;
    };
    for user in users() {
        let env = Env::new(user);
        let (log, stderr) = all_at_once(
            &env,
            &reg,
            "irun",
            &["--rm", &image, "sh", "-c", "test -s /big.bin && echo ok"],
            Some("ok"),
        );
        assert_each_blob_once(user, "irun", &log);
        // Each of the two layers unpacked by one process.
        let unpacks = stderr.matches(": unpacking\n").count();
        assert_eq!(unpacks, 2, "[{}] unpacks:\n{stderr}", user.name());
        // Every layer unpacked once: one tree per chain id, no leftover copies.
        let layers: Vec<_> = std::fs::read_dir(env.root().join("imago/layers"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != "MODE")
            .collect();
        assert_eq!(
            layers.len(),
            2,
            "[{}] unpacked layers: {layers:?}",
            user.name()
        );
        // The image is there now: another run pulls nothing.
        let (log, _) = all_at_once(&env, &reg, "irun", &["--rm", &image, "true"], None);
        assert!(
            blob_gets(&log).is_empty(),
            "[{}] fetched again:\n{log}",
            user.name()
        );
    }
}

#[test]
fn sixteen_concurrent_ipulls_download_once() {
    let Some((_base, reg, image)) = test_bed() else {
        return;
    };
    for user in users() {
        let env = Env::new(user);
        let (log, _) = all_at_once(&env, &reg, "ipull", &["-q", &image], None);
        assert_each_blob_once(user, "ipull", &log);
        let ls = env
            .cmd("iimage")
            .args(["ls", "--format", "json"])
            .ok()
            .stdout();
        assert!(ls.contains(REPO), "[{}] not listed: {ls}", user.name());
    }
}

/// The manifest digest (hex) `image` resolves to, from a pull into a scratch store.
fn manifest_hex(image: &str) -> String {
    let probe = Env::new(User::Root);
    probe
        .cmd("ipull")
        .args(["-q", image])
        .env("XDG_CONFIG_HOME", probe.home().join(".config"))
        .ok();
    let index = std::fs::read_to_string(probe.root().join("index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    digest.strip_prefix("sha256:").unwrap().to_owned()
}

#[test]
fn a_held_pull_lock_is_waited_for_within_bounds_and_freed_by_its_holders_death() {
    if !have("flock") {
        imago_it::skip("`flock` is not installed (util-linux)");
        return;
    }
    let Some((_base, _reg, image)) = test_bed() else {
        return;
    };
    let hex = manifest_hex(&image);
    for user in users() {
        let env = Env::new(user);
        let who = user.name();
        env.cmd("iimage").arg("ls").ok(); // makes the store
        let dir = env.root().join("imago/locks/pull");
        let lock = dir.join(format!("{hex}.lock"));
        // Another "pull" of the same image: a process of the user's holding the lock.
        let mut holder = env.cmd_path("sh").args([
            "-c",
            &format!(
                "mkdir -p '{}' && exec flock '{}' sleep 120",
                dir.display(),
                lock.display()
            ),
        ]);
        holder.command().process_group(0);
        let mut holder = holder.command().spawn().unwrap();
        // Only once the holder made the file: root's flock would make it root's.
        let held = imago_it::eventually(20, || {
            lock.exists()
                && Command::new("flock")
                    .args(["-n"])
                    .arg(&lock)
                    .arg("true")
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| !s.success())
        });
        assert!(held, "[{who}] the holder did not take the lock");
        env.cmd("ipull")
            .args(["-q", &image])
            .env("XDG_CONFIG_HOME", env.home().join(".config"))
            .env("IMAGO_PULL_WAIT", "1")
            .run()
            .code_is(125)
            .fails_with(
                "gave up waiting for another imago process that is still pulling image sha256:",
            );
        // The holder dies (SIGKILL, its whole group): the kernel frees the lock, and a
        // pull that was waiting goes on by itself.
        let mut waiter = env
            .cmd("ipull")
            .args(["-q", &image])
            .env("XDG_CONFIG_HOME", env.home().join(".config"))
            .env("IMAGO_LOG", "info");
        let mut waiter = waiter
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Until it says it waits (EOF first: it failed, and the assert below says so).
        let mut said = std::io::BufReader::new(waiter.stderr.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("waiting for another imago process") {
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut said, &mut line).unwrap() == 0 {
                break;
            }
            seen.push_str(&line);
        }
        let st = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", holder.id())])
            .status()
            .unwrap();
        assert!(st.success());
        let _ = holder.wait(); // killed on purpose: its status says nothing
        let out = waiter.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "[{who}] the waiting pull failed: {out:?}"
        );
        let ls = env.cmd("iimage").arg("ls").ok().stdout();
        assert!(ls.contains(REPO), "[{who}] not pulled: {ls}");
    }
}
