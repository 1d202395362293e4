//! The seed tutorial (docs/tutorial.md) replayed through the real binaries, on base images
//! made from Debian's packages: the cowsay image built with apt in RUN steps, the express
//! website built with `npm install`, run detached with a published port and fetched over
//! TCP, pushed to a registry on loopback, and its multi-stage variant, which is smaller.
//!
//! The bases (scripts/make-debian-base.sh: mmdebstrap; scripts/make-node-base.sh: ibuild
//! with apt) take minutes to make: they are made once per test process into a cache dir
//! under `$IMAGO_TEST_TMP`, and every user's store imports them from there with the same
//! scripts. apt's `_apt` sandbox user works for imago-nosub too (one uid only: the
//! recording fakeroot gives apt's processes the ids they ask for).
//!
//! Never: fakes a base image or the network: it needs deb.debian.org and the npm registry
//! (scripts/setup-host.sh installs mmdebstrap).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use imago_it::{users, Env, User};

use crate::ibuild_support::{context, ibuild, irun};
use crate::ictr_support::Ctr;
use crate::registry_support::{free_port, Auth, Registry};

/// The website's build context, as the example has it.
const WEBSITE: &[(&str, &str)] = &[
    (
        "Dockerfile",
        include_str!("../../examples/tutorial/my-website/Dockerfile"),
    ),
    (
        "Dockerfile.multistage",
        include_str!("../../examples/tutorial/my-website/Dockerfile.multistage"),
    ),
    (
        ".dockerignore",
        include_str!("../../examples/tutorial/my-website/.dockerignore"),
    ),
    (
        "package.json",
        include_str!("../../examples/tutorial/my-website/package.json"),
    ),
    (
        "app.js",
        include_str!("../../examples/tutorial/my-website/app.js"),
    ),
];

const COWSAY: &[(&str, &str)] = &[(
    "cowsay-dockerfile",
    include_str!("../../examples/tutorial/cowsay/cowsay-dockerfile"),
)];

/// PATH for the base scripts: our binaries first.
fn script_path() -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        imago_it::bin_dir().display()
    )
}

/// The dir holding copies of the two base scripts (and the node base's Dockerfile, where
/// make-node-base.sh looks for it) and, in `cache/`, the bases they made: once per test
/// process, by the test process's own user. None when Debian's mirror is out of reach.
pub(crate) fn bases() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        if !reachable("deb.debian.org:80") {
            imago_it::skip("deb.debian.org cannot be reached: no Debian base images");
            return None;
        }
        remove_stale_base_dirs();
        let dir = imago_it::scratch_base().join(format!("imago-seed-bases-{}", std::process::id()));
        let repo = imago_it::repo_root();
        for f in [
            "scripts/make-debian-base.sh",
            "scripts/make-node-base.sh",
            "examples/bases/node/Dockerfile",
        ] {
            let to = dir.join(f);
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(repo.join(f), &to).expect("copy base script");
        }
        std::fs::create_dir_all(dir.join("cache")).expect("mkdir cache");
        // Every test user reads the scripts and the cache.
        let st = Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&dir)
            .status()
            .expect("chmod");
        assert!(st.success());
        let store = dir.join("store");
        for script in ["make-debian-base.sh", "make-node-base.sh"] {
            let out = Command::new(dir.join("scripts").join(script))
                .arg("--cache")
                .arg(dir.join("cache"))
                .env_clear()
                .env("PATH", script_path())
                .env("HOME", &dir)
                .env("TMPDIR", &dir)
                .env("IMAGO_ROOT", &store)
                .stdin(Stdio::null())
                .output()
                .expect("run a base script");
            assert!(
                out.status.success(),
                "{script} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The cache has both bases now; the maker's store would only take tmpfs space.
        // Best effort: a store left behind goes with the dir when this process is gone.
        let _ = std::fs::remove_dir_all(&store);
        Some(dir)
    })
    .as_deref()
}

/// Dirs of earlier test processes (statics are never dropped) whose process is gone.
fn remove_stale_base_dirs() {
    let Ok(entries) = std::fs::read_dir(imago_it::scratch_base()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("imago-seed-bases-"))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            // Best effort: another test process may be removing it at the same time.
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn reachable(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs().is_ok_and(|mut a| {
        a.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(10)).is_ok())
    })
}

/// A user's environment with the bases in its store, imported by the base scripts from
/// the cache (`debian:bookworm`, `debian-node:bookworm`, `debian-node:bookworm-slim`).
pub(crate) fn env_with_bases(user: User, bases: &Path) -> Env {
    let env = Env::new(user);
    for script in ["make-debian-base.sh", "make-node-base.sh"] {
        let out = env
            .cmd_path(bases.join("scripts").join(script))
            .env("PATH", script_path())
            .arg("--cache")
            .arg(bases.join("cache"))
            .ok();
        assert!(
            out.stderr().contains("cached"),
            "{script} used the cache: {out}"
        );
    }
    env
}

#[test]
fn cowsay_built_with_apt_on_the_debian_base() {
    let Some(bases) = bases() else { return };
    for user in users() {
        let env = env_with_bases(user, bases);
        context(&env, "cowsay", COWSAY);
        ibuild(
            &env,
            "cowsay",
            &[
                "--build-arg",
                "BASE=debian:bookworm",
                "-t",
                "cowsay",
                "-f",
                "cowsay-dockerfile",
            ],
        )
        .success();
        let out = irun(&env, "cowsay", &[]).success();
        let said = out.stdout();
        assert!(said.contains("< Docker is so awesome! >"), "CMD: {out}");
        assert!(said.contains("(oo)\\_______"), "a cow: {out}");
        let out = irun(&env, "cowsay", &["Hello from", user.name()]).success();
        assert!(
            out.stdout()
                .contains(&format!("< Hello from {} >", user.name())),
            "arguments replace CMD: {out}"
        );
    }
}

#[test]
fn my_website_npm_install_detached_published_pushed_and_multistage() {
    let Some(bases) = bases() else { return };
    if !reachable("registry.npmjs.org:443") {
        imago_it::skip("registry.npmjs.org cannot be reached: npm install cannot run");
        return;
    }
    for user in users() {
        let ctr = Ctr {
            env: env_with_bases(user, bases),
        };
        let env = &ctr.env;
        context(env, "my-website", WEBSITE);
        let built = ibuild(
            env,
            "my-website",
            &[
                "--build-arg",
                "BASE=debian-node:bookworm",
                "-t",
                "my-website",
            ],
        )
        .success();
        // The RUN step's output goes where ibuild's progress goes (stderr).
        assert!(
            built.stderr().contains("added") && built.stderr().contains("packages"),
            "npm install ran: {built}"
        );

        published_page(&ctr, user);
        pushed(env);

        ibuild(
            env,
            "my-website",
            &[
                "--build-arg",
                "BASE=debian-node:bookworm",
                "--build-arg",
                "RUN_BASE=debian-node:bookworm-slim",
                "-f",
                "Dockerfile.multistage",
                "-t",
                "my-website:multistage",
            ],
        )
        .success();
        let (big, small) = (size(env, "my-website"), size(env, "my-website:multistage"));
        assert!(
            small < big,
            "[{}] multi-stage {small} B is not smaller than {big} B",
            user.name()
        );
        let out = irun(
            env,
            "my-website:multistage",
            &["node", "-e", "require('express')"],
        );
        assert_eq!(
            out.code(),
            Some(0),
            "the final stage has the app's modules: {out}"
        );
    }
}

/// `irun -dit -p PORT:8080 --name my-website my-website`, the page over TCP, `ictr ps`,
/// `ictr stop`, `ictr rm`.
fn published_page(ctr: &Ctr, user: User) {
    let port = free_port();
    let started = ctr
        .irun(&[
            "-dit",
            "-p",
            &format!("{port}:8080"),
            "--name",
            "my-website",
            "my-website",
        ])
        .success();
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        match http_get(&addr, "/", "text/html") {
            Some(r) if r.contains("Hello from my website!") => break r,
            other => assert!(
                Instant::now() < deadline,
                "[{}] no page on {addr} ({started}); last answer: {other:?}; logs: {}",
                user.name(),
                ctr.ictr(&["logs", "my-website"])
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let ps = ctr.ictr(&["ps"]).success();
    assert!(ps.stdout().contains("my-website"), "ictr ps lists it: {ps}");
    ctr.ictr(&["stop", "my-website"]).success();
    ctr.ictr(&["rm", "my-website"]).success();
    let ps = ctr.ictr(&["ps", "-a"]).success();
    assert!(!ps.stdout().contains("my-website"), "removed: {ps}");
}

/// `itag` + `ipush` to a docker-registry on loopback; the registry then serves the tag
/// with the digest ipush printed.
fn pushed(env: &Env) {
    let reg = Registry::start(&env.path("registry"), Auth::None, None);
    let remote = format!("{}/tutorial/my-website:1", reg.addr);
    env.cmd("itag").args(["my-website", &remote]).ok();
    let digest = env
        .cmd("ipush")
        .arg(&remote)
        .ok()
        .stdout()
        .trim()
        .to_owned();
    assert!(
        digest.starts_with("sha256:"),
        "ipush prints the digest: {digest}"
    );
    let tags = http_get(&reg.addr, "/v2/tutorial/my-website/tags/list", "*/*");
    assert!(
        tags.as_deref()
            .is_some_and(|t| t.contains(r#""tags":["1"]"#)),
        "{tags:?}"
    );
    let manifest = http_get(
        &reg.addr,
        "/v2/tutorial/my-website/manifests/1",
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
    )
    .unwrap_or_default();
    assert!(
        manifest
            .to_ascii_lowercase()
            .contains(&format!("docker-content-digest: {digest}")),
        "{manifest}"
    );
}

/// The stored size of an image (`iimage inspect`'s Size).
fn size(env: &Env, image: &str) -> u64 {
    let out = env.cmd("iimage").args(["inspect", image]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).expect("inspect json");
    v[0]["Size"].as_u64().expect("Size")
}

/// One HTTP/1.0 GET (the server closes when done): the whole answer, head and body, or
/// None when nothing answers. Bounded: 10 s to read, 1 MiB.
fn http_get(addr: &str, path: &str, accept: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    s.take(1 << 20).read_to_string(&mut answer).ok()?;
    (!answer.is_empty()).then_some(answer)
}
