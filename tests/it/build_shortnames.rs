//! `ibuild` resolves image names as `irun` does: `FROM` and `COPY --from` of a short
//! name through registries.conf's search list and aliases (a registry on loopback),
//! enforcing short-name-mode refused without a terminal; `iimage`, `itag` and `ipush`
//! find a stored image by its short name. `FROM --platform` and `ibuild --platform`
//! pick from a multi-platform index, a stored image of another platform is pulled
//! again, the automatic platform args are BuildKit's, and a RUN of a platform the host
//! cannot run fails naming it. As each of `users()`.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{users, Env, Scratch, User};

use crate::registry_support::{busybox_into_store, Auth, Registry};
use crate::run_platform::{
    enforcing_conf, host_and_other, id_and_arch, make_index, tool_behind_search_list,
};

/// `program` as `env`'s user on store `root` with `conf` as the only registries.conf.
fn cmd(env: &Env, program: &str, conf: &std::path::Path, root: &str) -> imago_it::Cmd {
    (env.cmd(program).env("CONTAINERS_REGISTRIES_CONF", conf)).env("IMAGO_ROOT", env.path(root))
}

/// A build context `dir` holding `dockerfile` (and a file `f`).
fn context(env: &Env, dir: &str, dockerfile: &str) -> std::path::PathBuf {
    env.write(&format!("{dir}/f"), "from the context\n");
    env.write(&format!("{dir}/Dockerfile"), dockerfile);
    env.path(dir)
}

#[test]
fn from_and_copy_from_resolve_short_names_and_tools_find_them() {
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        let conf = tool_behind_search_list(&env, &reg);
        let tool = format!("{}/{who}/tool:1", reg.addr);
        // The search list: the first registry refuses, the second serves.
        let short = format!("{who}/tool:1");
        let ctx = context(&env, "c1", &format!("FROM {short}\nRUN echo built > /b\n"));
        let out = cmd(&env, "ibuild", &conf, "s1")
            .args(["-t", "b1", "--progress", "plain"])
            .arg(&ctx)
            .ok();
        assert!(out.stderr().contains("trying the next"), "[{who}] {out}");
        let run = cmd(&env, "irun", &conf, "s1")
            .args(["--rm", "--pull", "never", "b1", "cat", "/b"])
            .ok();
        assert_eq!(run.stdout(), "built\n", "[{who}] {run}");
        // Now in the store under its full name: found by the short one, no pull.
        let out = cmd(&env, "ibuild", &conf, "s1")
            .args(["--no-cache", "--progress", "plain"])
            .arg(&ctx)
            .ok();
        assert!(!out.stderr().contains("pulling"), "[{who}] {out}");
        // An alias, in COPY --from on an empty store, then in FROM (found stored).
        let ctx = context(
            &env,
            "c2",
            "FROM scratch\nCOPY --from=mytool:1 /bin/busybox /bb\n",
        );
        cmd(&env, "ibuild", &conf, "s2")
            .args(["-t", "b2"])
            .arg(&ctx)
            .ok();
        let inspect = |root: &str, name: &str| {
            cmd(&env, "iimage", &conf, root)
                .args(["inspect", "--format", "{{json .RepoTags}}", name])
                .run()
        };
        let tags = inspect("s2", "mytool:1").success();
        assert!(tags.stdout().contains(&tool), "[{who}] {tags}");
        // itag, ipush (to the name it was found by) and iimage rm by the short name.
        cmd(&env, "itag", &conf, "s2")
            .args(["mytool:1", "again:1"])
            .ok();
        inspect("s2", "again:1").success();
        let pushed = cmd(&env, "ipush", &conf, "s2").arg("mytool:1").ok();
        assert!(pushed.stderr().contains(&tool), "[{who}] {pushed}");
        cmd(&env, "iimage", &conf, "s2")
            .args(["rm", "mytool:1"])
            .ok();
        inspect("s2", "mytool:1").code_is(125);
        // Without the configuration the short name is Docker Hub's: not in the store.
        let empty = env.write("empty.conf", "");
        inspect("s1", &short).success();
        (cmd(&env, "iimage", &empty, "s1").args(["inspect", &short]))
            .run()
            .code_is(125);
        // enforcing, two search registries, no terminal: refused, both named.
        let enforcing = enforcing_conf(&env, &reg);
        let ctx = context(&env, "c3", &format!("FROM {short}\n"));
        cmd(&env, "ibuild", &enforcing, "s3")
            .arg(&ctx)
            .run()
            .code_is(125)
            .fails_with(&format!("127.0.0.1:1/{short}, {}/{short}", reg.addr));
    }
}

/// True when binfmt_misc would run `arch`'s programs here (then a foreign RUN works).
fn emulated(arch: &str) -> bool {
    let qemu = match arch {
        "amd64" => "x86_64",
        _ => "aarch64",
    };
    let entry = format!("/proc/sys/fs/binfmt_misc/qemu-{qemu}");
    std::fs::read_to_string(entry).is_ok_and(|s| s.starts_with("enabled"))
}

#[test]
fn from_platform_picks_from_an_index() {
    let (host, other) = host_and_other();
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let (host_config, other_config) = make_index(&env, other);
        let multi = format!("{}/{who}/multi:1", reg.addr);
        env.cmd("ipush").args(["multi", &multi]).ok();
        let conf = env.write("none.conf", "");
        // FROM --platform of another platform: picked from the index; COPY works.
        let ctx = context(
            &env,
            "c1",
            &format!("FROM --platform=linux/{other} {multi}\nCOPY f /f\n"),
        );
        let out = cmd(&env, "ibuild", &conf, "s1")
            .args(["-t", "cross"])
            .arg(&ctx)
            .ok();
        let (id, arch) = id_and_arch(&env, "s1", &multi);
        assert_eq!(
            (id.as_str(), arch.as_str()),
            (other_config.as_str(), other),
            "[{who}] {out}"
        );
        assert_eq!(id_and_arch(&env, "s1", "cross").1, other, "[{who}]");
        // A RUN in it (or in a stage from it) cannot run here: said, with the platform.
        let ctx = context(
            &env,
            "c2",
            &format!("FROM --platform=linux/{other} {multi} AS a\nFROM a\nRUN true\n"),
        );
        let run = cmd(&env, "ibuild", &conf, "s1").arg(&ctx).run();
        if !emulated(other) {
            run.code_is(125)
                .fails_with(&format!("this stage is for linux/{other}"));
        }
        // The store's image is `other`'s: --platform of the host pulls the host's.
        let ctx = context(&env, "c3", &format!("FROM {multi}\nRUN echo ran > /r\n"));
        let out = cmd(&env, "ibuild", &conf, "s1")
            .args(["--platform", &format!("linux/{host}"), "-t", "native"])
            .arg(&ctx)
            .ok();
        assert!(
            out.stderr().contains(&format!("is linux/{other}")),
            "[{who}] {out}"
        );
        assert_eq!(id_and_arch(&env, "s1", &multi).0, host_config, "[{who}]");
        assert_eq!(id_and_arch(&env, "s1", "native").1, host, "[{who}]");
        // A cross build: RUN in a $BUILDPLATFORM stage, the target's stage only copies.
        let ctx = context(
            &env,
            "c4",
            &format!(
                "FROM --platform=$BUILDPLATFORM {multi} AS build\n\
                 ARG TARGETPLATFORM\nARG TARGETARCH\nARG BUILDARCH\n\
                 RUN echo \"$BUILDARCH $TARGETARCH $TARGETPLATFORM\" > /arch\n\
                 FROM {multi}\nCOPY --from=build /arch /arch\n"
            ),
        );
        let out = cmd(&env, "ibuild", &conf, "s1")
            .args(["--platform", &format!("linux/{other}"), "-t", "xbuild"])
            .arg(&ctx)
            .ok();
        assert_eq!(id_and_arch(&env, "s1", "xbuild").1, other, "[{who}] {out}");
        // The layer is busybox's, so it runs here whatever its config says.
        let cat = cmd(&env, "irun", &conf, "s1")
            .args(["--rm", "--pull", "never", "xbuild", "cat", "/arch"])
            .ok();
        assert_eq!(
            cat.stdout(),
            format!("{host} {other} linux/{other}\n"),
            "[{who}] {cat}"
        );
        // A platform the index lacks: the pull fails and names what it has.
        let ctx = context(
            &env,
            "c5",
            &format!("FROM --platform=linux/s390x {multi}\n"),
        );
        cmd(&env, "ibuild", &conf, "s1")
            .arg(&ctx)
            .run()
            .code_is(125)
            .fails_with(&format!("linux/{other}"));
    }
}
