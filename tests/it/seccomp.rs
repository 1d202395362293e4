//! Seccomp profiles, as root, imago-sub (subuid range) and imago-nosub (single mapping):
//! `--security-opt seccomp=FILE` with a profile that denies mkdir makes busybox's mkdir
//! fail with EPERM while other commands run; a bad profile is refused naming the file
//! and the field; under the default profile (docker's) process_vm_readv on a child
//! works and keyctl gets EPERM, checked by a small static C program bound on /t.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use imago_it::{users, Env, Out, User};

use crate::irun_support::setup_store;

fn env_for(user: User) -> Env {
    let env = Env::new(user);
    setup_store(&env);
    env
}

fn irun(env: &Env, args: &[&str]) -> Out {
    env.cmd("irun").args(args).run()
}

/// `vmread`: forks a child holding a secret and reads it with process_vm_readv;
/// `keyctl`: calls keyctl(KEYCTL_GET_KEYRING_ID); each prints `ok` or the error.
const PROBE_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
static char secret[16] = "imago-vm-ok";
int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "vmread")) {
    int p[2];
    if (pipe(p) < 0) return 3;
    pid_t c = fork();
    if (c == 0) { close(p[0]); write(p[1], "x", 1); pause(); _exit(0); }
    char x;
    read(p[0], &x, 1);
    char buf[16] = {0};
    struct iovec l = {buf, 11}, r = {secret, 11};
    long n = process_vm_readv(c, &l, 1, &r, 1, 0);
    int e = errno;
    kill(c, SIGKILL);
    waitpid(c, 0, 0);
    if (n < 0) printf("vmread %s\n", strerror(e)); else printf("vmread %s\n", buf);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "keyctl")) {
    long r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
    printf(r >= 0 ? "keyctl ok\n" : "keyctl %s\n", strerror(errno));
    return 0;
  }
  return 2;
}
"#;

/// The probe, built static into `env`'s dir `t` (bound on /t); `None` (said as a skip)
/// without a C compiler.
fn probe(env: &Env) -> Option<std::path::PathBuf> {
    let dir = env.mkdir("t");
    let bin = imago_it::static_c_program(&dir, "probe", PROBE_C, "the seccomp probe")?;
    env.give(&bin);
    Some(dir)
}

const DENY_MKDIR: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
  ]
}"#;

#[test]
fn a_profile_that_denies_mkdir_makes_mkdir_fail_with_eperm() {
    for u in users() {
        let env = env_for(u);
        let profile = env.write("deny-mkdir.json", DENY_MKDIR);
        let opt = format!("seccomp={}", profile.display());
        let out = irun(
            &env,
            &["--rm", "--security-opt", &opt, "busybox", "mkdir", "/tmp/d"],
        );
        assert_ne!(out.code(), Some(0), "[{}] {out}", u.name());
        assert!(
            out.stderr().contains("Operation not permitted"),
            "[{}] {out}",
            u.name()
        );
        let ok = irun(
            &env,
            &[
                "--rm",
                "--security-opt",
                &opt,
                "busybox",
                "sh",
                "-c",
                "touch /tmp/f && echo ok",
            ],
        )
        .success();
        assert_eq!(ok.stdout(), "ok\n", "[{}]", u.name());
        // A detached container keeps its profile for `ictr exec`.
        let name = "sc-deny-mkdir";
        irun(
            &env,
            &[
                "-d",
                "--name",
                name,
                "--network",
                "none",
                "--security-opt",
                &opt,
                "busybox",
                "sleep",
                "60",
            ],
        )
        .success();
        let exec = env
            .cmd("ictr")
            .args(["exec", name, "mkdir", "/tmp/e"])
            .run();
        // Removed first, so that a failed check leaves no container running.
        env.cmd("ictr").args(["rm", "-f", name]).run().success();
        assert_ne!(exec.code(), Some(0), "[{}] {exec}", u.name());
        assert!(
            exec.stderr().contains("Operation not permitted"),
            "[{}] {exec}",
            u.name()
        );
        // Without the profile (docker's default) mkdir works.
        let plain = irun(
            &env,
            &["--rm", "busybox", "sh", "-c", "mkdir /tmp/d && echo ok"],
        );
        assert_eq!(plain.success().stdout(), "ok\n", "[{}]", u.name());
    }
}

#[test]
fn a_bad_profile_is_refused_naming_the_file_and_the_field() {
    for u in users() {
        let env = env_for(u);
        let bad = env.write(
            "bad.json",
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOPE"}]}"#,
        );
        let out = irun(
            &env,
            &[
                "--rm",
                "--security-opt",
                &format!("seccomp={}", bad.display()),
                "busybox",
                "true",
            ],
        )
        .code_is(125);
        let err = out.stderr();
        assert!(
            err.contains(&bad.display().to_string()),
            "[{}] {err}",
            u.name()
        );
        assert!(err.contains("syscalls[0].action"), "[{}] {err}", u.name());
        let missing = env.path("missing.json");
        let out = irun(
            &env,
            &[
                "--rm",
                "--security-opt",
                &format!("seccomp={}", missing.display()),
                "busybox",
                "true",
            ],
        )
        .code_is(125);
        assert!(
            out.stderr().contains("missing.json"),
            "[{}] {out}",
            u.name()
        );
    }
}

#[test]
fn the_default_profile_allows_process_vm_readv_and_denies_keyctl() {
    for u in users() {
        let env = env_for(u);
        let Some(dir) = probe(&env) else { return };
        let t = format!("{}:/t", dir.display());
        let run = |what: &str, extra: &[&str]| {
            let mut args = vec!["--rm"];
            args.extend_from_slice(extra);
            args.extend(["-v", &t, "busybox", "/t/probe", what]);
            irun(&env, &args).success().stdout()
        };
        assert_eq!(run("vmread", &[]), "vmread imago-vm-ok\n", "[{}]", u.name());
        assert_eq!(
            run("keyctl", &[]),
            "keyctl Operation not permitted\n",
            "[{}]",
            u.name()
        );
        // No filter: the kernel's own answer (a keyring id, or its refusal).
        let unconfined = run("keyctl", &["--security-opt", "seccomp=unconfined"]);
        assert_ne!(
            unconfined,
            "keyctl Operation not permitted\n",
            "[{}]",
            u.name()
        );
    }
}
