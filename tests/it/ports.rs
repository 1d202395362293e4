//! Published ports (`irun -p`, `-P`) and the choice of network: busybox httpd inside,
//! reached over TCP from the test through the built-in forwarder; 200 concurrent
//! connections (to a server of the test's own with a real listen backlog) without an fd
//! left behind; a privileged host port refused naming the
//! sysctl; what `host`, `none` and `private` reach (a server of the test's own on the
//! host's 127.0.0.1). As root, imago-sub and imago-nosub. Traffic goes only to loopback
//! and to the namespaces the tests make.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use imago_it::{bin, eventually, users, Env, User};

/// busybox httpd on port 8080 serving one page.
const SERVE: &str =
    "mkdir -p /www && echo imago-page > /www/index.html && exec httpd -f -p 8080 -h /www";

/// A forking HTTP server that answers every request with the page, listening with a
/// backlog of 1024. busybox httpd listens with a backlog of 9: 200 connects at once
/// overflow it, and on a loaded machine a connection whose handshake the kernel kept
/// dropping for a minute is reset, which the client sees as an empty reply. That is the
/// server's limit, not the forwarder's, so the 200-connection test uses this one.
const WIDE_SERVER_C: &str = r#"
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(argc > 1 ? atoi(argv[1]) : 8080);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1024)) return 1;
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        if (fork() == 0) {
            static const char page[] =
                "HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nimago-page\n";
            char buf[4096];
            size_t n = 0;
            ssize_t r;
            while (n < sizeof buf - 1 && (r = read(c, buf + n, sizeof buf - 1 - n)) > 0) {
                buf[n += r] = 0;
                if (strstr(buf, "\r\n\r\n")) break;
            }
            if (write(c, page, sizeof page - 1) < 0) _exit(1);
            _exit(0);
        }
        close(c);
    }
}
"#;

/// A store with the busybox image as `web`, which EXPOSEs 8080.
fn web_env(u: User) -> Env {
    let env = Env::new(u);
    let tar = env.busybox_tar();
    env.cmd("iimage")
        .args(["import", "--change", "CMD [\"sh\"]", "--change"])
        .args(["EXPOSE 8080", tar.to_str().unwrap(), "web:latest"])
        .ok();
    env
}

/// A free port of the host (bound and released: a parallel test may race for it, which
/// would fail loudly, not wrongly).
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// An irun running in the background; dropping it sends SIGTERM (forwarded to the
/// container) and reaps it, SIGKILL after 10 s.
struct Running {
    child: Child,
    pid: i32,
    stderr: mpsc::Receiver<String>,
    label: String,
}

impl Running {
    /// `irun ARGS` as the env's user, through `sh -c 'echo $$ > pidfile; exec irun …'`
    /// so that `pid` is irun's own.
    fn start(env: &Env, args: &[&str]) -> Running {
        Self::start_with_path(env, args, None)
    }

    fn start_with_path(env: &Env, args: &[&str], path: Option<&Path>) -> Running {
        let pidfile = env.path(&format!("irun-{}.pid", free_port()));
        let mut script = format!(
            "echo $$ > {}; exec {}",
            pidfile.display(),
            bin("irun").display()
        );
        for a in args {
            script.push(' ');
            script.push_str(&quote(a));
        }
        let mut cmd = env.cmd_path("/bin/sh").args(["-c", &script]);
        if let Some(p) = path {
            cmd = cmd.env("PATH", p);
        }
        let mut child = cmd
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let t = Instant::now();
        let pid = loop {
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break p;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no pid file");
            std::thread::sleep(Duration::from_millis(10));
        };
        Running {
            child,
            pid,
            stderr: rx,
            label: format!("[{}] irun {}", env.user.name(), args.join(" ")),
        }
    }

    /// The next stderr line containing `needle`, within 20 s.
    fn stderr_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(e) => panic!("{}: no stderr line with {needle:?} ({e})", self.label),
            }
        }
    }

    /// The forwarder: irun's child named `irun-ports`.
    fn forwarder(&self) -> i32 {
        children(self.pid)
            .into_iter()
            .find(|(_, comm)| comm == "irun-ports")
            .map(|(p, _)| p)
            .unwrap_or_else(|| panic!("{}: no irun-ports child", self.label))
    }

    /// SIGTERM irun and wait for its exit code (None: it had to be killed).
    fn stop(&mut self) -> Option<i32> {
        signal(self.pid, libc::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal(self.pid, libc::SIGKILL);
        let _ = self.child.wait();
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a process this test started (irun, exec'd by its sh); a
    // signal has no memory effects here.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, sig);
    }
}

/// (pid, comm) of the processes whose parent is `parent`.
fn children(parent: i32) -> Vec<(i32, String)> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if ppid.and_then(|p| p.parse().ok()) == Some(parent) {
            let pid = stat[..open].trim().parse().unwrap_or(0);
            out.push((pid, stat[open + 1..close].to_string()));
        }
    }
    out
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// One HTTP/1.0 GET of `/index.html` on the host's loopback: the whole response.
fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut r = String::new();
    s.read_to_string(&mut r)?;
    Ok(r)
}

/// The page once the server inside answers (the container starts meanwhile).
fn wait_page(run: &Running, port: u16) -> String {
    let t = Instant::now();
    loop {
        match get(port) {
            Ok(r) if r.contains("imago-page") => return r,
            r => assert!(
                t.elapsed() < Duration::from_secs(20),
                "{}: no page on port {port}: {r:?}",
                run.label
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn publish_serves_http_through_200_concurrent_connections_without_leaking_fds() {
    for u in users() {
        let env = web_env(u);
        let dir = env.mkdir("srv");
        let Some(server) = imago_it::static_c_program(&dir, "serve", WIDE_SERVER_C, "the server")
        else {
            return;
        };
        env.give(&server);
        let vol = format!("{}:/srv:ro", dir.display());
        let port = free_port();
        let spec = format!("{port}:8080");
        let mut run = Running::start(
            &env,
            &["--rm", "-p", &spec, "-v", &vol, "web", "/srv/serve"],
        );
        let page = wait_page(&run, port);
        assert!(
            page.starts_with("HTTP/1.") && page.contains("200"),
            "{page}"
        );
        let fwd = run.forwarder();
        // once the first requests' sockets closed, the forwarder keeps only its listener
        // and stdio (stdin and stdout on /dev/null)
        assert!(
            eventually(10, || fd_count(fwd) == 4),
            "{}: forwarder holds {} fds",
            run.label,
            fd_count(fwd)
        );
        let idle = fd_count(fwd);
        // 200 connections open at once, then each asks and reads its answer
        let mut conns: Vec<TcpStream> = (0..200)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        // A hang guard, not a timing: on a loaded 2-core machine 200 httpd forks take a while.
        for c in &mut conns {
            c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
            c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
        }
        let replies: Vec<Result<String, String>> = conns
            .into_iter()
            .map(|mut c| {
                let mut r = String::new();
                c.read_to_string(&mut r)
                    .map(|_| r)
                    .map_err(|e| e.to_string())
            })
            .collect();
        let answered = replies
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.contains("imago-page")))
            .count();
        let unanswered: Vec<&Result<String, String>> = replies
            .iter()
            .filter(|r| !r.as_ref().is_ok_and(|r| r.contains("imago-page")))
            .take(3)
            .collect();
        assert_eq!(
            answered, 200,
            "{}: the first unanswered: {unanswered:?}",
            run.label
        );
        assert!(
            eventually(10, || fd_count(fwd) == idle),
            "{}: forwarder fds {} after the connections, {idle} before",
            run.label,
            fd_count(fwd)
        );
        // the forwarder ends with the container, and the port closes
        assert_eq!(run.stop(), Some(143), "{}", run.label);
        assert!(
            !Path::new(&format!("/proc/{fwd}")).exists(),
            "{}",
            run.label
        );
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}

#[test]
fn publish_all_reports_the_chosen_port_and_bad_specs_fail() {
    for u in users() {
        let env = web_env(u);
        let run = Running::start(&env, &["--rm", "-P", "web", "sh", "-c", SERVE]);
        // `published 0.0.0.0:PORT->8080/tcp` on stderr
        let line = run.stderr_line("->8080/tcp");
        let port: u16 = line
            .strip_prefix("published 0.0.0.0:")
            .and_then(|r| r.split("->").next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{}: {line}", run.label));
        assert!(wait_page(&run, port).contains("imago-page"));
        drop(run);
        // a bad value is named, exit 125
        env.cmd("irun")
            .args(["--rm", "-p", "8080:nope", "web", "true"])
            .run()
            .code_is(125)
            .fails_with("`8080:nope`");
        env.cmd("irun")
            .args(["--rm", "-p", "80/sctp", "web", "true"])
            .run()
            .code_is(125)
            .fails_with("sctp is not supported");
        // a privileged host port fails naming the sysctl (root may bind it)
        let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if u == User::Root {
            continue;
        }
        if start <= 80 {
            imago_it::inherent_skip(
                "ip_unprivileged_port_start is 80 or less: port 80 is not privileged",
            );
            continue;
        }
        let out = env
            .cmd("irun")
            .args(["--rm", "-p", "80:8080", "web", "true"])
            .run()
            .code_is(125)
            .fails_with("net.ipv4.ip_unprivileged_port_start");
        assert!(out.stderr().contains(&format!("= {start}")), "{out}");
    }
}

/// A server on the host's 127.0.0.1 that greets every connection.
fn host_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            // a client gone early is fine
            let _ = s.write_all(b"imago-host-ok\n");
        }
    });
    port
}

fn netns_of_test() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn networks_host_none_private_and_the_default_choice() {
    let host_port = host_server();
    let me = netns_of_test();
    // prints the container's network namespace, then what the host server says
    let probe = |target: &str| {
        format!("readlink /proc/self/ns/net; timeout 10 nc {target} {host_port} </dev/null; true")
    };
    let via_gw = "$(ip route | awk '/^default/ {print $3}')";
    for u in users() {
        let env = web_env(u);
        let run = |args: &[&str]| env.cmd("irun").args(args).run().success();
        // foreground default: the host's network, its loopback services included
        let out = run(&["--rm", "web", "sh", "-c", &probe("127.0.0.1")]);
        assert!(
            out.stdout().starts_with(&me),
            "[{}] default: {out}",
            u.name()
        );
        assert!(
            out.stdout().contains("imago-host-ok"),
            "[{}] {out}",
            u.name()
        );
        // none: a namespace of its own; the host's loopback is not reachable
        let out = run(&[
            "--rm",
            "--network",
            "none",
            "web",
            "sh",
            "-c",
            &probe("127.0.0.1"),
        ]);
        assert!(!out.stdout().starts_with(&me), "[{}] none: {out}", u.name());
        assert!(
            !out.stdout().contains("imago-host-ok"),
            "[{}] none: {out}",
            u.name()
        );
        // -p makes the default private: a namespace of its own that reaches the host's
        // loopback through pasta's gateway mapping (slirp4netns: 10.0.2.2, its gateway)
        let spec = format!("{}:8080", free_port());
        let out = run(&["--rm", "-p", &spec, "web", "sh", "-c", &probe(via_gw)]);
        assert!(!out.stdout().starts_with(&me), "[{}] -p: {out}", u.name());
        assert!(
            out.stdout().contains("imago-host-ok"),
            "[{}] -p: {out}",
            u.name()
        );
        // an explicit network wins: -p with host is ignored with one warning line
        let out = run(&[
            "--rm",
            "--net",
            "host",
            "-p",
            &spec,
            "web",
            "sh",
            "-c",
            &probe("127.0.0.1"),
        ]);
        assert!(
            out.stdout().starts_with(&me),
            "[{}] host -p: {out}",
            u.name()
        );
        let warned = out
            .stderr()
            .lines()
            .filter(|l| l.contains("ignored"))
            .count();
        assert_eq!(warned, 1, "[{}] {out}", u.name());
    }
}

/// A PATH with the id-map helpers but neither pasta nor slirp4netns.
fn path_without_net_helpers() -> (imago_it::Scratch, PathBuf) {
    let dir = imago_it::Scratch::new(User::Root);
    for tool in ["newuidmap", "newgidmap"] {
        let _ = std::os::unix::fs::symlink(format!("/usr/bin/{tool}"), dir.path().join(tool));
    }
    let path = PathBuf::from(format!("{}:/usr/sbin:/sbin", dir.path().display()));
    (dir, path)
}

#[test]
fn without_pasta_or_slirp_a_private_network_is_loopback_only_and_ports_still_work() {
    let (_dir, path) = path_without_net_helpers();
    for u in users() {
        let env = web_env(u);
        let port = free_port();
        let spec = format!("{port}:8080");
        let run = Running::start_with_path(
            &env,
            &["--rm", "-p", &spec, "web", "sh", "-c", SERVE],
            Some(&path),
        );
        let warning = run.stderr_line("warning:");
        assert!(
            warning.contains("neither pasta"),
            "{}: {warning}",
            run.label
        );
        assert!(wait_page(&run, port).contains("imago-page"));
    }
}

/// A UDP echo server on `port` of the container's loopback: a thread of this (root) test
/// process that entered the network namespace of `pid` (the container's pid 1), until
/// `stop` is set.
fn udp_echo_inside(pid: i32, port: u16, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: setns(2) moves only this thread, with an fd it keeps open; root may enter
        // any network namespace.
        #[allow(unsafe_code)]
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        let s = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        tx.send(()).unwrap();
        let mut b = [0u8; 512];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut b) {
                // the forwarder's socket inside, on the container's loopback
                assert!(from.ip().is_loopback(), "{from}");
                let _ = s.send_to(&b[..n], from);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
}

#[test]
fn udp_datagrams_are_relayed_per_client() {
    if !imago_it::running_as_root() {
        imago_it::inherent_skip(
            "udp: the echo server inside needs root to enter the container's namespace",
        );
        return;
    }
    for u in users() {
        let env = web_env(u);
        let port = free_port();
        let spec = format!("127.0.0.1:{port}:9000/udp");
        let run = Running::start(&env, &["--rm", "-p", &spec, "web", "sleep", "100"]);
        assert!(eventually(20, || children(run.pid)
            .iter()
            .any(|(_, c)| c == "irun-ports")));
        let pid1 = children(run.pid)
            .into_iter()
            .find(|(_, c)| c == "irun")
            .map(|(p, _)| p)
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        udp_echo_inside(pid1, 9000, stop.clone());
        // two clients, each answered on its own address
        for msg in ["one", "two"] {
            let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut b = [0u8; 64];
            let got = (0..20).find_map(|_| {
                c.send_to(msg.as_bytes(), ("127.0.0.1", port)).unwrap();
                c.recv_from(&mut b).ok()
            });
            let (n, from) = got.unwrap_or_else(|| panic!("{}: no answer to {msg}", run.label));
            assert_eq!(&b[..n], msg.as_bytes(), "{}", run.label);
            assert_eq!(from.port(), port, "{}", run.label);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
