//! `irun --platform` picks its image from a multi-platform index in a real registry, and
//! pulls again when the store's image is another platform's; `irun` and the store
//! look-up of a short name go through registries.conf (aliases, the search list), and
//! `short-name-mode = "enforcing"` refuses an ambiguous name without a terminal. As each
//! of `users()`.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{users, Env, Scratch, User};
use imago_oci::Digest;

use crate::registry_support::{busybox_into_store, Auth, Registry};

/// The OCI platform name of this machine's architecture, and another one.
pub(crate) fn host_and_other() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "amd64"),
        "x86_64" => ("amd64", "arm64"),
        other => panic!("no OCI name for {other} in this test"),
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Write `bytes` as a blob of the store; its digest.
fn put_blob(env: &Env, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    env.write(&format!("store/blobs/sha256/{}", d.hex()), bytes);
    d
}

/// Make `multi` in `env`'s store: an index of busybox (the host's platform) and a copy
/// whose config says `other` (same layer: it would even run, but it is never run as
/// that). Returns the two config digests (host, other).
pub(crate) fn make_index(env: &Env, other: &str) -> (String, String) {
    let (host, _) = host_and_other();
    let index_path = env.root().join("index.json");
    let mut index = json(&std::fs::read_to_string(&index_path).unwrap());
    let entry = (index["manifests"].as_array().unwrap().iter())
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "busybox")
        .unwrap()
        .clone();
    let blob = |d: &serde_json::Value| {
        let hex = d.as_str().unwrap().trim_start_matches("sha256:").to_owned();
        std::fs::read(env.root().join("blobs/sha256").join(hex)).unwrap()
    };
    let mut manifest = json(&String::from_utf8(blob(&entry["digest"])).unwrap());
    let host_config = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let mut config = json(&String::from_utf8(blob(&manifest["config"]["digest"])).unwrap());
    config["architecture"] = other.into();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let other_config = put_blob(env, &config_bytes);
    manifest["config"]["digest"] = other_config.to_string().into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let other_manifest = put_blob(env, &manifest_bytes);
    let child = |digest: serde_json::Value, size: serde_json::Value, arch: &str| {
        serde_json::json!({"mediaType": entry["mediaType"], "digest": digest, "size": size,
                           "platform": {"os": "linux", "architecture": arch}})
    };
    let multi = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [child(entry["digest"].clone(), entry["size"].clone(), host),
                      child(other_manifest.to_string().into(), manifest_bytes.len().into(), other)]});
    let bytes = serde_json::to_vec(&multi).unwrap();
    let d = put_blob(env, &bytes);
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": d.to_string(),
        "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
    env.write("store/index.json", serde_json::to_vec(&index).unwrap());
    (host_config, other_config.to_string())
}

/// `iimage inspect`'s Id and Architecture of `name` in store `root`.
pub(crate) fn id_and_arch(env: &Env, root: &str, name: &str) -> (String, String) {
    let out = (env.cmd("iimage").env("IMAGO_ROOT", env.path(root)))
        .args(["inspect", name])
        .ok();
    let v = json(&out.stdout());
    let s = |k: &str| v[0][k].as_str().unwrap_or_default().to_owned();
    (s("Id"), s("Architecture"))
}

#[test]
fn platform_picks_from_an_index_and_pulls_another_platform_again() {
    let (host, other) = host_and_other();
    let base = Scratch::new(User::Root);
    let reg = Registry::start_logged(&base.path().join("reg"));
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let (host_config, other_config) = make_index(&env, other);
        let remote = format!("{}/{who}/multi:1", reg.addr);
        env.cmd("ipush").args(["multi", &remote]).ok();
        let irun = |args: &[&str]| {
            (env.cmd("irun").env("IMAGO_ROOT", env.path("s1")))
                .args(["--rm"])
                .args(args)
                .run()
        };
        // An empty store: the index's `other` entry is pulled (and, its layer being
        // busybox's, runs here).
        let run = irun(&["--platform", &format!("linux/{other}"), &remote, "true"]).code_is(0);
        let (id, arch) = id_and_arch(&env, "s1", &remote);
        assert_eq!(
            (id.as_str(), arch.as_str()),
            (other_config.as_str(), other),
            "[{who}] {run}"
        );
        // The store has it as `other`: --pull never with the host's platform says so.
        irun(&[
            "--pull",
            "never",
            "--platform",
            &format!("linux/{host}"),
            &remote,
            "true",
        ])
        .code_is(125)
        .fails_with("--pull never");
        // ... and --pull missing pulls the host's, saying why.
        let run = irun(&["--platform", &format!("linux/{host}"), &remote, "true"]).code_is(0);
        assert!(
            run.stderr().contains(&format!("is linux/{other}")),
            "[{who}] {run}"
        );
        let (id, arch) = id_and_arch(&env, "s1", &remote);
        assert_eq!(
            (id.as_str(), arch.as_str()),
            (host_config.as_str(), host),
            "[{who}]"
        );
        // A platform the index lacks: the pull fails and names what it has.
        irun(&["--platform", "linux/s390x", &remote, "true"])
            .code_is(125)
            .fails_with(&format!("linux/{other}"));
    }
}

/// busybox (put in `env`'s store) pushed to `reg` as `WHO/tool:1`, and a
/// registries.conf whose search list is a registry that refuses connections, then
/// `reg`, with the alias `mytool` for `reg`'s `WHO/tool`.
pub(crate) fn tool_behind_search_list(env: &Env, reg: &Registry) -> std::path::PathBuf {
    let who = env.user.name();
    busybox_into_store(env, "busybox");
    let tool = format!("{}/{who}/tool:1", reg.addr);
    env.cmd("ipush").args(["busybox", &tool]).ok();
    env.write(
        "search.conf",
        format!(
            "unqualified-search-registries = [\"127.0.0.1:1\", \"{}\"]\n\
             [aliases]\n\"mytool\" = \"{}/{who}/tool\"\n",
            reg.addr, reg.addr
        ),
    )
}

/// A registries.conf with `short-name-mode = "enforcing"` and two search registries
/// (one refusing connections, then `reg`).
pub(crate) fn enforcing_conf(env: &Env, reg: &Registry) -> std::path::PathBuf {
    env.write(
        "enforcing.conf",
        format!(
            "short-name-mode = \"enforcing\"\n\
             unqualified-search-registries = [\"127.0.0.1:1\", \"{}\"]\n",
            reg.addr
        ),
    )
}

#[test]
fn short_names_run_and_are_found_in_the_store() {
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        let conf = tool_behind_search_list(&env, &reg);
        let irun = |root: &str, args: &[&str]| {
            (env.cmd("irun").env("CONTAINERS_REGISTRIES_CONF", &conf))
                .env("IMAGO_ROOT", env.path(root))
                .args(["--rm"])
                .args(args)
                .run()
        };
        // The search list: the first registry refuses, the second serves; the store
        // then finds the short name without a registry (--pull never).
        let short = format!("{who}/tool:1");
        let run = irun("s1", &[&short, "echo", "ran"]).code_is(0);
        assert_eq!(run.stdout(), "ran\n", "[{who}] {run}");
        let run = irun("s1", &["--pull", "never", &short, "echo", "again"]).code_is(0);
        assert_eq!(run.stdout(), "again\n", "[{who}] {run}");
        // An alias, pulled by ipull then found by irun.
        (env.cmd("ipull").env("CONTAINERS_REGISTRIES_CONF", &conf))
            .env("IMAGO_ROOT", env.path("s2"))
            .arg("mytool:1")
            .ok();
        let run = irun("s2", &["--pull", "never", "mytool:1", "echo", "alias"]).code_is(0);
        assert_eq!(run.stdout(), "alias\n", "[{who}] {run}");
        // Without registries.conf's help the store does not know `tool:1`.
        (env.cmd("irun")
            .env("CONTAINERS_REGISTRIES_CONF", env.write("empty.conf", "")))
        .env("IMAGO_ROOT", env.path("s1"))
        .args(["--rm", "--pull", "never", &short, "true"])
        .run()
        .code_is(125);
        // enforcing, two search registries and no terminal: refused, both named.
        let enforcing = enforcing_conf(&env, &reg);
        let out = (env
            .cmd("ipull")
            .env("CONTAINERS_REGISTRIES_CONF", &enforcing))
        .env("IMAGO_ROOT", env.path("s3"))
        .arg(&short)
        .run();
        out.code_is(125)
            .fails_with(&format!("127.0.0.1:1/{short}, {}/{short}", reg.addr));
        (env.cmd("irun")
            .env("CONTAINERS_REGISTRIES_CONF", &enforcing))
        .env("IMAGO_ROOT", env.path("s3"))
        .args(["--rm", &short, "true"])
        .run()
        .code_is(125)
        .fails_with("short-name-mode is enforcing");
    }
}
