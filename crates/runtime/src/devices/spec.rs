//! One CDI (Container Device Interface) spec file: its serde types, read from JSON
//! (`.json`) or YAML (`.yaml`), bounded in size, then checked (check.rs); every error
//! names the file and the field (`devices[0].containerEdits.deviceNodes[1].path`).
//! Fields this module does not know are ignored, so a spec of a newer CDI version still
//! loads.
//! Never: looks at the host (whether a node or a mount source exists is mod.rs's),
//! decides which spec wins, mounts.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

/// A spec file larger than this is refused (real specs are a few KiB; a GPU node's with
/// every library listed, some 100 KiB).
pub const MAX_SPEC_BYTES: u64 = 4 << 20;

/// What is wrong with one spec file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("CDI spec `{0}`: read: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is too large.
    #[error("CDI spec `{0}`: larger than {MAX_SPEC_BYTES} bytes")]
    TooBig(PathBuf),
    /// Not JSON or YAML of a spec's shape.
    #[error("CDI spec `{file}`: {at}: {why}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The field (`.` at the top).
        at: String,
        /// The parser's words, with line and column.
        why: String,
    },
    /// It parsed, but a field's value is invalid.
    #[error("CDI spec `{file}`: {at}: {why}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The field.
        at: String,
        /// What is wrong.
        why: String,
    },
}

/// A CDI spec (the fields imago reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// `cdiVersion` (semver).
    pub cdi_version: String,
    /// `vendor.com/class`.
    pub kind: String,
    /// The devices it offers.
    #[serde(default, deserialize_with = "null_default")]
    pub devices: Vec<Device>,
    /// Edits made when any of its devices is asked for.
    #[serde(default, deserialize_with = "null_default")]
    pub container_edits: Edits,
}

/// One device of a spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Its name (`vendor.com/class=NAME`).
    pub name: String,
    /// Edits made when it is asked for.
    #[serde(default, deserialize_with = "null_default")]
    pub container_edits: Edits,
}

/// `containerEdits`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edits {
    /// `K=V`.
    #[serde(default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    /// Device nodes.
    #[serde(default, deserialize_with = "null_default")]
    pub device_nodes: Vec<DeviceNode>,
    /// Mounts.
    #[serde(default, deserialize_with = "null_default")]
    pub mounts: Vec<Mount>,
    /// OCI hooks.
    #[serde(default, deserialize_with = "null_default")]
    pub hooks: Vec<Hook>,
    /// Supplementary groups for the process.
    #[serde(default, deserialize_with = "null_default")]
    pub additional_gids: Vec<u32>,
    /// resctrl settings (only noticed: see cdi.rs).
    #[serde(default)]
    pub intel_rdt: Option<IgnoredAny>,
    /// Host network interfaces to move in (only noticed: see cdi.rs).
    #[serde(default, deserialize_with = "null_default")]
    pub net_devices: Vec<IgnoredAny>,
}

/// `deviceNodes[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    /// The path inside the container.
    pub path: String,
    /// The node on the host (default: `path`).
    #[serde(default)]
    pub host_path: Option<String>,
    /// `c`, `u` (char), `b` (block), `p` (fifo).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Major number.
    #[serde(default)]
    pub major: Option<i64>,
    /// Minor number.
    #[serde(default)]
    pub minor: Option<i64>,
    /// Device cgroup permissions (`rwm`, `none`).
    #[serde(default)]
    pub permissions: Option<String>,
}

/// `mounts[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// The source on the host.
    pub host_path: String,
    /// The target inside the container.
    pub container_path: String,
    /// Mount options (`ro`, `bind`, `nosuid`, …).
    #[serde(default, deserialize_with = "null_default")]
    pub options: Vec<String>,
    /// Mount type (`bind`, `none`, `tmpfs`, …).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `hooks[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// When it would run (`createContainer`, …).
    pub hook_name: String,
    /// The program.
    pub path: String,
    /// Its argv.
    #[serde(default, deserialize_with = "null_default")]
    pub args: Vec<String>,
}

/// YAML's `key:` with no value (null) reads as the empty value, as Go's decoder does.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Only the kind, read from a spec that failed: which vendor it was meant for.
#[derive(Deserialize)]
struct KindOnly {
    kind: Option<String>,
}

/// Whether `file` is a spec by its name (`.json`, `.yaml`, as the CDI library reads).
pub fn is_spec_file(file: &Path) -> bool {
    matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("json" | "yaml")
    )
}

/// Read at most [`MAX_SPEC_BYTES`] of `file`.
fn read_bounded(file: &Path) -> Result<Vec<u8>, SpecError> {
    let f = std::fs::File::open(file).map_err(|e| SpecError::Read(file.into(), e))?;
    let mut data = Vec::new();
    f.take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| SpecError::Read(file.into(), e))?;
    if data.len() as u64 > MAX_SPEC_BYTES {
        return Err(SpecError::TooBig(file.into()));
    }
    Ok(data)
}

/// `T` from `data`: JSON for `.json`, else YAML; the error names the field.
fn decode<T: serde::de::DeserializeOwned>(file: &Path, data: &[u8]) -> Result<T, SpecError> {
    let syntax = |at: String, why: String| SpecError::Syntax {
        file: file.into(),
        at,
        why,
    };
    if file.extension().and_then(|e| e.to_str()) == Some("json") {
        let mut de = serde_json::Deserializer::from_slice(data);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| syntax(e.path().to_string(), e.into_inner().to_string()))
    } else {
        let de = serde_norway::Deserializer::from_slice(data);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            // The YAML reader puts the field in front of its own message too.
            let why = e.into_inner().to_string();
            let why = why
                .strip_prefix(&format!("{at}: "))
                .unwrap_or(&why)
                .to_string();
            syntax(at, why)
        })
    }
}

/// Read, parse and check the spec in `file`. On failure, also the kind the file
/// declares when that much of it reads (to tell whether it concerns a request).
pub fn load(file: &Path) -> Result<Spec, (SpecError, Option<String>)> {
    let data = read_bounded(file).map_err(|e| (e, None))?;
    let spec: Spec = match decode(file, &data) {
        Ok(s) => s,
        Err(e) => {
            let kind = decode::<KindOnly>(file, &data).ok().and_then(|k| k.kind);
            return Err((e, kind));
        }
    };
    super::check::spec(&spec).map_err(|p| {
        let e = SpecError::Invalid {
            file: file.into(),
            at: p.at,
            why: p.why,
        };
        (e, Some(spec.kind.clone()))
    })?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const YAML: &str = "cdiVersion: 0.6.0\nkind: example.com/gpu\nextraTopLevel: 1\ndevices:\n- name: gpu0\n  annotations: {a: b}\n  containerEdits:\n    deviceNodes:\n    - path: /dev/gpu0\n      hostPath: /dev/null\n      type: c\n    env:\ncontainerEdits:\n  env: [A=1]\n  mounts:\n  - {hostPath: /lib, containerPath: /usr/lib/x, options: [ro, nosuid, bind]}\n";

    #[test]
    fn yaml_and_json_load_unknown_fields_ignored() {
        let d = tempfile::tempdir().unwrap();
        let s = load(&write(d.path(), "a.yaml", YAML)).unwrap();
        assert_eq!(s.kind, "example.com/gpu");
        assert_eq!(
            s.devices[0].container_edits.device_nodes[0]
                .host_path
                .as_deref(),
            Some("/dev/null")
        );
        assert!(s.devices[0].container_edits.env.is_empty());
        assert_eq!(
            s.container_edits.mounts[0].options,
            ["ro", "nosuid", "bind"]
        );
        let json = r#"{"cdiVersion":"1.1.0","kind":"v.io/c","devices":[{"name":"0","containerEdits":{"netDevices":[{"hostInterfaceName":"e","name":"f"}],"newThing":true}}]}"#;
        let s = load(&write(d.path(), "b.json", json)).unwrap();
        assert_eq!(s.devices[0].container_edits.net_devices.len(), 1);
    }

    #[test]
    fn errors_name_file_and_field() {
        let d = tempfile::tempdir().unwrap();
        let missing = YAML.replace("    - path: /dev/gpu0\n", "    - major: 1\n");
        let (e, kind) = load(&write(d.path(), "m.yaml", &missing)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("m.yaml")
                && msg.contains("devices[0].containerEdits.deviceNodes[0]")
                && msg.contains("path"),
            "{msg}"
        );
        assert_eq!(kind.as_deref(), Some("example.com/gpu"));
        let (e, _) = load(&write(
            d.path(),
            "t.json",
            r#"{"cdiVersion":"0.5.0","kind":"v.io/c","devices":[{"name":7}]}"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("devices[0].name"), "{e}");
        let rel = YAML.replace("hostPath: /lib", "hostPath: lib");
        let (e, _) = load(&write(d.path(), "r.yaml", &rel)).unwrap_err();
        assert!(
            e.to_string().contains("containerEdits.mounts[0].hostPath"),
            "{e}"
        );
        let (e, kind) = load(&write(d.path(), "s.yaml", "kind: [unclosed\n")).unwrap_err();
        assert!(e.to_string().contains("s.yaml"), "{e}");
        assert_eq!(kind, None);
        let v = YAML.replace("0.6.0", "0.2.0");
        let (e, _) = load(&write(d.path(), "v.yaml", &v)).unwrap_err();
        assert!(e.to_string().contains("cdiVersion"), "{e}");
        let k = YAML.replace("example.com/gpu", "gpu");
        let (e, _) = load(&write(d.path(), "k.yaml", &k)).unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
    }
}
