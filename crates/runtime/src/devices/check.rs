//! The checks of a parsed CDI spec, as the CDI library makes them: cdiVersion (semver,
//! 0.3.0 or later), kind (`vendor.com/class`), device names (valid, not twice), and each
//! edit (`K=V` env, absolute paths, node types, permissions, hook names).
//! Never: reads files, looks at the host.

use super::spec::{Edits, Spec};

/// The oldest cdiVersion there is a released spec for.
const EARLIEST: (u64, u64, u64) = (0, 3, 0);

/// Hook names of the OCI runtime spec that CDI allows.
const HOOK_NAMES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The first thing wrong with a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {why}")]
pub struct Problem {
    /// The field (`devices[0].name`).
    pub at: String,
    /// What is wrong.
    pub why: String,
}

fn problem(at: String, why: String) -> Problem {
    Problem { at, why }
}

/// `X.Y.Z` (an optional leading `v`, as the CDI library takes).
fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

/// `s` starts with a byte `first_ok` takes, ends with a letter or digit, and has only
/// letters, digits and `between` in between.
fn valid_name(s: &str, first_ok: fn(&u8) -> bool, between: &[u8]) -> bool {
    let b = s.as_bytes();
    matches!((b.first(), b.last()), (Some(f), Some(l)) if first_ok(f) && l.is_ascii_alphanumeric())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || between.contains(c))
}

/// A vendor or class name: a letter first, a letter or digit last, `-_.` between.
pub fn valid_vendor_or_class(s: &str) -> bool {
    valid_name(s, u8::is_ascii_alphabetic, b"-_.")
}

/// A device name: a letter or digit first and last, `-_.:` between.
pub fn valid_device_name(s: &str) -> bool {
    valid_name(s, u8::is_ascii_alphanumeric, b"-_.:")
}

/// `vendor.com/class` split, when valid.
pub fn split_kind(kind: &str) -> Option<(&str, &str)> {
    let (vendor, class) = kind.split_once('/')?;
    (valid_vendor_or_class(vendor) && valid_vendor_or_class(class)).then_some((vendor, class))
}

/// A `K=V` with a non-empty name.
fn valid_env(e: &str) -> bool {
    matches!(e.split_once('='), Some((k, _)) if !k.is_empty())
}

/// The first problem of `spec`.
pub fn spec(spec: &Spec) -> Result<(), Problem> {
    let bad = |at: &str, why: String| Problem { at: at.into(), why };
    match semver(&spec.cdi_version) {
        None => {
            return Err(bad(
                "cdiVersion",
                format!("`{}` is not a version (X.Y.Z)", spec.cdi_version),
            ))
        }
        Some(v) if v < EARLIEST => {
            return Err(bad(
                "cdiVersion",
                format!("`{}` is older than 0.3.0", spec.cdi_version),
            ))
        }
        Some(_) => {}
    }
    if split_kind(&spec.kind).is_none() {
        return Err(bad(
            "kind",
            format!("`{}` is not of the form vendor.com/class", spec.kind),
        ));
    }
    if spec.devices.is_empty() {
        return Err(bad(
            "devices",
            "a spec must define at least one device".into(),
        ));
    }
    for (i, d) in spec.devices.iter().enumerate() {
        let at = format!("devices[{i}]");
        if !valid_device_name(&d.name) {
            return Err(bad(
                &format!("{at}.name"),
                format!("`{}` is not a valid device name", d.name),
            ));
        }
        if spec.devices[..i].iter().any(|o| o.name == d.name) {
            return Err(bad(
                &format!("{at}.name"),
                format!("device `{}` is defined twice", d.name),
            ));
        }
        check_edits(&format!("{at}.containerEdits"), &d.container_edits)?;
    }
    check_edits("containerEdits", &spec.container_edits)
}

/// The first problem of `e`, whose field is `at`.
fn check_edits(at: &str, e: &Edits) -> Result<(), Problem> {
    let abs = |p: &str| p.starts_with('/');
    for (i, v) in e.env.iter().enumerate() {
        if !valid_env(v) {
            return Err(problem(
                format!("{at}.env[{i}]"),
                format!("`{v}` is not NAME=VALUE"),
            ));
        }
    }
    for (i, n) in e.device_nodes.iter().enumerate() {
        let at = format!("{at}.deviceNodes[{i}]");
        if !abs(&n.path) {
            return Err(problem(
                format!("{at}.path"),
                format!("`{}` is not an absolute path", n.path),
            ));
        }
        if let Some(h) = n.host_path.as_deref().filter(|h| !h.is_empty() && !abs(h)) {
            return Err(problem(
                format!("{at}.hostPath"),
                format!("`{h}` is not an absolute path"),
            ));
        }
        if let Some(t) = n
            .kind
            .as_deref()
            .filter(|t| !matches!(*t, "" | "b" | "c" | "u" | "p"))
        {
            return Err(problem(
                format!("{at}.type"),
                format!("`{t}` is not one of b, c, u, p"),
            ));
        }
        if let Some(p) = n.permissions.as_deref() {
            if !(p == "none" || p.chars().all(|c| "rwm".contains(c))) {
                return Err(problem(
                    format!("{at}.permissions"),
                    format!("`{p}` is not made of r, w, m (or none)"),
                ));
            }
        }
    }
    for (i, m) in e.mounts.iter().enumerate() {
        let at = format!("{at}.mounts[{i}]");
        if !abs(&m.host_path) {
            return Err(problem(
                format!("{at}.hostPath"),
                format!("`{}` is not an absolute path", m.host_path),
            ));
        }
        if !abs(&m.container_path) {
            return Err(problem(
                format!("{at}.containerPath"),
                format!("`{}` is not an absolute path", m.container_path),
            ));
        }
    }
    for (i, h) in e.hooks.iter().enumerate() {
        let at = format!("{at}.hooks[{i}]");
        if !HOOK_NAMES.contains(&h.hook_name.as_str()) {
            return Err(problem(
                format!("{at}.hookName"),
                format!("`{}` is not an OCI hook name", h.hook_name),
            ));
        }
        if !abs(&h.path) {
            return Err(problem(
                format!("{at}.path"),
                format!("`{}` is not an absolute path", h.path),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert!(split_kind("nvidia.com/gpu").is_some());
        assert!(split_kind("foo.bar.baz/foo-bar123.B_az").is_some());
        for k in [
            "foo",
            "vendor.com/foo/",
            "vendor.com/foo/bar",
            "/x",
            "1a.com/x",
        ] {
            assert!(split_kind(k).is_none(), "{k}");
        }
        assert!(
            valid_device_name("0")
                && valid_device_name("gpu-0:1")
                && !valid_device_name("a/b")
                && !valid_device_name("-a")
        );
        assert_eq!(semver("v0.8.0"), Some((0, 8, 0)));
        assert_eq!(semver("1.0"), None);
    }
}
