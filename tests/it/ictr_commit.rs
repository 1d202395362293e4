//! `ictr commit`: a container's changes (new files, an owner set with chown, a removed
//! file) become a new image that runs with them; its config is the container's plus the
//! `-c` changes, its history says who and why; a running container can be committed;
//! mount points are not changes; bad input fails before the store changes. As root,
//! imago-sub and imago-nosub.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{eventually, users, User};

use crate::ictr_support::Ctr;

/// The image ids and names of the store, to show a refused commit changed nothing.
fn images(t: &Ctr) -> String {
    t.env
        .cmd("iimage")
        .args(["ls", "-a", "--no-trunc"])
        .ok()
        .stdout()
}

#[test]
fn commit_makes_an_image_of_the_containers_changes() {
    for u in users() {
        let who = u.name();
        let t = Ctr::new(u);
        let host_dir = t.env.mkdir("vol");
        let vol = format!("{}:/mnt/vol", host_dir.display());
        t.irun(&[
            "--name",
            "changed",
            "-v",
            &vol,
            "-e",
            "MINE=1",
            "-w",
            "/srv",
            "busybox",
            "sh",
            "-c",
            "echo hi > /greet && chown 33:33 /greet && rm /bin/true && mkdir -p /d/e \
             && echo on-the-volume > /mnt/vol/f",
        ])
        .success();
        let out = t
            .ictr(&[
                "commit",
                "-a",
                "Jane <jane@example.com>",
                "-m",
                "greeting added",
                "-c",
                r#"CMD ["cat", "/greet"]"#,
                "-c",
                "LABEL committed=yes",
                "changed",
                "greeter:v1",
            ])
            .success();
        let id = out.stdout().trim().to_owned();
        assert!(
            id.len() == 71 && id.starts_with("sha256:"),
            "[{who}] not an image id: {out}"
        );
        // The id is the image's, and the name points at it.
        let ids = t
            .env
            .cmd("iimage")
            .args(["inspect", "--format", "{{.Id}}", "greeter:v1"])
            .ok();
        assert_eq!(ids.stdout().trim(), id, "[{who}]");
        // It runs the -c CMD, with the container's files.
        let greet = t.irun(&["--rm", "greeter:v1"]).success();
        assert_eq!(greet.stdout(), "hi\n", "[{who}]");
        let files = t
            .irun(&[
                "--rm",
                "greeter:v1",
                "sh",
                "-c",
                "stat -c '%u:%g' /greet; test -e /bin/true && echo true-is-back; \
                 test -d /d/e && echo dirs; ls /mnt/vol 2>&1; pwd; echo MINE=$MINE",
            ])
            .success();
        let files = files.stdout();
        // Under the single mapping irun's chown succeeds without doing anything (the
        // recording fakeroot is ibuild's): the file is root's, as irun showed it.
        let owner = if u == User::NoSub { "0:0\n" } else { "33:33\n" };
        assert!(files.starts_with(owner), "[{who}] owner: {files}");
        assert!(!files.contains("true-is-back"), "[{who}] {files}");
        assert!(files.contains("dirs\n"), "[{who}] {files}");
        // The volume's mount point (and its file) are the volume's, not the image's.
        assert!(files.contains("/mnt/vol: No such file"), "[{who}] {files}");
        assert!(files.contains("/srv\nMINE=1\n"), "[{who}] {files}");
        // docker's fields: author, the -c label, the history entry's comment; no
        // HOSTNAME of the container in the image's environment.
        let meta = t
            .env
            .cmd("iimage")
            .args([
                "inspect",
                "--format",
                "{{.Author}}|{{.Config.Labels.committed}}|{{.Comment}}|{{.Config.Env}}",
                "greeter:v1",
            ])
            .ok();
        let meta = meta.stdout();
        assert!(
            meta.starts_with("Jane <jane@example.com>|yes|"),
            "[{who}] {meta}"
        );
        assert!(!meta.contains("HOSTNAME="), "[{who}] {meta}");
        assert!(meta.contains("MINE=1"), "[{who}] {meta}");
        // A commit without a name makes an unnamed image.
        let before = images(&t);
        let bare = t.ictr(&["commit", "changed"]).success();
        let bare_id = bare.stdout().trim().to_owned();
        assert!(images(&t).len() >= before.len(), "[{who}]");
        t.irun(&["--rm", &bare_id, "cat", "/greet"]).success();
    }
}

#[test]
fn a_running_container_is_committed_as_it_is_now() {
    for u in users() {
        let who = u.name();
        let t = Ctr::new(u);
        t.run_d(&[
            "--name",
            "live",
            "busybox",
            "sh",
            "-c",
            "echo first > /state; sleep 1000",
        ]);
        assert!(
            eventually(20, || t
                .ictr(&["exec", "live", "cat", "/state"])
                .stdout()
                .contains("first")),
            "[{who}] the container never wrote /state"
        );
        t.ictr(&["commit", "live", "snap:1"]).success();
        let state = t.irun(&["--rm", "snap:1", "cat", "/state"]).success();
        assert_eq!(state.stdout(), "first\n", "[{who}]");
        // The container went on running, untouched.
        assert!(t.status("live").starts_with("Up"), "[{who}]");
        let again = t.ictr(&["exec", "live", "cat", "/state"]).success();
        assert_eq!(again.stdout(), "first\n", "[{who}]");
    }
}

#[test]
fn bad_commits_fail_clearly_and_change_nothing() {
    for u in users() {
        let who = u.name();
        let t = Ctr::new(u);
        t.irun(&["--name", "c1", "busybox", "sh", "-c", "echo x > /x"])
            .success();
        let before = images(&t);
        t.ictr(&["commit", "nosuch", "img:1"])
            .code_is(125)
            .fails_with("No such container: nosuch");
        t.ictr(&["commit", "-c", "RUN rm -rf /", "c1", "img:1"])
            .code_is(125)
            .fails_with("invalid --change `RUN rm -rf /`");
        t.ictr(&["commit", "c1", "Bad Name"])
            .code_is(125)
            .fails_with("Bad Name");
        assert_eq!(
            images(&t),
            before,
            "[{who}] a refused commit changed the store"
        );
    }
}

#[test]
fn copy_driver_containers_are_refused_saying_why() {
    for u in users() {
        let t = Ctr::new(u);
        t.irun(&[
            "--storage-driver",
            "copy",
            "--name",
            "copied",
            "busybox",
            "sh",
            "-c",
            "echo x > /x",
        ])
        .success();
        let before = images(&t);
        t.ictr(&["commit", "copied", "img:1"])
            .code_is(125)
            .fails_with("cannot commit container copied: it runs on the copy storage driver");
        assert_eq!(images(&t), before, "[{}]", u.name());
    }
}
