//! irun: the rootless runtime, driven as root, imago-sub (subuid range) and imago-nosub
//! (single mapping): isolation, security, the ENTRYPOINT × CMD table, tty, signals and
//! streams; each test loops over `users()`.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::process::Stdio;
use std::time::{Duration, Instant};

use imago_it::{bin, users, Env, Out, User};

use crate::irun_support::setup_store;

fn env_for(user: User) -> Env {
    let env = Env::new(user);
    setup_store(&env);
    env
}

fn irun(env: &Env, args: &[&str]) -> Out {
    env.cmd("irun").args(args).run()
}

#[test]
fn exit_codes_echo_exit7_sigkill_notfound_noexec() {
    for u in users() {
        let env = env_for(u);
        let out = irun(&env, &["--rm", "busybox", "echo", "hi"]).success();
        assert_eq!(out.stdout(), "hi\n", "{out}");
        irun(&env, &["--rm", "busybox", "sh", "-c", "exit 7"]).code_is(7);
        irun(&env, &["--rm", "busybox", "sh", "-c", "kill -9 $$"]).code_is(137);
        let nf = irun(&env, &["--rm", "busybox", "no-such-command"]).code_is(127);
        assert!(nf.stderr().contains("executable file not found"), "{nf}");
        irun(&env, &["--rm", "busybox", "/etc/passwd"]).code_is(126);
        irun(&env, &["--rm", "no-such-image"]).code_is(125);
        // files of other owners and mode-000 dirs in the upper dir are removed too
        let messy = "mkdir -p /tmp/d/e; touch /tmp/d/e/f; chown -R 33:33 /tmp/d 2>/dev/null; chmod 000 /tmp/d";
        irun(&env, &["--rm", "busybox", "sh", "-c", messy]).success();
        // --rm left nothing behind
        let left = std::fs::read_dir(env.root().join("containers"))
            .map(|d| {
                d.filter(|e| e.as_ref().map(|e| e.file_name() != "names").unwrap_or(true))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(left, 0, "[{}] --rm left container dirs", u.name());
    }
}

#[test]
fn isolation_ps_host_root_hostname() {
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for u in users() {
        let env = env_for(u);
        // only the container's processes: init (1), sh (2), ps
        let out = irun(
            &env,
            &[
                "--rm",
                "busybox",
                "sh",
                "-c",
                "ps -o pid,comm > /tmp/ps; cat /tmp/ps",
            ],
        )
        .success();
        let pids: Vec<String> = out
            .stdout()
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(pids.len(), 3, "{out}");
        assert!(
            pids[0].starts_with("1 ") && pids[1] == "2 sh" && pids[2].ends_with(" ps"),
            "{out}"
        );
        // writing to / goes to the container's upper dir, never the host's /
        let marker = format!("imago-irun-marker-{}", std::process::id());
        irun(
            &env,
            &[
                "--rm",
                "busybox",
                "sh",
                "-c",
                &format!("echo x > /{marker} && cat /{marker}"),
            ],
        )
        .success();
        assert!(
            !std::path::Path::new(&format!("/{marker}")).exists(),
            "[{}] wrote to the host's /",
            u.name()
        );
        // the host's files are not visible
        let scratch = env.path("home").display().to_string();
        irun(&env, &["--rm", "busybox", "ls", &scratch]).code_is(1);
        // except a -v mount, read-write and read-only
        let vol = env.mkdir("vol");
        let spec = format!("{}:/vol", vol.display());
        irun(
            &env,
            &[
                "--rm",
                "-v",
                &spec,
                "busybox",
                "sh",
                "-c",
                "echo data > /vol/f",
            ],
        )
        .success();
        assert_eq!(std::fs::read_to_string(vol.join("f")).unwrap(), "data\n");
        let ro = format!("{}:/vol:ro", vol.display());
        irun(
            &env,
            &["--rm", "-v", &ro, "busybox", "sh", "-c", "echo no > /vol/g"],
        )
        .code_is(1);
        assert!(!vol.join("g").exists());
        // --network none: a namespace of its own with only lo, up
        let out = irun(
            &env,
            &[
                "--rm",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip link show lo",
            ],
        )
        .success();
        assert!(out.stdout().starts_with("lo\n"), "{out}");
        assert!(out.stdout().contains("LOOPBACK,UP"), "{out}");
        irun(&env, &["--rm", "--network", "bridge", "busybox", "true"])
            .code_is(125)
            .fails_with("not supported yet");
        // hostname: the short id by default, --hostname sets it
        let h = irun(&env, &["--rm", "busybox", "hostname"])
            .success()
            .stdout();
        assert_ne!(h.trim(), host_name.trim());
        assert_eq!(h.trim().len(), 12, "{h}");
        let h = irun(
            &env,
            &[
                "--rm",
                "--hostname",
                "box1",
                "busybox",
                "cat",
                "/etc/hostname",
            ],
        )
        .success()
        .stdout();
        assert_eq!(h, "box1\n");
    }
}

#[test]
fn security_seccomp_caps_nnp_masked() {
    // A masked path that exists on this host (kernels without /proc/kcore exist).
    let masked = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/interrupts",
        "/proc/sched_debug",
    ]
    .into_iter()
    .filter(|p| std::path::Path::new(p).exists())
    .collect::<Vec<_>>();
    if masked.is_empty() {
        imago_it::skip("no maskable /proc file exists on this host");
    }
    for u in users() {
        let env = env_for(u);
        let st = irun(&env, &["--rm", "busybox", "cat", "/proc/self/status"])
            .success()
            .stdout();
        assert!(st.contains("Seccomp:\t2"), "{st}");
        assert!(st.contains("CapBnd:\t00000000a80425fb"), "{st}");
        assert!(st.contains("NoNewPrivs:\t0"), "{st}");
        let st = irun(
            &env,
            &[
                "--rm",
                "--security-opt",
                "no-new-privileges",
                "busybox",
                "cat",
                "/proc/self/status",
            ],
        )
        .success()
        .stdout();
        assert!(st.contains("NoNewPrivs:\t1"), "{st}");
        let st = irun(
            &env,
            &[
                "--rm",
                "--cap-drop",
                "ALL",
                "--cap-add",
                "CHOWN",
                "busybox",
                "cat",
                "/proc/self/status",
            ],
        )
        .success()
        .stdout();
        assert!(st.contains("CapBnd:\t0000000000000001"), "{st}");
        let st = irun(
            &env,
            &[
                "--rm",
                "--privileged",
                "busybox",
                "cat",
                "/proc/self/status",
            ],
        )
        .success()
        .stdout();
        assert!(st.contains("Seccomp:\t0"), "{st}");
        // the seccomp filter refuses mount and unshare
        irun(&env, &["--rm", "busybox", "unshare", "-U", "true"]).code_is(1);
        for p in &masked {
            let out = irun(
                &env,
                &["--rm", "busybox", "sh", "-c", &format!("wc -c < {p}")],
            )
            .success();
            assert_eq!(out.stdout().trim(), "0", "{p} not masked: {out}");
        }
        // /proc/sys is read-only
        irun(
            &env,
            &[
                "--rm",
                "busybox",
                "sh",
                "-c",
                "echo 1 > /proc/sys/kernel/domainname",
            ],
        )
        .code_is(1);
    }
}

#[test]
fn file_ownership_in_layers() {
    for u in users() {
        let env = env_for(u);
        let out = irun(
            &env,
            &[
                "--rm",
                "owned",
                "stat",
                "-c",
                "%u:%g",
                "/data/www/index.html",
            ],
        )
        .success();
        let want = if u == User::NoSub { "0:0" } else { "33:33" }; // single mapping: all root (docs/runtime.md)
        assert_eq!(out.stdout().trim(), want, "[{}] {out}", u.name());
    }
}

#[test]
fn image_config_env_workdir_user() {
    for u in users() {
        let env = env_for(u);
        // Under the single mapping (imago-nosub) the one id is placed at USER www-data.
        let out = irun(&env, &["--rm", "cfg"]).success();
        assert_eq!(out.stdout(), "from-image\n/app/sub\n33\n", "{out}");
        let out = irun(
            &env,
            &[
                "--rm",
                "-e",
                "FOO=flag",
                "-w",
                "/made/here",
                "-u",
                "33:0",
                "cfg",
                "sh",
                "-c",
                "echo $FOO $HOME; pwd; id -u; id -g",
            ],
        )
        .success();
        assert_eq!(out.stdout(), "flag /var/www\n/made/here\n33\n0\n", "{out}");
    }
}

#[test]
fn env_flags_and_env_file() {
    for u in users() {
        let env = env_for(u);
        let f = env.write("envs", "# comment\nA=file\nB=file\n");
        let out = env
            .cmd("irun")
            .env("FROM_HOST", "inherited")
            .args(["--rm", "--env-file"])
            .arg(&f)
            .args([
                "-e",
                "B=flag",
                "-e",
                "FROM_HOST",
                "-e",
                "NOT_SET",
                "busybox",
                "sh",
                "-c",
                "echo $A $B $FROM_HOST ${NOT_SET-unset} $PATH",
            ])
            .run()
            .success();
        assert_eq!(out.stdout(), "file flag inherited unset /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", "{out}");
    }
}

fn row(env: &Env, image: &str, args: &[&str]) -> String {
    let mut a = vec!["--rm", image];
    a.extend_from_slice(args);
    irun(env, &a).success().stdout()
}

#[test]
fn entrypoint_cmd_table_rows() {
    for u in users() {
        let env = env_for(u);
        irun(&env, &["--rm", "row-none-none"])
            .code_is(125)
            .fails_with("no command specified");
        assert_eq!(row(&env, "row-none-exec", &[]), "cmd-exec\n");
        assert_eq!(row(&env, "row-none-shell", &[]), "cmd-shell\n");
        assert_eq!(row(&env, "row-exec-none", &[]), "ep-exec\n");
        assert_eq!(row(&env, "row-exec-exec", &[]), "ep-exec cmd-exec\n");
        assert_eq!(
            row(&env, "row-exec-shell", &[]),
            "ep-exec /bin/sh -c cmd-shell\n"
        );
        assert_eq!(row(&env, "row-shell-exec", &[]), "ep-shell\n");
        // arguments replace CMD, --entrypoint replaces ENTRYPOINT and drops CMD
        assert_eq!(row(&env, "row-exec-exec", &["x", "y"]), "ep-exec x y\n");
        assert_eq!(row(&env, "row-none-exec", &["echo", "args"]), "args\n");
        let out = irun(&env, &["--rm", "--entrypoint", "echo", "row-exec-exec"]).success();
        assert_eq!(out.stdout(), "\n", "{out}");
        let out = irun(
            &env,
            &["--rm", "--entrypoint", "", "row-exec-exec", "echo", "reset"],
        )
        .success();
        assert_eq!(out.stdout(), "reset\n");
    }
}

#[test]
fn names_readonly_tmpfs_and_records() {
    for u in users() {
        let env = env_for(u);
        irun(&env, &["--name", "web", "busybox", "true"]).success();
        irun(&env, &["--name", "web", "busybox", "true"])
            .code_is(125)
            .fails_with("is already in use by container");
        let recs: Vec<_> = std::fs::read_dir(env.root().join("containers"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().len() == 64)
            .collect();
        assert_eq!(recs.len(), 1, "one kept container");
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(recs[0].path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(rec["name"], "web");
        assert_eq!(rec["exit_code"], 0);
        irun(&env, &["--rm", "--read-only", "busybox", "touch", "/x"]).code_is(1);
        irun(
            &env,
            &[
                "--rm",
                "--read-only",
                "--tmpfs",
                "/scratch",
                "busybox",
                "touch",
                "/scratch/x",
            ],
        )
        .success();
        irun(
            &env,
            &[
                "--rm",
                "--mount",
                "type=tmpfs,target=/t",
                "busybox",
                "sh",
                "-c",
                "grep -q ' /t tmpfs' /proc/mounts",
            ],
        )
        .success();
    }
}

#[test]
fn stdin_pipe_200mb_exact() {
    let irun_path = bin("irun");
    for u in users() {
        let env = env_for(u);
        let script = format!(
            "head -c 209715200 /dev/zero | {} -i --rm busybox wc -c",
            irun_path.display()
        );
        let t = Instant::now();
        let out = env.cmd_path("sh").args(["-c", &script]).run().success();
        assert_eq!(out.stdout().trim(), "209715200", "{out}");
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "slow pipe: {:?}",
            t.elapsed()
        );
        // without -i the container reads /dev/null
        let out = env
            .cmd("irun")
            .args(["--rm", "busybox", "wc", "-c"])
            .stdin(Stdio::piped())
            .run()
            .success();
        assert_eq!(out.stdout().trim(), "0");
    }
}

/// Start `irun ARGS` (its command must create /vol/started) with a pid file; returns when
/// the container's command runs, so a signal cannot hit irun before it blocks signals.
fn spawn_with_pidfile(env: &Env, args: &str) -> (std::process::Child, std::path::PathBuf) {
    let pidfile = env.path(&format!("irun-{}.pid", args.len()));
    let vol = env.mkdir(&format!("vol-{}", args.len()));
    let _ = std::fs::remove_file(vol.join("started"));
    let script = format!(
        "echo $$ > {}; exec {} -v {}:/vol {args}",
        pidfile.display(),
        bin("irun").display(),
        vol.display()
    );
    let mut cmd = env.cmd_path("sh").args(["-c", &script]);
    let child = cmd
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !vol.join("started").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "container did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, pidfile)
}

fn wait_pid(pidfile: &std::path::Path) -> i32 {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(s) = std::fs::read_to_string(pidfile) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no pid file {}", pidfile.display());
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> Option<i32> {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn signals_reach_the_command_and_zombies_are_reaped() {
    for u in users() {
        let env = env_for(u);
        for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
            let (mut child, pidfile) = spawn_with_pidfile(
                &env,
                "--rm busybox sh -c 'touch /vol/started; exec sleep 100'",
            );
            let pid = wait_pid(&pidfile);
            // SAFETY: pid is our own child's (sh exec'd irun); a signal has no memory effects.
            #[allow(unsafe_code)]
            let r = unsafe { libc::kill(pid, sig) };
            assert_eq!(r, 0);
            let got = wait_exit(&mut child, Duration::from_secs(5));
            assert_eq!(got, Some(code), "[{}] signal {sig}", u.name());
            let _ = std::fs::remove_file(&pidfile);
        }
        // a trap in the command sees the forwarded signal
        let (mut child, pidfile) = spawn_with_pidfile(&env, "--rm busybox sh -c 'trap \"echo got-term; exit 3\" TERM; touch /vol/started; sleep 100 & wait'");
        let pid = wait_pid(&pidfile);
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let r = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(r, 0);
        assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), Some(3));
        let mut s = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut s).unwrap();
        assert_eq!(s, "got-term\n");
        // orphans are re-parented to our init and reaped: no zombie remains
        let out = irun(&env, &[
            "--rm", "busybox", "sh", "-c",
            "for i in 1 2 3 4 5; do (sleep 0.05 &); done; sleep 1; cat /proc/[0-9]*/stat | awk '{print $3}' | grep -c Z",
        ]);
        assert_eq!(out.stdout().trim(), "0", "[{}] zombies: {out}", u.name());
    }
}

#[test]
fn interactive_tty_under_script() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        imago_it::skip("`script` (util-linux) is not installed");
        return;
    }
    for u in users() {
        let env = env_for(u);
        // Inside `script`'s pty: set an outer size, save the mode, run irun -it, compare.
        let inner = format!(
            "stty rows 33 cols 101; before=$(stty -g); {} -it --rm busybox sh -c 'tty; stty size; echo TERM=$TERM'; echo rc=$?; after=$(stty -g); [ \"$before\" = \"$after\" ] && echo mode-restored",
            bin("irun").display()
        );
        let out = env
            .cmd_path("script")
            .args(["-qefc", &inner, "/dev/null"])
            .run();
        let s = out.stdout().replace('\r', "");
        assert!(s.contains("/dev/pts/0\n"), "{out}");
        assert!(s.contains("33 101\n"), "{out}");
        assert!(s.contains("TERM=xterm\n"), "{out}");
        assert!(s.contains("rc=0\n"), "{out}");
        assert!(s.contains("mode-restored"), "{out}");
        // SIGWINCH: the outer terminal is resized while the container runs; the inner
        // size follows (the second `stty size` runs at least 2 s in, after the resize).
        let inner = format!(
            "stty rows 33 cols 101; (sleep 1; stty rows 40 cols 120 < /dev/tty) & {} -it --rm busybox sh -c 'stty size; sleep 2; stty size'; wait",
            bin("irun").display()
        );
        let out = env
            .cmd_path("script")
            .args(["-qefc", &inner, "/dev/null"])
            .run();
        let s = out.stdout().replace('\r', "");
        assert!(s.trim_end().ends_with("40 120"), "{out}");
        // -it with input: a line typed in reaches the shell, exit code comes back
        let inner = format!(
            "printf 'echo typed-$((6*7))\\nexit 5\\n' | {} -it --rm busybox sh; echo rc=$?",
            bin("irun").display()
        );
        let out = env
            .cmd_path("script")
            .args(["-qefc", &inner, "/dev/null"])
            .run();
        let s = out.stdout().replace('\r', "");
        assert!(s.contains("typed-42"), "{out}");
        assert!(s.contains("rc=5"), "{out}");
        // Ctrl-C typed at the terminal (no -t: irun, its init and the command share the
        // terminal's foreground group) ends `irun busybox sleep` at once with 130.
        // (The shell running irun traps INT, so it lives to print irun's status.)
        let inner = format!(
            "trap true INT; {} --rm busybox sleep 30; echo rc=$?",
            bin("irun").display()
        );
        let t = Instant::now();
        let out = env
            .cmd_path("sh")
            .args([
                "-c",
                &format!("(sleep 1.5; printf '\\003'; sleep 1) | script -qefc '{inner}' /dev/null"),
            ])
            .run();
        assert!(out.stdout().contains("rc=130"), "{out}");
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "Ctrl-C did not end it: {:?}",
            t.elapsed()
        );
    }
}

/// DESIGN's seccomp fakeroot: under the single mapping (imago-nosub) chown to other ids,
/// set*id to other ids, setgroups and mknod of devices succeed without doing anything
/// (the kernel said EINVAL/EPERM); with a real mapping they run for real. No filter, no
/// fakeroot: `--security-opt seccomp=unconfined` and `--privileged` get the kernel's answer.
#[test]
fn fakeroot_chown_setid_mknod_under_single_mapping() {
    let script = "touch /x && chown 33:33 /x && echo ok && stat -c %u:%g /x";
    for u in users() {
        let env = env_for(u);
        let single = u == User::NoSub;
        let out = irun(&env, &["--rm", "busybox", "sh", "-c", script]).success();
        let want = if single { "ok\n0:0\n" } else { "ok\n33:33\n" };
        assert_eq!(out.stdout(), want, "[{}] {out}", u.name());
        // a device node: faked (nothing created) under single, EPERM in any user namespace
        let mk = "mknod /n c 1 3 && echo made; test -e /n && echo exists || echo absent";
        let out = irun(&env, &["--rm", "busybox", "sh", "-c", mk]).success();
        if single {
            assert_eq!(out.stdout(), "made\nabsent\n", "[{}] {out}", u.name());
        } else {
            assert_eq!(out.stdout(), "absent\n", "[{}] {out}", u.name());
            assert!(
                out.stderr().contains("not permitted"),
                "[{}] {out}",
                u.name()
            );
        }
        // fifos are real
        let out = irun(
            &env,
            &[
                "--rm",
                "busybox",
                "sh",
                "-c",
                "mkfifo /f && test -p /f && echo fifo",
            ],
        )
        .success();
        assert_eq!(out.stdout(), "fifo\n", "[{}] {out}", u.name());
        // set*id + setgroups (what su does): faked under single, the process stays root
        let su = "su -s /bin/sh -c 'id -u; id -g' nobody";
        let out = irun(&env, &["--rm", "busybox", "sh", "-c", su]).success();
        let want = if single { "0\n0\n" } else { "65534\n65534\n" };
        assert_eq!(out.stdout(), want, "[{}] {out}", u.name());
        if single {
            for flag in [
                &["--security-opt", "seccomp=unconfined"][..],
                &["--privileged"],
            ] {
                let mut args = vec!["--rm"];
                args.extend_from_slice(flag);
                args.extend(["busybox", "chown", "33:33", "/bin"]);
                let out = irun(&env, &args).code_is(1);
                assert!(out.stderr().contains("Invalid argument"), "{flag:?} {out}");
            }
        }
    }
}

// --- netpriv: `--network private` (pasta, else slirp4netns) ---------------------------

/// The helper irun would use for `--network private`, if any is on PATH.
fn net_helper() -> Option<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["pasta", "slirp4netns"]
        .into_iter()
        .find(|h| std::env::split_paths(&path).any(|d| d.join(h).is_file()))
}

#[test]
fn network_private_has_an_interface_and_reaches_the_host() {
    let Some(helper) = net_helper() else {
        imago_it::skip("network_private: neither pasta (passt) nor slirp4netns is installed");
        return;
    };
    // A TCP server on the host's loopback: reached through the gateway address (pasta's
    // default mapping; slirp4netns maps 10.0.2.2, its gateway, the same way).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = std::io::Write::write_all(&mut s, b"imago-net-ok\n");
        }
    });
    let script = format!(
        "ip -o -4 addr show; ip -o link show; \
         gw=$(ip route | awk '/^default/ {{print $3}}'); echo gw=$gw; \
         timeout 10 nc $gw {port} </dev/null; true"
    );
    for u in users() {
        let env = env_for(u);
        let out = irun(
            &env,
            &[
                "--rm",
                "--network",
                "private",
                "busybox",
                "sh",
                "-c",
                &script,
            ],
        );
        let out = out.success();
        let text = out.stdout();
        let tag = format!("[{} via {helper}]", u.name());
        assert!(
            text.lines()
                .any(|l| l.contains(" lo ") && l.contains("127.0.0.1")),
            "{tag} lo has no 127.0.0.1: {out}"
        );
        let other: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" inet ") && !l.contains(" lo "))
            .collect();
        assert_eq!(other.len(), 1, "{tag} one interface with an address: {out}");
        let name = other[0]
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_string();
        assert!(
            text.lines()
                .any(|l| l.contains(&format!(" {name}:"))
                    && (l.contains(",UP") || l.contains("<UP"))),
            "{tag} {name} is not up: {out}"
        );
        assert!(!text.contains("gw=\n"), "{tag} no default route: {out}");
        assert!(
            text.contains("imago-net-ok"),
            "{tag} host server unreachable: {out}"
        );
        // a host network namespace would show the host's interfaces, none would have no
        // second interface: make sure this differs from --network none
        let none = irun(
            &env,
            &[
                "--rm",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                "ip -o -4 addr show",
            ],
        )
        .success();
        assert!(
            none.stdout().lines().all(|l| l.contains(" lo ")),
            "{tag} --network none: {none}"
        );
    }
    // the fallback: slirp4netns alone on PATH (with the id-map helpers; runuser in sbin)
    if helper == "pasta" && std::path::Path::new("/usr/bin/slirp4netns").is_file() {
        let dir = imago_it::Scratch::new(User::Root);
        for tool in ["slirp4netns", "newuidmap", "newgidmap"] {
            let _ = std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), dir.path().join(tool));
        }
        for u in users() {
            let env = env_for(u);
            let out = env
                .cmd("irun")
                .env("PATH", format!("{}:/usr/sbin:/sbin", dir.path().display()))
                .args([
                    "--rm",
                    "--network",
                    "private",
                    "busybox",
                    "sh",
                    "-c",
                    &script,
                ])
                .run()
                .success();
            let tag = format!("[{} via slirp4netns]", u.name());
            assert!(out.stdout().contains("imago-net-ok"), "{tag} {out}");
        }
    }
    // irun stops and reaps its helper: none is left whose container is gone (pasta given
    // a pid does not quit by itself when that namespace goes away)
    // Tests running at the same time end containers too: a helper whose container has
    // just ended is being stopped by its irun; only one still there 5 s later leaked.
    let mut leaked = leaked_net_helpers();
    if !leaked.is_empty() {
        std::thread::sleep(std::time::Duration::from_secs(5));
        let again = leaked_net_helpers();
        leaked.retain(|h| again.contains(h));
    }
    assert!(
        leaked.is_empty(),
        "helpers outliving their container: {leaked:?}"
    );
}

/// pasta/slirp4netns processes whose target pid (their last argument) no longer exists.
fn leaked_net_helpers() -> Vec<String> {
    let mut leaked = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_helper = args
            .iter()
            .any(|a| a == "--config-net" || a == "--configure");
        let prog = args.first().map(String::as_str).unwrap_or("");
        if !is_helper || !(prog.contains("pasta") || prog.contains("slirp4netns")) {
            continue;
        }
        // slirp4netns ends with the tap name, pasta with the pid
        let target = args
            .iter()
            .rev()
            .find_map(|a| a.parse::<u32>().ok())
            .unwrap_or(0);
        if target != 0 && !std::path::Path::new(&format!("/proc/{target}")).exists() {
            leaked.push(args.join(" "));
        }
    }
    leaked
}
