//! What every program shares at its edge: usage errors exit 125 (docker's "the tool
//! itself failed"), print nothing on stdout and touch no store; `--help` exits 0.

use imago_it::{users, Env};

const PROGRAMS: &[&str] = &[
    "ibuild", "ictr", "iimage", "ilogin", "ilogout", "ipull", "ipush", "irun", "itag",
];

#[test]
fn unknown_flag_exits_125_prints_nothing_on_stdout_and_creates_no_store() {
    for user in users() {
        let env = Env::new(user);
        for program in PROGRAMS {
            // A short one before the image too: irun must not take it for an image name.
            for flag in ["--no-such-flag", "-Q"] {
                let out = env.cmd(program).args([flag, "busybox"]).run();
                assert_eq!(out.code(), Some(125), "{out}");
                assert!(out.stdout().is_empty(), "stdout must stay empty: {out}");
                assert!(
                    out.stderr().contains(flag),
                    "the error names the flag: {out}"
                );
                assert!(
                    !env.root().exists(),
                    "a usage error created the store: {out}"
                );
            }
        }
    }
}

#[test]
fn help_exits_0_on_stdout() {
    let env = Env::new(users()[0]);
    for program in PROGRAMS {
        let out = env.cmd(program).arg("--help").run();
        assert_eq!(out.code(), Some(0), "{out}");
        assert!(out.stdout().contains("Usage:"), "{out}");
        assert!(!env.root().exists(), "--help created the store: {out}");
    }
}

/// `--privileged` run by root is host root, as docker's: the help says so where a
/// user looks before using it, and names what it opens up.
#[test]
fn irun_help_says_what_privileged_means_for_root() {
    let env = Env::new(users()[0]);
    let help = env.cmd("irun").arg("--help").ok().stdout();
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "Run by root this is host root",
        "kernel.core_pattern",
        "as strong as --privileged",
    ] {
        assert!(
            flat.contains(needle),
            "irun --help lacks {needle:?}:\n{help}"
        );
    }
}

/// A broken Dockerfile is reported once: one `error:` line naming the problem, then
/// the file, line and the line itself.
#[test]
fn bad_dockerfile_error_starts_with_a_single_error() {
    let env = Env::new(users()[0]);
    env.write("ctx/Dockerfile", "FROM busybox\nFNTRYPOINT [\"sh\"]\n");
    let out = env
        .cmd("ibuild")
        .args(["--progress", "plain", "--root"])
        .arg(env.root())
        .arg(env.path("ctx"))
        .run();
    assert_eq!(out.code(), Some(125), "{out}");
    let err = out.stderr();
    assert!(
        err.starts_with("error: unknown instruction: FNTRYPOINT"),
        "{out}"
    );
    assert_eq!(err.matches("error:").count(), 1, "{out}");
    assert!(err.contains("Dockerfile:2:1"), "names the line: {out}");
}

/// No program loads a shared TLS library: TLS is rustls, linked in, which the static build
/// (scripts/build-static.sh) depends on. And work that needs no registry never reads the
/// system's trust store: parsing its bundle would cost every start milliseconds (as
/// loading OpenSSL once did). The pull half shows the log line this looks for exists.
#[test]
fn no_tls_library_and_offline_work_reads_no_trust_store() {
    for program in PROGRAMS {
        let out = std::process::Command::new("ldd")
            .arg(imago_it::bin(program))
            .output()
            .expect("run ldd");
        let libs = String::from_utf8_lossy(&out.stdout);
        for lib in ["libssl", "libcrypto", "libgnutls"] {
            assert!(!libs.contains(lib), "{program} loads {lib}:\n{libs}");
        }
    }
    let loaded = "system trust store loaded";
    for user in users() {
        let env = Env::new(user);
        let offline: [&[&str]; 3] = [
            &["iimage", "ls"],
            &["iimage", "info"],
            &["itag", "no-such:1", "x:1"],
        ];
        for args in offline {
            let out = env
                .cmd(args[0])
                .args(&args[1..])
                .env("IMAGO_LOG", "debug")
                .run();
            assert!(
                !out.stderr().contains(loaded),
                "{args:?} read the trust store: {out}"
            );
        }
        // Port 1 on loopback refuses at once: the trust store is read before connecting.
        let out = env
            .cmd("ipull")
            .args(["127.0.0.1:1/none:1"])
            .env("IMAGO_LOG", "debug")
            .run();
        assert!(
            out.stderr().contains(loaded),
            "ipull did not log its trust store: {out}"
        );
    }
}
