//! The recording fakeroot's edge cases: a dir whose only change is its owner (no mount
//! stub left in it), chown through relative paths that leave their start dir (`..`, a
//! link to an absolute path). The same Dockerfiles under real ids (root, imago-sub) and
//! under the single mapping (imago-nosub, and root and imago-sub with `IMAGO_IDMAP=single`
//! forced, from a store of their own: a store keeps one ownership mode) give the same
//! owners. The single mapping on imago's FUSE overlay is built in every pass (the driver
//! forced for those builds); a record follows its file through renames and links in a
//! later RUN; symlinks and fifos get their owner from the side record (those of a chown,
//! and those a faked user makes), devices from a plain file recorded as the device.

use imago_it::{users, Env, Out, User};

use crate::ibuild_support::{context, env_with_busybox, find, layers};

/// How one build runs: the user's environment, `IMAGO_IDMAP` forced or not, and the
/// storage driver forced or not (else the harness's `IMAGO_TEST_STORAGE_DRIVER`).
struct Case {
    env: Env,
    idmap: Option<&'static str>,
    driver: Option<&'static str>,
}

impl Case {
    fn tag(&self) -> String {
        format!(
            "{}{}{}",
            self.env.user.name(),
            self.idmap.map_or("", |_| "+single"),
            self.driver.map_or(String::new(), |d| format!("+{d}"))
        )
    }
}

/// A store of `u`'s own in which every command runs under the single mapping.
fn single_env(u: User) -> Env {
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
    env
}

/// Each user's environments: its usual mapping, then (root and imago-sub) the single
/// mapping forced.
fn envs() -> Vec<Case> {
    let mut v = Vec::new();
    for u in users() {
        v.push(Case {
            env: env_with_busybox(u),
            idmap: None,
            driver: None,
        });
        if u != User::NoSub {
            v.push(Case {
                env: single_env(u),
                idmap: Some("single"),
                driver: None,
            });
        }
    }
    v
}

/// The single mapping on imago's FUSE overlay, whatever the pass: imago-nosub, and
/// root and imago-sub with `IMAGO_IDMAP=single`.
fn fuse_envs() -> Vec<Case> {
    single_envs(Some("fuse"))
}

/// The single mapping (imago-nosub, and root and imago-sub with `IMAGO_IDMAP=single`) on
/// `driver`, else the pass's.
fn single_envs(driver: Option<&'static str>) -> Vec<Case> {
    users()
        .into_iter()
        .map(|u| Case {
            env: if u == User::NoSub {
                env_with_busybox(u)
            } else {
                single_env(u)
            },
            idmap: (u != User::NoSub).then_some("single"),
            driver,
        })
        .collect()
}

fn ibuild(c: &Case, dir: &str, name: &str) -> Out {
    let mut cmd = c.env.cmd("ibuild");
    if let Some(m) = c.idmap {
        cmd = cmd.env("IMAGO_IDMAP", m);
    }
    if let Some(d) = c.driver {
        cmd = cmd.env("IMAGO_STORAGE_DRIVER", d);
    }
    cmd.arg("--root")
        .arg(c.env.root())
        .args(["-q", "-t", name])
        .arg(c.env.path(dir))
        .run()
}

/// Build `dockerfile` as `image` in each of [`envs`], then `check` it.
fn build_everywhere(dockerfile: &str, image: &str, check: impl Fn(&Env, &str)) {
    build_in(envs(), dockerfile, image, check);
}

/// Build `dockerfile` as `image` in each of `cases`, then `check` it.
fn build_in(cases: Vec<Case>, dockerfile: &str, image: &str, check: impl Fn(&Env, &str)) {
    for c in cases {
        let t = c.tag();
        context(&c.env, "ctx", &[("Dockerfile", dockerfile)]);
        ibuild(&c, "ctx", image).success();
        check(&c.env, &t);
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
    for c in envs() {
        let (env, t) = (&c.env, c.tag());
        context(
            env,
            "one",
            &[("Dockerfile", "FROM busybox\nRUN chown 33:33 /etc\n")],
        );
        ibuild(&c, "one", "etc-owned").success();
        let e = find(env, "etc-owned", "etc").unwrap_or_else(|| panic!("[{t}] /etc missing"));
        assert_eq!((e.uid, e.gid, e.kind), (33, 33, 'd'), "[{t}]");
        assert!(
            find(env, "etc-owned", "etc/hosts").is_none(),
            "[{t}] the stub was committed"
        );
        context(
            env,
            "two",
            &[(
                "Dockerfile",
                "FROM etc-owned\nRUN stat -c %u:%g /etc > /seen\n",
            )],
        );
        ibuild(&c, "two", "etc-seen").success();
        let seen = find(env, "etc-seen", "seen").expect("/seen");
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

/// A process that drops to www-data makes dirs and files under umask 0 and 027: each
/// gets the mode asked less that process's umask, as under a real setuid (not less the
/// umask of the supervisor that makes them), seen so in the same RUN and in the layer.
const CREATED_MODES: &str = "FROM busybox\n\
    RUN su -s /bin/sh www-data -c 'umask 0 && mkdir -m 777 /tmp/d && touch /tmp/f \
     && mkdir /tmp/e && umask 027 && touch /tmp/g && mkdir /tmp/h' \
     && stat -c %u:%g /tmp/d /tmp/f /tmp/e /tmp/g /tmp/h > /seen \
     && stat -c %a /tmp/d /tmp/f /tmp/e /tmp/g /tmp/h > /modes\n";

fn created_modes(env: &Env, t: &str) {
    let modes = [
        ("tmp/d", 0o777),
        ("tmp/f", 0o666),
        ("tmp/e", 0o777),
        ("tmp/g", 0o640),
        ("tmp/h", 0o750),
    ];
    let owners: Vec<_> = modes.iter().map(|(p, _)| (*p, 33)).collect();
    owned_as(env, t, "created-modes", &owners);
    let seen = find(env, "created-modes", "modes").unwrap_or_else(|| panic!("[{t}] /modes"));
    let want: String = modes.iter().map(|(_, m)| format!("{m:o}\n")).collect();
    assert_eq!(
        String::from_utf8_lossy(&seen.data),
        want,
        "[{t}] modes seen in the RUN"
    );
    for (path, mode) in modes {
        let e = find(env, "created-modes", path).unwrap_or_else(|| panic!("[{t}] {path}"));
        assert_eq!(
            e.mode, mode,
            "[{t}] {path}'s mode in the layer: {:o}",
            e.mode
        );
    }
}

#[test]
fn files_made_as_another_user_keep_that_users_umask() {
    build_everywhere(CREATED_MODES, "created-modes", created_modes);
    build_in(fuse_envs(), CREATED_MODES, "created-modes", created_modes);
}

/// Root makes a set-group-id dir; a process that drops to www-data makes a dir, a file,
/// a symlink and a fifo in it under umask 0: all get the dir's group (root's) as under a
/// real setuid, the new dir also its set-group-id bit (mode 2777), the rest none; in a
/// set-group-id dir chowned to group 44 (recorded under the single mapping), group 44.
/// Seen so in the same RUN and in the layer.
const CREATED_IN_SETGID: &str = "FROM busybox\n\
    RUN mkdir -m 2777 /tmp/sg /tmp/sg44 && chown 0:44 /tmp/sg44 \
     && su -s /bin/sh www-data -c 'umask 0 && mkdir /tmp/sg/d && touch /tmp/sg/f \
      && ln -s f /tmp/sg/l && mkfifo /tmp/sg/p && mkdir /tmp/sg44/d && touch /tmp/sg44/f' \
     && stat -c '%a %u:%g' /tmp/sg /tmp/sg/d /tmp/sg/f /tmp/sg/l /tmp/sg/p \
      /tmp/sg44 /tmp/sg44/d /tmp/sg44/f > /seen\n";

fn created_in_setgid(env: &Env, t: &str) {
    let want = [
        ("tmp/sg", 0o2777, 0, 0),
        ("tmp/sg/d", 0o2777, 33, 0),
        ("tmp/sg/f", 0o666, 33, 0),
        ("tmp/sg/l", 0o777, 33, 0),
        ("tmp/sg/p", 0o666, 33, 0),
        ("tmp/sg44", 0o2777, 0, 44),
        ("tmp/sg44/d", 0o2777, 33, 44),
        ("tmp/sg44/f", 0o666, 33, 44),
    ];
    let seen = find(env, "created-in-setgid", "seen").unwrap_or_else(|| panic!("[{t}] /seen"));
    let lines: String = want
        .iter()
        .map(|(_, m, u, g)| format!("{m:o} {u}:{g}\n"))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&seen.data),
        lines,
        "[{t}] seen in the RUN"
    );
    for (path, mode, uid, gid) in want {
        let e = find(env, "created-in-setgid", path).unwrap_or_else(|| panic!("[{t}] {path}"));
        assert_eq!(
            (e.mode, e.uid, e.gid),
            (mode, uid, gid),
            "[{t}] {path} in the layer: mode {:o}",
            e.mode
        );
    }
}

#[test]
fn files_made_as_another_user_in_a_setgid_dir_get_its_group() {
    build_everywhere(CREATED_IN_SETGID, "created-in-setgid", created_in_setgid);
    build_in(
        fuse_envs(),
        CREATED_IN_SETGID,
        "created-in-setgid",
        created_in_setgid,
    );
}

/// A process that drops to www-data makes symlinks (one dangling) and a fifo (`-m`:
/// umask 0, mode 666): all www-data's, seen so in the same RUN and in the layer (from
/// the fakeroot's side record under the single mapping); root's stay root's, and so
/// does a link root makes again at a name www-data's link had. On the pass's driver and
/// on FUSE.
const SPECIAL_CREATED: &str = "FROM busybox\n\
    RUN su -s /bin/sh www-data -c 'ln -s /etc/passwd /tmp/l && ln -s nowhere /tmp/dangling \
     && mkfifo -m 666 /tmp/p && ln -s a /tmp/again' \
     && rm /tmp/again && ln -s b /tmp/again && ln -s x /tmp/root-l && mkfifo /tmp/root-p \
     && stat -c %u:%g /tmp/l /tmp/dangling /tmp/p /tmp/again /tmp/root-l /tmp/root-p > /seen\n";

fn special_created_owners(env: &Env, t: &str) {
    let owners = [
        ("tmp/l", 33),
        ("tmp/dangling", 33),
        ("tmp/p", 33),
        ("tmp/again", 0),
        ("tmp/root-l", 0),
        ("tmp/root-p", 0),
    ];
    owned_as(env, t, "special-created", &owners);
    let entry = |p: &str| find(env, "special-created", p).expect(p);
    let (l, p) = (entry("tmp/l"), entry("tmp/p"));
    assert_eq!(
        (l.kind, l.data.len(), p.mode),
        ('l', 0, 0o666),
        "[{t}] the link and the fifo's mode in the layer"
    );
}

#[test]
fn symlinks_and_fifos_made_as_another_user_are_that_users() {
    build_everywhere(SPECIAL_CREATED, "special-created", special_created_owners);
    build_in(
        fuse_envs(),
        SPECIAL_CREATED,
        "special-created",
        special_created_owners,
    );
}

/// On imago's FUSE overlay (forced, so it runs in every pass): a chown of new files, of
/// a tree and of lower files and dirs, and the files a faked user makes, all recorded,
/// seen in the same RUN and committed.
const ON_FUSE: &str = "FROM busybox\n\
    RUN touch /f && mkdir -p /d/e && chown 33:33 /f && chown -R 44:44 /d \
     && chown 55:55 /home /etc/group \
     && su -s /bin/sh www-data -c 'mkdir /tmp/w && touch /tmp/w/x' \
     && stat -c %u:%g /f /d /d/e /home /etc/group /tmp/w /tmp/w/x > /seen\n";

#[test]
fn chown_on_the_fuse_overlay_is_recorded() {
    let owners = [
        ("f", 33),
        ("d", 44),
        ("d/e", 44),
        ("home", 55),
        ("etc/group", 55),
        ("tmp/w", 33),
        ("tmp/w/x", 33),
    ];
    build_in(fuse_envs(), ON_FUSE, "on-fuse", |env, t| {
        owned_as(env, t, "on-fuse", &owners)
    });
}

/// Files recorded by one RUN, moved by the next: renamed, hard-linked, renamed over a
/// name that exists, a recorded tree renamed; a file recorded and then renamed over an
/// existing one in the same RUN. The record is on the inode, so it follows (the
/// overlays copy it up with the file); the name left behind or replaced keeps nothing
/// of it.
const MOVED: &str = "FROM busybox\n\
    RUN touch /mv /ln /over /target /kept && chown 33:33 /mv && chown 44:44 /ln \
     && chown 55:55 /over && chown 11:11 /target \
     && mkdir -p /tree/sub && touch /tree/sub/f && chown -R 77:77 /tree\n\
    RUN mv /mv /moved && ln /ln /linked && mv /over /target && mv /tree /renamed \
     && touch /new && chown 66:66 /new && mv /new /kept \
     && stat -c %u:%g /moved /linked /ln /target /kept /renamed /renamed/sub/f > /seen\n";

fn moved_owners(env: &Env, t: &str) {
    owned_as(
        env,
        t,
        "moved",
        &[
            ("moved", 33),
            ("linked", 44),
            ("ln", 44),
            ("target", 55),
            ("kept", 66),
            ("renamed", 77),
            ("renamed/sub/f", 77),
        ],
    );
    let top = layers(env, "moved").pop().expect("layers");
    let has = |p: &str| top.iter().any(|e| e.path == p);
    assert!(
        has(".wh.mv") && has(".wh.over") && has(".wh.tree"),
        "[{t}] whiteouts"
    );
    assert!(!has("new") && !has(".wh.new"), "[{t}] /new committed");
}

#[test]
fn a_record_follows_renames_and_links_into_the_next_run() {
    build_everywhere(MOVED, "moved", moved_owners);
    build_in(fuse_envs(), MOVED, "moved", moved_owners);
}

/// mknod of a device under the single mapping (no process in a user namespace may make
/// one): a plain file recorded as the device, shown so by stat and committed as the
/// device; a chown of it keeps it the device; one made under umask 0 keeps mode 666 (the
/// supervisor's own umask takes nothing off); a process that dropped to www-data gets
/// EPERM and no file, as a real non-root user. On the pass's driver and on FUSE.
const DEVICES: &str = "FROM busybox\n\
    RUN mknod /null c 1 3 && mknod -m 600 /tty c 5 0 && chown 33:33 /tty \
     && (umask 0 && mknod /zero c 1 5) \
     && stat -c '%F %t:%T %u:%g %a' /null /tty /zero > /seen \
     && ! su -s /bin/sh www-data -c 'mknod /tmp/w c 1 3' && test ! -e /tmp/w\n";

#[test]
fn mknod_of_a_device_is_recorded_as_the_device() {
    let mut cases = single_envs(None);
    cases.extend(fuse_envs());
    build_in(cases, DEVICES, "devices", |env, t| {
        let seen = find(env, "devices", "seen").unwrap_or_else(|| panic!("[{t}] /seen"));
        assert_eq!(
            String::from_utf8_lossy(&seen.data),
            "character special file 1:3 0:0 644\ncharacter special file 5:0 33:33 600\n\
             character special file 1:5 0:0 666\n",
            "[{t}] seen in the RUN"
        );
        let devices = [("null", 0, 0o644), ("tty", 33, 0o600), ("zero", 0, 0o666)];
        for (path, owner, mode) in devices {
            let e = find(env, "devices", path).unwrap_or_else(|| panic!("[{t}] {path}"));
            assert_eq!(
                (e.kind, e.uid, e.gid, e.mode, e.data.len()),
                ('c', owner, owner, mode, 0),
                "[{t}] {path} in the layer"
            );
        }
    });
}

/// Symlinks and fifos cannot carry the ownership xattr: under the single mapping their
/// chown goes to the fakeroot's side record (by path), which stat in the same RUN shows
/// and the commit applies; a lower layer's symlink is copied up for it; a chown back to
/// root drops it. Real ids give the same owners.
const SPECIAL: &str = "FROM busybox\n\
    RUN ln -s /etc/passwd /l && ln -s /nowhere /dangling && mkfifo /p \
     && chown -h 33:33 /l && chown -h 44:44 /dangling && chown 55:55 /p \
     && ln -s x /back && chown -h 66:66 /back && chown -h 0:0 /back \
     && chown -h 77:77 /linuxrc \
     && stat -c %u:%g /l /dangling /p /back /linuxrc > /seen\n";

fn special_owners(env: &Env, t: &str) {
    let owners = [
        ("l", 33),
        ("dangling", 44),
        ("p", 55),
        ("back", 0),
        ("linuxrc", 77),
    ];
    owned_as(env, t, "special", &owners);
    let top = layers(env, "special").pop().expect("layers");
    let kind = |p: &str| top.iter().find(|e| e.path == p).map(|e| e.kind);
    assert_eq!(
        (kind("l"), kind("linuxrc"), kind("etc/passwd")),
        (Some('l'), Some('l'), None),
        "[{t}] the RUN's layer (a link's target is not copied up)"
    );
}

#[test]
fn chown_of_symlinks_and_fifos_is_recorded_beside() {
    build_everywhere(SPECIAL, "special", special_owners);
    build_in(fuse_envs(), SPECIAL, "special", special_owners);
}
