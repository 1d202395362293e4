//! The node-local dir: with `IMAGO_LOCAL_DIR` forcing node-local placement and no
//! `XDG_RUNTIME_DIR` (as on HPC nodes), builds and containers work and the store holds
//! image data and container records only; a wiped node-local dir leaves records that say
//! so; a node-local dir others may write to is refused. (This machine's kernel has no
//! NFS client, so placement is forced here rather than detected; the FUSE test covers
//! detection through statfs.)

#![allow(clippy::unwrap_used)] // tests: a failed step is a test failure

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use imago_it::{users, Cmd, Env, Out, User};

use crate::ibuild_support::{context, env_with_busybox};

/// A user's environment with busybox in its store and a node-local dir it names.
struct Node {
    env: Env,
    local: PathBuf,
}

impl Node {
    fn new(user: User) -> Node {
        let env = env_with_busybox(user);
        // Not made in advance: imago makes it (0700) and its parents.
        let local = env.path("node/local");
        Node { env, local }
    }

    /// One of our programs with `IMAGO_LOCAL_DIR` set (and, by the harness, no
    /// `XDG_RUNTIME_DIR` and no `TMPDIR`).
    fn cmd(&self, program: &str) -> Cmd {
        self.env.cmd(program).env("IMAGO_LOCAL_DIR", &self.local)
    }

    fn ictr(&self, args: &[&str]) -> Out {
        self.cmd("ictr").args(args).run()
    }

    /// `ictr ps -a` STATUS of `name`, "" when not listed.
    fn status(&self, name: &str) -> String {
        let out = self
            .ictr(&["ps", "-a", "--format", "json"])
            .success()
            .stdout();
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["Names"] == name)
            .and_then(|v| v["Status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn wait_status(&self, name: &str, f: impl Fn(&str) -> bool) -> String {
        crate::ictr_support::wait_status(&self.env, name, |n| self.status(n), f)
    }
}

/// Every path under `dir`, not following links.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().unwrap().is_dir() {
            walk(&p, out);
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The store holds image data and container records only: no writable layers, work or
/// mount dirs, sockets, container locks, logs or leftovers of RUN steps.
fn assert_image_data_only(store: &Path, who: &str) {
    let allowed_top = ["blobs", "containers", "imago", "index.json", "oci-layout"];
    for n in names(store) {
        assert!(allowed_top.contains(&n.as_str()), "[{who}] store has {n}");
    }
    let allowed_imago = ["build-cache-mounts", "cache", "layers", "locks", "tmp"];
    for n in names(&store.join("imago")) {
        assert!(allowed_imago.contains(&n.as_str()), "[{who}] imago/{n}");
    }
    assert_eq!(
        names(&store.join("imago/tmp")),
        Vec::<String>::new(),
        "[{who}] tmp"
    );
    // The store's own locks coordinate all nodes (pulls and unpacks keyed per image and
    // layer, in their dirs); nothing else locks here.
    for n in names(&store.join("imago/locks")) {
        assert!(
            ["gc-gate.lock", "gc.lock", "index.lock", "pull", "unpack"].contains(&n.as_str()),
            "[{who}] imago/locks/{n}"
        );
    }
    let containers = store.join("containers");
    if containers.exists() {
        for n in names(&containers).iter().filter(|n| *n != "names") {
            let files = names(&containers.join(n));
            assert!(
                files
                    .iter()
                    .all(|f| f == "config.json" || f == "node-local.json"),
                "[{who}] containers/{n} holds {files:?}"
            );
        }
    }
    let mut all = vec![];
    walk(store, &mut all);
    for p in &all {
        let t = std::fs::symlink_metadata(p).unwrap().file_type();
        assert!(
            !t.is_socket(),
            "[{who}] a socket in the store: {}",
            p.display()
        );
        let in_layer = p.starts_with(store.join("imago/layers"));
        let name = p.file_name().unwrap().to_string_lossy();
        let local_only = [
            "upper",
            "work",
            "rootfs",
            "lock",
            "monitor.log",
            "attach.sock",
        ];
        assert!(
            in_layer || !local_only.contains(&name.as_ref()) && !name.ends_with("-json.log"),
            "[{who}] node-local data in the store: {}",
            p.display()
        );
    }
}

#[test]
fn forced_node_local_placement_builds_and_runs_and_keeps_the_store_image_only() {
    for u in users() {
        let n = Node::new(u);
        let who = u.name();
        let df = "FROM busybox\nRUN mkdir /made && echo built > /made/by-run && ls / > /made/ls\n";
        context(&n.env, "ctx", &[("Dockerfile", df)]);
        let mut b = n.cmd("ibuild").args(["-t", "built"]).arg(n.env.path("ctx"));
        b.command().current_dir(n.env.path("ctx"));
        let out = b.run().success();
        assert!(
            !out.stderr().contains("shared by many nodes"),
            "[{who}] a local store is not announced as shared: {out}"
        );
        // RUN scratch went to build/, and is gone again
        assert_eq!(
            names(&n.local.join("build")),
            Vec::<String>::new(),
            "[{who}]"
        );
        let out = n
            .cmd("irun")
            .args(["--rm", "built", "cat", "/made/by-run"])
            .run()
            .success();
        assert_eq!(out.stdout(), "built\n", "[{who}]");

        let out = n
            .cmd("irun")
            .args(["-d", "--name", "web", "built"])
            .args(["sh", "-c", "echo started; echo x > /made/new; sleep 300"])
            .run()
            .success();
        let id = out.stdout().trim().to_string();
        let own = n.local.join("containers").join(&id);
        assert!(
            own.join("upper").is_dir(),
            "[{who}] no upper in {}",
            own.display()
        );
        n.wait_status("web", |s| s.starts_with("Up"));
        let t = Instant::now();
        while !n
            .ictr(&["logs", "web"])
            .success()
            .stdout()
            .contains("started")
        {
            assert!(t.elapsed() < Duration::from_secs(30), "[{who}] no log");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(own.join(format!("{id}-json.log")).is_file(), "[{who}]");
        let ins: serde_json::Value =
            serde_json::from_str(&n.ictr(&["inspect", "web"]).success().stdout()).unwrap();
        assert_eq!(
            ins[0]["GraphDriver"]["Data"]["UpperDir"],
            own.join("upper").display().to_string(),
            "[{who}]"
        );
        n.cmd("ictr").args(["stop", "-t", "1", "web"]).ok();
        assert!(n.status("web").starts_with("Exited"), "[{who}]");
        // started again with its writable layer as it was
        n.ictr(&["start", "web"]).success();
        n.wait_status("web", |s| s.starts_with("Up"));
        let out = n
            .cmd("ictr")
            .args(["exec", "web", "cat", "/made/new"])
            .run()
            .success();
        assert_eq!(out.stdout(), "x\n", "[{who}]");
        assert_image_data_only(&n.env.root(), who);
        n.cmd("ictr").args(["stop", "-t", "1", "web"]).ok();
        assert_image_data_only(&n.env.root(), who);
        // a client without IMAGO_LOCAL_DIR finds the dir through the record
        n.env.cmd("ictr").args(["rm", "web"]).ok();
        assert!(!own.exists(), "[{who}] {} left", own.display());
        assert_eq!(n.status("web"), "", "[{who}]");
        assert_image_data_only(&n.env.root(), who);
    }
}

#[test]
fn a_wiped_node_local_dir_leaves_a_record_that_says_so() {
    for u in users() {
        let n = Node::new(u);
        let who = u.name();
        let out = n
            .cmd("irun")
            .args(["-d", "--name", "gone", "busybox", "echo", "hi"])
            .run()
            .success();
        let id = out.stdout().trim().to_string();
        n.wait_status("gone", |s| s.starts_with("Exited (0)"));
        // the node-local dir is wiped (a reboot, a batch job's end)
        std::process::Command::new("rm")
            .arg("-rf")
            .arg(&n.local)
            .status()
            .unwrap();
        let st = n.status("gone");
        assert!(
            st.starts_with("Exited (0)") && st.ends_with("(layer gone)"),
            "[{who}] {st}"
        );
        let ins: serde_json::Value =
            serde_json::from_str(&n.ictr(&["inspect", "gone"]).success().stdout()).unwrap();
        assert_eq!(ins[0]["State"]["Dead"], true, "[{who}]");
        let err = ins[0]["State"]["Error"].as_str().unwrap().to_string();
        assert!(err.contains("is gone"), "[{who}] {err}");
        n.ictr(&["start", "gone"])
            .code_is(125)
            .fails_with("cannot start container gone: its writable layer in the node-local dir")
            .fails_with("`ictr rm gone` removes its record");
        n.ictr(&["logs", "gone"])
            .code_is(125)
            .fails_with("no log of container gone");
        n.ictr(&["rm", "gone"]).success();
        assert_eq!(n.status("gone"), "", "[{who}]");
        assert!(
            !n.env.root().join("containers").join(&id).exists(),
            "[{who}]"
        );
        // the name is free again
        n.cmd("irun")
            .args(["--rm", "--name", "gone", "busybox", "true"])
            .run()
            .success();
    }
}

/// `irun -d busybox true` as the env's user inside a private mount namespace in which
/// `/var/tmp/imago-<uid>` is a tmpfs mounted with `opts`: a dir someone else made in
/// advance, planted without touching the real one that other tests use. No
/// `XDG_RUNTIME_DIR`, `TMPDIR` or `IMAGO_LOCAL_DIR`: the default applies.
fn irun_d_with_planted_var_tmp(env: &Env, uid: u32, opts: &str) -> Out {
    let planted = default_local_dir(env.user, uid);
    // Runs as root (unshare, mount), then becomes the user.
    let script = "mount -t tmpfs -o \"$1\" imago-planted \"$2\" && shift 2 && exec \"$@\"";
    let mut c = std::process::Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(opts)
    .arg(&planted);
    if env.user != User::Root {
        c.args(["runuser", "-m", "-u", env.user.name(), "--"]);
    }
    c.arg(imago_it::bin("irun"))
        .args(["-d", "busybox", "true"])
        .current_dir(env.path(""))
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", env.home())
        .env("USER", env.user.name())
        .env("LANG", "C.UTF-8")
        .env("IMAGO_ROOT", env.root())
        .stdin(std::process::Stdio::null());
    Out {
        label: format!(
            "[{}] irun -d with {opts} on {}",
            env.user.name(),
            planted.display()
        ),
        output: c.output().unwrap(),
    }
}

/// `/var/tmp/imago-<uid>`, made if missing as imago makes it (the user's, 0700, in one
/// mkdir: other tests may use it at the same moment, and must never see it otherwise).
fn default_local_dir(user: User, uid: u32) -> PathBuf {
    let p = PathBuf::from(format!("/var/tmp/imago-{uid}"));
    if !p.exists() {
        let mut c = match user {
            User::Root | User::Current => std::process::Command::new("mkdir"),
            u => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", u.name(), "--", "mkdir"]);
                c
            }
        };
        // Its status is not the point: it may exist by now (made by another test).
        let _ = c.args(["-m", "0700"]).arg(&p).status();
    }
    assert!(p.is_dir(), "{} not made", p.display());
    p
}

#[test]
fn a_planted_var_tmp_dir_is_refused() {
    if !imago_it::running_as_root() {
        imago_it::skip("planting /var/tmp/imago-<uid> in a private mount namespace needs root");
        return;
    }
    for u in users() {
        let env = env_with_busybox(u);
        let (uid, _) = u.ids().unwrap();
        let other = if uid == 0 { 65534 } else { 0 };
        for (opts, why) in [
            // the user's own, but world-writable
            (
                format!("mode=0777,uid={uid}"),
                "others may write to it (mode 0777)".to_string(),
            ),
            // private, but another user's
            (
                format!("mode=0700,uid={other}"),
                format!("it belongs to uid {other}, not to you"),
            ),
        ] {
            let want = format!("refusing the node-local dir `/var/tmp/imago-{uid}`");
            let out = irun_d_with_planted_var_tmp(&env, uid, &opts)
                .code_is(125)
                .fails_with(&want)
                .fails_with(&why);
            assert!(out.stderr().contains("set IMAGO_LOCAL_DIR"), "{out}");
        }
        // nothing of the refused container is left behind
        let left = env.cmd("ictr").args(["ps", "-aq"]).ok().stdout();
        assert_eq!(left, "", "[{}]", u.name());
    }
}

/// A fuse-overlayfs mount (run by root, open to every user: `allow_other`) in the env's
/// scratch dir, unmounted when dropped.
struct Fuse {
    mnt: PathBuf,
}

impl Fuse {
    fn mount(env: &Env) -> Fuse {
        let base = env.path("fuse");
        for d in ["lower", "upper", "work", "mnt"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        let opts = format!(
            "allow_other,lowerdir={},upperdir={},workdir={}",
            base.join("lower").display(),
            base.join("upper").display(),
            base.join("work").display()
        );
        let mnt = base.join("mnt");
        let st = std::process::Command::new("fuse-overlayfs")
            .args(["-o", &opts])
            .arg(&mnt)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "fuse-overlayfs failed");
        Fuse { mnt }
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        // Best effort: the scratch dir's removal reports what is left mounted.
        let _ = std::process::Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mnt)
            .status();
    }
}

#[test]
fn a_store_on_fuse_is_detected_and_its_containers_go_node_local() {
    if !imago_it::running_as_root() || !imago_it::have("fuse-overlayfs") {
        imago_it::skip("a FUSE store needs root and fuse-overlayfs (scripts/setup-host.sh)");
        return;
    }
    for u in users() {
        if u == User::NoSub {
            // Its layers keep ownership in user.containers.override_stat, the xattr
            // fuse-overlayfs reserves for itself (EPERM): no store of that user there.
            imago_it::inherent_skip("imago-nosub: fuse-overlayfs refuses the ownership xattr");
            continue;
        }
        let who = u.name();
        let env = Env::new(u);
        let fuse = Fuse::mount(&env);
        let root = fuse.mnt.join("store");
        std::fs::create_dir(&root).unwrap();
        env.give(&root);
        let (uid, _) = u.ids().unwrap();
        // No IMAGO_LOCAL_DIR, XDG_RUNTIME_DIR or TMPDIR: the default node-local dir.
        let local = default_local_dir(u, uid);
        let cmd = |p: &str| env.cmd(p).env("IMAGO_ROOT", &root);
        cmd("iimage")
            .args(["import", "--change", "CMD [\"sh\"]"])
            .arg(env.busybox_tar())
            .arg("busybox")
            .ok();
        let out = cmd("irun")
            .args([
                "-d",
                "--name",
                "fu",
                "busybox",
                "sh",
                "-c",
                "echo x > /new; sleep 300",
            ])
            .run()
            .success();
        let said = out.stderr().matches("is on FUSE").count();
        assert_eq!(said, 1, "[{who}] said once per process: {out}");
        assert!(
            out.stderr().contains(&local.display().to_string()),
            "[{who}] {out}"
        );
        let id = out.stdout().trim().to_string();
        let own = local.join("containers").join(&id);
        assert!(
            own.join("upper").is_dir(),
            "[{who}] no upper in {}",
            own.display()
        );
        let node = serde_json::json!({"dir": local, "node": hostname()});
        let rec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join("containers").join(&id).join("node-local.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(rec, node, "[{who}]");
        let mut b = cmd("ibuild").args(["-t", "b"]).arg(env.path("ctx"));
        context(
            &env,
            "ctx",
            &[("Dockerfile", "FROM busybox\nRUN echo b > /b\n")],
        );
        b.command().current_dir(env.path("ctx"));
        let out = b.run().success();
        assert_eq!(
            out.stderr().matches("is on FUSE").count(),
            1,
            "[{who}] {out}"
        );
        assert_image_data_only(&root, who);
        cmd("ictr").args(["rm", "-f", "fu"]).ok();
        assert!(!own.exists(), "[{who}] {} left", own.display());
        assert_image_data_only(&root, who);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}
