//! Real registries for the registry tests: Debian's `docker-registry` (distribution 2.8)
//! on a free loopback port, plain, with htpasswd auth, or with token auth trusting a
//! small token server of ours (the Docker Hub flow: realm/service/scope, Basic
//! credentials at the token endpoint, RS256 JWTs signed by the `openssl` CLI); and a
//! fault-injecting HTTP proxy (dropped connections, 5xx/429, corrupted blob bytes,
//! refused bodies).
//! Every process is killed when its guard drops; every registry has its own directory.

#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::type_complexity,
    dead_code
)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill(); // already gone is fine
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released; the kernel does not hand it out again soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

pub use imago_it::have;

/// How a test registry authenticates.
pub enum Auth {
    None,
    Htpasswd {
        user: String,
        password: String,
    },
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

/// A running docker-registry.
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub dir: PathBuf,
    _proc: Proc,
}

impl Registry {
    /// Start one in `dir` (created). Optionally with TLS (`cert`, `key` PEM files).
    pub fn start(dir: &Path, auth: Auth, tls: Option<(&Path, &Path)>) -> Registry {
        Self::start_try(dir, &auth, tls, 3, false)
    }

    /// Plain, no auth, with its access log on: one line per request in [`Registry::log`]
    /// (`"GET /v2/… HTTP/1.1" 200 …`), for tests that count what was fetched.
    pub fn start_logged(dir: &Path) -> Registry {
        Self::start_try(dir, &Auth::None, None, 3, true)
    }

    /// One try on a fresh port; another port when the registry dies before listening
    /// (the port was taken between our probe and its bind).
    fn start_try(
        dir: &Path,
        auth: &Auth,
        tls: Option<(&Path, &Path)>,
        tries: u32,
        access_log: bool,
    ) -> Registry {
        std::fs::create_dir_all(dir).expect("registry dir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                let file = dir.join("htpasswd");
                std::fs::write(&file, &out.stdout).expect("write htpasswd");
                format!("auth:\n  htpasswd:\n    realm: imago-test\n    path: {}\n", file.display())
            }
            Auth::Token { realm, service, issuer, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let tls_yaml = match tls {
            Some((c, k)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.display(),
                k.display()
            ),
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n{auth_yaml}http:\n  addr: {addr}\n  secret: imago-test-secret\n{tls_yaml}",
            !access_log,
            dir.join("data").display()
        );
        let conf = dir.join("config.yml");
        std::fs::write(&conf, config).expect("write registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let reg = Registry {
            addr: addr.clone(),
            dir: dir.to_owned(),
            _proc: Proc(child),
        };
        let mut reg = reg;
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&addr).is_err() {
            if tries > 1 && reg._proc.0.try_wait().is_ok_and(|st| st.is_some()) {
                eprintln!(
                    "docker-registry exited before listening on {addr}; another port: {}",
                    reg.log()
                );
                return Self::start_try(dir, auth, tls, tries - 1, access_log);
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {addr}: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

/// A self-signed certificate + key made with the openssl CLI (`CN`, SAN IP 127.0.0.1).
pub fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl req");
    assert!(st.success(), "openssl req failed");
    (cert, key)
}

// ---- base64 for JWTs ----

fn b64(data: &[u8], url: bool) -> String {
    let alpha: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(char::from(alpha[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if !url {
            for _ in c.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().take_while(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            _ => 63,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn query_params(path: &str) -> Vec<(String, String)> {
    let q = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One parsed HTTP request head.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    raw: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_head(r: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut raw = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        raw.extend_from_slice(line.as_bytes());
        let t = line.trim_end().to_owned();
        if t.is_empty() {
            break;
        }
        lines.push(t);
    }
    let first = lines.first()?.clone();
    let mut parts = first.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let headers = lines[1..]
        .iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    Some(Head {
        method,
        path,
        headers,
        raw,
    })
}

fn respond(s: &mut TcpStream, status: u16, extra: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body)); // client may be gone
}

/// A token server: `GET /token?service=S&scope=…` with Basic credentials, answering
/// RS256 JWTs with an `x5c` chain of its self-signed certificate.
pub struct TokenServer {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub cert: PathBuf,
    /// Every request: (user or "-", scopes asked).
    pub log: Arc<Mutex<Vec<(String, Vec<String>)>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl TokenServer {
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        std::fs::create_dir_all(dir).expect("token dir");
        let (cert, key) = make_cert(dir, "imago-token-signer");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        assert!(der.status.success());
        let x5c = b64(&der.stdout, false);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = listener.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let ts = TokenServer {
            realm: format!("http://127.0.0.1:{port}/token"),
            service: "imago-test-registry".into(),
            issuer: "imago-test-issuer".into(),
            cert: cert.clone(),
            log: log.clone(),
            stop: stop.clone(),
            port,
        };
        let (service, issuer) = (ts.service.clone(), ts.issuer.clone());
        let (user, password) = (user.to_owned(), password.to_owned());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (key, x5c, service, issuer, user, password, log) = (
                    key.clone(),
                    x5c.clone(),
                    service.clone(),
                    issuer.clone(),
                    user.clone(),
                    password.clone(),
                    log.clone(),
                );
                std::thread::spawn(move || {
                    let mut s = conn.try_clone().expect("clone");
                    let mut r = BufReader::new(conn);
                    let Some(head) = read_head(&mut r) else {
                        return;
                    };
                    let params = query_params(&head.path);
                    let scopes: Vec<String> = params
                        .iter()
                        .filter(|(k, _)| k == "scope")
                        .map(|(_, v)| v.clone())
                        .collect();
                    let who = match head
                        .header("authorization")
                        .and_then(|a| a.strip_prefix("Basic "))
                    {
                        Some(b) => {
                            let text = String::from_utf8_lossy(&b64_decode(b)).into_owned();
                            if text != format!("{user}:{password}") {
                                log.lock().unwrap().push(("bad-credentials".into(), scopes));
                                respond(&mut s, 401, "", br#"{"details":"bad credentials"}"#);
                                return;
                            }
                            Some(user.clone())
                        }
                        None => None,
                    };
                    log.lock()
                        .unwrap()
                        .push((who.clone().unwrap_or_else(|| "-".into()), scopes.clone()));
                    // Authenticated users get every action they ask for; anonymous nothing.
                    let access: Vec<String> = scopes
                        .iter()
                        .flat_map(|s| s.split(' ').map(str::to_owned).collect::<Vec<_>>())
                        .filter_map(|item| {
                            let (kind, rest) = item.split_once(':')?;
                            let (name, actions) = rest.rsplit_once(':')?;
                            let acts: Vec<String> = if who.is_some() {
                                actions.split(',').map(|a| format!("\"{a}\"")).collect()
                            } else {
                                Vec::new()
                            };
                            Some(format!(
                                r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#,
                                acts.join(",")
                            ))
                        })
                        .collect();
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let header = format!(r#"{{"typ":"JWT","alg":"RS256","x5c":["{x5c}"]}}"#);
                    let claims = format!(
                        r#"{{"iss":"{issuer}","sub":"{}","aud":"{service}","exp":{},"nbf":{},"iat":{now},"jti":"{now}-{}","access":[{}]}}"#,
                        who.clone().unwrap_or_default(),
                        now + 600,
                        now - 60,
                        std::process::id(),
                        access.join(",")
                    );
                    let signing_input = format!(
                        "{}.{}",
                        b64(header.as_bytes(), true),
                        b64(claims.as_bytes(), true)
                    );
                    let mut child = Command::new("openssl")
                        .args(["dgst", "-sha256", "-sign"])
                        .arg(&key)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("openssl dgst");
                    child
                        .stdin
                        .take()
                        .expect("stdin")
                        .write_all(signing_input.as_bytes())
                        .expect("write");
                    let sig = child.wait_with_output().expect("openssl dgst output");
                    assert!(sig.status.success(), "openssl dgst failed");
                    let jwt = format!("{signing_input}.{}", b64(&sig.stdout, true));
                    let body =
                        format!(r#"{{"token":"{jwt}","access_token":"{jwt}","expires_in":600}}"#);
                    respond(&mut s, 200, "", body.as_bytes());
                });
            }
        });
        ts
    }

    /// `Auth::Token` for a registry trusting this server.
    pub fn auth(&self) -> Auth {
        Auth::Token {
            realm: self.realm.clone(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            cert: self.cert.clone(),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

/// What the proxy does to one matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status without asking the registry (`Retry-After` seconds if given).
    Status(u16, Option<u32>),
    /// Read part of the request body, then close (an upload cut midway).
    DropRequest,
    /// Forward, but cut the response after its headers and this many body bytes.
    DropResponse(usize),
    /// Forward, flipping one byte of the response body.
    Corrupt,
    /// Forward the response headers and this many body bytes, then send nothing more
    /// while holding the connection open (a stalled registry).
    Stall(usize),
    /// Forward the response headers, then one body byte per interval (a trickle).
    Trickle(Duration),
    /// Answer 200 with this many bytes of filler without asking the registry (a server
    /// that is not a registry, e.g. a portal page where a manifest should be).
    Fill(usize),
    /// Read the request head, then neither read the body nor answer (a registry that
    /// stops taking an upload).
    StallRequest,
    /// Forward untouched (a rule that lets the first N matching requests through).
    Pass,
    /// Answer this status, extra header lines (`Name: value\r\n` each) and body without
    /// asking the registry.
    Respond(u16, String, Vec<u8>),
    /// Forward, but declare a `Content-Length` this many bytes off the real one.
    BadLength(i64),
    /// Answer `307` to `http://HOST` + the same path (HOST: this string).
    RedirectTo(String),
    /// A request whose `Content-Length` is over this many bytes: `413` as soon as its head
    /// is read, the body left unread, then close (nginx's `client_max_body_size`; the
    /// unread body makes the close a reset). Smaller requests are forwarded untouched.
    TooLarge(u64),
    /// A request carrying `Expect: 100-continue`: `417` as soon as its head is read, the
    /// body not waited for, then close (a server or proxy that does not take `Expect`,
    /// RFC 9110 §10.1.1). Requests without it are forwarded untouched.
    RefuseExpect,
}

/// The longest a stalling or trickling fault holds a connection: bounded, so a client
/// that never gives up cannot keep a proxy thread for ever.
const HOLD: Duration = Duration::from_secs(600);

/// Hold the connection open until the client closes it (or `HOLD` passes).
fn hold(cr: &mut BufReader<TcpStream>) {
    let _ = cr.get_ref().set_read_timeout(Some(HOLD)); // unset timeout: then bounded by the client
    let _ = std::io::copy(cr, &mut std::io::sink()); // ends when the client goes away
}

/// One rule: method, a substring of the path, the fault, how many times (0 = always).
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path_contains: &'static str,
    pub fault: Fault,
    pub times: usize,
}

/// A fault-injecting HTTP/1.1 proxy in front of a registry: one request per connection,
/// `Connection: close` both ways.
pub struct FaultProxy {
    pub addr: String,
    pub rules: Arc<Mutex<VecDeque<Rule>>>,
    /// Faults applied so far: "METHOD path -> fault".
    pub applied: Arc<Mutex<Vec<String>>>,
    /// Every request seen: "METHOD target" (absolute URIs when used as an HTTP proxy).
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Every request seen with its headers: (method, target, headers).
    pub heads: Arc<Mutex<Vec<SeenHead>>>,
    stop: Arc<AtomicBool>,
}

/// One request as the proxy saw it: method, target, header lines.
pub type SeenHead = (String, String, Vec<(String, String)>);

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let rules: Arc<Mutex<VecDeque<Rule>>> = Arc::default();
        let applied: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let heads: Arc<Mutex<Vec<SeenHead>>> = Arc::default();
        let (r2, a2, s2, up, seen2, heads2) = (
            rules.clone(),
            applied.clone(),
            stop.clone(),
            upstream.to_owned(),
            seen.clone(),
            heads.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (rules, applied, up, seen, heads) = (
                    r2.clone(),
                    a2.clone(),
                    up.clone(),
                    seen2.clone(),
                    heads2.clone(),
                );
                std::thread::spawn(move || proxy_one(conn, &up, &rules, &applied, &seen, &heads));
            }
        });
        FaultProxy {
            addr,
            rules,
            applied,
            seen,
            heads,
            stop,
        }
    }

    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self.rules.lock().unwrap() = rules.into();
        self.applied.lock().unwrap().clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop
    }
}

fn take_fault(rules: &Mutex<VecDeque<Rule>>, head: &Head) -> Option<Fault> {
    let mut rules = rules.lock().unwrap();
    let i = rules
        .iter()
        .position(|r| r.method == head.method && head.path.contains(r.path_contains))?;
    let fault = rules[i].fault.clone();
    match rules[i].times {
        0 => {}
        1 => {
            rules.remove(i);
        }
        n => rules[i].times = n - 1,
    }
    Some(fault)
}

/// Serve one request. As an HTTP forward proxy (absolute-form request target), the
/// request goes to the host it names; otherwise to `upstream`.
fn proxy_one(
    client: TcpStream,
    upstream: &str,
    rules: &Mutex<VecDeque<Rule>>,
    applied: &Mutex<Vec<String>>,
    seen: &Mutex<Vec<String>>,
    heads: &Mutex<Vec<SeenHead>>,
) {
    let mut cw = client.try_clone().expect("clone");
    let mut cr = BufReader::new(client);
    let Some(head) = read_head(&mut cr) else {
        return;
    };
    seen.lock()
        .unwrap()
        .push(format!("{} {}", head.method, head.path));
    heads
        .lock()
        .unwrap()
        .push((head.method.clone(), head.path.clone(), head.headers.clone()));
    if head.method == "CONNECT" {
        // An HTTPS_PROXY tunnel (ureq tunnels plain HTTP too): pipe both ways.
        let Ok(up) = TcpStream::connect(&head.path) else {
            respond(&mut cw, 502, "", b"");
            return;
        };
        if cw
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .is_err()
        {
            return;
        }
        let (mut up_r, mut up_w) = (up.try_clone().expect("clone"), up);
        let mut cw2 = cw.try_clone().expect("clone");
        let t = std::thread::spawn(move || {
            let _ = std::io::copy(&mut up_r, &mut cw2); // ends when either side closes
            let _ = cw2.shutdown(Shutdown::Both);
        });
        let _ = std::io::copy(&mut cr, &mut up_w);
        let _ = up_w.shutdown(Shutdown::Both);
        let _ = t.join();
        return;
    }
    let target = head
        .path
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned());
    let upstream = target.as_deref().unwrap_or(upstream);
    let len: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let expects_continue = head
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let fault = match take_fault(rules, &head) {
        Some(Fault::TooLarge(limit)) if len as u64 <= limit => None,
        Some(Fault::RefuseExpect) if !expects_continue => None,
        f => f,
    };
    if let Some(f) = &fault {
        applied
            .lock()
            .unwrap()
            .push(format!("{} {} -> {f:?}", head.method, head.path));
    }
    match fault {
        Some(Fault::Status(code, retry)) => {
            let _ = std::io::copy(&mut (&mut cr).take(len as u64), &mut std::io::sink());
            let extra = retry
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            let body = if code == 429 {
                br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec()
            } else {
                br#"{"errors":[{"code":"UNKNOWN","message":"injected"}]}"#.to_vec()
            };
            respond(&mut cw, code, &extra, &body);
            return;
        }
        Some(Fault::DropRequest) => {
            let _ = std::io::copy(&mut (&mut cr).take((len / 2) as u64), &mut std::io::sink());
            let _ = cw.shutdown(Shutdown::Both);
            return;
        }
        Some(Fault::Fill(n)) => {
            let _ = std::io::copy(&mut (&mut cr).take(len as u64), &mut std::io::sink());
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n"
            );
            if cw.write_all(head.as_bytes()).is_err() {
                return;
            }
            let block = vec![b' '; 64 << 10];
            let mut left = n;
            while left > 0 {
                let k = left.min(block.len());
                if cw.write_all(&block[..k]).is_err() {
                    return; // the client stopped reading: that is what a limit does
                }
                left -= k;
            }
            return;
        }
        Some(Fault::Respond(code, extra, body)) => {
            let _ = std::io::copy(&mut (&mut cr).take(len as u64), &mut std::io::sink());
            let head = format!(
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                body.len()
            );
            let _ = cw
                .write_all(head.as_bytes())
                .and_then(|()| cw.write_all(&body)); // client may be gone
            return;
        }
        Some(Fault::RedirectTo(host)) => {
            let _ = std::io::copy(&mut (&mut cr).take(len as u64), &mut std::io::sink());
            respond(
                &mut cw,
                307,
                &format!("Location: http://{host}{}\r\n", head.path),
                b"",
            );
            return;
        }
        Some(Fault::TooLarge(_)) => {
            let body = b"<html><head><title>413 Request Entity Too Large</title></head></html>";
            let head = format!(
                "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = cw
                .write_all(head.as_bytes())
                .and_then(|()| cw.write_all(body)); // client may be gone
            return; // the body unread: dropping the socket resets the connection
        }
        Some(Fault::RefuseExpect) => {
            // The client waits for `100 Continue` before its body: none is unread here.
            respond(&mut cw, 417, "", b"");
            return;
        }
        Some(Fault::StallRequest) => {
            let _ = cr.get_ref().set_read_timeout(Some(HOLD));
            let start = Instant::now();
            // Never read the body: the client's writes fill the socket buffers and block.
            // Wait for the client to hang up (a peek of 0 bytes) or for HOLD.
            let mut one = [0u8; 1];
            while start.elapsed() < HOLD {
                match cr.get_ref().peek(&mut one) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
            return;
        }
        _ => {}
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    // Rewrite the head with Connection: close.
    let mut text = String::from_utf8_lossy(&head.raw).into_owned();
    text = text
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n");
    text.push_str("\r\nConnection: close\r\n\r\n");
    if up.write_all(text.as_bytes()).is_err() {
        return;
    }
    if std::io::copy(&mut (&mut cr).take(len as u64), &mut up).is_err() {
        return;
    }
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp);
    let body_at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(resp.len());
    match fault {
        Some(Fault::Stall(n)) => {
            let end = (body_at + n).min(resp.len());
            if cw.write_all(&resp[..end]).is_ok() {
                hold(&mut cr);
            }
        }
        Some(Fault::Trickle(every)) => {
            if cw.write_all(&resp[..body_at]).is_err() {
                return;
            }
            let start = Instant::now();
            for b in &resp[body_at..] {
                std::thread::sleep(every);
                if start.elapsed() > HOLD || cw.write_all(std::slice::from_ref(b)).is_err() {
                    return; // the client gave up, as it should
                }
            }
        }
        Some(Fault::DropResponse(n)) => {
            let end = (body_at + n).min(resp.len());
            let _ = cw.write_all(&resp[..end]);
            let _ = cw.shutdown(Shutdown::Both);
        }
        Some(Fault::BadLength(delta)) => {
            let head = String::from_utf8_lossy(&resp[..body_at]).into_owned();
            let real = resp.len() - body_at;
            let fake = (real as i64 + delta).max(0);
            let head: String = head
                .split("\r\n")
                .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:") && !l.is_empty())
                .map(|l| format!("{l}\r\n"))
                .collect();
            let head = format!("{head}Content-Length: {fake}\r\n\r\n");
            if cw.write_all(head.as_bytes()).is_ok() {
                let _ = cw.write_all(&resp[body_at..]); // the client may stop early
            }
            let _ = cw.shutdown(Shutdown::Both);
        }
        Some(Fault::Corrupt) => {
            if body_at < resp.len() {
                let mid = body_at + (resp.len() - body_at) / 2;
                resp[mid] ^= 0xff;
            }
            let _ = cw.write_all(&resp);
        }
        _ => {
            let _ = cw.write_all(&resp);
        }
    }
}

/// An image named `name` in the OCI layout (store) at `root`, made as `env`'s user by
/// `skopeo copy tarball:` from the busybox rootfs (one gzip layer).
pub fn busybox_into_store(env: &imago_it::Env, name: &str) {
    let tar = env.busybox_tar();
    let gz = env.path("busybox-rootfs.tar.gz");
    if !gz.exists() {
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "gzip -n -c '{}' > '{}'",
                tar.display(),
                gz.display()
            ))
            .status()
            .expect("gzip");
        assert!(st.success());
        env.give(&gz);
    }
    env.cmd_path("skopeo")
        .args(["copy", "-q"])
        .arg(format!("tarball:{}", gz.display()))
        .arg(format!("oci:{}:{name}", env.root().display()))
        .ok();
}
