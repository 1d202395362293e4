//! The recording fakeroot of RUN steps under the single mapping (imago-nosub, no subuid
//! range): a chown is recorded and committed into the layer, `stat` in the same RUN sees
//! it, a process that drops to another user sees that user's ids (apt's `_apt`
//! sandbox). The same Dockerfiles as root and imago-sub (real ids) give the same owners.

use imago_it::{users, User};

use crate::ibuild_support::{context, env_with_busybox, find, ibuild, irun};

/// chown, then stat in the same RUN; the owner follows the file through a rename and a
/// hard link; `su` to another user shows that user's ids; a chown back to root is
/// recorded too; a chmod after a chown keeps both.
const CHOWN: &str = "FROM busybox\n\
    RUN touch /x && chown 33:33 /x && stat -c %u:%g /x > /seen \
     && mkdir -p /d/e && touch /d/e/f && chown -R 44:55 /d && stat -c %u:%g /d/e/f >> /seen \
     && touch /m && chown 7:8 /m && mv /m /moved && ln /moved /linked && stat -c %u:%g /linked >> /seen \
     && touch /r && chown 9:9 /r && chown 0:0 /r && stat -c %u:%g /r >> /seen \
     && touch /c && chown 5:6 /c && chmod 0604 /c \
     && su -s /bin/sh nobody -c 'id -u; id -g' >> /seen\n";

#[test]
fn chown_in_a_run_is_seen_by_stat_and_committed() {
    for u in users() {
        let env = env_with_busybox(u);
        context(&env, "ctx", &[("Dockerfile", CHOWN)]);
        ibuild(&env, "ctx", &["-q", "-t", "chowned"]).success();
        let seen = irun(&env, "chowned", &["cat", "/seen"]).success();
        assert_eq!(
            seen.stdout(),
            "33:33\n44:55\n7:8\n0:0\n65534\n65534\n",
            "[{}] {seen}",
            u.name()
        );
        for (path, owner) in [
            ("x", (33, 33)),
            ("d", (44, 55)),
            ("d/e", (44, 55)),
            ("d/e/f", (44, 55)),
            ("moved", (7, 8)),
            ("r", (0, 0)),
            ("c", (5, 6)),
        ] {
            let e = find(&env, "chowned", path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!((e.uid, e.gid), owner, "[{}] {path}", u.name());
        }
        // A chmod after the chown: the record takes the new mode.
        let c = find(&env, "chowned", "c").expect("c");
        assert_eq!(c.mode, 0o604, "[{}]", u.name());
    }
}

/// `IMAGO_FAKEROOT=noop` keeps the no-op fakeroot: nothing recorded (imago-nosub only:
/// the other users have real ids and never get a fakeroot).
#[test]
fn the_noop_fakeroot_stays_reachable() {
    let env = env_with_busybox(User::NoSub);
    context(
        &env,
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN touch /x && chown 33:33 /x && stat -c %u:%g /x > /seen\n",
        )],
    );
    let out = env
        .cmd("ibuild")
        .env("IMAGO_FAKEROOT", "noop")
        .arg("--root")
        .arg(env.root())
        .args(["-t", "noop"])
        .arg(env.path("ctx"))
        .run()
        .success();
    let seen = irun(&env, "noop", &["cat", "/seen"]).success();
    assert_eq!(seen.stdout(), "0:0\n", "{out} {seen}");
    let e = find(&env, "noop", "x").expect("x");
    assert_eq!((e.uid, e.gid), (0, 0));
}

/// useradd, then `install -o`: the new user's dir is committed as its, and seen so in
/// the same RUN; on the Debian base (scripts/make-debian-base.sh, cached per test process).
#[test]
fn useradd_and_install_o_commit_the_new_owner() {
    let Some(bases) = crate::seed::bases() else {
        return;
    };
    let dockerfile = "FROM debian:bookworm\n\
        RUN useradd -u 1234 app && install -o app -g app -d /data && stat -c %u:%g /data > /seen\n";
    for u in users() {
        let env = crate::seed::env_with_bases(u, bases);
        context(&env, "ctx", &[("Dockerfile", dockerfile)]);
        ibuild(&env, "ctx", &["-t", "app"]).success();
        let seen = irun(&env, "app", &["cat", "/seen"]).success();
        assert_eq!(seen.stdout(), "1234:1234\n", "[{}] {seen}", u.name());
        let e = find(&env, "app", "data").expect("/data in the layer");
        assert_eq!((e.uid, e.gid), (1234, 1234), "[{}]", u.name());
        let passwd = find(&env, "app", "etc/passwd").expect("/etc/passwd in the layer");
        assert_eq!((passwd.uid, passwd.gid), (0, 0), "[{}]", u.name());
    }
}

/// apt-get with its `_apt` sandbox on (no `APT::Sandbox::User root`): the package's
/// files are root's, apt's download dir is `_apt`'s, as under real ids.
#[test]
fn apt_get_install_works_with_its_sandbox_user() {
    let Some(bases) = crate::seed::bases() else {
        return;
    };
    let dockerfile = "FROM debian:bookworm\n\
        RUN apt-get update && apt-get install -y --no-install-recommends cowsay \
         && stat -c %U /var/cache/apt/archives/partial > /partial-owner\n";
    for u in users() {
        let env = crate::seed::env_with_bases(u, bases);
        context(&env, "ctx", &[("Dockerfile", dockerfile)]);
        let built = ibuild(&env, "ctx", &["-t", "cow"]).success();
        assert!(
            !built
                .stderr()
                .contains("couldn't be accessed by user '_apt'"),
            "[{}] apt fell back to downloading as root: {built}",
            u.name()
        );
        let out = irun(&env, "cow", &["/usr/games/cowsay", "moo"]).success();
        assert!(out.stdout().contains("< moo >"), "[{}] {out}", u.name());
        for path in ["usr/games/cowsay", "usr/share/cowsay/cows/default.cow"] {
            let e = find(&env, "cow", path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!((e.uid, e.gid), (0, 0), "[{}] {path}", u.name());
        }
        let owner = irun(&env, "cow", &["cat", "/partial-owner"]).success();
        assert_eq!(owner.stdout(), "_apt\n", "[{}] {owner}", u.name());
    }
}
