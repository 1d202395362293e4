//! podman's `registries.conf` (version 2, TOML), the part that decides where an image
//! is fetched from: per-registry `[[registry]]` tables (`prefix`, `location`,
//! `insecure`, `blocked`, `[[registry.mirror]]` with `location` and `insecure`),
//! `unqualified-search-registries`, `[aliases]` and `short-name-mode` for short names.
//!
//! Files, as containers-image reads them: `$CONTAINERS_REGISTRIES_CONF` alone when set;
//! else `~/.config/containers/registries.conf` when it exists, else
//! `/etc/containers/registries.conf`; then the drop-ins of `/etc/containers/
//! registries.conf.d/` and `~/.config/containers/registries.conf.d/` (`*.conf`, in name
//! order). A later file's search list replaces the earlier one, its `[[registry]]` of the
//! same prefix replaces the earlier one, its aliases are added. No file: docker's rule
//! (short names are Docker Hub's, every registry is its own location).
//!
//! Not supported, said when met: a `prefix` with a `*.` wildcard, and a `location` or
//! mirror with a path (`mirror.example/dockerhub`), which would rewrite repository names.
//!
//! [`RegistriesConf::load_cached`] keeps the merged result in a cache file that is used
//! while the files are unchanged (registries_conf_cache.rs).
//!
//! Never: talks to a registry (lib.rs `connect` tries the endpoints this gives).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imago_oci::Reference;
use serde::{Deserialize, Serialize};

/// A registries.conf that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("{}: {what} `{value}` is not supported by imago ({why})", path.display())]
    Unsupported {
        path: PathBuf,
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("registry `{0}` is blocked in registries.conf")]
    Blocked(String),
    #[error("{}: short-name-mode `{value}`: expected enforcing, permissive or disabled", path.display())]
    ShortNameMode { path: PathBuf, value: String },
}

/// How a short name with several search registries is resolved (`short-name-mode`;
/// containers-registries.conf(5)'s default is permissive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShortNameMode {
    /// Several search registries: ask on a terminal, else fail.
    Enforcing,
    /// Several search registries: ask on a terminal, else try them all in order.
    #[default]
    Permissive,
    /// Try them all in order, never ask.
    Disabled,
}

/// Where the references of [`RegistriesConf::short_name`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The name was already qualified (or is Docker Hub's by docker's rule).
    Given,
    /// An `[aliases]` entry.
    Alias,
    /// One reference per `unqualified-search-registries` entry.
    Search,
}

/// The most a registries.conf may weigh: a configuration, not data.
const MAX_FILE: u64 = 1 << 20;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<Registry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    short_name_mode: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Registry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror: Vec<Mirror>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mirror {
    location: String,
    #[serde(default)]
    insecure: bool,
}

/// One place to fetch from: a mirror (tried first; the image must be there) or the
/// registry's own location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`.
    pub host: String,
    /// Plain HTTP and unverified TLS allowed (`insecure = true`).
    pub insecure: bool,
    pub mirror: bool,
}

/// The merged configuration (serialized only into the cache of
/// [`RegistriesConf::load_cached`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegistriesConf {
    search: Option<Vec<String>>,
    /// By prefix (a registry, or a registry and a namespace).
    registries: BTreeMap<String, Registry>,
    aliases: BTreeMap<String, String>,
    mode: ShortNameMode,
}

impl RegistriesConf {
    /// The files of the environment (see the module doc), merged.
    pub fn load() -> Result<Self, ConfError> {
        Self::from_files(&files())
    }

    /// [`Self::load`] through the cache file `cache` (made when missing or stale, when
    /// its dir exists): a start whose files are unchanged reads one small JSON file
    /// instead of parsing them. The answer, and every error, is [`Self::load`]'s.
    pub fn load_cached(cache: &Path) -> Result<Self, ConfError> {
        cache::load(&files(), cache, cache::SETTLED)
    }

    /// `files` merged in order.
    fn from_files(files: &[PathBuf]) -> Result<Self, ConfError> {
        let mut conf = RegistriesConf::default();
        for path in files {
            conf.merge_file(path)?;
        }
        Ok(conf)
    }

    /// Merge one file over what is there.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), ConfError> {
        let read = |source| ConfError::Read {
            path: path.to_owned(),
            source,
        };
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::fs::File::open(path).map_err(read)?, MAX_FILE),
            &mut text,
        )
        .map_err(read)?;
        let file: File = toml::from_str(&text).map_err(|e| ConfError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if let Some(s) = file.unqualified_search_registries {
            self.search = Some(s);
        }
        self.aliases.extend(file.aliases);
        match file.short_name_mode.as_deref() {
            None | Some("") => {}
            Some("enforcing") => self.mode = ShortNameMode::Enforcing,
            Some("permissive") => self.mode = ShortNameMode::Permissive,
            Some("disabled") => self.mode = ShortNameMode::Disabled,
            Some(other) => {
                return Err(ConfError::ShortNameMode {
                    path: path.to_owned(),
                    value: other.to_owned(),
                })
            }
        }
        for r in file.registry {
            let prefix = r.prefix.clone().or_else(|| r.location.clone());
            let Some(prefix) = prefix else { continue };
            check(path, &prefix, &r)?;
            self.registries.insert(prefix, r);
        }
        Ok(())
    }

    /// The references a name the user typed may mean, in the order to try: a fully
    /// qualified name is itself; a short name is its alias, else one per search
    /// registry, else Docker Hub's (docker's rule).
    pub fn qualify(&self, name: &str) -> Vec<String> {
        self.short_name(name).0
    }

    /// [`Self::qualify`], and where its answer came from (a caller applying
    /// [`Self::short_name_mode`] asks only about a search list).
    pub fn short_name(&self, name: &str) -> (Vec<String>, Source) {
        if is_qualified(name) {
            return (vec![name.to_owned()], Source::Given);
        }
        let (repo, tail) = split_tail(name);
        if let Some(target) = self.aliases.get(repo) {
            return (vec![format!("{target}{tail}")], Source::Alias);
        }
        match &self.search {
            Some(list) if !list.is_empty() => (
                list.iter().map(|r| format!("{r}/{name}")).collect(),
                Source::Search,
            ),
            _ => (vec![name.to_owned()], Source::Given),
        }
    }

    /// The names to look `name` up by in a store, in order: its alias or search-list
    /// references (what a pull of it stores), then the name as typed (docker's rule,
    /// and ids, digests and built images' names). Never ambiguous: every one is local.
    pub fn local_names(&self, name: &str) -> Vec<String> {
        let (mut v, _) = self.short_name(name);
        if !v.iter().any(|c| c == name) {
            v.push(name.to_owned());
        }
        v
    }

    /// `short-name-mode` of the last file that set it.
    pub fn short_name_mode(&self) -> ShortNameMode {
        self.mode
    }

    /// Where to fetch `reference` from: its mirrors, then its location (the registry
    /// itself when none is set). A blocked registry is an error.
    pub fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, ConfError> {
        let name = reference.name();
        let own = Endpoint {
            host: reference.registry_endpoint().to_owned(),
            insecure: false,
            mirror: false,
        };
        let Some(r) = self.matching(&name) else {
            return Ok(vec![own]);
        };
        if r.blocked {
            return Err(ConfError::Blocked(reference.registry().to_owned()));
        }
        let mut v: Vec<Endpoint> = (r.mirror.iter())
            .map(|m| Endpoint {
                host: m.location.clone(),
                insecure: m.insecure,
                mirror: true,
            })
            .collect();
        v.push(Endpoint {
            host: match &r.location {
                Some(l) if l != reference.registry() => l.clone(),
                _ => own.host,
            },
            insecure: r.insecure,
            mirror: false,
        });
        Ok(v)
    }

    /// The `[[registry]]` whose prefix matches `name` (`registry/repository`) longest.
    fn matching(&self, name: &str) -> Option<&Registry> {
        (self.registries.iter())
            .filter(|(p, _)| name == p.as_str() || name.starts_with(&format!("{p}/")))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, r)| r)
    }
}

/// Refuse what imago would get wrong rather than guess.
fn check(path: &Path, prefix: &str, r: &Registry) -> Result<(), ConfError> {
    let unsupported = |what, value: &str, why| ConfError::Unsupported {
        path: path.to_owned(),
        what,
        value: value.to_owned(),
        why,
    };
    if prefix.starts_with("*.") {
        return Err(unsupported("prefix", prefix, "wildcard prefixes"));
    }
    let locations = r
        .location
        .iter()
        .chain(r.mirror.iter().map(|m| &m.location));
    for l in locations {
        if l.contains('/') {
            return Err(unsupported("location", l, "a location with a path"));
        }
    }
    Ok(())
}

/// docker's rule: the first component names a registry when it has a `.` or `:`, or is
/// `localhost`.
fn is_qualified(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

/// `busybox:1.36` → (`busybox`, `:1.36`); `app@sha256:…` → (`app`, `@sha256:…`).
fn split_tail(name: &str) -> (&str, &str) {
    let at = name.find('@').unwrap_or(name.len());
    let colon = name[..at]
        .rfind(':')
        .filter(|&c| !name[c..at].contains('/'));
    name.split_at(colon.unwrap_or(at))
}

/// The files to read, in order (see the module doc).
fn files() -> Vec<PathBuf> {
    if let Some(only) = std::env::var_os("CONTAINERS_REGISTRIES_CONF").filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(only)];
    }
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|c| c.join("containers"));
    let system = PathBuf::from("/etc/containers");
    let mut v = vec![];
    let user_file = user.as_ref().map(|u| u.join("registries.conf"));
    match user_file.filter(|f| f.is_file()) {
        Some(f) => v.push(f),
        None if system.join("registries.conf").is_file() => v.push(system.join("registries.conf")),
        None => {}
    }
    for dir in std::iter::once(system).chain(user) {
        let Ok(entries) = std::fs::read_dir(dir.join("registries.conf.d")) else {
            continue;
        };
        let mut drop_ins: Vec<PathBuf> = (entries.flatten())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        drop_ins.sort();
        v.extend(drop_ins);
    }
    v
}

#[path = "registries_conf_cache.rs"]
mod cache;

#[cfg(test)]
#[path = "registries_conf_tests.rs"]
pub(crate) mod tests;
