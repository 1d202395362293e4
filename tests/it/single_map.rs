//! The single mapping placed at the container's user (a user without a subuid range,
//! imago-nosub): `irun -u`, an image's USER, `ictr exec` into such a container and an
//! ibuild RUN after USER run as that user, with the user's own files showing as its. The
//! same commands as root and imago-sub give the same ids (their mappings have every id).

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use imago_it::{users, Env, Out, User};

use crate::ibuild_support::{context, env_with_busybox, find, ibuild};
use crate::irun_support::setup_store;

fn irun(env: &Env, args: &[&str]) -> Out {
    env.cmd("irun").args(args).run()
}

fn ictr(env: &Env, args: &[&str]) -> Out {
    env.cmd("ictr").args(args).run()
}

#[test]
fn irun_runs_as_the_user_of_u_numbers_and_names() {
    for u in users() {
        let env = Env::new(u);
        setup_store(&env);
        let who = |args: &[&str]| {
            let mut all = vec!["--rm"];
            all.extend_from_slice(args);
            all.extend(["busybox", "sh", "-c", "id -u; id -g; echo $HOME"]);
            irun(&env, &all).success().stdout()
        };
        // A uid alone takes its gid and home from the image's passwd (www-data).
        assert_eq!(who(&["-u", "33"]), "33\n33\n/var/www\n", "[{}]", u.name());
        assert_eq!(
            who(&["-u", "33:44"]),
            "33\n44\n/var/www\n",
            "[{}]",
            u.name()
        );
        assert_eq!(
            who(&["-u", "nobody"]),
            "65534\n65534\n/nonexistent\n",
            "[{}]",
            u.name()
        );
        assert_eq!(who(&[]), "0\n0\n/root\n", "[{}] root by default", u.name());
        let out = irun(&env, &["--rm", "-u", "nobody2", "busybox", "id"]).code_is(125);
        assert!(
            out.stderr()
                .contains("unable to find user nobody2: no matching entries in passwd file"),
            "[{}] {out}",
            u.name()
        );
        // A uid with no passwd entry: gid 0, as docker.
        assert_eq!(who(&["-u", "1234"]), "1234\n0\n/\n", "[{}]", u.name());
    }
}

#[test]
fn single_mapping_maps_only_the_user_and_the_callers_files_are_its() {
    for u in users() {
        let env = Env::new(u);
        setup_store(&env);
        // A dir owned by the caller that a uid-33 process may write to on every mapping.
        let out_dir = env.mkdir("out");
        std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        // A file of host root's, which only root's identity map has.
        let host_root = env.path("host-root");
        std::fs::create_dir_all(&host_root).unwrap();
        let bind_out = format!("{}:/out", out_dir.display());
        let bind_root = format!("{}:/hostroot:ro", host_root.display());
        let script = "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' ' | sed 's/^ //'; \
                      echo --; stat -c %u:%g /bin/busybox /hostroot; touch /out/by-33";
        let out = irun(
            &env,
            &[
                "--rm", "-u", "33", "-v", &bind_out, "-v", &bind_root, "busybox", "sh", "-c",
                script,
            ],
        )
        .success();
        let stdout = out.stdout();
        let (maps, owners) = stdout.split_once("--\n").unwrap_or(("", ""));
        let maps: Vec<&str> = maps.lines().collect();
        let owners: Vec<&str> = owners.lines().collect();
        let created = std::fs::metadata(out_dir.join("by-33")).unwrap();
        match u {
            User::NoSub => {
                let (uid, gid) = u.ids().unwrap();
                assert_eq!(
                    maps,
                    [format!("33 {uid} 1"), format!("33 {gid} 1")],
                    "{out}"
                );
                // The image's files are the caller's on disk: they show as the user's;
                // host root's file shows as the overflow id.
                assert_eq!(owners, ["33:33", "65534:65534"], "{out}");
                assert_eq!((created.uid(), created.gid()), (uid, gid), "{out}");
            }
            User::Root => {
                assert_eq!(owners, ["0:0", "0:0"], "{out}");
                assert_eq!((created.uid(), created.gid()), (33, 33), "{out}");
            }
            _ => {
                assert_eq!(owners, ["0:0", "65534:65534"], "{out}");
                assert_ne!(Some(created.uid()), u.ids().map(|i| i.0), "{out}");
            }
        }
        // Root keeps the mapping at 0 under the single mapping.
        let root = irun(&env, &["--rm", "busybox", "cat", "/proc/self/uid_map"]).success();
        let first = root.stdout().split_whitespace().next().map(str::to_owned);
        assert_eq!(first.as_deref(), Some("0"), "[{}] {root}", u.name());
        if u == User::NoSub {
            // Only root keeps the fakeroot filter: a non-root user's chown of another
            // id fails as it would anywhere.
            let chown = irun(
                &env,
                &["--rm", "-u", "33", "busybox", "chown", "44", "/tmp"],
            );
            assert_eq!(chown.code(), Some(1), "{chown}");
        }
    }
}

#[test]
fn ictr_exec_joins_as_the_containers_user() {
    for u in users() {
        let env = Env::new(u);
        setup_store(&env);
        irun(
            &env,
            &[
                "-d",
                "--network",
                "none",
                "--name",
                "box",
                "-u",
                "33",
                "busybox",
                "sleep",
                "60",
            ],
        )
        .success();
        let id = ictr(&env, &["exec", "box", "id", "-u"]);
        let as_root = ictr(&env, &["exec", "-u", "0", "box", "id", "-u"]);
        // Removed before asserting, so a failure leaves nothing running.
        ictr(&env, &["rm", "-f", "box"]).success();
        assert_eq!(id.success().stdout(), "33\n", "[{}]", u.name());
        if u == User::NoSub {
            let out = as_root.code_is(125);
            assert!(
                out.stderr()
                    .contains("user uid 0 is not mapped in this container (its uids: 33)"),
                "{out}"
            );
        } else {
            assert_eq!(as_root.success().stdout(), "0\n", "[{}]", u.name());
        }
    }
}

#[test]
fn a_built_user_workdir_and_env_apply_in_run_steps_and_in_irun() {
    let dockerfile = "FROM busybox\n\
        RUN echo app:x:1000:1000::/home/app:/bin/sh >> /etc/passwd && echo app:x:1000: >> /etc/group\n\
        USER app\n\
        RUN id -un > /tmp/app-ran-as\n\
        USER 65534\n\
        WORKDIR /tmp\n\
        ENV GREETING=hello\n\
        RUN id -u > ran-as && id -g >> ran-as && mkdir made && echo $GREETING > made/note\n\
        CMD [\"sh\", \"-c\", \"id -u; id -g; pwd; echo $GREETING; cat ran-as app-ran-as; stat -c %u:%g made\"]\n";
    for u in users() {
        let env = env_with_busybox(u);
        context(&env, "ctx", &[("Dockerfile", dockerfile)]);
        ibuild(&env, "ctx", &["-t", "as-nobody"]).success();
        let out = irun(&env, &["--rm", "as-nobody"]).success();
        assert_eq!(
            out.stdout(),
            "65534\n65534\n/tmp\nhello\n65534\n65534\napp\n65534:65534\n",
            "[{}] {out}",
            u.name()
        );
        // The RUN's new files belong to its user in the layer, as in docker's.
        for path in ["tmp/made", "tmp/made/note", "tmp/ran-as"] {
            let e = find(&env, "as-nobody", path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!((e.uid, e.gid), (65534, 65534), "[{}] {path}", u.name());
        }
        // An unknown USER fails the RUN clearly.
        context(
            &env,
            "bad",
            &[("Dockerfile", "FROM busybox\nUSER ghost\nRUN true\n")],
        );
        let bad = ibuild(&env, "bad", &["-t", "bad"]);
        assert!(!bad.output.status.success(), "{bad}");
        assert!(
            bad.stderr().contains("unable to find user ghost"),
            "[{}] {bad}",
            u.name()
        );
    }
}
