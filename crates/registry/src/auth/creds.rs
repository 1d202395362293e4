//! Stored credentials, read in podman's order: `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json`
//! (`~/.config/containers/auth.json`), `~/.docker/config.json`. In each file a per-registry
//! `credHelpers` entry wins, then `auths`, then the file's `credsStore`; the first file
//! that knows the registry decides. Helpers are `docker-credential-NAME get|store|erase`.
//! Docker Hub is `docker.io` in auth.json and `https://index.docker.io/v1/` in
//! config.json; both spellings (and `index.docker.io`, `registry-1.docker.io`) match.
//!
//! Writing (`ilogin`): the first of `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`, mode 0600,
//! atomically (temp + rename), keeping every other key of the file. Missing directories
//! are made 0700 whatever the umask; a symlinked file is written through to its target
//! (the link stays).
//!
//! Never: talks to a registry (ilogin checks credentials through client.rs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use imago_oci::reference::{DEFAULT_REGISTRY, DOCKER_HUB_ENDPOINT};
use serde_json::{json, Map, Value};

use super::base64;

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
        Self::from_vars(
            var("REGISTRY_AUTH_FILE"),
            var("XDG_RUNTIME_DIR"),
            var("XDG_CONFIG_HOME"),
            var("HOME"),
        )
    }

    /// Pure form of [`AuthFiles::from_env`].
    pub fn from_vars(
        auth_file: Option<PathBuf>,
        runtime_dir: Option<PathBuf>,
        config_home: Option<PathBuf>,
        home: Option<PathBuf>,
    ) -> Self {
        let config_home = config_home.or_else(|| home.as_ref().map(|h| h.join(".config")));
        let mut read = Vec::new();
        read.extend(auth_file.clone());
        read.extend(runtime_dir.as_ref().map(|r| r.join("containers/auth.json")));
        read.extend(config_home.as_ref().map(|c| c.join("containers/auth.json")));
        read.extend(home.as_ref().map(|h| h.join(".docker/config.json")));
        let write = auth_file
            .or_else(|| runtime_dir.map(|r| r.join("containers/auth.json")))
            .or_else(|| config_home.map(|c| c.join("containers/auth.json")));
        read.dedup();
        Self { read, write }
    }

    /// The credentials for `registry` (a normalised registry name such as `docker.io` or
    /// `127.0.0.1:5000`), or `None` for anonymous access. A missing helper binary or a
    /// helper that knows nothing of the registry means anonymous, with a warning.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, CredError> {
        for path in &self.read {
            let Some(doc) = read_json(path)? else {
                continue;
            };
            if let Some(helper) =
                find_key(doc.get("credHelpers"), registry).and_then(|v| v.as_str())
            {
                return run_helper_get(helper, registry);
            }
            if let Some(entry) = find_key(doc.get("auths"), registry) {
                if let Some(c) = decode_entry(entry, registry, path)? {
                    return Ok(Some(c));
                }
            }
            if let Some(store) = doc
                .get("credsStore")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
            {
                if let Some(c) = run_helper_get(store, registry)? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Store credentials for `registry` in the write file (0600), replacing older ones.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<PathBuf, CredError> {
        let path = self.write.clone().ok_or(CredError::NoAuthFile)?;
        let mut doc = read_json(&path)?.unwrap_or_else(|| json!({}));
        let auths = auths_mut(&mut doc);
        remove_keys(auths, registry);
        let value = base64::encode(format!("{}:{}", creds.username, creds.password).as_bytes());
        auths.insert(registry.to_owned(), json!({ "auth": value }));
        write_json(&path, &doc)?;
        Ok(path)
    }

    /// Remove `registry` from every file we would read that has it in `auths`; returns
    /// the files changed (empty: nothing was stored).
    pub fn remove(&self, registry: &str) -> Result<Vec<PathBuf>, CredError> {
        let mut changed = Vec::new();
        for path in &self.read {
            let Some(mut doc) = read_json(path)? else {
                continue;
            };
            if remove_keys(auths_mut(&mut doc), registry) {
                write_json(path, &doc)?;
                changed.push(path.clone());
            }
        }
        Ok(changed)
    }
}

/// The spellings of a registry's key in credential files, normalised for comparison:
/// scheme and path dropped, Docker Hub's aliases mapped to `docker.io`.
pub fn normalize_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | DOCKER_HUB_ENDPOINT | "registry.hub.docker.com" => {
            DEFAULT_REGISTRY.to_owned()
        }
        other => other.to_owned(),
    }
}

fn find_key<'a>(map: Option<&'a Value>, registry: &str) -> Option<&'a Value> {
    let want = normalize_key(registry);
    let map = map?.as_object()?;
    map.get(registry).or_else(|| {
        map.iter()
            .find(|(k, _)| normalize_key(k) == want)
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

fn remove_keys(auths: &mut Map<String, Value>, registry: &str) -> bool {
    let want = normalize_key(registry);
    let keys: Vec<String> = auths
        .keys()
        .filter(|k| normalize_key(k) == want)
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

fn run_helper_get(helper: &str, registry: &str) -> Result<Option<Credentials>, CredError> {
    let bin = format!("docker-credential-{helper}");
    let server = if normalize_key(registry) == DEFAULT_REGISTRY {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let child = Command::new(&bin)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(helper = %bin, "credential helper not installed; going anonymous");
            return Ok(None);
        }
        Err(e) => {
            return Err(CredError::Helper {
                helper: bin,
                reason: e.to_string(),
            })
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits before reading is judged by its status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| CredError::Helper {
        helper: bin.clone(),
        reason: e.to_string(),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found")
            || String::from_utf8_lossy(&out.stderr).contains("credentials not found")
        {
            return Ok(None);
        }
        let reason = format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Err(CredError::Helper {
            helper: bin,
            reason,
        });
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|e| CredError::Helper {
        helper: bin.clone(),
        reason: e.to_string(),
    })?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Some(Credentials {
        username: field("Username"),
        password: field("Secret"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_order_and_write_target() {
        let p = |s: &str| Some(PathBuf::from(s));
        let f = AuthFiles::from_vars(None, None, None, p("/h"));
        assert_eq!(
            f.read,
            vec![
                PathBuf::from("/h/.config/containers/auth.json"),
                PathBuf::from("/h/.docker/config.json")
            ]
        );
        assert_eq!(f.write, p("/h/.config/containers/auth.json"));
        let f = AuthFiles::from_vars(p("/a.json"), p("/run/u"), None, p("/h"));
        assert_eq!(f.read[0], PathBuf::from("/a.json"));
        assert_eq!(f.read[1], PathBuf::from("/run/u/containers/auth.json"));
        assert_eq!(f.write, p("/a.json"));
    }

    #[test]
    fn docker_hub_spellings_match() {
        for k in [
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ] {
            assert_eq!(normalize_key(k), "docker.io", "{k}");
        }
        assert_eq!(normalize_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
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
