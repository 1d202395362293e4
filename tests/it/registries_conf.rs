//! podman's registries.conf: a docker.io mirror on loopback serves `ipull`, `ibuild`'s
//! FROM and `irun` of an image missing from the store (Docker Hub itself is out of reach
//! here, so only the mirror can); a short name resolved by an alias and by the search
//! list; a blocked registry refused. As each of `users()`.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{users, Env, Scratch, User};

use crate::registry_support::{busybox_into_store, Auth, Registry};

/// `program` as `env`'s user with `conf` as the only registries.conf.
fn with_conf(env: &Env, program: &str, conf: &std::path::Path) -> imago_it::Cmd {
    env.cmd(program).env("CONTAINERS_REGISTRIES_CONF", conf)
}

#[test]
fn a_docker_io_mirror_serves_pull_build_and_run() {
    let base = Scratch::new(User::Root);
    let mirror = Registry::start_logged(&base.path().join("mirror"));
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let mirrored = format!("{}/library/busybox:latest", mirror.addr);
        env.cmd("ipush").args(["busybox", &mirrored]).ok();
        let conf = env.write(
            "registries.conf",
            format!(
                "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\
                 [[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
                mirror.addr
            ),
        );
        let empty = |name: &str| env.path(name);
        let before = manifest_gets(&mirror);
        let out = with_conf(&env, "ipull", &conf)
            .env("IMAGO_ROOT", empty("s1"))
            .arg("busybox")
            .ok();
        assert!(out.stdout().trim().starts_with("sha256:"), "[{who}] {out}");
        let ls = with_conf(&env, "iimage", &conf)
            .env("IMAGO_ROOT", empty("s1"))
            .args(["ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .ok();
        assert_eq!(ls.stdout().trim(), "busybox:latest", "[{who}] {ls}");
        let ctx = env.write("ctx/Dockerfile", "FROM busybox\nRUN echo built > /b\n");
        with_conf(&env, "ibuild", &conf)
            .env("IMAGO_ROOT", empty("s2"))
            .args(["-t", "b"])
            .arg(ctx.parent().unwrap())
            .ok();
        let run = with_conf(&env, "irun", &conf)
            .env("IMAGO_ROOT", empty("s3"))
            .args(["--rm", "busybox", "echo", "ran"])
            .ok();
        assert_eq!(run.stdout(), "ran\n", "[{who}] {run}");
        // each of the three fetched the manifest from the mirror
        let fetched = manifest_gets(&mirror) - before;
        assert!(
            fetched >= 3,
            "[{who}] the mirror served {fetched}: {}",
            mirror.log()
        );
    }
}

/// How often the mirror was asked for busybox's manifest (its access log).
fn manifest_gets(mirror: &Registry) -> usize {
    let log = mirror.log();
    let get = "\"GET /v2/library/busybox/manifests/latest";
    log.lines().filter(|l| l.contains(get)).count()
}

#[test]
fn short_names_by_alias_and_search_list_and_blocked_registries() {
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let tool = format!("{}/team/tool:1", reg.addr);
        env.cmd("ipush").args(["busybox", &tool]).ok();
        // the search list: a registry that refuses connections, then ours
        let conf = env.write(
            "search.conf",
            format!(
                "unqualified-search-registries = [\"127.0.0.1:1\", \"{}\"]\n\
                 [aliases]\n\"mytool\" = \"{}/team/tool\"\n",
                reg.addr, reg.addr
            ),
        );
        let out = with_conf(&env, "ipull", &conf)
            .env("IMAGO_ROOT", env.path("s1"))
            .arg("team/tool:1")
            .ok();
        assert!(out.stderr().contains("trying the next"), "[{who}] {out}");
        let ls = |root: &str| {
            with_conf(&env, "iimage", &conf)
                .env("IMAGO_ROOT", env.path(root))
                .args(["ls", "--format", "{{.Repository}}:{{.Tag}}"])
                .ok()
                .stdout()
        };
        assert_eq!(
            ls("s1").trim(),
            format!("{}/team/tool:1", reg.addr),
            "[{who}]"
        );
        with_conf(&env, "ipull", &conf)
            .env("IMAGO_ROOT", env.path("s2"))
            .arg("mytool:1")
            .ok();
        assert_eq!(
            ls("s2").trim(),
            format!("{}/team/tool:1", reg.addr),
            "[{who}]"
        );
        // blocked: refused by name, nothing pulled
        let blocked = env.write(
            "blocked.conf",
            format!(
                "[[registry]]\nlocation = \"{}\"\nblocked = true\n",
                reg.addr
            ),
        );
        with_conf(&env, "ipull", &blocked)
            .env("IMAGO_ROOT", env.path("s3"))
            .arg(&tool)
            .run()
            .fails_with("is blocked in registries.conf");
    }
}
