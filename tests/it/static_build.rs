//! The static build (scripts/build-static.sh's recipe: glibc with `crt-static`, TLS through
//! rustls): every program has no interpreter and no shared library; the static `ipush` and
//! `ipull` talk TLS to a registry whose CA comes from `SSL_CERT_FILE` (and fail without
//! it); the static `irun` runs what was pulled, as each user.
//!
//! The programs are built here, with the dev profile without debug info and with
//! unoptimised dependencies (release's LTO would cost CI minutes) into a target dir of their own, `$IMAGO_TEST_TMP/static-target`
//! (else `target/static`): the `cargo test` running us holds the main target dir's lock,
//! and `crt-static` rebuilds every crate anyway. Later runs reuse that dir.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use imago_it::{users, Env, Scratch, User};

use crate::registry_support::{busybox_into_store, have, make_cert, Auth, Registry};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The programs: every directory under bins/.
fn programs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(imago_it::repo_root().join("bins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Build the static programs once per test process; the directory holding them.
fn static_build_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target_dir = match std::env::var_os("IMAGO_TEST_TMP") {
            Some(t) => PathBuf::from(t).join("static-target"),
            None => imago_it::repo_root().join("target/static"),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = Command::new(cargo);
        c.current_dir(imago_it::repo_root())
            .args(["build", "--target", TARGET, "--target-dir"])
            .arg(&target_dir)
            // Dependencies unoptimised: a cold build takes a third of the CPU time
            // (measured: 2.5 against 8 CPU minutes), and the test moves a few MB.
            .args(["--config", r#"profile.dev.package."*".opt-level=0"#]);
        for p in programs() {
            c.args(["-p", &p]);
        }
        // Flags of the build that runs us must not leak into this one.
        for v in [
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR",
        ] {
            c.env_remove(v);
        }
        c.env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_PROFILE_DEV_DEBUG", "0");
        let t = Instant::now();
        let out = c.output().expect("run cargo");
        assert!(
            out.status.success(),
            "static build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The build's cost, for the CI log (no assertion: speed is the benches' job).
        eprintln!("static build: {:.1} s", t.elapsed().as_secs_f64());
        target_dir.join(TARGET).join("debug")
    })
}

/// Copies of the static programs the test users can run (the checkout may be closed to
/// them), in a root-owned, world-readable scratch dir.
fn runnable_copies(names: &[&str]) -> (Scratch, PathBuf) {
    let s = Scratch::new(User::Root);
    let dir = s.path().join("static-bin");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for n in names {
        let to = dir.join(n);
        std::fs::copy(static_build_dir().join(n), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (s, dir)
}

fn tools_present(tools: &[&str]) -> bool {
    for t in tools {
        if !have(t) {
            imago_it::skip(&format!(
                "`{t}` is not installed (apt-get install docker-registry skopeo openssl binutils)"
            ));
            return false;
        }
    }
    true
}

#[test]
fn static_programs_need_no_shared_library() {
    if !tools_present(&["ldd", "readelf"]) {
        return;
    }
    for p in programs() {
        let exe = static_build_dir().join(&p);
        let ldd = Command::new("ldd").arg(&exe).output().expect("run ldd");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&ldd.stdout),
            String::from_utf8_lossy(&ldd.stderr)
        );
        // glibc's ldd says "not a dynamic executable" for a static executable and
        // "statically linked" for a static PIE (what rustc makes with crt-static).
        assert!(
            said.contains("not a dynamic executable") || said.contains("statically linked"),
            "{p}: ldd says\n{said}"
        );
        let elf = Command::new("readelf")
            .args(["-l", "-d"])
            .arg(&exe)
            .env("LC_ALL", "C")
            .output()
            .expect("run readelf");
        assert!(elf.status.success(), "readelf {p} failed");
        let headers = String::from_utf8_lossy(&elf.stdout);
        assert!(
            !headers.contains("program interpreter") && !headers.contains("(NEEDED)"),
            "{p} needs a loader or a shared library:\n{headers}"
        );
        let version = Command::new(&exe).arg("--version").output().expect("run");
        assert!(version.status.success(), "{p} --version: {version:?}");
    }
}

#[test]
fn static_ipull_pulls_over_tls_and_static_irun_runs_it() {
    if !tools_present(&["docker-registry", "skopeo", "openssl"]) {
        return;
    }
    let (_bins, bin) = runnable_copies(&["ipush", "ipull", "irun"]);
    let base = Scratch::new(User::Root);
    let (cert, key) = make_cert(base.path(), "imago-static-registry");
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    let reg = Registry::start(&base.path().join("reg"), Auth::None, Some((&cert, &key)));
    let remote = format!("{}/static/busybox:1", reg.addr);

    let seed = Env::new(User::Root);
    busybox_into_store(&seed, "busybox");
    seed.cmd_path(bin.join("ipush"))
        .arg("--cert-dir")
        .arg(base.path())
        .args(["-q", "busybox", &remote])
        .ok();

    for user in users() {
        let env = Env::new(user);
        let ca = env.write("ca.crt", std::fs::read(&cert).unwrap());
        let ours = |program: &str, store: &str| {
            let mut c = env
                .cmd_path(bin.join(program))
                .env("IMAGO_ROOT", env.path(store))
                .env("XDG_CONFIG_HOME", env.home().join(".config"));
            // As on an HPC node: no runtime dir (the harness gives peers' tools one).
            c.command().env_remove("XDG_RUNTIME_DIR");
            c
        };
        // Without the CA the handshake fails: the trust below is real.
        ours("ipull", "s1").arg(&remote).run().fails_with("certs.d");
        let pulled = ours("ipull", "s2")
            .env("SSL_CERT_FILE", &ca)
            .arg(&remote)
            .ok();
        assert!(pulled.stdout().starts_with("sha256:"), "{pulled}");
        let run = ours("irun", "s2")
            .args(["--rm", &remote, "/bin/busybox", "echo", "static-ran"])
            .run();
        assert!(
            run.code() == Some(0) && run.stdout().contains("static-ran"),
            "[{}] static irun: {run}",
            user.name()
        );
    }
}
