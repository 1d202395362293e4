//! How `ipush` sends a blob: one `PUT` with the whole blob up to 128 MiB (a 40 MiB random
//! layer through a recording proxy in front of a real docker-registry: no `PATCH`, and
//! the image pulls back from the registry itself), and, when the registry refuses that
//! single request (413, or 405 as "not supported"), the same blob in chunks from a new
//! session; a registry that refuses every chunk too ends the push after a bounded number
//! of smaller tries, naming the 413. A registry that answers 413 before it reads the body
//! and closes the connection (nginx's `client_max_body_size`) is met the same way: the
//! 413 is seen, not a broken connection. A registry that answers the `Expect:
//! 100-continue` of such a retry with 417 gets the body unasked. Every program runs as
//! each of `users()`.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use imago_it::{users, Env, Scratch, User};

use crate::registry_faults::timed;
use crate::registry_resume::big_image_in_store;
use crate::registry_support::{busybox_into_store, have, Auth, Fault, FaultProxy, Registry, Rule};

const UPLOAD: &str = "/blobs/uploads/";

fn tools_present() -> bool {
    for t in ["docker-registry", "skopeo", "timeout", "tar"] {
        if !have(t) {
            imago_it::skip(&format!(
                "`{t}` is not installed (apt-get install docker-registry skopeo coreutils tar)"
            ));
            return false;
        }
    }
    true
}

/// The requests the proxy saw since the last call, "METHOD target" each.
fn take_seen(proxy: &FaultProxy) -> Vec<String> {
    std::mem::take(&mut *proxy.seen.lock().unwrap())
}

/// Pull `reference` straight from the registry into a new store of `env`'s; that
/// store's largest blob size.
fn pull_back(env: &Env, reference: &str, store: &str) -> u64 {
    let root = env.path(store);
    timed(env, "ipull")
        .env("IMAGO_ROOT", &root)
        .arg(reference)
        .ok();
    std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap()
}

/// A registry and a recording (for now, fault-free) proxy in front of it; `None` (a
/// SKIP) when a tool is missing.
fn registry_behind_proxy() -> Option<(Scratch, Registry, FaultProxy)> {
    if !tools_present() {
        return None;
    }
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    let proxy = FaultProxy::start(&reg.addr);
    Some((base, reg, proxy))
}

#[test]
fn a_40_mib_layer_goes_in_one_put() {
    let Some((_base, reg, proxy)) = registry_behind_proxy() else {
        return;
    };
    for user in users() {
        let env = Env::new(user);
        big_image_in_store(&env, 40);
        take_seen(&proxy);
        let repo = format!("{}/one-put:1", user.name());
        timed(&env, "ipush")
            .args(["--no-mount", "big", &format!("{}/{repo}", proxy.addr)])
            .ok();
        let seen = take_seen(&proxy);
        let patches: Vec<_> = seen.iter().filter(|s| s.starts_with("PATCH ")).collect();
        let puts: Vec<_> = seen
            .iter()
            .filter(|s| s.starts_with("PUT ") && s.contains(UPLOAD) && s.contains("digest="))
            .collect();
        assert!(
            patches.is_empty() && puts.len() == 2,
            "[{}] config and layer each in one PUT, no PATCH: {seen:#?}",
            user.name()
        );
        let largest = pull_back(&env, &format!("{}/{repo}", reg.addr), "back");
        assert!(
            largest > 32 << 20,
            "[{}] the layer pulled back has {largest} bytes",
            user.name()
        );
    }
}

#[test]
fn a_refused_single_put_goes_on_in_chunks() {
    let Some((_base, reg, proxy)) = registry_behind_proxy() else {
        return;
    };
    let refuse = |method, status, times| Rule {
        method,
        path_contains: UPLOAD,
        fault: Fault::Status(status, None),
        times,
    };
    for user in users() {
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        // One job: the layer (largest first) meets the refusal.
        let push = |repo: &str| {
            timed(&env, "ipush").args([
                "--no-mount",
                "--jobs",
                "1",
                "busybox",
                &format!("{}/{repo}", proxy.addr),
            ])
        };
        for status in [413, 405] {
            proxy.set_rules(vec![refuse("PUT", status, 1)]);
            take_seen(&proxy);
            let repo = format!("{}/refused-{status}:1", user.name());
            let out = push(&repo).ok();
            let seen = take_seen(&proxy);
            assert_eq!(
                proxy.applied.lock().unwrap().len(),
                1,
                "[{}] {status}: {seen:#?}",
                user.name()
            );
            assert!(
                out.stderr()
                    .contains("the registry refused the blob in one request"),
                "[{}] {status}: {out}",
                user.name()
            );
            let refused = seen.iter().position(|s| s.starts_with("PUT ")).unwrap();
            assert!(
                seen[refused..].iter().any(|s| s.starts_with("PATCH ")),
                "[{}] {status}: chunks after the refused PUT: {seen:#?}",
                user.name()
            );
            pull_back(
                &env,
                &format!("{}/{repo}", reg.addr),
                &format!("back-{status}"),
            );
        }

        // Every chunk refused too: smaller chunks a bounded number of times, then an
        // error naming the status.
        proxy.set_rules(vec![refuse("PUT", 413, 1), refuse("PATCH", 413, 0)]);
        take_seen(&proxy);
        let out = push(&format!("{}/refused-always:1", user.name())).run();
        let patches = take_seen(&proxy)
            .iter()
            .filter(|s| s.starts_with("PATCH "))
            .count();
        assert!(
            out.code() == Some(125) && out.stderr().contains("413"),
            "[{}] {out}",
            user.name()
        );
        assert!(
            (2..=9).contains(&patches),
            "[{}] {patches} PATCHes before giving up",
            user.name()
        );
    }
}

/// A registry that refuses bodies over a limit with 413 before reading them, and resets
/// the connection: the blob goes on in chunks under the limit when there are such
/// chunks, and the push ends naming the 413 when there are none. Never a hang, never a
/// broken-connection error in place of the 413, never success for a blob not stored.
#[test]
fn a_413_sent_before_the_body_is_read_is_seen_as_a_413() {
    let Some((_base, reg, proxy)) = registry_behind_proxy() else {
        return;
    };
    let limit = |bytes| {
        ["PUT", "PATCH"]
            .into_iter()
            .map(|method| Rule {
                method,
                path_contains: UPLOAD,
                fault: Fault::TooLarge(bytes),
                times: 0,
            })
            .collect::<Vec<_>>()
    };
    for user in users() {
        let env = Env::new(user);
        big_image_in_store(&env, 40);
        let push = |repo: &str| {
            timed(&env, "ipush").args(["--no-mount", "big", &format!("{}/{repo}", proxy.addr)])
        };

        // 8 MiB: the 4 MiB chunks after the refused PUT get through.
        proxy.set_rules(limit(8 << 20));
        take_seen(&proxy);
        let repo = format!("{}/early-refusal:1", user.name());
        let out = push(&repo).run();
        let seen = take_seen(&proxy);
        assert!(
            out.code() == Some(0)
                && out
                    .stderr()
                    .contains("the registry refused the blob in one request (PUT http://")
                && out.stderr().contains(": registry answered 413)"),
            "[{}] {out}\n{seen:#?}",
            user.name()
        );
        assert!(
            seen.iter().any(|s| s.starts_with("PATCH ")),
            "[{}] chunks after the refused PUT: {seen:#?}",
            user.name()
        );
        let largest = pull_back(&env, &format!("{}/{repo}", reg.addr), "back-early");
        assert!(
            largest > 32 << 20,
            "[{}] the layer pulled back has {largest} bytes",
            user.name()
        );

        // 1 KiB: the config gets through, no chunk of the layer does.
        proxy.set_rules(limit(1 << 10));
        let out = push(&format!("{}/early-refusal-always:1", user.name())).run();
        let seen = take_seen(&proxy);
        let patches = seen.iter().filter(|s| s.starts_with("PATCH ")).count();
        let error = out
            .stderr()
            .lines()
            .find(|l| l.starts_with("error: "))
            .map(str::to_owned);
        assert!(
            out.code() == Some(125)
                && error.is_some_and(|e| e.starts_with("error: PATCH http://")
                    && e.ends_with(": registry answered 413")),
            "[{}] {out}\n{seen:#?}",
            user.name()
        );
        assert!(
            !seen
                .iter()
                .any(|s| s.contains("/manifests/") && s.starts_with("PUT ")),
            "[{}] no manifest names the blob the registry does not have: {seen:#?}",
            user.name()
        );
        assert!(
            (2..=20).contains(&patches),
            "[{}] {patches} PATCHes before giving up",
            user.name()
        );
    }
}

/// A registry that breaks the connection once while a blob goes out, and answers 417 to
/// every `Expect: 100-continue` (a server that does not take `Expect`): the retry that
/// asks first meets the 417, the next try sends the body unasked, and the push ends with
/// the image in the registry, in single PUTs.
#[test]
fn a_417_to_an_expect_sends_the_body_unasked() {
    let Some((_base, reg, proxy)) = registry_behind_proxy() else {
        return;
    };
    let put = |fault, times| Rule {
        method: "PUT",
        path_contains: UPLOAD,
        fault,
        times,
    };
    for user in users() {
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        proxy.set_rules(vec![
            put(Fault::DropRequest, 1),
            put(Fault::RefuseExpect, 0),
        ]);
        take_seen(&proxy);
        proxy.heads.lock().unwrap().clear();
        let repo = format!("{}/expect-refused:1", user.name());
        let out = timed(&env, "ipush")
            .args([
                "--no-mount",
                "--jobs",
                "1",
                "busybox",
                &format!("{}/{repo}", proxy.addr),
            ])
            .run();
        let seen = take_seen(&proxy);
        let applied = proxy.applied.lock().unwrap().clone();
        assert!(
            out.code() == Some(0),
            "[{}] {out}\n{applied:#?}\n{seen:#?}",
            user.name()
        );
        assert!(
            applied.len() == 2
                && applied[0].ends_with("-> DropRequest")
                && applied[1].ends_with("-> RefuseExpect"),
            "[{}] one broken connection, then one 417: {applied:#?}",
            user.name()
        );
        // Per blob PUT: did it ask first? The broken one did not, its retry did (the
        // 417), the try after that did not; the other blob went in one plain PUT.
        let asked: Vec<bool> = proxy
            .heads
            .lock()
            .unwrap()
            .iter()
            .filter(|(method, target, _)| method == "PUT" && target.contains(UPLOAD))
            .map(|(_, _, headers)| {
                headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("expect") && v == "100-continue")
            })
            .collect();
        assert_eq!(
            asked,
            [false, true, false, false],
            "[{}] {seen:#?}",
            user.name()
        );
        assert!(
            !seen.iter().any(|s| s.starts_with("PATCH ")),
            "[{}] no chunks: {seen:#?}",
            user.name()
        );
        pull_back(&env, &format!("{}/{repo}", reg.addr), "back-expect");
    }
}
