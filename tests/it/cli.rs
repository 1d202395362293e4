//! What every program shares at its edge: usage errors exit 125 (docker's "the tool
//! itself failed"), print nothing on stdout and touch no store; `--help` exits 0.

use imago_it::{users, Env};

const PROGRAMS: &[&str] = &[
    "ibuild", "iimage", "ilogin", "ipull", "ipush", "irun", "itag",
];

#[test]
fn unknown_flag_exits_125_prints_nothing_on_stdout_and_creates_no_store() {
    for user in users() {
        let env = Env::new(user);
        for program in PROGRAMS {
            // `-d` before the image too: irun must not take it for an image name.
            for flag in ["--no-such-flag", "-d"] {
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
