//! ipush / ipull / ilogin against real docker-registry processes: htpasswd and
//! token auth (Docker Hub flow), HEAD skips and cross-repository mounts, skopeo and
//! podman cross-checks, zstd and docker-format pushes, a fault-injecting proxy, a
//! corrupted blob, TLS with certs.d. Every test runs ipush/ipull as each of `users()`,
//! with the store and the credentials file in that user's own root and HOME.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use imago_it::{users, Env, Scratch, User};

use crate::registry_support::{
    busybox_into_store, have, make_cert, Auth, Fault, FaultProxy, Registry, Rule, TokenServer,
};

/// The tools these tests need; prints a loud SKIP and returns false when one is missing.
fn tools_present(extra: &[&str]) -> bool {
    for t in ["docker-registry", "skopeo"].iter().chain(extra) {
        if !have(t) {
            imago_it::skip(&format!("`{t}` is not installed (apt-get install docker-registry skopeo apache2-utils openssl)"));
            return false;
        }
    }
    true
}

/// One of our programs as `env`'s user, with XDG_CONFIG_HOME pinned to the scratch home
/// too (credentials and certs.d must never reach the user's real home).
fn ic(env: &Env, program: &str) -> imago_it::Cmd {
    env.cmd(program)
        .env("XDG_CONFIG_HOME", env.home().join(".config"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn password_file(env: &Env, name: &str, password: &str) -> File {
    let p = env.write(name, format!("{password}\n"));
    File::open(p).expect("open password file")
}

/// The raw manifest of `reference` in the registry, via skopeo.
fn remote_manifest(env: &Env, reference: &str, creds: Option<&str>) -> serde_json::Value {
    let mut c = env
        .cmd_path("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(cr) = creds {
        c = c.args(["--creds", cr]);
    }
    json(&c.arg(format!("docker://{reference}")).ok().stdout())
}

/// The raw manifest of `name` in an OCI layout (the store), via skopeo. The store keeps
/// docker's short form of a name (no `:latest`).
fn store_manifest(env: &Env, root: &Path, name: &str) -> serde_json::Value {
    let name = name.strip_suffix(":latest").unwrap_or(name);
    json(
        &env.cmd_path("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{name}", root.display()))
            .ok()
            .stdout(),
    )
}

#[test]
fn htpasswd_login_push_head_skip_mount_pull_logout() {
    if !tools_present(&["htpasswd"]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let reg = Registry::start(
        &base.path().join("reg"),
        Auth::Htpasswd {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        None,
    );
    for user in users() {
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let repo = format!("{}/{}/busybox:1", reg.addr, user.name());

        ic(&env, "ipush")
            .args(["busybox", &repo])
            .run()
            .fails_with("ilogin");
        ic(&env, "ilogin")
            .args(["-u", "alice", "--password-stdin", &reg.addr])
            .stdin(password_file(&env, "bad", "wrong"))
            .run()
            .fails_with("refused");
        ic(&env, "ilogin")
            .args(["-u", "alice", "--password-stdin", &reg.addr])
            .stdin(password_file(&env, "pw", "s3cret"))
            .ok();
        let authfile = env.home().join(".config/containers/auth.json");
        let meta =
            std::fs::metadata(&authfile).expect("ilogin wrote ~/.config/containers/auth.json");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "auth file mode");
        assert!(
            json(&std::fs::read_to_string(&authfile).unwrap())["auths"][&reg.addr]["auth"]
                .is_string()
        );

        // docker's flow: `itag busybox REPO && ipush REPO` (DEST defaults to SRC).
        ic(&env, "itag").args(["busybox", &repo]).ok();
        let first = ic(&env, "ipush").arg(&repo).ok();
        let digest = first.stdout().trim().to_owned();
        assert!(first.stderr().contains("2 uploaded"), "{first}");
        let inspect = json(
            &env.cmd_path("skopeo")
                .args(["inspect", "--tls-verify=false", "--creds", "alice:s3cret"])
                .arg(format!("docker://{repo}"))
                .ok()
                .stdout(),
        );
        assert_eq!(
            inspect["Digest"],
            digest.as_str(),
            "skopeo sees the pushed manifest"
        );
        let manifest = remote_manifest(&env, &repo, Some("alice:s3cret"));
        let config = manifest["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_owned();

        let again = ic(&env, "ipush").args(["busybox", &repo]).ok();
        assert!(
            again
                .stderr()
                .contains("0 uploaded, 0 mounted, 2 already there"),
            "second push uploads nothing: {again}"
        );
        assert_eq!(again.stdout().trim(), digest);

        let other = format!("{}/{}/copy:2", reg.addr, user.name());
        let mounted = ic(&env, "ipush").args(["busybox", &other]).ok();
        assert!(
            mounted.stderr().contains("0 uploaded, 2 mounted"),
            "push to another repo mounts: {mounted}"
        );

        let store2 = env.path("store2");
        let pulled = ic(&env, "ipull").env("IMAGO_ROOT", &store2).arg(&repo).ok();
        assert_eq!(pulled.stdout().trim(), config, "ipull prints the image id");
        assert_eq!(
            store_manifest(&env, &store2, &repo)["config"]["digest"],
            config.as_str()
        );
        let again = ic(&env, "ipull").env("IMAGO_ROOT", &store2).arg(&repo).ok();
        assert!(
            again
                .stderr()
                .contains("0 blobs fetched, 2 already present"),
            "{again}"
        );

        if user == User::Root && have("podman") {
            let pr = base.path().join("podman");
            let out = env
                .cmd_path("podman")
                .arg("--root")
                .arg(pr.join("root"))
                .arg("--runroot")
                .arg(pr.join("run"))
                .args([
                    "--storage-driver",
                    "vfs",
                    "pull",
                    "-q",
                    "--tls-verify=false",
                    "--creds",
                    "alice:s3cret",
                ])
                .arg(format!("docker://{repo}"))
                .ok();
            assert!(
                config.ends_with(out.stdout().trim()),
                "podman pulled image id {} != {config}",
                out.stdout().trim()
            );
        }

        ic(&env, "ilogin").args(["--logout", &reg.addr]).ok();

        // A credential helper named by `credHelpers` (docker-credential-NAME get).
        let helper_dir = env.mkdir("helperbin");
        let helper = helper_dir.join("docker-credential-imagotest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread -r server\n[ \"$1\" = get ] || exit 1\n\
             printf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}' \"$server\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        env.give(&helper);
        let cfg = env.write(
            "helper-config.json",
            format!(r#"{{"credHelpers":{{"{}":"imagotest"}}}}"#, reg.addr),
        );
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("store4"))
            .env("REGISTRY_AUTH_FILE", &cfg)
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", helper_dir.display()),
            )
            .arg(&repo)
            .ok();

        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("store3"))
            .arg(&repo)
            .run()
            .fails_with("ilogin");
    }
}

#[test]
fn token_auth_docker_hub_flow_with_mount_scopes() {
    if !tools_present(&["openssl"]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let ts = TokenServer::start(&base.path().join("token"), "bob", "hunter2");
    let reg = Registry::start(&base.path().join("reg"), ts.auth(), None);
    let proxy = FaultProxy::start(&reg.addr);
    for user in users() {
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let ns = user.name();
        let repo = format!("{}/{ns}/app:1", reg.addr);

        ic(&env, "ipush")
            .args(["busybox", &repo])
            .run()
            .fails_with("ilogin");
        ic(&env, "ilogin")
            .args(["-u", "bob", "--password-stdin", &reg.addr])
            .stdin(password_file(&env, "bad", "nope"))
            .run()
            .fails_with("refused");
        ic(&env, "ilogin")
            .args(["-u", "bob", "--password-stdin", &reg.addr])
            .stdin(password_file(&env, "pw", "hunter2"))
            .ok();
        let out = ic(&env, "ipush").args(["busybox", &repo]).ok();
        assert!(out.stderr().contains("2 uploaded"), "{out}");

        ts.log.lock().unwrap().clear();
        let other = format!("{}/{ns}/copy:1", reg.addr);
        let out = ic(&env, "ipush").args(["busybox", &other]).ok();
        assert!(
            out.stderr().contains("2 mounted"),
            "token push mounts across repos: {out}"
        );
        let log = ts.log.lock().unwrap().clone();
        let union = log.iter().any(|(who, scopes)| {
            who == "bob"
                && scopes
                    .iter()
                    .any(|s| s == &format!("repository:{ns}/copy:pull,push"))
                && scopes
                    .iter()
                    .any(|s| s == &format!("repository:{ns}/app:pull"))
        });
        assert!(
            union,
            "a token for push + mount source was asked for with Basic credentials: {log:?}"
        );
        let first_push_scope = log
            .iter()
            .find(|(w, _)| w == "bob")
            .map(|(_, s)| s[0].clone());
        assert_eq!(
            first_push_scope.as_deref(),
            Some(format!("repository:{ns}/copy:pull,push").as_str()),
            "push scope first"
        );

        let store2 = env.path("store2");
        ic(&env, "ipull")
            .env("IMAGO_ROOT", &store2)
            .arg(&other)
            .ok();
        let m = store_manifest(&env, &store2, &other);
        assert_eq!(m["layers"].as_array().map(Vec::len), Some(1));

        // HTTPS_PROXY is used for the registry and the token realm alike; NO_PROXY skips it.
        let proxy_url = format!("http://{}", proxy.addr);
        let before = proxy.seen.lock().unwrap().len();
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("store4"))
            .env("HTTPS_PROXY", &proxy_url)
            .arg(&other)
            .ok();
        let seen = proxy.seen.lock().unwrap()[before..].to_vec();
        let token_host = ts
            .realm
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            seen.iter().any(|r| r == &format!("CONNECT {token_host}")),
            "the token request went through the proxy: {seen:?}"
        );
        assert!(
            seen.iter().any(|r| r == &format!("CONNECT {}", reg.addr)),
            "registry requests went through the proxy: {seen:?}"
        );
        let before = proxy.seen.lock().unwrap().len();
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("store5"))
            .env("HTTPS_PROXY", &proxy_url)
            .env("NO_PROXY", "127.0.0.1")
            .arg(&other)
            .ok();
        assert_eq!(
            proxy.seen.lock().unwrap().len(),
            before,
            "NO_PROXY bypasses the proxy"
        );

        ic(&env, "ilogin").args(["--logout", &reg.addr]).ok();
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("store3"))
            .arg(&other)
            .run()
            .fails_with("ilogin");
    }
}

#[test]
fn skopeo_copy_then_ipull_then_run() {
    if !tools_present(&[]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    let seed = Env::new(User::Root);
    busybox_into_store(&seed, "busybox");
    let remote = format!("{}/skopeo/busybox:latest", reg.addr);
    seed.cmd_path("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:busybox", seed.root().display()))
        .arg(format!("docker://{remote}"))
        .ok();
    let config = remote_manifest(&seed, &remote, None)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    for user in users() {
        let env = Env::new(user);
        let out = ic(&env, "ipull").args(["-q", &remote]).ok();
        assert_eq!(out.stdout().trim(), config);
        assert_eq!(
            store_manifest(&env, &env.root(), &remote)["config"]["digest"],
            config.as_str()
        );
        let run = ic(&env, "irun")
            .args(["--rm", &remote, "/bin/busybox", "echo", "pulled-and-ran"])
            .run();
        assert!(
            run.code() == Some(0) && run.stdout().contains("pulled-and-ran"),
            "irun of the pulled image as {}: {run}",
            user.name()
        );
    }
}

#[test]
fn zstd_and_docker_format_pushes_round_trip() {
    if !tools_present(&[]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    for user in users() {
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let z = format!("{}/{}/zstd:1", reg.addr, user.name());
        let out = ic(&env, "ipush")
            .args(["--compression", "zstd", "busybox", &z])
            .ok();
        assert!(out.stderr().contains("recompressing"), "{out}");
        let m = remote_manifest(&env, &z, None);
        assert_eq!(
            m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{m}"
        );
        let again = ic(&env, "ipush")
            .args(["--compression", "zstd", "busybox", &z])
            .ok();
        assert!(
            again.stderr().contains("0 uploaded"),
            "recompression is cached and the second push uploads nothing: {again}"
        );
        assert!(!again.stderr().contains("recompressing"), "{again}");

        let store2 = env.path("store2");
        ic(&env, "ipull").env("IMAGO_ROOT", &store2).arg(&z).ok();
        let back = store_manifest(&env, &store2, &z);
        assert_eq!(
            back["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        assert_eq!(back["layers"][0]["digest"], m["layers"][0]["digest"]);

        let d = format!("{}/{}/docker:1", reg.addr, user.name());
        ic(&env, "ipush")
            .args(["--format", "docker", "busybox", &d])
            .ok();
        let m = remote_manifest(&env, &d, None);
        assert_eq!(
            m["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.docker.container.image.v1+json"
        );
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        ic(&env, "ipush")
            .args(["--format", "docker", "--compression", "zstd", "busybox", &d])
            .run()
            .fails_with("zstd");
    }
}

#[test]
fn faults_are_retried_and_digests_verified() {
    if !tools_present(&[]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    let proxy = FaultProxy::start(&reg.addr);
    let rule = |method, path_contains, fault, times| Rule {
        method,
        path_contains,
        fault,
        times,
    };
    for user in users() {
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        let repo = format!("{}/{}/flaky:1", proxy.addr, user.name());
        proxy.set_rules(vec![
            rule("HEAD", "/blobs/", Fault::Status(429, Some(1)), 1),
            rule("POST", "/blobs/uploads/", Fault::Status(503, None), 1),
            rule("PATCH", "/blobs/uploads/", Fault::DropRequest, 1),
            rule("PATCH", "/blobs/uploads/", Fault::Status(413, None), 1),
            // A lost upload session on the closing PUT: a fresh session from the start.
            rule("PUT", "/blobs/uploads/", Fault::Status(404, None), 1),
            rule("PUT", "/manifests/", Fault::Status(500, None), 1),
        ]);
        // Small chunks force the PATCH path for the 1 MiB layer.
        let out = ic(&env, "ipush")
            .args(["--chunk-size", "262144", "busybox", &repo])
            .ok();
        let left = proxy.rules.lock().unwrap().len();
        assert_eq!(
            left,
            0,
            "every push fault was hit: {:?}\n{out}",
            proxy.applied.lock().unwrap()
        );
        let config = remote_manifest(&env, &format!("{}/{}/flaky:1", reg.addr, user.name()), None)
            ["config"]["digest"]
            .as_str()
            .unwrap()
            .to_owned();

        proxy.set_rules(vec![
            rule("GET", "/manifests/", Fault::Status(429, Some(1)), 1),
            rule("GET", "/blobs/", Fault::DropResponse(100), 2),
            rule("GET", "/blobs/", Fault::Status(500, None), 2),
        ]);
        let out = ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("store2"))
            .arg(&repo)
            .ok();
        assert_eq!(out.stdout().trim(), config, "{out}");
        assert_eq!(
            proxy.rules.lock().unwrap().len(),
            0,
            "every pull fault was hit: {:?}",
            proxy.applied.lock().unwrap()
        );
        assert_eq!(
            store_manifest(&env, &env.path("store2"), &repo)["config"]["digest"],
            config.as_str()
        );

        // An interrupted pull resumes from what the store committed: the layer fails for
        // good (404) after the config was stored (one job: config first), then a rerun
        // fetches the layer only.
        let layer = remote_manifest(&env, &format!("{}/{}/flaky:1", reg.addr, user.name()), None)
            ["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        let layer_path: &'static str = Box::leak(format!("/blobs/{layer}").into_boxed_str());
        proxy.set_rules(vec![rule("GET", layer_path, Fault::Status(404, None), 0)]);
        let store3 = env.path("store3");
        ic(&env, "ipull")
            .env("IMAGO_ROOT", &store3)
            .args(["--jobs", "1", &repo])
            .run()
            .fails_with(&layer);
        proxy.set_rules(Vec::new());
        let out = ic(&env, "ipull")
            .env("IMAGO_ROOT", &store3)
            .args(["--jobs", "1", &repo])
            .ok();
        assert!(
            out.stderr().contains("1 blobs fetched, 1 already present"),
            "the rerun resumes: {out}"
        );
    }
}

#[test]
fn corrupted_blob_fails_naming_the_digest_and_stores_nothing() {
    if !tools_present(&[]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    let seed = Env::new(User::Root);
    busybox_into_store(&seed, "busybox");
    let direct = format!("{}/bad/busybox:1", reg.addr);
    ic(&seed, "ipush").args(["-q", "busybox", &direct]).ok();
    let m = remote_manifest(&seed, &direct, None);
    let blobs = [
        m["config"]["digest"].as_str().unwrap().to_owned(),
        m["layers"][0]["digest"].as_str().unwrap().to_owned(),
    ];
    let proxy = FaultProxy::start(&reg.addr);
    proxy.set_rules(vec![Rule {
        method: "GET",
        path_contains: "/blobs/",
        fault: Fault::Corrupt,
        times: 0,
    }]);
    for user in users() {
        let env = Env::new(user);
        let store = env.path("store");
        let out = ic(&env, "ipull")
            .arg(format!("{}/bad/busybox:1", proxy.addr))
            .run()
            .fails_with("nothing was stored");
        assert!(
            blobs.iter().any(|b| out.stderr().contains(b.as_str())),
            "the error names the blob digest: {out}"
        );
        for b in &blobs {
            let hex = b.trim_start_matches("sha256:");
            assert!(
                !store.join("blobs/sha256").join(hex).exists(),
                "corrupt blob {b} must not be committed"
            );
        }
        if let Ok(index) = std::fs::read_to_string(store.join("index.json")) {
            assert_eq!(
                json(&index)["manifests"]
                    .as_array()
                    .map(Vec::len)
                    .unwrap_or(0),
                0,
                "no image was recorded: {index}"
            );
        }
    }
}

#[test]
fn tls_registry_needs_its_ca_from_certs_d_or_ssl_cert_file() {
    if !tools_present(&["openssl"]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let (cert, key) = make_cert(base.path(), "imago-test-registry");
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    let reg = Registry::start(&base.path().join("reg"), Auth::None, Some((&cert, &key)));
    let seed = Env::new(User::Root);
    busybox_into_store(&seed, "busybox");
    let remote = format!("{}/tls/busybox:1", reg.addr);
    ic(&seed, "ipush")
        .args(["-q", "--tls-verify=false", "busybox", &remote])
        .ok();
    ic(&seed, "ipush")
        .arg("--cert-dir")
        .arg(base.path())
        .args(["-q", "busybox", &remote])
        .ok();
    for user in users() {
        let env = Env::new(user);
        let ca = env.write("ca.crt", std::fs::read(&cert).unwrap());
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("s1"))
            .arg(&remote)
            .run()
            .fails_with("certs.d");
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("s2"))
            .env("SSL_CERT_FILE", &ca)
            .arg(&remote)
            .ok();
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("s3"))
            .args(["--tls-verify=false", &remote])
            .ok();
        let dir = env.mkdir(&format!("home/.config/containers/certs.d/{}", reg.addr));
        env.mkdir("home/.config");
        env.mkdir("home/.config/containers");
        env.mkdir("home/.config/containers/certs.d");
        let dst = dir.join("ca.crt");
        std::fs::copy(&ca, &dst).unwrap();
        env.give(&dst);
        let out = ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("s4"))
            .arg(&remote)
            .ok();
        assert!(out.stdout().starts_with("sha256:"), "{out}");
    }
}

#[test]
fn multi_platform_index_push_and_platform_choice_on_pull() {
    if !tools_present(&[]) {
        return;
    }
    let base = Scratch::new(User::Root);
    let reg = Registry::start(&base.path().join("reg"), Auth::None, None);
    for user in users() {
        let env = Env::new(user);
        busybox_into_store(&env, "busybox");
        // A second, different image for "arm64": a one-file layer.
        let d = env.mkdir("armroot");
        std::fs::write(d.join("arm64"), "arm64\n").unwrap();
        let tgz = env.path("arm.tar.gz");
        let st = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(&d)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        env.give(&tgz);
        env.cmd_path("skopeo")
            .args(["copy", "-q"])
            .arg(format!("tarball:{}", tgz.display()))
            .arg(format!("oci:{}:armimg", env.root().display()))
            .ok();
        // An OCI index over both, named `multi` in the store (an OCI layout).
        let index_path = env.root().join("index.json");
        let mut index = json(&std::fs::read_to_string(&index_path).unwrap());
        let entry = |name: &str| -> serde_json::Value {
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
                .unwrap_or_else(|| panic!("{name} in {index}"))
                .clone()
        };
        let (amd, arm) = (entry("busybox"), entry("armimg"));
        let child = |m: &serde_json::Value, arch: &str| {
            serde_json::json!({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                               "platform": {"os": "linux", "architecture": arch}})
        };
        let multi = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                       "manifests": [child(&amd, "amd64"), child(&arm, "arm64")]});
        let bytes = serde_json::to_vec(&multi).unwrap();
        let digest = imago_it_sha256(&env, &bytes);
        env.write(&format!("store/blobs/sha256/{digest}"), &bytes);
        index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": format!("sha256:{digest}"),
            "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
        env.write("store/index.json", serde_json::to_vec(&index).unwrap());

        let remote = format!("{}/{}/multi:1", reg.addr, user.name());
        let out = ic(&env, "ipush").args(["multi", &remote]).ok();
        assert_eq!(out.stdout().trim(), format!("sha256:{digest}"), "{out}");
        let m = remote_manifest(&env, &remote, None);
        assert_eq!(m["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(m["manifests"].as_array().map(Vec::len), Some(2));

        let config_of = |m: &serde_json::Value| -> String {
            let d = m["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_owned();
            let man =
                json(&std::fs::read_to_string(env.root().join("blobs/sha256").join(d)).unwrap());
            man["config"]["digest"].as_str().unwrap().to_owned()
        };
        let out = ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("s2"))
            .args(["--platform", "linux/arm64", &remote])
            .ok();
        assert_eq!(
            out.stdout().trim(),
            config_of(&arm),
            "--platform picks arm64"
        );
        if std::env::consts::ARCH == "x86_64" {
            let out = ic(&env, "ipull")
                .env("IMAGO_ROOT", env.path("s3"))
                .arg(&remote)
                .ok();
            assert_eq!(
                out.stdout().trim(),
                config_of(&amd),
                "the host platform by default"
            );
        }
        ic(&env, "ipull")
            .env("IMAGO_ROOT", env.path("s4"))
            .args(["--platform", "linux/s390x", &remote])
            .run()
            .fails_with("linux/arm64");
    }
}

/// sha256 hex of `bytes`, with coreutils (the test crate has no hashing dependency).
fn imago_it_sha256(env: &Env, bytes: &[u8]) -> String {
    let p = env.write("tohash", bytes);
    let out = std::process::Command::new("sha256sum")
        .arg(&p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
