//! Helpers of the ictr tests: a user's environment with the irun test images, `irun -d`
//! returning the id, the `ps --format json` rows, a status polled with a bound, and a
//! guard that removes (kills) every container of the store when a test ends, passed or
//! not.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::process::Command;
use std::time::{Duration, Instant};

use imago_it::{bin, eventually, Env, Out, User};

/// One user's environment with the irun test images in its store; every container in
/// it is killed and removed when dropped.
pub struct Ctr {
    pub env: Env,
}

impl Ctr {
    pub fn new(user: User) -> Ctr {
        let env = Env::new(user);
        crate::irun_support::setup_store(&env);
        add_stopsignal_image(&env);
        Ctr { env }
    }

    pub fn ictr(&self, args: &[&str]) -> Out {
        self.env.cmd("ictr").args(args).run()
    }

    pub fn irun(&self, args: &[&str]) -> Out {
        self.env.cmd("irun").args(args).run()
    }

    /// `ictr ARGS` under `timeout 60`, for verbs that block until a container ends.
    pub fn ictr_bounded(&self, args: &[&str]) -> Out {
        self.env
            .cmd_path("timeout")
            .arg("60")
            .arg(bin("ictr"))
            .args(args)
            .run()
    }

    /// `irun -d ARGS`: asserts it returned in time with a 64-hex id, which it returns.
    pub fn run_d(&self, args: &[&str]) -> String {
        let t = Instant::now();
        let out = self.env.cmd("irun").arg("-d").args(args).run().success();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "irun -d took {:?}: {out}",
            t.elapsed()
        );
        let id = out.stdout().trim().to_string();
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "not an id: {out}"
        );
        id
    }

    /// The `ictr ps -a --format json` row of `name`.
    pub fn row(&self, name: &str) -> Option<serde_json::Value> {
        let out = self.ictr(&["ps", "-a", "--format", "json"]).success();
        out.stdout()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["Names"] == name || v["ID"].as_str().is_some_and(|i| name.starts_with(i)))
    }

    /// The STATUS of `name` in `ictr ps -a`, "" when it is not listed.
    pub fn status(&self, name: &str) -> String {
        self.row(name)
            .and_then(|r| r["Status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Poll `status(name)` until `f` accepts it (at most 30 s); the last status.
    pub fn wait_status(&self, name: &str, f: impl Fn(&str) -> bool) -> String {
        wait_status(&self.env, name, |n| self.status(n), f)
    }

    /// Wait (at most 20 s) until `name`'s log has a line `ready`: the
    /// command's own word that its set-up (a trap, a listener) is done.
    pub fn wait_ready(&self, name: &str) {
        let ready = eventually(20, || {
            self.ictr(&["logs", name])
                .stdout()
                .lines()
                .any(|l| l.trim_end() == "ready")
        });
        assert!(ready, "[{}] {name} never said ready", self.env.user.name());
    }

    /// `ictr inspect NAME`, the one object.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ictr(&["inspect", name]).success();
        let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
        v[0].clone()
    }

    /// The container's `config.json`.
    pub fn record(&self, id: &str) -> serde_json::Value {
        let p = self
            .env
            .root()
            .join("containers")
            .join(id)
            .join("config.json");
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let ids = self.ictr(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<String> = ids.stdout().lines().map(str::to_string).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            // Best effort: the scratch dir goes next anyway.
            let _ = self.ictr(&args);
        }
    }
}

/// `stopsig`: busybox with `STOPSIGNAL SIGUSR1`, added to the user's store.
fn add_stopsignal_image(env: &Env) {
    let store = imago_store::Store::open(env.root()).unwrap();
    let bb = std::fs::read(env.busybox_tar()).unwrap();
    let layer = store
        .put_layer(&bb[..], "application/vnd.oci.image.layer.v1.tar")
        .unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "StopSignal": "SIGUSR1"},
        "rootfs": {"type": "layers", "diff_ids": [imago_oci::Digest::of(&bb).to_string()]},
    });
    let m = store
        .put_image_raw(&serde_json::to_vec(&config).unwrap(), &[layer])
        .unwrap();
    store.tag("stopsig", &m).unwrap();
    if let Some((uid, gid)) = env.user.ids().filter(|_| env.user != User::Root) {
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(env.root())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// `kill -SIG PID` (as root, the test process): true when sent.
pub fn kill(sig: &str, pid: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), "--", pid])
        .status()
        .unwrap()
        .success()
}

/// Does process `pid` exist (not counting a zombie)?
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            state != Some("Z")
        })
        .unwrap_or(false)
}

/// Network helpers (pasta, slirp4netns) whose command line names `pid`.
pub fn net_helpers_of(pid: i64) -> Vec<String> {
    let target = pid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| {
            c.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|a| {
            let prog = a
                .first()
                .map(|p| p.rsplit('/').next().unwrap_or(""))
                .unwrap_or("");
            (prog.starts_with("pasta") || prog == "slirp4netns")
                && a.iter().rev().take(2).any(|x| *x == target)
        })
        .map(|a| a.join(" "))
        .collect()
}

/// Poll `status(name)` until `f` accepts it (at most 30 s); the last status. `env` names
/// the user in the failure.
pub fn wait_status(
    env: &Env,
    name: &str,
    status: impl Fn(&str) -> String,
    f: impl Fn(&str) -> bool,
) -> String {
    let t = Instant::now();
    loop {
        let s = status(name);
        if f(&s) {
            return s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "[{}] {name}: status stayed {s:?}",
            env.user.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
