//! The recording fakeroot's edge cases: a dir whose only change is its owner (no mount
//! stub left in it), chown through relative paths that leave their start dir (`..`, a
//! link to an absolute path). The same Dockerfiles under real ids (root, imago-sub) and
//! under the single mapping (imago-nosub, and root and imago-sub with `IMAGO_IDMAP=single`
//! forced, from a store of their own: a store keeps one ownership mode) give the same
//! owners.

use imago_it::{users, Env, Out, User};

use crate::ibuild_support::{context, env_with_busybox, find};

/// Each user's environments: its usual mapping, then (root and imago-sub) the single
/// mapping forced. On the FUSE overlay only the real ids: it refuses the supervisor,
/// which then records nothing (docs/runtime.md, the recording fakeroot's limits).
fn envs() -> Vec<(Env, Option<&'static str>)> {
    let fuse = std::env::var("IMAGO_TEST_STORAGE_DRIVER").is_ok_and(|d| d == "fuse");
    let mut v = Vec::new();
    for u in users() {
        if !(fuse && u == User::NoSub) {
            v.push((env_with_busybox(u), None));
        }
        if u != User::NoSub && !fuse {
            let env = Env::new(u);
            let tar = env.busybox_tar();
            env.cmd("iimage")
                .env("IMAGO_IDMAP", "single")
                .arg("--root")
                .arg(env.root())
                .args(["import", "--change", "CMD [\"sh\"]"])
                .arg(&tar)
                .arg("busybox")
                .ok();
            v.push((env, Some("single")));
        }
    }
    v
}

fn tag(env: &Env, idmap: Option<&str>) -> String {
    format!("{}{}", env.user.name(), idmap.map_or("", |_| "+single"))
}

fn ibuild(env: &Env, idmap: Option<&str>, dir: &str, name: &str) -> Out {
    let mut c = env.cmd("ibuild");
    if let Some(m) = idmap {
        c = c.env("IMAGO_IDMAP", m);
    }
    c.arg("--root")
        .arg(env.root())
        .args(["-q", "-t", name])
        .arg(env.path(dir))
        .run()
}

/// Build `dockerfile` as `image` in each of [`envs`], then `check` it.
fn build_everywhere(dockerfile: &str, image: &str, check: impl Fn(&Env, &str)) {
    for (env, idmap) in envs() {
        let t = tag(&env, idmap);
        context(&env, "ctx", &[("Dockerfile", dockerfile)]);
        ibuild(&env, idmap, "ctx", image).success();
        check(&env, &t);
    }
}

/// `image`'s `/seen` (written by its RUN: `stat -c %u:%g` of `owners`' paths, in order)
/// and its layers give each path the owner id:id.
fn owned_as(env: &Env, t: &str, image: &str, owners: &[(&str, u64)]) {
    let seen = find(env, image, "seen").unwrap_or_else(|| panic!("[{t}] /seen"));
    let want: String = owners
        .iter()
        .map(|(_, id)| format!("{id}:{id}\n"))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&seen.data),
        want,
        "[{t}] seen in the RUN"
    );
    for (path, id) in owners {
        let e = find(env, image, path).unwrap_or_else(|| panic!("[{t}] {path} missing"));
        assert_eq!((e.uid, e.gid), (*id, *id), "[{t}] {path} in the layer");
    }
}

/// `chown 33:33 /etc` on a base without `/etc/hosts`: the sandbox's stub is dropped
/// from the upper dir, `/etc` stays with its new owner; a later stage's RUN sees it.
#[test]
fn a_dir_whose_only_change_is_its_owner_is_committed() {
    for (env, idmap) in envs() {
        let t = tag(&env, idmap);
        context(
            &env,
            "one",
            &[("Dockerfile", "FROM busybox\nRUN chown 33:33 /etc\n")],
        );
        ibuild(&env, idmap, "one", "etc-owned").success();
        let e = find(&env, "etc-owned", "etc").unwrap_or_else(|| panic!("[{t}] /etc missing"));
        assert_eq!((e.uid, e.gid, e.kind), (33, 33, 'd'), "[{t}]");
        assert!(
            find(&env, "etc-owned", "etc/hosts").is_none(),
            "[{t}] the stub was committed"
        );
        context(
            &env,
            "two",
            &[(
                "Dockerfile",
                "FROM etc-owned\nRUN stat -c %u:%g /etc > /seen\n",
            )],
        );
        ibuild(&env, idmap, "two", "etc-seen").success();
        let seen = find(&env, "etc-seen", "seen").expect("/seen");
        assert_eq!(String::from_utf8_lossy(&seen.data), "33:33\n", "[{t}]");
    }
}

/// chown of relative paths that climb out of the cwd (`..`, past the root) or go
/// through a link to an absolute path: recorded on the file the kernel found.
const RELATIVE: &str = "FROM busybox\n\
    RUN mkdir -p /a/b && touch /a/x /a/y /a/z /a/w && ln -s /a /a/b/abs \
     && cd /a/b && chown 33:33 ../x && chown 44:44 abs/y && chown 55:55 ../../a/./b/../z \
     && cd / && chown 66:66 ../../a/w && chown 77:77 ../a/b \
     && cd /a/b && stat -c %u:%g ../x abs/y ../z ../w . > /seen\n";

#[test]
fn chown_through_dot_dot_and_links_is_recorded() {
    let owners = [
        ("a/x", 33),
        ("a/y", 44),
        ("a/z", 55),
        ("a/w", 66),
        ("a/b", 77),
    ];
    build_everywhere(RELATIVE, "relative", |env, t| {
        owned_as(env, t, "relative", &owners)
    });
}

/// A process that drops to www-data (busybox `su`) makes a dir, files with `>` and
/// `touch`, and one with O_EXCL (`mktemp`): all www-data's, seen so in the same RUN;
/// root's files stay root's.
const CREATED: &str = "FROM busybox\n\
    RUN su -s /bin/sh www-data -c 'mkdir /tmp/d && echo hi > /tmp/d/f && touch /tmp/g \
     && m=$(mktemp /tmp/m.XXXXXX) && echo ok > $m && mv $m /tmp/m && cat /tmp/m /tmp/d/f' > /out \
     && touch /tmp/root && stat -c %u:%g /tmp/d /tmp/d/f /tmp/g /tmp/m /tmp/root > /seen\n";

#[test]
fn files_made_as_another_user_are_that_users() {
    let owners = [
        ("tmp/d", 33),
        ("tmp/d/f", 33),
        ("tmp/g", 33),
        ("tmp/m", 33),
        ("tmp/root", 0),
    ];
    build_everywhere(CREATED, "created", |env, t| {
        let out = find(env, "created", "out").expect("/out");
        assert_eq!(String::from_utf8_lossy(&out.data), "ok\nhi\n", "[{t}]");
        owned_as(env, t, "created", &owners);
    });
}
