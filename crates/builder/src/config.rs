//! The image configuration a build produces, as `docker build` (BuildKit) writes it:
//! the OCI config JSON plus Docker's extensions (`Healthcheck`, `OnBuild`, `Shell`,
//! `ArgsEscaped`), history entries with `empty_layer`, and SOURCE_DATE_EPOCH clamping.
//! Unknown fields of a base image's config are kept as they are (`extra`).
//!
//! Never: touches files, the store or the kernel. Pure data.
//!
//! Numbers in parentheses, e.g. (76), are items of docs/semantics.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `comment` BuildKit puts on every history entry it writes.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The PATH a Linux stage gets when its base has none (docs/semantics.md item 46).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An image configuration (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default = "default_arch")]
    pub architecture: String,
    #[serde(default = "default_os")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields we do not model, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_arch() -> String {
    host_arch().to_string()
}
fn default_os() -> String {
    "linux".to_string()
}

/// The OCI architecture name of this machine (`amd64`, `arm64`, ...): the architecture
/// of the stand-in image a build state's layers are unpacked through.
pub use imago_oci::platform::host_arch;

/// The `rootfs` section: the layers' uncompressed digests, bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Docker's health check (durations in nanoseconds, as Go's time.Duration).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// The `config` section: what a container of this image starts with.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    /// Fields we do not model, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `{}` value of ExposedPorts and Volumes maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

impl ImageConfig {
    /// The config of `FROM scratch`: no layers, no history, linux on this architecture.
    pub fn scratch() -> Self {
        Self {
            created: None,
            author: None,
            architecture: default_arch(),
            os: default_os(),
            variant: None,
            config: ContainerConfig::default(),
            rootfs: RootFs::default(),
            history: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Parse a config blob.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Canonical bytes: compact JSON, fields in a fixed order (the digest is the image id).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs and maps of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Look a variable up in `config.Env`.
    pub fn env_get(&self, key: &str) -> Option<&str> {
        self.config.env.iter().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            (k == key).then_some(v)
        })
    }

    /// Set a variable in `config.Env`: replaced in place when present, else appended (45).
    pub fn env_set(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        for kv in &mut self.config.env {
            let k = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv.as_str());
            if k == key {
                *kv = entry;
                return;
            }
        }
        self.config.env.push(entry);
    }

    /// Add the default PATH when the stage has none (46).
    pub fn ensure_path(&mut self) {
        if self.os == "linux" && self.env_get("PATH").is_none() {
            self.config.env.insert(0, DEFAULT_PATH.to_string());
        }
    }

    /// Append a history entry the way BuildKit does.
    pub fn push_history(&mut self, created_by: String, empty_layer: bool, created: Option<String>) {
        self.history.push(History {
            created,
            created_by: Some(created_by),
            author: None,
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer,
        });
    }

    /// Clamp every timestamp to `epoch` (SOURCE_DATE_EPOCH): the image's `created` and
    /// the history entries later than it.
    pub fn clamp_times(&mut self, epoch: i64) {
        let clamp = |t: &mut Option<String>| {
            let later = match t.as_deref().and_then(parse_time) {
                Some(secs) => secs > epoch,
                None => true,
            };
            if later {
                *t = Some(format_time(epoch));
            }
        };
        clamp(&mut self.created);
        for h in &mut self.history {
            clamp(&mut h.created);
        }
    }
}

/// RFC 3339 UTC text of a Unix time (`2024-01-01T00:00:00Z`).
pub fn format_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Seconds of an RFC 3339 time, when it parses.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Now, as RFC 3339 UTC.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_config_is_minimal_json() {
        let c = ImageConfig::scratch();
        let v: Value = serde_json::from_slice(&c.to_json()).unwrap();
        assert_eq!(v["os"], "linux");
        assert_eq!(v["rootfs"]["type"], "layers");
        assert!(v.get("history").is_none());
    }

    #[test]
    fn unknown_fields_round_trip() {
        let j = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Foo":1},"rootfs":{"type":"layers","diff_ids":[]},"container":"x"}"#;
        let c = ImageConfig::from_json(j).unwrap();
        let v: Value = serde_json::from_slice(&c.to_json()).unwrap();
        assert_eq!(v["container"], "x");
        assert_eq!(v["config"]["Foo"], 1);
    }

    #[test]
    fn d45_env_replaced_in_place() {
        let mut c = ImageConfig::scratch();
        c.env_set("A", "1");
        c.env_set("B", "2");
        c.env_set("A", "3");
        assert_eq!(c.config.env, ["A=3", "B=2"]);
    }

    #[test]
    fn d46_default_path() {
        let mut c = ImageConfig::scratch();
        c.ensure_path();
        assert_eq!(c.config.env, [DEFAULT_PATH]);
        c.ensure_path();
        assert_eq!(c.config.env.len(), 1);
    }

    #[test]
    fn k120_clamp_times() {
        let mut c = ImageConfig::scratch();
        c.created = Some("2030-01-01T00:00:00Z".into());
        c.push_history("X".into(), true, Some("2001-01-01T00:00:00Z".into()));
        c.push_history("Y".into(), true, None);
        c.clamp_times(1_700_000_000);
        assert_eq!(c.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(
            c.history[0].created.as_deref(),
            Some("2001-01-01T00:00:00Z")
        );
        assert_eq!(
            c.history[1].created.as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
    }
}
