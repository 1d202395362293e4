//! Credentials where docker and podman users keep them: `DOCKER_CONFIG`, keys of
//! auth.json scoped to a namespace, `ilogin` asking on a terminal without echoing the
//! password, a `credsStore` helper that `ilogin` stores through and ipush reads from, and
//! `ilogout`. Against a real docker-registry with htpasswd auth, as each of `users()`.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use std::os::unix::fs::PermissionsExt;

use imago_it::{bin, users, Env, Scratch, User};

use crate::registry_support::{busybox_into_store, Auth, Registry};

/// docker's config.json entry for `user:password` (coreutils' base64).
fn auth_entry(user: &str, password: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "printf %s \"$1\" | base64 -w0", "sh"])
        .arg(format!("{user}:{password}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "base64: {out:?}");
    format!(r#"{{"auth":"{}"}}"#, String::from_utf8(out.stdout).unwrap())
}

fn htpasswd_registry(base: &Scratch) -> Registry {
    let auth = Auth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    };
    Registry::start(&base.path().join("reg"), auth, None)
}

#[test]
fn docker_config_and_scoped_keys_choose_the_credentials() {
    let base = Scratch::new(User::Root);
    let reg = htpasswd_registry(&base);
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let repo = format!("{}/{who}/app:1", reg.addr);
        // DOCKER_CONFIG's config.json, not ~/.docker's
        let dc = env.mkdir("dockercfg");
        env.write(
            "dockercfg/config.json",
            format!(
                r#"{{"auths":{{"{}":{}}}}}"#,
                reg.addr,
                auth_entry("alice", "s3cret")
            ),
        );
        env.cmd("ipush")
            .env("DOCKER_CONFIG", &dc)
            .args(["busybox", &repo])
            .ok();
        env.cmd("ipush")
            .args(["busybox", &repo])
            .run()
            .fails_with("ilogin");
        // auth.json: the namespace's key wins over the registry's, for its repos only
        let scoped = format!(
            r#"{{"auths":{{"{addr}/{who}":{good},"{addr}":{bad}}}}}"#,
            addr = reg.addr,
            good = auth_entry("alice", "s3cret"),
            bad = auth_entry("alice", "wrong"),
        );
        let auth = env.write("auth.json", scoped);
        env.cmd("ipush")
            .env("REGISTRY_AUTH_FILE", &auth)
            .args(["busybox", &repo])
            .ok();
        let elsewhere = format!("{}/elsewhere/app:1", reg.addr);
        env.cmd("ipush")
            .env("REGISTRY_AUTH_FILE", &auth)
            .args(["busybox", &elsewhere])
            .run()
            .fails_with("answered 401");
    }
}

#[test]
fn ilogin_asks_on_a_terminal_without_echo_and_ilogout_forgets() {
    let base = Scratch::new(User::Root);
    let reg = htpasswd_registry(&base);
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let dc = env.mkdir("dockercfg");
        // typed at a terminal: the password after ilogin has turned the echo off
        let typed = format!(
            "(echo alice; sleep 1; echo s3cret) | script -qefc '{} {}' /dev/null",
            bin("ilogin").display(),
            reg.addr
        );
        let out = env
            .cmd_path("sh")
            .env("DOCKER_CONFIG", &dc)
            .args(["-c", &typed])
            .run();
        let screen = out.stdout().replace('\r', "");
        // (the terminal echoes the name as it arrives, maybe before the prompt)
        assert!(screen.contains("Username: "), "[{who}] {out}");
        assert!(screen.contains("alice"), "[{who}] {out}");
        assert!(screen.contains("Password: "), "[{who}] {out}");
        assert!(
            !screen.contains("s3cret"),
            "[{who}] the password was echoed: {out}"
        );
        assert!(screen.contains("Login Succeeded"), "[{who}] {out}");
        let stored = std::fs::read_to_string(dc.join("config.json")).unwrap();
        assert!(stored.contains(&reg.addr), "[{who}] {stored}");
        let mode = std::fs::metadata(dc.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "[{who}]");
        let repo = format!("{}/{who}/typed:1", reg.addr);
        env.cmd("ipush")
            .env("DOCKER_CONFIG", &dc)
            .args(["busybox", &repo])
            .ok();
        // no terminal and no password: said, not hung
        env.cmd("ilogin")
            .env("DOCKER_CONFIG", &dc)
            .args(["-u", "alice", &reg.addr])
            .run()
            .code_is(125)
            .fails_with("--password-stdin");
        let out = env
            .cmd("ilogout")
            .env("DOCKER_CONFIG", &dc)
            .arg(&reg.addr)
            .ok();
        assert!(out.stderr().contains("Removed login credentials"), "{out}");
        env.cmd("ipush")
            .env("DOCKER_CONFIG", &dc)
            .args(["busybox", &repo])
            .run()
            .fails_with("ilogin");
        env.cmd("ilogout")
            .env("DOCKER_CONFIG", &dc)
            .arg(&reg.addr)
            .run()
            .fails_with("not logged in");
    }
}

#[test]
fn ilogin_stores_through_the_credential_helper_of_the_file() {
    let base = Scratch::new(User::Root);
    let reg = htpasswd_registry(&base);
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        // A helper in docker's protocol that keeps its one secret in a file beside it.
        let helper_dir = env.mkdir("helperbin");
        let helper = helper_dir.join("docker-credential-imagofile");
        let kept = helper_dir.join("kept.json");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nkept='{}'\ncase \"$1\" in\n\
                 store) cat > \"$kept\" ;;\n\
                 get) read -r server; [ -s \"$kept\" ] && cat \"$kept\" || {{ echo 'credentials not found in native keychain'; exit 1; }} ;;\n\
                 erase) read -r server; rm -f \"$kept\" ;;\n\
                 *) exit 1 ;;\nesac\n",
                kept.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        env.give(&helper);
        let dc = env.mkdir("dockercfg");
        env.write("dockercfg/config.json", r#"{"credsStore":"imagofile"}"#);
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", helper_dir.display());
        let pw = env.write("pw", "s3cret\n");
        env.cmd("ilogin")
            .env("DOCKER_CONFIG", &dc)
            .env("PATH", &path)
            .args(["-u", "alice", "--password-stdin", &reg.addr])
            .stdin(std::fs::File::open(&pw).unwrap())
            .ok();
        let cfg = std::fs::read_to_string(dc.join("config.json")).unwrap();
        assert!(
            !cfg.contains("\"auth\""),
            "[{who}] the secret is in the file: {cfg}"
        );
        let kept_text = std::fs::read_to_string(&kept).unwrap();
        assert!(
            kept_text.contains("\"Secret\":\"s3cret\""),
            "[{who}] {kept_text}"
        );
        let repo = format!("{}/{who}/helper:1", reg.addr);
        env.cmd("ipush")
            .env("DOCKER_CONFIG", &dc)
            .env("PATH", &path)
            .args(["busybox", &repo])
            .ok();
        env.cmd("ilogout")
            .env("DOCKER_CONFIG", &dc)
            .env("PATH", &path)
            .arg(&reg.addr)
            .ok();
        assert!(!kept.exists(), "[{who}] the helper still holds it");
    }
}
