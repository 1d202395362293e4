//! `irun --pull missing|always|never` (docker's flag): `never` runs what the store has
//! and asks no registry; `always` fetches the registry's image over the store's; a
//! missing image with `never` is "not found" without a request. As each of `users()`.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{users, Env, Scratch, User};

use crate::registry_support::{busybox_into_store, Registry};

/// How often the registry was asked for `repo`'s manifests (its access log).
fn manifest_gets(reg: &Registry, repo: &str) -> usize {
    let get = format!("\"GET /v2/{repo}/manifests/");
    reg.log().lines().filter(|l| l.contains(&get)).count()
}

#[test]
fn pull_never_always_and_missing() {
    let base = Scratch::new(User::Root);
    let reg = Registry::start_logged(&base.path().join("reg"));
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let repo = format!("{who}/app");
        let name = format!("{}/{repo}:1", reg.addr);
        env.cmd("ipush").args(["busybox", &name]).ok();
        // the store's own image of that name says V=local; the registry's has no V
        env.cmd("iimage")
            .args(["import", "-c", "ENV V=local"])
            .arg(env.busybox_tar())
            .arg(&name)
            .ok();
        let run = |policy: &str| {
            env.cmd("irun")
                .args(["--rm", "--pull", policy, &name, "sh", "-c", "echo v=$V"])
                .ok()
        };
        let before = manifest_gets(&reg, &repo);
        assert_eq!(run("never").stdout(), "v=local\n", "[{who}]");
        assert_eq!(run("missing").stdout(), "v=local\n", "[{who}]");
        assert_eq!(
            manifest_gets(&reg, &repo),
            before,
            "[{who}] a registry was asked"
        );
        assert_eq!(run("always").stdout(), "v=\n", "[{who}]");
        assert!(
            manifest_gets(&reg, &repo) > before,
            "[{who}] always did not pull"
        );
        // never, and nothing in the store: not found, no request
        let gone = format!("{}/{who}/gone:1", reg.addr);
        let before = manifest_gets(&reg, &format!("{who}/gone"));
        env.cmd("irun")
            .args(["--rm", "--pull", "never", &gone, "true"])
            .run()
            .code_is(125);
        assert_eq!(
            manifest_gets(&reg, &format!("{who}/gone")),
            before,
            "[{who}]"
        );
        env.cmd("irun")
            .args(["--pull", "sometimes", "busybox", "true"])
            .run()
            .code_is(125)
            .fails_with("sometimes");
    }
}
