//! Capabilities of the container process: docker's default set, `--cap-add/--cap-drop`
//! arithmetic (pure), and applying a set before exec (bounding, then E/P/I, ambient
//! cleared). Capabilities here are those of the container's user namespace.
//! Never: sets uids (exec.rs), installs seccomp (seccomp.rs).

use std::collections::BTreeSet;
use std::str::FromStr;

use caps::{CapSet, Capability};

use crate::spec::DEFAULT_CAPS;

/// Errors of parsing or applying capabilities.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A name that is no capability.
    #[error("unknown capability `{0}` (e.g. NET_ADMIN, CAP_SYS_PTRACE, ALL)")]
    Unknown(String),
    /// The kernel refused a change.
    #[error("set capabilities ({what})")]
    Apply {
        /// Which step.
        what: &'static str,
        /// Why.
        #[source]
        source: caps::errors::CapsError,
    },
}

/// Normalise `net_admin` / `CAP_NET_ADMIN` to `CAP_NET_ADMIN`.
pub fn normalise(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// docker's arithmetic: start from the default set, `drop` then `add`; `ALL` in drop
/// empties the set first, `ALL` in add gives every capability the library knows.
pub fn compute(add: &[String], drop: &[String]) -> Result<Vec<String>, CapsError> {
    let mut set: BTreeSet<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let all: BTreeSet<String> = caps::all().iter().map(|c| c.to_string()).collect();
    for d in drop {
        let n = normalise(d);
        if n == "CAP_ALL" {
            set.clear();
        } else if all.contains(&n) {
            set.remove(&n);
        } else {
            return Err(CapsError::Unknown(d.clone()));
        }
    }
    for a in add {
        let n = normalise(a);
        if n == "CAP_ALL" {
            set.extend(all.iter().cloned());
        } else if all.contains(&n) {
            set.insert(n);
        } else {
            return Err(CapsError::Unknown(a.clone()));
        }
    }
    Ok(set.into_iter().collect())
}

/// The bit mask of a set, as /proc/PID/status prints CapBnd.
pub fn mask(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| Capability::from_str(n).ok())
        .fold(0u64, |m, c| m | c.bitmask())
}

fn to_set(names: &[String]) -> Result<caps::CapsHashSet, CapsError> {
    names
        .iter()
        .map(|n| Capability::from_str(&normalise(n)).map_err(|_| CapsError::Unknown(n.clone())))
        .collect()
}

/// Drop every capability outside `keep` from the bounding set (needs CAP_SETPCAP).
/// Capabilities the kernel knows but this library does not are dropped by number too.
pub fn bound(keep: &[String]) -> Result<(), CapsError> {
    let keep = to_set(keep)?;
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(40);
    for c in caps::all() {
        if !keep.contains(&c) && c.index() <= last {
            caps::drop(None, CapSet::Bounding, c).map_err(|source| CapsError::Apply {
                what: "bounding",
                source,
            })?;
        }
    }
    Ok(())
}

/// After the uid change: a root process keeps `keep` effective, permitted and
/// inheritable; a non-root one has none left (the kernel cleared them on setuid).
/// Ambient capabilities are cleared in both cases.
pub fn set_process(keep: &[String], root: bool) -> Result<(), CapsError> {
    let set = if root {
        to_set(keep)?
    } else {
        caps::CapsHashSet::new()
    };
    caps::clear(None, CapSet::Ambient).map_err(|source| CapsError::Apply {
        what: "ambient",
        source,
    })?;
    caps::set(None, CapSet::Effective, &set).map_err(|source| CapsError::Apply {
        what: "effective",
        source,
    })?;
    caps::set(None, CapSet::Permitted, &set).map_err(|source| CapsError::Apply {
        what: "permitted",
        source,
    })?;
    caps::set(None, CapSet::Inheritable, &set).map_err(|source| CapsError::Apply {
        what: "inheritable",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mask_is_dockers() {
        let d = compute(&[], &[]).unwrap();
        assert_eq!(mask(&d), 0xa80425fb);
    }

    #[test]
    fn add_drop_and_all() {
        let s = compute(&["net_admin".into()], &["CAP_CHOWN".into()]).unwrap();
        assert!(s.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!s.contains(&"CAP_CHOWN".to_string()));
        let only = compute(&["SYS_PTRACE".into()], &["ALL".into()]).unwrap();
        assert_eq!(only, vec!["CAP_SYS_PTRACE".to_string()]);
        assert!(compute(&["ALL".into()], &[]).unwrap().len() > 30);
        assert!(matches!(compute(&["FLY".into()], &[]), Err(CapsError::Unknown(n)) if n == "FLY"));
    }
}
