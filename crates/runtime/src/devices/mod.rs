//! `--device`: host devices (docker's `HOST[:CONTAINER][:PERMS]`) and CDI devices
//! (`vendor.com/class=name`, specs in [`DEFAULT_SPEC_DIRS`] or `$IMAGO_CDI_SPEC_DIRS`)
//! turned into a [`DevicePlan`]: binds (and CDI tmpfs mounts) that the sandbox's mount
//! plan applies after the user's own mounts, each container path resolved inside the
//! root like any bind; `K=V` for the environment; and notes on what was asked but is
//! not done (hooks, extra groups, cgroup permissions), for the caller to show.
//! Device nodes are always bound from the host, never made: mknod of a device is refused
//! in a user namespace, and binding keeps root's and a user's containers alike.
//! Never: mounts, runs hooks, prints.

pub mod cdi;
pub mod check;
pub mod host;
pub mod spec;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use imago_sandbox::UserMount;

use crate::config::ImageDefaults;
use host::NodeKind;

/// The variable naming the CDI spec dirs (`:`-separated; later dirs win; set and empty:
/// none, CDI off).
pub const SPEC_DIRS_ENV: &str = "IMAGO_CDI_SPEC_DIRS";

/// CDI's spec dirs: static specs, then generated ones (which win).
pub const DEFAULT_SPEC_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

/// What `--device` values add to a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicePlan {
    /// CDI mounts (parents before children), then device nodes; later entries for one
    /// container path replace earlier ones.
    pub mounts: Vec<UserMount>,
    /// `K=V` from CDI specs, in order: over the image's ENV, under `--env-file` and `-e`.
    pub env: Vec<String>,
    /// What was asked but is not done, one sentence each.
    pub notes: Vec<String>,
}

/// A `--device` value that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Not a host path nor a CDI name.
    #[error("invalid --device `{value}`: {why}")]
    Flag {
        /// The value.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A host path is missing or of the wrong kind.
    #[error("--device `{value}`: {what} `{path}` {why}")]
    Host {
        /// The value.
        value: String,
        /// `host device`, `device node of …`, `mount source of …`.
        what: String,
        /// The host path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A CDI mount asks for something imago cannot mount.
    #[error("--device `{value}`: mount on `{target}` of {label}: {why}")]
    Mount {
        /// The value.
        value: String,
        /// The spec or device.
        label: String,
        /// The container path.
        target: String,
        /// What is wrong.
        why: String,
    },
    /// CDI lookup.
    #[error(transparent)]
    Cdi(#[from] cdi::CdiError),
}

/// The CDI spec dirs: `$IMAGO_CDI_SPEC_DIRS`, else [`DEFAULT_SPEC_DIRS`].
pub fn spec_dirs() -> Vec<PathBuf> {
    spec_dirs_from(std::env::var_os(SPEC_DIRS_ENV))
}

fn spec_dirs_from(v: Option<OsString>) -> Vec<PathBuf> {
    match v {
        None => DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect(),
        Some(v) => std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
    }
}

/// The image's defaults with the devices' environment after its ENV (so `--env-file`
/// and `-e` still win over both).
pub fn with_device_env(image: &ImageDefaults, plan: &DevicePlan) -> ImageDefaults {
    let mut d = image.clone();
    d.env.extend(plan.env.iter().cloned());
    d
}

/// The plan for `values` (each a `--device` value), CDI names looked up in `dirs`.
pub fn plan(values: &[String], dirs: &[PathBuf]) -> Result<DevicePlan, DeviceError> {
    let mut b = Builder::default();
    let registry = if values.iter().any(|v| cdi::is_cdi_name(v)) {
        Some(cdi::Registry::load(dirs)?)
    } else {
        None
    };
    let mut seen = Vec::new();
    for v in values {
        match &registry {
            Some(reg) if cdi::is_cdi_name(v) => {
                for found in reg.resolve(v, &mut seen)? {
                    b.edits(v, &found)?;
                }
            }
            _ => b.host(v)?,
        }
    }
    if let Some(reg) = registry {
        b.notes.extend(reg.unread_notes());
    }
    Ok(b.finish())
}

/// The plan under construction.
#[derive(Default)]
struct Builder {
    mounts: Vec<UserMount>,
    nodes: Vec<UserMount>,
    env: Vec<String>,
    notes: Vec<String>,
}

/// A note for permissions imago cannot enforce (anything short of read and write).
fn perms_note(value: &str, perms: &str) -> Option<String> {
    (!(perms.contains('r') && perms.contains('w'))).then(|| {
        format!("--device `{value}`: permissions `{perms}` are not enforced (imago uses no device cgroup): the node is as readable and writable as on the host")
    })
}

/// What `p` is on the host, or why it cannot be used (a device is bound, never made:
/// a missing one is an error).
fn look(p: &Path) -> Result<NodeKind, String> {
    host::node_kind(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist on the host".into()
        } else {
            format!("cannot be looked at: {e}")
        }
    })
}

fn bind(src: &Path, dst: &Path) -> UserMount {
    UserMount::Bind {
        src: src.into(),
        dst: dst.into(),
        ro: false,
    }
}

impl Builder {
    fn host(&mut self, value: &str) -> Result<(), DeviceError> {
        let d = host::parse(value).map_err(|why| DeviceError::Flag {
            value: value.into(),
            why,
        })?;
        let err = |why: String| DeviceError::Host {
            value: value.into(),
            what: "host device".into(),
            path: d.src.clone(),
            why,
        };
        if look(&d.src).map_err(err)? == NodeKind::Other {
            return Err(err("is not a device node or a directory of them".into()));
        }
        self.notes.extend(perms_note(value, &d.perms));
        self.nodes.push(bind(&d.src, &d.dst));
        Ok(())
    }

    fn edits(&mut self, value: &str, found: &cdi::Found<'_>) -> Result<(), DeviceError> {
        let label = &found.label;
        let e = found.edits;
        self.env.extend(e.env.iter().cloned());
        for n in &e.device_nodes {
            let src = n
                .host_path
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or(n.path.as_str());
            let err = |why: String| DeviceError::Host {
                value: value.into(),
                what: format!("device node of {label}"),
                path: src.into(),
                why,
            };
            let (is, numbers) = match look(Path::new(src)).map_err(err)? {
                NodeKind::Char(a, b) => ("c", Some((a, b))),
                NodeKind::Block(a, b) => ("b", Some((a, b))),
                NodeKind::Fifo => ("p", None),
                NodeKind::Dir | NodeKind::Other => return Err(err("is not a device node".into())),
            };
            let want = match n.kind.as_deref() {
                Some("u") => "c",
                Some(t) if !t.is_empty() => t,
                _ => is,
            };
            if want != is {
                return Err(err(format!("is of type `{is}`, the spec says `{want}`")));
            }
            let asked = (n.major.unwrap_or(0), n.minor.unwrap_or(0));
            if let (Some((a, b)), true) = (numbers, asked != (0, 0)) {
                if (a as i64, b as i64) != asked {
                    return Err(err(format!(
                        "is {a}:{b} on the host, the spec says {}:{}",
                        asked.0, asked.1
                    )));
                }
            }
            // Empty means rwm, as in the CDI library.
            if let Some(p) = n.permissions.as_deref().filter(|p| !p.is_empty()) {
                self.notes.extend(perms_note(value, p));
            }
            self.nodes.push(bind(Path::new(src), Path::new(&n.path)));
        }
        for m in &e.mounts {
            self.mount(value, label, m)?;
        }
        for h in &e.hooks {
            let argv = if h.args.is_empty() {
                h.path.clone()
            } else {
                h.args.join(" ")
            };
            self.notes.push(format!(
                "{label}: {} hook `{argv}` not run (imago runs no OCI hooks)",
                h.hook_name
            ));
        }
        let gids: Vec<String> = e
            .additional_gids
            .iter()
            .filter(|g| **g != 0)
            .map(u32::to_string)
            .collect();
        if !gids.is_empty() {
            self.notes.push(format!(
                "{label}: additionalGids {} not added (the container keeps the groups it runs with)",
                gids.join(",")
            ));
        }
        if e.intel_rdt.is_some() {
            self.notes.push(format!(
                "{label}: intelRdt not applied (needs root and resctrl)"
            ));
        }
        if !e.net_devices.is_empty() {
            self.notes
                .push(format!("{label}: netDevices not moved in (needs root)"));
        }
        Ok(())
    }

    fn mount(&mut self, value: &str, label: &str, m: &spec::Mount) -> Result<(), DeviceError> {
        let err = |why: String| DeviceError::Mount {
            value: value.into(),
            label: label.into(),
            target: m.container_path.clone(),
            why,
        };
        let is_bind = m.options.iter().any(|o| o == "bind" || o == "rbind");
        let dst = PathBuf::from(&m.container_path);
        match m.kind.as_deref().unwrap_or("") {
            "tmpfs" if !is_bind => {
                // Only key=value data (size=, mode=) reaches tmpfs: flags such as
                // nosuid are imago's own choice for every tmpfs.
                let data: Vec<&str> = m
                    .options
                    .iter()
                    .map(String::as_str)
                    .filter(|o| o.contains('='))
                    .collect();
                self.mounts.push(UserMount::Tmpfs {
                    dst,
                    options: data.join(","),
                });
                return Ok(());
            }
            "" | "bind" | "rbind" | "none" => {}
            _ if is_bind => {}
            other => {
                return Err(err(format!(
                    "type `{other}` is not supported (bind, tmpfs)"
                )))
            }
        }
        let src = PathBuf::from(&m.host_path);
        if let Err(why) = look(&src) {
            return Err(DeviceError::Host {
                value: value.into(),
                what: format!("mount source of {label}"),
                path: src,
                why,
            });
        }
        // The last of ro/rw wins, as in mount(8); other flags (nosuid, nodev, …) are not
        // applied: imago's binds carry the source mount's flags.
        let ro = m
            .options
            .iter()
            .rev()
            .find_map(|o| match o.as_str() {
                "ro" | "readonly" => Some(true),
                "rw" => Some(false),
                _ => None,
            })
            .unwrap_or(false);
        self.mounts.push(UserMount::Bind { src, dst, ro });
        Ok(())
    }

    fn finish(self) -> DevicePlan {
        let mut mounts = last_per_target(self.mounts);
        // Parents before children, as the CDI library sorts them (stable: same depth
        // keeps the spec's order).
        mounts.sort_by_key(|m| target(m).components().count());
        mounts.extend(last_per_target(self.nodes));
        DevicePlan {
            mounts,
            env: self.env,
            notes: self.notes,
        }
    }
}

fn target(m: &UserMount) -> &Path {
    match m {
        UserMount::Bind { dst, .. } | UserMount::Tmpfs { dst, .. } => dst,
    }
}

/// `list` with only the last entry for each target, in the order of those entries.
fn last_per_target(list: Vec<UserMount>) -> Vec<UserMount> {
    let mut out: Vec<UserMount> = Vec::new();
    for m in list {
        out.retain(|o| target(o) != target(&m));
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests;
