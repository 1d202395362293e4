//! CDI devices by name (`vendor.com/class=name`, `=all`): the spec dirs scanned (later
//! dirs win over earlier ones, as `/var/run/cdi` over `/etc/cdi`; two specs of one dir
//! defining the same device conflict), the requested devices found, and their edits
//! (the spec's own once, then each device's) handed back in request order.
//! Never: checks the host (mod.rs turns edits into binds), runs hooks, mounts.

use std::path::PathBuf;
use std::sync::Arc;

use super::check;
use super::spec::{self, Device, Edits, Spec, SpecError};

/// At most this many spec files are read from one dir (a real node has a handful).
const MAX_SPECS_PER_DIR: usize = 1024;

/// Failures to find a requested CDI device.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    /// The name is not `vendor.com/class=name`.
    #[error("invalid CDI device name `{0}`: expected vendor.com/class=name")]
    Name(String),
    /// A spec dir could not be listed.
    #[error("list CDI spec dir `{0}`")]
    Dir(PathBuf, #[source] std::io::Error),
    /// A spec of the requested kind is broken: what it defines is unknown.
    #[error("CDI device `{device}`: a spec of its kind cannot be used")]
    Broken {
        /// The requested device.
        device: String,
        /// The broken spec.
        #[source]
        source: Arc<SpecError>,
    },
    /// No spec defines the kind.
    #[error("unknown CDI device `{device}`: no spec in {dirs} defines kind `{kind}`{unread}")]
    UnknownKind {
        /// The requested device.
        device: String,
        /// Its kind.
        kind: String,
        /// The dirs looked in.
        dirs: String,
        /// Spec files that could not be read, if any.
        unread: String,
    },
    /// The kind exists but not the device.
    #[error("unknown CDI device `{device}`: kind `{kind}` has {known}{unread}")]
    UnknownDevice {
        /// The requested device.
        device: String,
        /// Its kind.
        kind: String,
        /// The names it has.
        known: String,
        /// Spec files that could not be read, if any.
        unread: String,
    },
    /// Two specs of one dir define the device.
    #[error("CDI device `{device}` is defined by both `{a}` and `{b}`")]
    Conflict {
        /// The requested device.
        device: String,
        /// One spec.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
}

/// A parsed spec with where it came from.
#[derive(Debug)]
struct Loaded {
    file: PathBuf,
    priority: usize,
    spec: Spec,
}

/// A spec file that failed, with the kind it declares when that much reads.
#[derive(Debug)]
struct Unread {
    error: Arc<SpecError>,
    kind: Option<String>,
}

/// The specs of the spec dirs, read once for all the requests of one run.
#[derive(Debug, Default)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    specs: Vec<Loaded>,
    unread: Vec<Unread>,
}

/// Edits to apply for one request, with a label for notes: `vendor.com/class=name`, or
/// the spec file for its own edits.
#[derive(Debug)]
pub struct Found<'a> {
    /// What the edits come from.
    pub label: String,
    /// The edits.
    pub edits: &'a Edits,
}

/// Whether `value` is a CDI name rather than a host path (the CDI library's test: not
/// absolute, and `=` after a `/`-qualified kind).
pub fn is_cdi_name(value: &str) -> bool {
    !value.starts_with('/')
        && matches!(value.split_once('='), Some((k, n)) if k.contains('/') && !n.is_empty())
}

/// Split `vendor.com/class=name`, checked.
pub fn parse_name(value: &str) -> Result<(&str, &str), CdiError> {
    let bad = || CdiError::Name(value.into());
    let (kind, name) = value.split_once('=').ok_or_else(bad)?;
    check::split_kind(kind).ok_or_else(bad)?;
    if !check::valid_device_name(name) {
        return Err(bad());
    }
    Ok((kind, name))
}

impl Registry {
    /// Read every `.json` and `.yaml` spec in `dirs` (missing dirs are skipped; files
    /// that fail are kept aside: they fail only the requests they may concern).
    pub fn load(dirs: &[PathBuf]) -> Result<Registry, CdiError> {
        let mut reg = Registry {
            dirs: dirs.to_vec(),
            ..Registry::default()
        };
        for (priority, dir) in dirs.iter().enumerate() {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CdiError::Dir(dir.clone(), e)),
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| spec::is_spec_file(p) && p.is_file())
                .take(MAX_SPECS_PER_DIR)
                .collect();
            files.sort();
            for file in files {
                match spec::load(&file) {
                    Ok(spec) => reg.specs.push(Loaded {
                        file,
                        priority,
                        spec,
                    }),
                    Err((error, kind)) => reg.unread.push(Unread {
                        error: Arc::new(error),
                        kind,
                    }),
                }
            }
        }
        Ok(reg)
    }

    /// Spec files that failed, one line each, for a note when a request succeeded
    /// without them.
    pub fn unread_notes(&self) -> Vec<String> {
        self.unread
            .iter()
            .map(|u| format!("skipped {}", u.error))
            .collect()
    }

    fn unread_suffix(&self) -> String {
        if self.unread.is_empty() {
            return String::new();
        }
        let list: Vec<String> = self.unread.iter().map(|u| u.error.to_string()).collect();
        format!(" (spec files that could not be read: {})", list.join("; "))
    }

    /// The device `name` of `kind`, by priority: the spec of the latest dir wins.
    fn device<'a>(
        &'a self,
        value: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<(&'a Loaded, &'a Device)>, CdiError> {
        let mut best: Option<(&Loaded, &Device)> = None;
        for l in self.specs.iter().filter(|l| l.spec.kind == kind) {
            let Some(d) = l.spec.devices.iter().find(|d| d.name == name) else {
                continue;
            };
            match best {
                Some((b, _)) if b.priority == l.priority => {
                    return Err(CdiError::Conflict {
                        device: value.into(),
                        a: b.file.clone(),
                        b: l.file.clone(),
                    })
                }
                Some((b, _)) if b.priority > l.priority => {}
                _ => best = Some((l, d)),
            }
        }
        Ok(best)
    }

    /// The edits for the CDI device `value` (`vendor.com/class=name`; `=all` is every
    /// device of the kind unless a spec defines one named `all`), the spec's own edits
    /// first, once per spec across the whole run (`seen` keeps track).
    pub fn resolve<'a>(
        &'a self,
        value: &str,
        seen: &mut Vec<PathBuf>,
    ) -> Result<Vec<Found<'a>>, CdiError> {
        let (kind, name) = parse_name(value)?;
        if let Some(u) = self.unread.iter().find(|u| u.kind.as_deref() == Some(kind)) {
            return Err(CdiError::Broken {
                device: value.into(),
                source: Arc::clone(&u.error),
            });
        }
        let of_kind: Vec<&Loaded> = self.specs.iter().filter(|l| l.spec.kind == kind).collect();
        if of_kind.is_empty() {
            let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(CdiError::UnknownKind {
                device: value.into(),
                kind: kind.into(),
                dirs: if dirs.is_empty() {
                    "(no spec dirs)".into()
                } else {
                    dirs.join(", ")
                },
                unread: self.unread_suffix(),
            });
        }
        let mut names: Vec<&str> = Vec::new();
        for l in &of_kind {
            for d in &l.spec.devices {
                if !names.contains(&d.name.as_str()) {
                    names.push(&d.name);
                }
            }
        }
        let wanted: Vec<&str> = if name == "all" && !names.contains(&"all") {
            names.clone()
        } else {
            vec![name]
        };
        let mut out = Vec::new();
        for n in wanted {
            let qualified = format!("{kind}={n}");
            let Some((l, d)) = self.device(&qualified, kind, n)? else {
                return Err(CdiError::UnknownDevice {
                    device: value.into(),
                    kind: kind.into(),
                    known: format!("only {}", names.join(", ")),
                    unread: self.unread_suffix(),
                });
            };
            if !seen.contains(&l.file) {
                seen.push(l.file.clone());
                out.push(Found {
                    label: format!("{qualified} (spec `{}`)", l.file.display()),
                    edits: &l.spec.container_edits,
                });
            }
            out.push(Found {
                label: qualified,
                edits: &d.container_edits,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, devs: &[&str], env: &str) -> String {
        let devices: Vec<String> = devs
            .iter()
            .map(|d| format!(r#"{{"name":"{d}","containerEdits":{{"env":["DEV={d}"]}}}}"#))
            .collect();
        format!(
            r#"{{"cdiVersion":"0.6.0","kind":"{kind}","containerEdits":{{"env":["{env}"]}},"devices":[{}]}}"#,
            devices.join(",")
        )
    }

    fn envs(found: &[Found<'_>]) -> Vec<String> {
        found.iter().flat_map(|f| f.edits.env.clone()).collect()
    }

    #[test]
    fn lookup_priority_all_and_errors() {
        let t = tempfile::tempdir().unwrap();
        let (etc, run) = (t.path().join("etc"), t.path().join("run"));
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(etc.join("a.json"), spec("v.io/gpu", &["0", "1"], "S=etc")).unwrap();
        std::fs::write(run.join("b.json"), spec("v.io/gpu", &["1"], "S=run")).unwrap();
        std::fs::write(etc.join("ignored.txt"), "not a spec").unwrap();
        let dirs = vec![etc.clone(), run.clone(), t.path().join("missing")];
        let reg = Registry::load(&dirs).unwrap();
        let mut seen = vec![];
        let f = reg.resolve("v.io/gpu=1", &mut seen).unwrap();
        assert_eq!(envs(&f), ["S=run", "DEV=1"]);
        assert!(seen[0].starts_with(&run));
        let f = reg.resolve("v.io/gpu=0", &mut seen).unwrap();
        assert_eq!(envs(&f), ["S=etc", "DEV=0"]);
        let f = reg.resolve("v.io/gpu=0", &mut seen).unwrap();
        assert_eq!(envs(&f), ["DEV=0"], "a spec's own edits once per run");
        let f = reg.resolve("v.io/gpu=all", &mut vec![]).unwrap();
        assert_eq!(envs(&f), ["S=etc", "DEV=0", "S=run", "DEV=1"]);
        let e = reg.resolve("v.io/gpu=2", &mut vec![]).unwrap_err();
        assert!(e.to_string().contains("only 0, 1"), "{e}");
        let e = reg.resolve("v.io/nic=0", &mut vec![]).unwrap_err();
        assert!(e.to_string().contains("kind `v.io/nic`"), "{e}");
        assert!(reg.resolve("gpu=0", &mut vec![]).is_err());
        std::fs::write(etc.join("c.json"), spec("v.io/gpu", &["0"], "S=c")).unwrap();
        let reg = Registry::load(&dirs).unwrap();
        let e = reg.resolve("v.io/gpu=0", &mut vec![]).unwrap_err();
        assert!(matches!(e, CdiError::Conflict { .. }), "{e}");
    }

    #[test]
    fn broken_spec_fails_its_kind_only() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("ok.json"), spec("v.io/gpu", &["0"], "S=1")).unwrap();
        std::fs::write(
            t.path().join("bad.yaml"),
            "cdiVersion: 0.6.0\nkind: w.io/nic\ndevices:\n- containerEdits: {}\n",
        )
        .unwrap();
        let reg = Registry::load(&[t.path().to_path_buf()]).unwrap();
        assert!(reg.resolve("v.io/gpu=0", &mut vec![]).is_ok());
        assert_eq!(reg.unread_notes().len(), 1);
        let e = reg.resolve("w.io/nic=0", &mut vec![]).unwrap_err();
        let why = std::error::Error::source(&e)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            why.contains("bad.yaml") && why.contains("devices[0]"),
            "{why}"
        );
        assert!(is_cdi_name("v.io/gpu=0") && !is_cdi_name("/dev/x") && !is_cdi_name("a=b"));
    }
}
