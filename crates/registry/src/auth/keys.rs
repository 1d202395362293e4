//! The keys of credential files. podman's auth.json may scope credentials to a
//! namespace or repository (`quay.io/org`, `quay.io/org/app`); docker's config.json knows
//! registries only (`https://index.docker.io/v1/`, `myreg:5000`). Docker Hub's spellings
//! (`index.docker.io`, `registry-1.docker.io`, `registry.hub.docker.com`, docker's
//! `https://index.docker.io/v1/`) are all `docker.io`.
//!
//! Never: reads files (creds.rs does).

use imago_oci::reference::{DEFAULT_REGISTRY, DOCKER_HUB_ENDPOINT};

/// A key without its scheme and trailing `/`, Docker Hub's spellings made `docker.io`:
/// `https://quay.io/org/` → `quay.io/org`; docker's `https://index.docker.io/v1/` →
/// `docker.io`.
pub fn scoped_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k)
        .trim_end_matches('/');
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = match host {
        "index.docker.io" | DOCKER_HUB_ENDPOINT | "registry.hub.docker.com" => DEFAULT_REGISTRY,
        other => other,
    };
    // docker's API-version suffixes name the registry, not a namespace in it.
    match path {
        "" | "v1" | "v2" => host.to_owned(),
        p => format!("{host}/{p}"),
    }
}

/// The registry of a key: what docker's config.json keys mean, and the name a user's
/// `REGISTRY` argument stands for.
pub fn normalize_key(key: &str) -> String {
    let scoped = scoped_key(key);
    match scoped.split_once('/') {
        Some((host, _)) => host.to_owned(),
        None => scoped,
    }
}

/// The keys that may hold credentials for `repository` (without its registry, e.g.
/// `org/app`) in `registry`, most specific first: `quay.io/org/app`, `quay.io/org`,
/// `quay.io` (containers-image's order).
pub fn candidates(registry: &str, repository: Option<&str>) -> Vec<String> {
    let registry = normalize_key(registry);
    let mut keys = Vec::new();
    if let Some(repo) = repository.filter(|r| !r.is_empty()) {
        let mut scope = format!("{registry}/{}", repo.trim_matches('/'));
        loop {
            keys.push(scope.clone());
            match scope.rsplit_once('/') {
                Some((parent, _)) if parent != registry => scope = parent.to_owned(),
                _ => break,
            }
        }
    }
    keys.push(registry);
    keys
}

/// The server name a credential helper is given for `key`: docker's legacy URL for
/// Docker Hub, else the key.
pub fn helper_server(key: &str) -> String {
    match scoped_key(key) {
        k if k == DEFAULT_REGISTRY => "https://index.docker.io/v1/".to_owned(),
        k => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_spellings_match() {
        for k in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ] {
            assert_eq!(normalize_key(k), "docker.io", "{k}");
            assert_eq!(scoped_key(k), "docker.io", "{k}");
        }
        assert_eq!(normalize_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(
            helper_server("index.docker.io"),
            "https://index.docker.io/v1/"
        );
    }

    #[test]
    fn scoped_keys_keep_their_namespace() {
        assert_eq!(scoped_key("https://quay.io/org/"), "quay.io/org");
        assert_eq!(normalize_key("quay.io/org/app"), "quay.io");
        assert_eq!(
            candidates("quay.io", Some("org/team/app")),
            [
                "quay.io/org/team/app",
                "quay.io/org/team",
                "quay.io/org",
                "quay.io"
            ]
        );
        assert_eq!(candidates("docker.io", None), ["docker.io"]);
        assert_eq!(
            candidates("index.docker.io", Some("library/busybox")),
            [
                "docker.io/library/busybox",
                "docker.io/library",
                "docker.io"
            ]
        );
    }
}
