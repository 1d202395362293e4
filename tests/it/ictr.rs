//! Detached containers (`irun -d`) and `ictr`: the life of a container (ps, logs, stop,
//! rm, name reuse), monitors that outlive their session, a killed monitor, `--rm`,
//! `logs -f`, kill/wait/inspect, start keeping the writable layer, attach to a terminal;
//! as root, imago-sub and imago-nosub.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::process::Stdio;

use imago_it::{eventually, users};

use crate::ictr_support::{alive, kill, net_helpers_of, Ctr};

#[test]
fn detached_lifecycle_ps_logs_stop_rm_and_name_reuse() {
    for u in users() {
        let t = Ctr::new(u);
        let id = t.run_d(&[
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo hello; echo oops >&2; sleep 1000",
        ]);
        let st = t.wait_status("web", |s| s.starts_with("Up"));
        assert!(st.starts_with("Up "), "[{}] {st}", u.name());
        let ps = t.ictr(&["ps"]).success();
        assert!(
            ps.stdout().contains(&id[..12]) && ps.stdout().contains("web"),
            "{ps}"
        );
        assert!(ps.stdout().starts_with("CONTAINER ID"), "{ps}");
        let q = t.ictr(&["ps", "-q", "--no-trunc"]).success();
        assert_eq!(q.stdout().trim(), id, "{q}");
        assert!(eventually(10, || {
            t.ictr(&["logs", "web"]).stdout() == "hello\n"
        }));
        let logs = t.ictr(&["logs", &id[..10]]).success();
        assert_eq!(logs.stdout(), "hello\n", "{logs}");
        assert_eq!(logs.stderr(), "oops\n", "{logs}");
        let stop = t.ictr_bounded(&["stop", "web"]).success();
        assert_eq!(stop.stdout(), "web\n");
        // SIGTERM ended it (SIGKILL after the timeout would be 137)
        let st = t.status("web");
        assert!(st.starts_with("Exited (143) "), "[{}] {st}", u.name());
        assert_eq!(t.ictr(&["ps", "-q"]).success().stdout(), "");
        t.ictr(&["rm", "web"]).success();
        assert_eq!(t.status("web"), "");
        assert!(!t.env.root().join("containers").join(&id).exists());
        t.ictr(&["logs", "web"])
            .code_is(125)
            .fails_with("No such container: web");
        // the name is free again; a running container is only removed with -f
        t.run_d(&["--name", "web", "busybox", "sleep", "1000"]);
        t.ictr(&["rm", "web"])
            .code_is(125)
            .fails_with("container is running: stop the container before removing or force remove");
        t.ictr_bounded(&["rm", "-f", "web"]).success();
        assert_eq!(t.status("web"), "");
    }
}

#[test]
fn a_detached_container_outlives_its_session() {
    for u in users() {
        let t = Ctr::new(u);
        let sidfile = t.env.path("sid");
        let script = format!(
            "echo $$ > {}; {} -d --name sess busybox sleep 1000 >/dev/null; sleep 1000",
            sidfile.display(),
            imago_it::bin("irun").display()
        );
        let mut cmd = t.env.cmd_path("setsid").args(["sh", "-c", &script]);
        let mut child = cmd
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        t.wait_status("sess", |s| s.starts_with("Up"));
        let sid = std::fs::read_to_string(&sidfile)
            .unwrap()
            .trim()
            .to_string();
        assert!(kill("KILL", &format!("-{sid}")), "kill the session's group");
        child.wait().unwrap();
        assert!(eventually(10, || !alive(sid.parse().unwrap())));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let st = t.status("sess");
        assert!(
            st.starts_with("Up"),
            "[{}] after the session died: {st}",
            u.name()
        );
        let pid = t.inspect("sess")["State"]["Pid"].as_i64().unwrap();
        assert!(pid > 0 && alive(pid), "[{}] pid 1 {pid} is gone", u.name());
    }
}

#[test]
fn a_killed_monitor_leaves_an_exited_container_that_rm_removes() {
    for u in users() {
        let t = Ctr::new(u);
        let id = t.run_d(&[
            "--network",
            "private",
            "--name",
            "mon",
            "busybox",
            "sleep",
            "1000",
        ]);
        t.wait_status("mon", |s| s.starts_with("Up"));
        let rec = t.record(&id);
        let monitor = rec["monitor"]["pid"].as_i64().unwrap();
        let pid1 = rec["pid"]["pid"].as_i64().unwrap();
        assert!(alive(monitor) && alive(pid1), "{rec}");
        assert!(
            !net_helpers_of(pid1).is_empty(),
            "[{}] no network helper",
            u.name()
        );
        assert!(kill("KILL", &monitor.to_string()));
        let st = t.wait_status("mon", |s| s.starts_with("Exited"));
        assert!(st.starts_with("Exited (255)"), "[{}] {st}", u.name());
        // the container died with its monitor (parent-death signal of its pid 1)
        assert!(
            eventually(10, || !alive(pid1)),
            "[{}] pid 1 survived",
            u.name()
        );
        let i = t.inspect("mon");
        assert_eq!(i["State"]["Status"], "exited");
        assert_eq!(i["State"]["ExitCode"], 255);
        t.ictr(&["rm", "mon"]).success();
        // and so is its network helper (pasta does not quit by itself)
        assert!(
            eventually(10, || net_helpers_of(pid1).is_empty()),
            "[{}] {:?}",
            u.name(),
            net_helpers_of(pid1)
        );
        assert_eq!(t.status("mon"), "");
        assert!(!t.env.root().join("containers").join(&id).exists());
        t.run_d(&["--name", "mon", "busybox", "true"]);
    }
}

#[test]
fn detached_rm_removes_itself() {
    for u in users() {
        let t = Ctr::new(u);
        let id = t.run_d(&[
            "--rm",
            "--name",
            "gone",
            "busybox",
            "sh",
            "-c",
            "echo x > /y; sleep 0.3",
        ]);
        let dir = t.env.root().join("containers").join(&id);
        assert!(
            eventually(20, || !dir.exists()),
            "[{}] --rm left {}",
            u.name(),
            dir.display()
        );
        assert_eq!(t.status("gone"), "");
        t.run_d(&["--name", "gone", "busybox", "true"]);
    }
}

#[test]
fn logs_follow_tail_timestamps_since() {
    for u in users() {
        let t = Ctr::new(u);
        let id = t.run_d(&[
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 0.3; done",
        ]);
        // -f returns when the container ends, with every line
        let f = t.ictr_bounded(&["logs", "-f", &id]).success();
        assert_eq!(f.stdout(), "line1\nline2\nline3\n", "[{}] {f}", u.name());
        assert!(t.status(&id).starts_with("Exited (0)"));
        let tail = t.ictr(&["logs", "--tail", "1", &id]).success();
        assert_eq!(tail.stdout(), "line3\n");
        let ts = t.ictr(&["logs", "-t", "--tail", "2", &id]).success();
        let text = ts.stdout();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{ts}");
        let (time, text) = lines[0].split_once(' ').unwrap();
        assert_eq!(text, "line2");
        assert!(
            time.ends_with('Z') && time.len() == 30,
            "RFC 3339 with nanoseconds: {time}"
        );
        assert_eq!(
            t.ictr(&["logs", "--since", "2099-01-01T00:00:00Z", &id])
                .success()
                .stdout(),
            ""
        );
        assert_eq!(
            t.ictr(&["logs", "--since", "10m", &id])
                .success()
                .stdout()
                .lines()
                .count(),
            3
        );
        // the log is docker's json-file shape
        let raw = std::fs::read_to_string(
            t.env
                .root()
                .join("containers")
                .join(&id)
                .join(format!("{id}-json.log")),
        )
        .unwrap();
        let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
        assert_eq!(first["log"], "line1\n");
        assert_eq!(first["stream"], "stdout");
        assert!(first["time"].as_str().unwrap().starts_with("20"), "{first}");
    }
}

#[test]
fn kill_wait_and_inspect() {
    for u in users() {
        let t = Ctr::new(u);
        let id = t.run_d(&[
            "--name",
            "kk",
            "-e",
            "FOO=bar",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done",
        ]);
        t.wait_ready("kk");
        let i = t.inspect("kk");
        assert_eq!(i["Id"], id);
        assert_eq!(i["Name"], "/kk");
        assert_eq!(i["State"]["Status"], "running");
        assert_eq!(i["State"]["Running"], true);
        assert!(i["State"]["Pid"].as_i64().unwrap() > 0, "{i}");
        let started = i["State"]["StartedAt"].as_str().unwrap().to_string();
        assert!(started.starts_with("20") && started.ends_with('Z'), "{i}");
        assert_eq!(i["Config"]["Image"], "busybox");
        assert_eq!(i["Config"]["Cmd"][0], "sh");
        assert!(
            i["Config"]["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "FOO=bar"),
            "{i}"
        );
        assert!(i["Image"].as_str().unwrap().starts_with("sha256:"), "{i}");
        t.ictr(&["kill", "-s", "USR1", "kk"]).success();
        let w = t.ictr_bounded(&["wait", "kk"]).success();
        assert_eq!(w.stdout(), "42\n", "[{}] {w}", u.name());
        let i = t.inspect("kk");
        assert_eq!(i["State"]["Status"], "exited");
        assert_eq!(i["State"]["Running"], false);
        assert_eq!(i["State"]["ExitCode"], 42);
        assert_eq!(i["State"]["Pid"], 0);
        assert_eq!(i["State"]["StartedAt"], started.as_str());
        assert!(
            i["State"]["FinishedAt"].as_str().unwrap().starts_with("20"),
            "{i}"
        );
        t.ictr(&["kill", "kk"])
            .code_is(125)
            .fails_with("is not running");
        t.ictr(&["inspect", "nope"])
            .code_is(125)
            .fails_with("No such container: nope");
        // the default signal is SIGKILL
        t.run_d(&["--name", "k9", "busybox", "sleep", "1000"]);
        t.ictr(&["kill", "k9"]).success();
        assert_eq!(t.ictr_bounded(&["wait", "k9"]).success().stdout(), "137\n");
        // no published ports: nothing to list
        assert_eq!(t.ictr(&["port", "k9"]).success().stdout(), "");
    }
}

#[test]
fn start_keeps_the_writable_layer() {
    for u in users() {
        let t = Ctr::new(u);
        t.run_d(&[
            "--name",
            "st",
            "busybox",
            "sh",
            "-c",
            "cat /data 2>/dev/null; echo run >> /data",
        ]);
        assert_eq!(t.ictr_bounded(&["wait", "st"]).success().stdout(), "0\n");
        let a = t.ictr_bounded(&["start", "-a", "st"]).success();
        assert_eq!(a.stdout(), "run\n", "[{}] {a}", u.name());
        assert_eq!(t.ictr_bounded(&["start", "st"]).success().stdout(), "st\n");
        assert_eq!(t.ictr_bounded(&["wait", "st"]).success().stdout(), "0\n");
        let logs = t.ictr(&["logs", "st"]).success();
        assert_eq!(logs.stdout(), "run\nrun\nrun\n", "[{}] {logs}", u.name());
        // and once more: each run sees the file of the one before
        let a = t.ictr_bounded(&["start", "-a", "st"]).success();
        assert_eq!(a.stdout(), "run\nrun\nrun\n");
    }
}

#[test]
fn attach_to_a_terminal() {
    for u in users() {
        let t = Ctr::new(u);
        t.run_d(&["-it", "--name", "tty", "busybox", "sh"]);
        t.wait_status("tty", |s| s.starts_with("Up"));
        // typed before the shell reads its terminal, input may be lost: wait for its banner
        // (the prompt has no newline: the log has it only once a line follows)
        let prompt = eventually(20, || {
            t.ictr(&["logs", "tty"]).stdout().contains("Enter 'help'")
        });
        assert!(
            prompt,
            "[{}] no prompt: {:?} {} {}",
            u.name(),
            t.ictr(&["logs", "tty"]).stdout(),
            t.status("tty"),
            t.ictr(&["inspect", "tty"]).stdout()
        );
        let input = t.env.write("input", "echo hi-$((6*7)); tty; exit 3\n");
        let mut cmd = t
            .env
            .cmd_path("timeout")
            .arg("60")
            .arg(imago_it::bin("ictr"))
            .args(["attach", "tty"]);
        cmd.command().stdin(std::fs::File::open(&input).unwrap());
        let out = cmd.run().code_is(3);
        assert!(out.stdout().contains("hi-42"), "[{}] {out}", u.name());
        assert!(out.stdout().contains("/dev/pts/0"), "[{}] {out}", u.name());
        assert!(t.status("tty").starts_with("Exited (3)"));
        t.ictr(&["attach", "tty"])
            .code_is(125)
            .fails_with("You cannot attach to a stopped container");
        // the detach keys leave it running
        t.run_d(&["-it", "--name", "tty2", "busybox", "sh"]);
        t.wait_status("tty2", |s| s.starts_with("Up"));
        assert!(eventually(20, || t
            .ictr(&["logs", "tty2"])
            .stdout()
            .contains("Enter 'help'")));
        let keys = t.env.write("keys", b"echo still-here\n\x10\x11");
        let mut cmd = t
            .env
            .cmd_path("timeout")
            .arg("60")
            .arg(imago_it::bin("ictr"))
            .args(["attach", "tty2"]);
        cmd.command().stdin(std::fs::File::open(&keys).unwrap());
        cmd.run().success();
        // what was typed before the keys arrived; the shell still runs
        assert!(eventually(10, || t
            .ictr(&["logs", "tty2"])
            .stdout()
            .contains("still-here\r\n")));
        assert!(
            t.status("tty2").starts_with("Up"),
            "[{}] detached",
            u.name()
        );
    }
}

#[test]
fn stop_signals_and_timeout() {
    for u in users() {
        let t = Ctr::new(u);
        // the image's STOPSIGNAL (SIGUSR1) is what stop sends
        // "Up" only says sh started: stop once the trap is set, as it says
        let trap = "trap 'exit 7' USR1; echo ready; while true; do sleep 0.1; done";
        t.run_d(&["--name", "sig", "stopsig", "sh", "-c", trap]);
        t.wait_ready("sig");
        assert_eq!(t.inspect("sig")["Config"]["StopSignal"], "SIGUSR1");
        t.ictr_bounded(&["stop", "sig"]).success();
        let st = t.status("sig");
        assert!(st.starts_with("Exited (7)"), "[{}] {st}", u.name());
        // a pid 1 without a handler ignores SIGTERM: SIGKILL after -t
        t.run_d(&["--no-init", "--name", "deaf", "busybox", "sleep", "1000"]);
        t.wait_status("deaf", |s| s.starts_with("Up"));
        t.ictr_bounded(&["stop", "-t", "1", "deaf"]).success();
        let st = t.status("deaf");
        assert!(st.starts_with("Exited (137)"), "[{}] {st}", u.name());
        // -s overrides, and stop leaves a stopped container as it is
        t.ictr_bounded(&["stop", "deaf"]).success();
        t.run_d(&[
            "--name",
            "int",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 9' INT; echo ready; while true; do sleep 0.1; done",
        ]);
        t.wait_ready("int");
        t.ictr_bounded(&["stop", "-s", "INT", "int"]).success();
        let st = t.status("int");
        assert!(st.starts_with("Exited (9)"), "[{}] {st}", u.name());
    }
}

#[test]
fn records_survive_a_wiped_runtime_dir() {
    for u in users() {
        let t = Ctr::new(u);
        let rt = t.env.mkdir("xdg");
        let irun = t
            .env
            .cmd("irun")
            .env("XDG_RUNTIME_DIR", &rt)
            .args(["-dit", "--name", "live", "busybox", "sh"])
            .run()
            .success();
        let id = irun.stdout().trim().to_string();
        let sock = rt.join("imago").join(&id).join("attach.sock");
        assert!(sock.exists(), "[{}] no {}", u.name(), sock.display());
        // the record says where the socket is: a client with another runtime dir finds it
        assert_eq!(t.record(&id)["attach_socket"], sock.display().to_string());
        t.ictr_bounded(&["stop", "live"]).success();
        assert!(
            !rt.join("imago").join(&id).exists(),
            "the live dir goes with the container"
        );
        std::fs::remove_dir_all(&rt).unwrap();
        let st = t.status("live");
        assert!(st.starts_with("Exited ("), "[{}] {st}", u.name());
        t.ictr(&["rm", "live"]).success();
    }
}

#[test]
fn lookup_errors_and_usage() {
    for u in users() {
        let t = Ctr::new(u);
        t.ictr(&["ps", "--bogus"]).code_is(125);
        t.ictr(&["stop"]).code_is(125);
        t.ictr(&["rm", "nope"])
            .code_is(125)
            .fails_with("No such container: nope");
        t.ictr(&["rm", "-f", "nope"]).success();
        // 17 containers: two of them share a first digit, an ambiguous prefix
        let ids: Vec<String> = (0..17).map(|_| t.run_d(&["busybox", "true"])).collect();
        let first = ids
            .iter()
            .find(|a| ids.iter().filter(|b| b[..1] == a[..1]).count() > 1)
            .unwrap();
        t.ictr(&["inspect", &first[..1]])
            .code_is(125)
            .fails_with("multiple containers match the id prefix");
        assert_eq!(
            t.ictr(&["ps", "-aq"]).success().stdout().lines().count(),
            17
        );
    }
}

#[test]
fn detached_ports_are_published_recorded_and_kept_by_start() {
    use std::io::{Read, Write};
    for u in users() {
        let t = Ctr::new(u);
        let www = t.env.mkdir("www");
        t.env.write("www/index.html", "hello-web\n");
        let vol = format!("{}:/www", www.display());
        let args = ["--name", "web", "-p", "127.0.0.1::8080", "-v", &vol];
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]);
        t.run_d(&all);
        t.wait_status("web", |s| s.starts_with("Up"));
        let get = |addr: &str| -> String {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut body = String::new();
            // A reset before the answer leaves the body short: the caller retries.
            let _ = s.read_to_string(&mut body);
            body
        };
        let addr = t.ictr(&["port", "web", "8080"]).success().stdout();
        let addr = addr.trim().to_string();
        assert!(addr.starts_with("127.0.0.1:"), "[{}] {addr}", u.name());
        assert!(
            eventually(10, || get(&addr).contains("hello-web")),
            "[{}] GET {addr}",
            u.name()
        );
        let ps = t.row("web").unwrap();
        assert_eq!(ps["Ports"], format!("{addr}->8080/tcp"));
        let list = t.ictr(&["port", "web"]).success().stdout();
        assert_eq!(list, format!("8080/tcp -> {addr}\n"));
        let i = t.inspect("web");
        assert_eq!(
            i["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostIp"],
            "127.0.0.1"
        );
        // a stopped container publishes nothing; started again it does
        t.ictr_bounded(&["stop", "web"]).success();
        assert_eq!(t.ictr(&["port", "web"]).success().stdout(), "");
        t.ictr_bounded(&["start", "web"]).success();
        let again = t.ictr(&["port", "web", "8080"]).success().stdout();
        assert!(eventually(10, || get(again.trim()).contains("hello-web")));
    }
}
