//! ibuild where docker and podman users' hands expect it: `.containerignore`,
//! `--iidfile`, and the host's proxy variables reaching RUN steps but never the image.

use imago_it::{users, Env, Out};

use crate::ibuild_support::{config, context, env_with_busybox, find, ibuild, image_id};

/// `ibuild` in `dir` with the proxy variables of a host behind a proxy.
fn ibuild_behind_proxy(env: &Env, dir: &str, args: &[&str]) -> Out {
    let mut c = env
        .cmd("ibuild")
        .env("HTTPS_PROXY", "http://proxy.invalid:3128")
        .env("no_proxy", "localhost,.internal")
        .args(args)
        .arg(env.path(dir));
    c.command().current_dir(env.path(dir));
    c.run()
}

#[test]
fn containerignore_wins_over_dockerignore() {
    for user in users() {
        let env = env_with_busybox(user);
        let df = ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n");
        context(
            &env,
            "both",
            &[
                df,
                (".containerignore", "secret\n"),
                (".dockerignore", "public\n"),
                ("secret", "s"),
                ("public", "p"),
            ],
        );
        ibuild(&env, "both", &["-t", "both"]).success();
        assert!(
            find(&env, "both", "ctx/secret").is_none(),
            "[{}]",
            user.name()
        );
        // only one ignore file applies: podman's own when both are there
        assert!(
            find(&env, "both", "ctx/public").is_some(),
            "[{}]",
            user.name()
        );
        context(
            &env,
            "docker",
            &[df, (".dockerignore", "public\n"), ("public", "p")],
        );
        ibuild(&env, "docker", &["-t", "docker"]).success();
        assert!(
            find(&env, "docker", "ctx/public").is_none(),
            "[{}]",
            user.name()
        );
    }
}

#[test]
fn iidfile_holds_the_image_id_and_never_a_stale_one() {
    for user in users() {
        let env = env_with_busybox(user);
        context(
            &env,
            "ok",
            &[("Dockerfile", "FROM busybox\nRUN echo hi > /hi\n")],
        );
        let iid = env.mkdir("out").join("iid");
        let iid_s = iid.to_str().unwrap();
        ibuild(&env, "ok", &["-t", "ok", "--iidfile", iid_s]).success();
        let written = std::fs::read_to_string(&iid).unwrap();
        assert_eq!(written, image_id(&env, "ok"), "[{}]", user.name());
        assert!(written.starts_with("sha256:"), "{written}");
        // as docker: the old id goes when a build starts, so a failed one leaves none
        context(&env, "bad", &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
        ibuild(&env, "bad", &["--iidfile", iid_s]).code_is(1);
        assert!(!iid.exists(), "[{}] a stale --iidfile stayed", user.name());
    }
}

#[test]
fn host_proxies_reach_run_but_not_the_image() {
    for user in users() {
        let env = env_with_busybox(user);
        let df = "FROM busybox\nRUN echo \"$HTTPS_PROXY|$no_proxy|$HTTP_PROXY\" > /seen\n";
        context(&env, "p", &[("Dockerfile", df)]);
        ibuild_behind_proxy(&env, "p", &["-t", "p"]).success();
        let seen = find(&env, "p", "seen").expect("/seen").data;
        assert_eq!(
            String::from_utf8_lossy(&seen),
            "http://proxy.invalid:3128|localhost,.internal|\n",
            "[{}]",
            user.name()
        );
        // neither the config nor the history keeps them
        let c = config(&env, "p").to_string();
        assert!(!c.contains("proxy.invalid"), "[{}] {c}", user.name());
        assert!(!c.contains(".internal"), "[{}] {c}", user.name());
        // a --build-arg of the same name wins; --http-proxy=false passes none
        let args = ["-t", "q", "--no-cache", "--build-arg", "no_proxy=mine"];
        ibuild_behind_proxy(&env, "p", &args).success();
        let seen = find(&env, "q", "seen").expect("/seen").data;
        assert_eq!(
            String::from_utf8_lossy(&seen),
            "http://proxy.invalid:3128|mine|\n"
        );
        let args = ["-t", "off", "--no-cache", "--http-proxy=false"];
        ibuild_behind_proxy(&env, "p", &args).success();
        let seen = find(&env, "off", "seen").expect("/seen").data;
        assert_eq!(String::from_utf8_lossy(&seen), "||\n", "[{}]", user.name());
    }
}
