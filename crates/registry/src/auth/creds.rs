//! Stored credentials, read in podman's order: `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json`
//! (`~/.config/containers/auth.json`), then docker's `$DOCKER_CONFIG/config.json`
//! (`~/.docker/config.json`). In each file a per-registry `credHelpers` entry wins, then
//! `auths` (in auth.json a key may be scoped to a namespace or repository, the most
//! specific applies: keys.rs), then the file's `credsStore`; the first file that knows
//! the registry decides. Helpers are docker's `docker-credential-NAME` (helper.rs).
//!
//! Writing (`ilogin`): the first of `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`
//! (a docker user who set it expects their login there), `$XDG_RUNTIME_DIR/containers/
//! auth.json`, `~/.config/containers/auth.json`, mode 0600, atomically (temp + rename),
//! keeping every other key of the file. When that file names a helper for the registry
//! (`credHelpers`, else `credsStore`) the secret goes to the helper and the file gets an
//! empty entry, as docker does. Missing directories are made 0700 whatever the umask; a
//! symlinked file is written through to its target (the link stays).
//!
//! Never: talks to a registry (ilogin checks credentials through client.rs).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::keys::{candidates, scoped_key};
use super::{base64, helper};

pub use super::keys::normalize_key;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64::encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// Failures reading or writing credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredError {
    #[error("read credentials file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file `{path}` is not valid JSON: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("write credentials file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper `{helper}` failed: {reason}")]
    Helper { helper: String, reason: String },
    #[error("`auth` entry for {registry} in `{path}` is not base64 `user:password`")]
    BadAuthEntry { registry: String, path: PathBuf },
    #[error("no place to store credentials: set HOME, XDG_RUNTIME_DIR or REGISTRY_AUTH_FILE")]
    NoAuthFile,
}

/// Where credentials are looked up and written; built from the environment or by hand.
#[derive(Debug, Clone, Default)]
pub struct AuthFiles {
    /// Files read in order (missing ones are skipped).
    pub read: Vec<PathBuf>,
    /// The file `ilogin` writes.
    pub write: Option<PathBuf>,
}

impl AuthFiles {
    /// podman's order, from the process environment.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self::from_vars(EnvPaths {
            auth_file: var("REGISTRY_AUTH_FILE"),
            docker_config: var("DOCKER_CONFIG"),
            runtime_dir: var("XDG_RUNTIME_DIR"),
            config_home: var("XDG_CONFIG_HOME"),
            home: var("HOME"),
        })
    }

    /// Pure form of [`AuthFiles::from_env`].
    pub fn from_vars(env: EnvPaths) -> Self {
        let EnvPaths {
            auth_file,
            docker_config,
            runtime_dir,
            config_home,
            home,
        } = env;
        let config_home = config_home.or_else(|| home.as_ref().map(|h| h.join(".config")));
        let docker_file = match &docker_config {
            Some(d) => Some(d.join("config.json")),
            None => home.as_ref().map(|h| h.join(".docker/config.json")),
        };
        let mut read = Vec::new();
        read.extend(auth_file.clone());
        read.extend(runtime_dir.as_ref().map(|r| r.join("containers/auth.json")));
        read.extend(config_home.as_ref().map(|c| c.join("containers/auth.json")));
        read.extend(docker_file);
        let write = auth_file
            .or_else(|| docker_config.map(|d| d.join("config.json")))
            .or_else(|| runtime_dir.map(|r| r.join("containers/auth.json")))
            .or_else(|| config_home.map(|c| c.join("containers/auth.json")));
        read.dedup();
        Self { read, write }
    }

    /// The credentials for `registry` (a normalised registry name such as `docker.io` or
    /// `127.0.0.1:5000`), or `None` for anonymous access. A missing helper binary or a
    /// helper that knows nothing of the registry means anonymous, with a warning.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, CredError> {
        self.lookup_scoped(registry, None)
    }

    /// The credentials for `repository` (`org/app`, without the registry) of
    /// `registry`: a key scoped to it or one of its namespaces wins over the registry's.
    pub fn lookup_scoped(
        &self,
        registry: &str,
        repository: Option<&str>,
    ) -> Result<Option<Credentials>, CredError> {
        let keys = candidates(registry, repository);
        for path in &self.read {
            let Some(doc) = read_json(path)? else {
                continue;
            };
            if let Some(h) = find_key(doc.get("credHelpers"), registry, path) {
                if let Some(name) = h.as_str() {
                    return helper::get(name, registry);
                }
            }
            for key in &keys {
                if let Some(entry) = find_key(doc.get("auths"), key, path) {
                    if let Some(c) = decode_entry(entry, key, path)? {
                        return Ok(Some(c));
                    }
                }
            }
            if let Some(store) = creds_store(&doc) {
                if let Some(c) = helper::get(store, registry)? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Store credentials for `key` (a registry, or in auth.json a namespace or
    /// repository in it: `quay.io/org`) in the write file (0600), replacing older ones;
    /// through the file's helper when it names one. Returns the file.
    pub fn store(&self, key: &str, creds: &Credentials) -> Result<PathBuf, CredError> {
        let path = self.write.clone().ok_or(CredError::NoAuthFile)?;
        let key = file_key(key, &path);
        let mut doc = read_json(&path)?.unwrap_or_else(|| json!({}));
        let helper_name = find_key(doc.get("credHelpers"), &key, &path)
            .and_then(Value::as_str)
            .or_else(|| creds_store(&doc))
            .map(str::to_owned);
        let entry = match &helper_name {
            Some(h) => {
                helper::store(h, &key, creds)?;
                json!({})
            }
            None => {
                let value =
                    base64::encode(format!("{}:{}", creds.username, creds.password).as_bytes());
                json!({ "auth": value })
            }
        };
        let auths = auths_mut(&mut doc);
        remove_keys(auths, &key, &path);
        auths.insert(key, entry);
        write_json(&path, &doc)?;
        Ok(path)
    }

    /// Remove `key` from every file we would read that has it in `auths` (and from the
    /// helper that file names for it); returns the files changed (empty: nothing was
    /// stored).
    pub fn remove(&self, key: &str) -> Result<Vec<PathBuf>, CredError> {
        let mut changed = Vec::new();
        for path in &self.read {
            let Some(mut doc) = read_json(path)? else {
                continue;
            };
            let key = file_key(key, path);
            let helper_name = find_key(doc.get("credHelpers"), &key, path)
                .and_then(Value::as_str)
                .or_else(|| creds_store(&doc))
                .map(str::to_owned);
            let erased = match &helper_name {
                Some(h) => helper::erase(h, &key)?,
                None => false,
            };
            if remove_keys(auths_mut(&mut doc), &key, path) {
                write_json(path, &doc)?;
                changed.push(path.clone());
            } else if erased {
                changed.push(path.clone());
            }
        }
        Ok(changed)
    }
}

/// The paths the credential files are found from (the environment's values).
#[derive(Debug, Clone, Default)]
pub struct EnvPaths {
    pub auth_file: Option<PathBuf>,
    pub docker_config: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    pub config_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

/// docker's config.json knows registries only; podman's auth.json scopes keys.
fn is_docker_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "config.json")
}

/// `key` as `path`'s format writes and compares it.
fn file_key(key: &str, path: &Path) -> String {
    match is_docker_file(path) {
        true => normalize_key(key),
        false => scoped_key(key),
    }
}

/// The file's `credsStore`, when it names one.
fn creds_store(doc: &Value) -> Option<&str> {
    doc.get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The entry of `key` in `map`, comparing keys as `path`'s format means them.
fn find_key<'a>(map: Option<&'a Value>, key: &str, path: &Path) -> Option<&'a Value> {
    let want = file_key(key, path);
    let map = map?.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| file_key(k, path) == want)
            .map(|(_, v)| v)
    })
}

fn auths_mut(doc: &mut Value) -> &mut Map<String, Value> {
    if !doc.is_object() {
        *doc = json!({});
    }
    let obj = doc.as_object_mut().expect("made an object above");
    let auths = obj.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    auths.as_object_mut().expect("made an object above")
}

fn remove_keys(auths: &mut Map<String, Value>, key: &str, path: &Path) -> bool {
    let want = file_key(key, path);
    let keys: Vec<String> = auths
        .keys()
        .filter(|k| file_key(k, path) == want)
        .cloned()
        .collect();
    for k in &keys {
        auths.remove(k);
    }
    !keys.is_empty()
}

fn decode_entry(
    entry: &Value,
    registry: &str,
    path: &Path,
) -> Result<Option<Credentials>, CredError> {
    if let Some(tok) = entry
        .get("identitytoken")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    {
        // An OAuth refresh token: docker sends it as the password of user `<token>`.
        return Ok(Some(Credentials {
            username: "<token>".into(),
            password: tok.into(),
        }));
    }
    let Some(auth) = entry
        .get("auth")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let bad = || CredError::BadAuthEntry {
        registry: registry.to_owned(),
        path: path.to_owned(),
    };
    let raw = base64::decode(auth).ok_or_else(bad)?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (u, p) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credentials {
        username: u.to_owned(),
        password: p.to_owned(),
    }))
}

fn read_json(path: &Path) -> Result<Option<Value>, CredError> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Ok(Some(json!({}))),
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| CredError::Parse {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::warn!(path = %path.display(), "credentials file not readable; skipped");
            Ok(None)
        }
        Err(source) => Err(CredError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Symlinks followed at most (the kernel's own limit for a path).
const MAX_LINKS: usize = 40;

/// The file a write to `path` must replace: `path` itself, or the end of its chain of
/// symlinks (which may not exist yet). Renaming onto the link would replace the link.
fn resolve_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_owned();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links"
    )))
}

/// Create `dir` and its missing parents as 0700: credentials live below, and a umask
/// of 000 must not leave them in a world-writable directory. Existing ones are kept.
fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dirs(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        // The umask may have taken bits off 0700; set them exactly.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_json(path: &Path, doc: &Value) -> Result<(), CredError> {
    use std::os::unix::fs::PermissionsExt;
    let werr = |source| CredError::Write {
        path: path.to_owned(),
        source,
    };
    let target = resolve_links(path).map_err(werr)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    create_private_dirs(dir).map_err(werr)?;
    // A fresh, exclusive temp file next to the target, so the rename is atomic.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.tmp-",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("auth")
        ))
        .tempfile_in(dir)
        .map_err(werr)?;
    let body = serde_json::to_vec_pretty(doc).map_err(|e| werr(std::io::Error::other(e)))?;
    let f = tmp.as_file_mut();
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(&body))
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(werr)?;
    tmp.persist(&target).map_err(|e| werr(e.error))?;
    // Make the rename durable; a failure here leaves a complete file, so only log it.
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), %e, "fsync of the credentials directory failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_order_and_write_target() {
        let p = |s: &str| Some(PathBuf::from(s));
        let f = AuthFiles::from_vars(EnvPaths {
            home: p("/h"),
            ..EnvPaths::default()
        });
        assert_eq!(
            f.read,
            vec![
                PathBuf::from("/h/.config/containers/auth.json"),
                PathBuf::from("/h/.docker/config.json")
            ]
        );
        assert_eq!(f.write, p("/h/.config/containers/auth.json"));
        let f = AuthFiles::from_vars(EnvPaths {
            auth_file: p("/a.json"),
            runtime_dir: p("/run/u"),
            home: p("/h"),
            ..EnvPaths::default()
        });
        assert_eq!(f.read[0], PathBuf::from("/a.json"));
        assert_eq!(f.read[1], PathBuf::from("/run/u/containers/auth.json"));
        assert_eq!(f.write, p("/a.json"));
    }

    #[test]
    fn docker_config_replaces_dot_docker_and_takes_the_login() {
        let p = |s: &str| Some(PathBuf::from(s));
        let f = AuthFiles::from_vars(EnvPaths {
            docker_config: p("/dc"),
            runtime_dir: p("/run/u"),
            home: p("/h"),
            ..EnvPaths::default()
        });
        assert_eq!(f.read.last(), Some(&PathBuf::from("/dc/config.json")));
        assert!(!f.read.contains(&PathBuf::from("/h/.docker/config.json")));
        assert_eq!(f.write, p("/dc/config.json"));
    }

    #[test]
    fn scoped_keys_apply_to_their_namespace_only() {
        let t = tempfile::tempdir().unwrap();
        let auth = t.path().join("auth.json");
        // org's key (user:org), the registry's (user:all)
        std::fs::write(
            &auth,
            r#"{"auths":{"quay.io/org":{"auth":"dXNlcjpvcmc="},"quay.io":{"auth":"dXNlcjphbGw="}}}"#,
        )
        .unwrap();
        let f = AuthFiles {
            read: vec![auth.clone()],
            write: Some(auth.clone()),
        };
        let pass = |repo: Option<&str>| {
            let c = f.lookup_scoped("quay.io", repo).unwrap().unwrap();
            c.password
        };
        assert_eq!(pass(Some("org/app")), "org");
        assert_eq!(pass(Some("other/app")), "all");
        assert_eq!(pass(None), "all");
        // storing a scoped key keeps it scoped and the registry's key as it was
        let c = Credentials {
            username: "u".into(),
            password: "team".into(),
        };
        f.store("https://quay.io/org/team/", &c).unwrap();
        assert_eq!(pass(Some("org/team/app")), "team");
        assert_eq!(pass(Some("org/app")), "org");
        assert_eq!(f.remove("quay.io/org/team").unwrap(), vec![auth.clone()]);
        assert_eq!(pass(Some("org/team/app")), "org");
        // docker's config.json has no scopes: a scoped key there is the registry's
        let docker = t.path().join("config.json");
        let f = AuthFiles {
            read: vec![docker.clone()],
            write: Some(docker.clone()),
        };
        f.store("quay.io/org", &c).unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(&docker).unwrap()).unwrap();
        assert!(doc["auths"]["quay.io"].is_object(), "{doc}");
        assert_eq!(f.lookup_scoped("quay.io", Some("x/y")).unwrap(), Some(c));
    }

    #[test]
    fn store_lookup_remove_round_trip_keeps_other_keys() {
        let t = tempfile::tempdir().unwrap();
        let auth = t.path().join("auth.json");
        std::fs::write(&auth, r#"{"auths":{"other:1":{"auth":"YTpi"}},"x":1}"#).unwrap();
        let docker = t.path().join("config.json");
        std::fs::write(
            &docker,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}}"#,
        )
        .unwrap();
        let f = AuthFiles {
            read: vec![auth.clone(), docker],
            write: Some(auth.clone()),
        };
        let hub = f.lookup("docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("user", "pass")
        );
        assert_eq!(f.lookup("nowhere:1").unwrap(), None);
        let c = Credentials {
            username: "me".into(),
            password: "p:w".into(),
        };
        f.store("127.0.0.1:5000", &c).unwrap();
        assert_eq!(f.lookup("127.0.0.1:5000").unwrap(), Some(c));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let doc: Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
        assert_eq!(doc["x"], 1);
        assert!(doc["auths"]["other:1"].is_object());
        assert_eq!(f.remove("127.0.0.1:5000").unwrap(), vec![auth]);
        assert_eq!(f.lookup("127.0.0.1:5000").unwrap(), None);
    }

    #[test]
    fn writes_follow_symlinks_and_make_private_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real/auth.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, r#"{"x":1}"#).unwrap();
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink("real/auth.json", &link).unwrap();
        let f = AuthFiles {
            read: vec![link.clone()],
            write: Some(link.clone()),
        };
        let c = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        f.store("r:1", &c).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let doc: Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
        assert_eq!(doc["x"], 1);
        assert_eq!(f.lookup("r:1").unwrap(), Some(c.clone()));

        // A dangling link: the target is made, in a new private directory.
        let dangling = t.path().join("d.json");
        std::os::unix::fs::symlink(t.path().join("new/dir/auth.json"), &dangling).unwrap();
        let f = AuthFiles {
            read: vec![],
            write: Some(dangling.clone()),
        };
        f.store("r:1", &c).unwrap();
        let made = t.path().join("new/dir/auth.json");
        assert_eq!(
            std::fs::metadata(&made).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for d in ["new", "new/dir"] {
            let m = std::fs::metadata(t.path().join(d)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o700, "{d}");
        }

        // A loop is an error, not a hang.
        let a = t.path().join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", t.path().join("b")).unwrap();
        let f = AuthFiles {
            read: vec![],
            write: Some(a),
        };
        assert!(matches!(
            f.store("r:1", &c),
            Err(CredError::Read { .. } | CredError::Write { .. })
        ));
    }

    #[test]
    fn missing_helper_means_anonymous() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"credHelpers":{"r.example":"imago-no-such-helper"}}"#,
        )
        .unwrap();
        let f = AuthFiles {
            read: vec![cfg],
            write: None,
        };
        assert_eq!(f.lookup("r.example").unwrap(), None);
    }
}
