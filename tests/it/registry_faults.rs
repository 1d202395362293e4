//! Registry faults, injected by the proxy of registry_support.rs in front of a real
//! docker-registry: connections dropped mid-blob and mid-upload, 500/502/503, 429 with
//! `Retry-After`, stalls and trickles (small limits from the environment, so the bounds
//! fire in seconds), a wrong `Content-Length`, a wrong digest, a redirect loop, an
//! endless 401, a manifest too large to be real, digests that are not digests, and a
//! redirect to another host, which must not get the credentials. Every pull and push
//! either completes or fails with `error:` and the expected reason; no bad blob is ever
//! stored (every blob in the store hashes to its name, `iimage fsck` is clean) and a
//! push that says it completed can be pulled back and verified.
//!
//! A campaign: each scenario runs `IMAGO_CAMPAIGN_RUNS` times (default 1) per user, and
//! prints `CAMPAIGN scenario=NAME runs=N failures=N lost=N` on stderr for
//! scripts/reliability.sh; `IMAGO_CAMPAIGN_RUNS=2` makes more than 100 fault-injected
//! transfers. Users run at once, each behind a proxy of its own (the faults wait on
//! timeouts, not on the CPU).

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use imago_it::{users, Env, Out, Scratch, User};

use crate::registry_support::{
    busybox_into_store, have, Auth, Fault, FaultProxy, Registry, Rule, SeenHead,
};

/// Runs per scenario and user.
fn campaign_runs() -> usize {
    std::env::var("IMAGO_CAMPAIGN_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

fn tools_present() -> bool {
    for t in [
        "docker-registry",
        "skopeo",
        "timeout",
        "sha256sum",
        "htpasswd",
    ] {
        if !have(t) {
            imago_it::skip(&format!(
                "`{t}` is not installed (apt-get install docker-registry skopeo apache2-utils coreutils)"
            ));
            return false;
        }
    }
    true
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Pull,
    Push,
}

/// What a run must end in.
#[derive(Clone, Copy)]
enum Expect {
    Completes,
    /// Exit 125, `error:` and this text on stderr.
    Fails(&'static str),
}

struct Scenario {
    name: &'static str,
    op: Op,
    rules: Vec<Rule>,
    env: &'static [(&'static str, &'static str)],
    /// What follows the repository in the pulled reference.
    reference: &'static str,
    expect: Expect,
}

fn rule(method: &'static str, path_contains: &'static str, fault: Fault, times: usize) -> Rule {
    Rule {
        method,
        path_contains,
        fault,
        times,
    }
}

const BLOB: &str = "/blobs/sha256:";
const MANIFEST: &str = "/manifests/";
const UPLOAD: &str = "/blobs/uploads/";

/// A manifest naming blobs by strings that are not digests (a path escape among them).
const BAD_DIGEST_MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:../../../../etc/passwd","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"md5:zz","size":10}]}"#;

fn scenarios(proxy: &FaultProxy) -> Vec<Scenario> {
    use Expect::{Completes, Fails};
    use Op::{Pull, Push};
    let s = |name, op, rules, env, expect| Scenario {
        name,
        op,
        rules,
        env,
        reference: ":1",
        expect,
    };
    vec![
        s("pull-drop-mid-blob", Pull, vec![rule("GET", BLOB, Fault::DropResponse(100), 1)], &[], Completes),
        s("pull-500", Pull, vec![rule("GET", BLOB, Fault::Status(500, None), 2)], &[], Completes),
        s("pull-502", Pull, vec![rule("GET", MANIFEST, Fault::Status(502, None), 2)], &[], Completes),
        s("pull-503", Pull, vec![rule("GET", BLOB, Fault::Status(503, None), 3)], &[], Completes),
        s("pull-429-retry-after", Pull, vec![rule("GET", MANIFEST, Fault::Status(429, Some(1)), 1)], &[], Completes),
        s(
            "pull-stall-once",
            Pull,
            vec![rule("GET", BLOB, Fault::Stall(50), 1)],
            &[("IMAGO_REGISTRY_STALL_TIMEOUT", "2")],
            Completes,
        ),
        s(
            "pull-stall-always",
            Pull,
            vec![rule("GET", BLOB, Fault::Stall(50), 0)],
            &[("IMAGO_REGISTRY_STALL_TIMEOUT", "1")],
            Fails("sent no data for 1"),
        ),
        s(
            "pull-slow-body",
            Pull,
            vec![rule("GET", BLOB, Fault::Trickle(Duration::from_millis(100)), 0)],
            &[("IMAGO_REGISTRY_RATE_WINDOW", "2"), ("IMAGO_REGISTRY_STALL_TIMEOUT", "5")],
            Fails("under the floor of 1024 bytes/s"),
        ),
        s("pull-short-content-length", Pull, vec![rule("GET", BLOB, Fault::BadLength(-7), 1)], &[], Completes),
        s("pull-long-content-length", Pull, vec![rule("GET", BLOB, Fault::BadLength(1000), 1)], &[], Completes),
        s("pull-wrong-digest", Pull, vec![rule("GET", BLOB, Fault::Corrupt, 0)], &[], Fails("nothing was stored")),
        s(
            "pull-redirect-loop",
            Pull,
            vec![rule("GET", BLOB, Fault::RedirectTo(proxy.addr.clone()), 0)],
            &[],
            Fails("redirect"),
        ),
        s(
            "pull-endless-401",
            Pull,
            vec![rule(
                "GET",
                MANIFEST,
                Fault::Respond(
                    401,
                    "WWW-Authenticate: Basic realm=\"imago-test\"\r\nContent-Type: application/json\r\n".into(),
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"again"}]}"#.to_vec(),
                ),
                0,
            )],
            &[],
            Fails("401"),
        ),
        s(
            "pull-manifest-too-large",
            Pull,
            vec![rule("GET", MANIFEST, Fault::Fill(9 << 20), 0)],
            &[],
            Fails("is larger than the 8 MiB limit"),
        ),
        s(
            "pull-digest-not-a-digest",
            Pull,
            vec![rule(
                "GET",
                MANIFEST,
                Fault::Respond(
                    200,
                    "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n".into(),
                    BAD_DIGEST_MANIFEST.as_bytes().to_vec(),
                ),
                0,
            )],
            &[],
            Fails("digest"),
        ),
        Scenario {
            reference: "@sha256:not-a-digest",
            ..s("pull-reference-not-a-digest", Pull, Vec::new(), &[], Fails("digest"))
        },
        s("push-drop-mid-upload", Push, vec![rule("PUT", UPLOAD, Fault::DropRequest, 1)], &[], Completes),
        s("push-503", Push, vec![rule("PUT", UPLOAD, Fault::Status(503, None), 2)], &[], Completes),
        // A registry that takes no blob in one request: the blob goes in chunks.
        s("push-413-one-request", Push, vec![rule("PUT", UPLOAD, Fault::Status(413, None), 1)], &[], Completes),
        s("push-405-one-request", Push, vec![rule("PUT", UPLOAD, Fault::Status(405, None), 1)], &[], Completes),
        s("push-502-head", Push, vec![rule("HEAD", BLOB, Fault::Status(502, None), 2)], &[], Completes),
        s("push-500-manifest", Push, vec![rule("PUT", MANIFEST, Fault::Status(500, None), 1)], &[], Completes),
        s(
            "push-429-retry-after",
            Push,
            vec![rule("POST", UPLOAD, Fault::Status(429, Some(1)), 1)],
            &[],
            Completes,
        ),
        s(
            "push-stalled-upload",
            Push,
            vec![rule("PUT", UPLOAD, Fault::StallRequest, 0)],
            &[("IMAGO_REGISTRY_STALL_TIMEOUT", "1"), ("IMAGO_REGISTRY_ANSWER_TIMEOUT", "2")],
            Fails("while uploading blob sha256:"),
        ),
    ]
}

/// One of our programs as `env`'s user, bounded by `timeout -s KILL` (a hang fails
/// the run instead of the whole test).
pub(crate) fn timed(env: &Env, program: &str) -> imago_it::Cmd {
    let mut c = env
        .cmd_path("timeout")
        .args(["-s", "KILL", "120"])
        .arg(imago_it::bin(program))
        .env("XDG_CONFIG_HOME", env.home().join(".config"));
    c.command().env_remove("XDG_RUNTIME_DIR");
    c
}

/// Blobs in the store at `root` that do not hash to their name.
fn bad_blobs(root: &Path) -> Vec<String> {
    let dir = root.join("blobs/sha256");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    if files.is_empty() {
        return Vec::new();
    }
    let out = Command::new("sha256sum").args(&files).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (sum, path) = l.split_once("  ")?;
            let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
            (name != sum).then(|| path.to_owned())
        })
        .collect()
}

/// Whether the outcome is what the scenario expects.
fn as_expected(out: &Out, expect: Expect) -> bool {
    match expect {
        Expect::Completes => out.code() == Some(0),
        Expect::Fails(needle) => {
            out.code() == Some(125)
                && out.stderr().contains("error:")
                && out.stderr().contains(needle)
        }
    }
}

/// Counts of one scenario across users and runs.
#[derive(Default)]
struct Tally {
    runs: usize,
    failures: usize,
    lost: usize,
    notes: Vec<String>,
}

/// Run every scenario for `user` behind its own proxy; the tallies by scenario.
fn campaign_for(user: User, reg: &Registry, runs: usize) -> Vec<(&'static str, Tally)> {
    let proxy = FaultProxy::start(&reg.addr);
    let pusher = Env::new(user);
    busybox_into_store(&pusher, "busybox");
    let mut tallies = Vec::new();
    for sc in scenarios(&proxy) {
        let mut t = Tally::default();
        for run in 0..runs {
            t.runs += 1;
            proxy.set_rules(sc.rules.clone());
            let env = Env::new(user);
            let (out, lost) = match sc.op {
                Op::Pull => {
                    let mut c = timed(&env, "ipull")
                        .arg(format!("{}/me/busybox{}", proxy.addr, sc.reference));
                    for (k, v) in sc.env {
                        c = c.env(k, v);
                    }
                    let out = c.run();
                    let mut lost = bad_blobs(&env.root());
                    if env.root().exists() {
                        let fsck = timed(&env, "iimage").arg("fsck").run();
                        if fsck.code() != Some(0) {
                            lost.push(format!("fsck: {fsck}"));
                        }
                    }
                    (out, lost)
                }
                Op::Push => {
                    let repo = format!("{}/f-{}-{run}:1", user.name(), sc.name);
                    let mut c = timed(&pusher, "ipush").args([
                        "--no-mount",
                        "busybox",
                        &format!("{}/{repo}", proxy.addr),
                    ]);
                    for (k, v) in sc.env {
                        c = c.env(k, v);
                    }
                    let out = c.run();
                    let mut lost = Vec::new();
                    if out.code() == Some(0) {
                        // What the registry holds must pull back and verify.
                        let back = timed(&env, "ipull")
                            .arg(format!("{}/{repo}", reg.addr))
                            .run();
                        if back.code() != Some(0) {
                            lost.push(format!("pushed image does not pull back: {back}"));
                        }
                        lost.extend(bad_blobs(&env.root()));
                    }
                    (out, lost)
                }
            };
            let applied = proxy.applied.lock().unwrap().len();
            if !sc.rules.is_empty() && applied == 0 {
                t.failures += 1;
                t.notes.push(format!(
                    "[{}] {} run {run}: the fault was never applied:\n{out}",
                    user.name(),
                    sc.name
                ));
            }
            if run == 0 {
                let said = out
                    .stderr()
                    .lines()
                    .find(|l| l.starts_with("error:"))
                    .unwrap_or("")
                    .to_owned();
                eprintln!(
                    "[{}] {}: exit {:?} {said}",
                    user.name(),
                    sc.name,
                    out.code()
                );
            }
            if !as_expected(&out, sc.expect) {
                t.failures += 1;
                t.notes.push(format!(
                    "[{}] {} run {run}: unexpected outcome; faults applied {:?}:\n{out}",
                    user.name(),
                    sc.name,
                    proxy.applied.lock().unwrap()
                ));
            }
            if !lost.is_empty() {
                t.lost += 1;
                t.notes.push(format!(
                    "[{}] {} run {run}: bad data: {lost:?}",
                    user.name(),
                    sc.name
                ));
            }
        }
        tallies.push((sc.name, t));
    }
    tallies
}

/// Every fault scenario, every user: completes or fails clearly, nothing bad stored.
#[test]
fn registry_faults_complete_or_fail_clearly_and_never_store_a_bad_blob() {
    if !tools_present() {
        return;
    }
    let runs = campaign_runs();
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    let root = Env::new(User::Root);
    busybox_into_store(&root, "busybox");
    timed(&root, "ipush")
        .args(["busybox", &format!("{}/me/busybox:1", reg.addr)])
        .ok();
    let per_user: Vec<Vec<(&'static str, Tally)>> = std::thread::scope(|s| {
        let hs: Vec<_> = users()
            .into_iter()
            .map(|u| {
                let reg = &reg;
                s.spawn(move || campaign_for(u, reg, runs))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut notes = Vec::new();
    let names: Vec<&str> = per_user[0].iter().map(|(n, _)| *n).collect();
    for (i, name) in names.iter().enumerate() {
        let (mut r, mut f, mut l) = (0, 0, 0);
        for tallies in &per_user {
            let t = &tallies[i].1;
            r += t.runs;
            f += t.failures;
            l += t.lost;
            notes.extend(t.notes.iter().cloned());
        }
        eprintln!("CAMPAIGN scenario={name} runs={r} failures={f} lost={l}");
    }
    assert!(notes.is_empty(), "{}", notes.join("\n\n"));
}

/// A registry with Basic auth redirects blob downloads to a second host (a CDN: an
/// open registry holding the same image): the pull completes, the registry got the
/// credentials, the other host never did.
#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    if !tools_present() {
        return;
    }
    let runs = campaign_runs();
    let base = Scratch::new(User::Root);
    let (user_name, password) = ("imago", "s3cret-pw");
    let auth_reg = Registry::start(
        &base.path().join("auth-reg"),
        Auth::Htpasswd {
            user: user_name.into(),
            password: password.into(),
        },
        None,
    );
    let cdn_reg = Registry::start(&base.path().join("cdn-reg"), Auth::None, None);
    let root = Env::new(User::Root);
    busybox_into_store(&root, "busybox");
    timed(&root, "ipush")
        .args(["busybox", &format!("{}/me/busybox:1", cdn_reg.addr)])
        .ok();
    timed(&root, "ipush")
        .args(["--creds", &format!("{user_name}:{password}")])
        .args(["busybox", &format!("{}/me/busybox:1", auth_reg.addr)])
        .ok();
    let cdn = FaultProxy::start(&cdn_reg.addr);
    let front = FaultProxy::start(&auth_reg.addr);
    let (mut n, mut lost, mut failures) = (0, 0, Vec::new());
    for user in users() {
        for _ in 0..runs {
            n += 1;
            front.set_rules(vec![rule(
                "GET",
                BLOB,
                Fault::RedirectTo(cdn.addr.clone()),
                0,
            )]);
            cdn.heads.lock().unwrap().clear();
            front.heads.lock().unwrap().clear();
            let env = Env::new(user);
            let out = timed(&env, "ipull")
                .args(["--creds", &format!("{user_name}:{password}")])
                .arg(format!("{}/me/busybox:1", front.addr))
                .run();
            let has_auth = |heads: &[SeenHead]| {
                heads
                    .iter()
                    .filter(|(_, _, h)| {
                        h.iter()
                            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    })
                    .count()
            };
            let cdn_heads = cdn.heads.lock().unwrap().clone();
            let front_heads = front.heads.lock().unwrap().clone();
            let blob_gets = cdn_heads
                .iter()
                .filter(|(m, p, _)| m == "GET" && p.contains(BLOB))
                .count();
            let bad = bad_blobs(&env.root());
            if !bad.is_empty() {
                lost += 1;
                failures.push(format!("[{}] bad blobs stored: {bad:?}", user.name()));
            }
            if out.code() != Some(0)
                || blob_gets == 0
                || has_auth(&cdn_heads) > 0
                || has_auth(&front_heads) == 0
            {
                failures.push(format!(
                    "[{}] blob GETs at the other host {blob_gets}, with credentials there {}, at the registry {}:\n{out}",
                    user.name(),
                    has_auth(&cdn_heads),
                    has_auth(&front_heads)
                ));
            }
        }
    }
    eprintln!(
        "CAMPAIGN scenario=pull-redirect-other-host-no-credentials runs={n} failures={} lost={lost}",
        failures.len() - lost
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
