//! `ictr exec`: a command run in a detached container (`irun -d`) joins its namespaces
//! and its root and gets its security settings; flags, exit codes, `-d`, `-t`, `-i`,
//! and the errors for a missing or stopped container. Each test loops over `users()`.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::time::{Duration, Instant};

use imago_it::{eventually, users, Out, User};

use crate::ictr_support::Ctr;

/// `ictr exec ARGS`.
fn exec(t: &Ctr, args: &[&str]) -> Out {
    t.env.cmd("ictr").arg("exec").args(args).run()
}

/// `irun -d --name NAME FLAGS… busybox sleep 1000`.
fn sleeper(t: &Ctr, name: &str, flags: &[&str]) {
    let mut args = vec!["--name", name];
    args.extend(flags);
    args.extend(["busybox", "sleep", "1000"]);
    t.run_d(&args);
}

#[test]
fn exec_joins_the_containers_namespaces_and_root() {
    for u in users() {
        let t = Ctr::new(u);
        sleeper(&t, "box", &["--hostname", "boxhost", "-e", "FROM_RUN=r1"]);
        // only the container's processes: its init (1), sleep (2) and ps itself
        let out = exec(&t, &["box", "ps", "-o", "pid,comm"]).success();
        let rows: Vec<Vec<String>> = out
            .stdout()
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect();
        assert_eq!(rows.len(), 3, "{out}");
        assert_eq!(rows[0][0], "1", "{out}");
        assert_eq!(rows[1], ["2", "sleep"], "{out}");
        assert_eq!(rows[2][1], "ps", "{out}");
        // its uts namespace and its /etc/hostname
        let h = exec(&t, &["box", "sh", "-c", "hostname; cat /etc/hostname"]).success();
        assert_eq!(h.stdout(), "boxhost\nboxhost\n", "{h}");
        // its root: `/` is the image's, the working dir is `/`, no host path reachable
        let image_ls = t.irun(&["--rm", "busybox", "ls", "/"]).success().stdout();
        let ls = exec(&t, &["box", "ls", "/"]).success();
        assert_eq!(ls.stdout(), image_ls, "{ls}");
        let pwd = exec(&t, &["box", "sh", "-c", "pwd; readlink /proc/self/cwd"]).success();
        assert_eq!(pwd.stdout(), "/\n/\n", "{pwd}");
        let host_dir = t.env.root();
        exec(&t, &["box", "test", "-e", host_dir.to_str().unwrap()]).code_is(1);
        // nothing of ictr's but the three stdio fds is open in the command (`; true`
        // keeps sh from exec'ing ls, whose own dir fd would show)
        let fds = exec(&t, &["box", "sh", "-c", "ls /proc/$$/fd; true"]).success();
        assert_eq!(fds.stdout(), "0\n1\n2\n", "{fds}");
        // the container's environment, with -e on top
        let e = exec(
            &t,
            &[
                "-e",
                "A=1",
                "box",
                "sh",
                "-c",
                "echo $FROM_RUN $A $HOSTNAME",
            ],
        );
        assert_eq!(e.success().stdout(), "r1 1 boxhost\n");
        // the container's security settings: docker's bounding set, seccomp, no nnp
        let st = exec(&t, &["box", "cat", "/proc/self/status"])
            .success()
            .stdout();
        assert!(st.contains("CapBnd:\t00000000a80425fb"), "{st}");
        assert!(st.contains("Seccomp:\t2"), "{st}");
        assert!(st.contains("NoNewPrivs:\t0"), "{st}");
        // a capability the container dropped is not in exec's bounding set either
        let flags = [
            "--cap-drop",
            "NET_RAW",
            "--security-opt",
            "no-new-privileges",
        ];
        sleeper(&t, "nraw", &flags);
        let st = exec(&t, &["nraw", "cat", "/proc/self/status"])
            .success()
            .stdout();
        assert!(st.contains("CapBnd:\t00000000a80405fb"), "{st}");
        assert!(st.contains("NoNewPrivs:\t1"), "{st}");
    }
}

#[test]
fn exec_flags_workdir_env_user_and_exit_codes() {
    for u in users() {
        let t = Ctr::new(u);
        sleeper(&t, "box", &[]);
        let w = exec(&t, &["-w", "/tmp", "box", "pwd"]).success();
        assert_eq!(w.stdout(), "/tmp\n", "{w}");
        let e = exec(&t, &["-e", "A=1", "box", "sh", "-c", "echo $A"]).success();
        assert_eq!(e.stdout(), "1\n", "{e}");
        let file = t.env.write("vars.env", "# a comment\nB=from-file\n");
        let file = file.to_str().unwrap();
        let f = exec(&t, &["--env-file", file, "box", "sh", "-c", "echo $B"]);
        assert_eq!(f.success().stdout(), "from-file\n");
        // exit codes pass through; 127 not found, 126 cannot execute, 128+N signals
        exec(&t, &["box", "sh", "-c", "exit 7"]).code_is(7);
        exec(&t, &["box", "sh", "-c", "kill -9 $$"]).code_is(137);
        let nf = exec(&t, &["box", "no-such-command"]).code_is(127);
        assert!(nf.stderr().contains("executable file not found"), "{nf}");
        exec(&t, &["box", "/etc/passwd"]).code_is(126);
        let wd = exec(&t, &["-w", "/no/such/dir", "box", "pwd"]).code_is(125);
        assert!(wd.stderr().contains("/no/such/dir"), "{wd}");
        exec(&t, &["-w", "relative", "box", "pwd"]).code_is(125);
        let nu = exec(&t, &["-u", "nobody2", "box", "id"]).code_is(125);
        assert!(nu.stderr().contains("unable to find user nobody2"), "{nu}");
        // -u 33 needs a mapping with more than the user's own id
        if u == User::NoSub {
            let out = exec(&t, &["-u", "33", "box", "id", "-u"]).code_is(125);
            assert!(out.stderr().contains("not mapped"), "{out}");
            imago_it::inherent_skip("ictr exec -u 33: imago-nosub has only uid 0 inside");
        } else {
            let out = exec(&t, &["-u", "33", "box", "id", "-u"]).success();
            assert_eq!(out.stdout(), "33\n", "{out}");
        }
    }
}

#[test]
fn exec_detached_tty_and_stdin() {
    for u in users() {
        let t = Ctr::new(u);
        sleeper(&t, "box", &[]);
        // -d: started, ictr returns at once; the command runs on
        let started = Instant::now();
        exec(
            &t,
            &["-d", "box", "sh", "-c", "sleep 1; echo done > /tmp/d"],
        )
        .success();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let done = || exec(&t, &["box", "cat", "/tmp/d"]).stdout() == "done\n";
        assert!(eventually(10, done), "[{}] -d did not run", u.name());
        exec(&t, &["-d", "box", "no-such-command"]).code_is(127);
        exec(&t, &["-d", "-t", "box", "true"]).code_is(125);
        // -t: a pty of the container's own devpts
        let tty = exec(&t, &["-t", "box", "tty"]).success();
        assert!(tty.stdout().starts_with("/dev/pts/"), "{tty}");
        exec(&t, &["-t", "box", "sh", "-c", "exit 3"]).code_is(3);
        // -i: our stdin reaches the command; without it, /dev/null does
        let script = t.env.write("in.sh", "echo from-stdin\nexit 4\n");
        let with_stdin = |args: &[&str]| {
            t.env
                .cmd("ictr")
                .arg("exec")
                .args(args)
                .stdin(std::fs::File::open(&script).unwrap())
                .run()
        };
        let i = with_stdin(&["-i", "box", "sh"]).code_is(4);
        assert_eq!(i.stdout(), "from-stdin\n", "{i}");
        let n = with_stdin(&["box", "cat"]).success();
        assert_eq!(n.stdout(), "", "{n}");
        // exec'd processes end with the container (its pid namespace goes with pid 1)
        exec(&t, &["-d", "box", "sleep", "777"]).success();
        let count = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x00777\x00")
                })
                .count()
        };
        assert!(eventually(10, || count() == 1), "the detached sleep runs");
        t.ictr(&["kill", "box"]).success();
        let gone = eventually(10, || count() == 0);
        assert!(
            gone,
            "[{}] the detached sleep outlived its container",
            u.name()
        );
    }
}

#[test]
fn exec_into_a_missing_or_stopped_container_fails_with_125() {
    for u in users() {
        let t = Ctr::new(u);
        let out = exec(&t, &["nope", "true"]).code_is(125);
        assert!(out.stderr().contains("No such container: nope"), "{out}");
        exec(&t, &["nope"]).code_is(125);
        t.run_d(&["--name", "short", "busybox", "true"]);
        let stopped = eventually(10, || {
            let out = exec(&t, &["short", "true"]);
            out.code() == Some(125) && out.stderr().contains("container short is not running")
        });
        assert!(stopped, "[{}] exec into an ended container", u.name());
    }
}
