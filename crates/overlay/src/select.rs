//! Which storage driver makes a container's root: the decision, from the user's wishes
//! (`--storage-driver`, `$IMAGO_STORAGE_DRIVER`, the config file's `storage_driver`, in
//! that order) or else from what the host offers (the probe), with the reason kept for
//! `iimage info` and the copy driver's note on stderr. Also the probe cache's format.
//!
//! Pure: the caller reads the flag, the environment, the config file and the cache, runs
//! the probe when [`forced`] returns `None` and the cache is stale, and passes the values
//! in. Never: reads files or the environment, probes, mounts.

use serde::{Deserialize, Serialize};

use crate::RootfsMethod;

/// The FUSE overlay can be mounted by the sandbox (`imago_sandbox::fuse_root`). When
/// false, a forced `fuse` is refused with [`SelectError::FuseNotAvailable`] and the
/// probe's choice skips it (kept for builds that leave the FUSE overlay out).
pub const FUSE_WIRED: bool = true;

/// The environment variable that forces a driver.
pub const ENV_VAR: &str = "IMAGO_STORAGE_DRIVER";

/// The config file key that forces a driver.
pub const CONFIG_KEY: &str = "storage_driver";

/// Where a choice came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    /// `--storage-driver`.
    Flag,
    /// `$IMAGO_STORAGE_DRIVER`.
    Env,
    /// `storage_driver` in this config file.
    Config {
        /// The file.
        path: String,
    },
    /// The host probe (fresh or from the cache).
    Probe {
        /// The result came from the store's probe cache.
        cached: bool,
    },
}

/// The driver to use and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The driver.
    pub method: RootfsMethod,
    /// Where the choice came from.
    pub source: Source,
    /// One sentence for people: why this driver.
    pub reason: String,
}

/// What the probe found that the choice depends on (the cached part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFacts {
    /// Kernel overlayfs mounts (and takes a write) in a user namespace; None when no user
    /// namespace could be made.
    pub overlay_in_userns: Option<bool>,
    /// /dev/fuse opens read-write.
    pub fuse_device: bool,
}

/// The store's probe cache file (`<store>/imago/probe-<kernel release>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCache {
    /// [`ProbeCache::VERSION`] when written.
    pub version: u32,
    /// The kernel release it was probed on.
    pub kernel_release: String,
    /// The boot it was probed in (`/proc/sys/kernel/random/boot_id`): a reboot may come
    /// with other sysctls, so a cache of another boot is stale.
    pub boot_id: String,
    /// What was found.
    pub facts: ProbeFacts,
}

impl ProbeCache {
    /// The format version; a cache of another version is stale.
    pub const VERSION: u32 = 1;

    /// The cached facts when the cache was written for this kernel and boot.
    pub fn fresh_facts(&self, kernel_release: &str, boot_id: &str) -> Option<&ProbeFacts> {
        (self.version == Self::VERSION
            && self.kernel_release == kernel_release
            && self.boot_id == boot_id)
            .then_some(&self.facts)
    }
}

/// The cache file's name for a kernel release: characters other than ASCII letters,
/// digits, `.`, `-` and `_` become `_` (a release is the kernel's free text).
pub fn cache_file_name(kernel_release: &str) -> String {
    let safe: String = kernel_release
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    format!("probe-{safe}.json")
}

/// A wish that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Not one of the driver names.
    #[error("unknown storage driver `{value}` from {from}: expected overlay, fuse or copy")]
    Unknown {
        /// What was given.
        value: String,
        /// Where it was given.
        from: String,
    },
    /// `fuse` before the FUSE overlay is wired into the sandbox.
    #[error(
        "storage driver `fuse` (from {from}) is not available yet: the FUSE overlay is not \
         wired into the sandbox; use `overlay` (Linux 5.11+) or `copy`"
    )]
    FuseNotAvailable {
        /// Where it was asked for.
        from: String,
    },
}

/// The user-facing name of a method: `overlay`, `fuse`, `copy`.
pub fn name(m: RootfsMethod) -> &'static str {
    match m {
        RootfsMethod::Kernel => "overlay",
        RootfsMethod::Fuse => "fuse",
        RootfsMethod::Copy => "copy",
    }
}

/// Parse a driver name (`overlay`, `fuse`, `copy`; surrounding blanks ignored).
pub fn parse(value: &str, from: &str) -> Result<RootfsMethod, SelectError> {
    match value.trim() {
        "overlay" => Ok(RootfsMethod::Kernel),
        "fuse" => Ok(RootfsMethod::Fuse),
        "copy" => Ok(RootfsMethod::Copy),
        other => Err(SelectError::Unknown {
            value: other.to_string(),
            from: from.to_string(),
        }),
    }
}

/// The user's wishes, each unset when `None` (an empty value counts as unset).
#[derive(Debug, Clone, Default)]
pub struct Wishes<'a> {
    /// `--storage-driver`.
    pub flag: Option<&'a str>,
    /// `$IMAGO_STORAGE_DRIVER`.
    pub env: Option<&'a str>,
    /// `storage_driver` and the config file it is in.
    pub config: Option<(&'a str, &'a str)>,
}

/// The forced choice, by precedence flag > env > config; `None` when nothing is forced
/// (then probe and call [`probed`]). The first wish that is set decides, also when it
/// is wrong: a bad value is an error, never skipped in favour of a lower one.
pub fn forced(w: &Wishes<'_>, fuse_wired: bool) -> Result<Option<Selection>, SelectError> {
    fn set(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.trim().is_empty())
    }
    let (value, source, from) = if let Some(v) = set(w.flag) {
        (v, Source::Flag, "--storage-driver".to_string())
    } else if let Some(v) = set(w.env) {
        (v, Source::Env, format!("${ENV_VAR}"))
    } else if let Some((v, path)) = w.config.filter(|(v, _)| !v.trim().is_empty()) {
        (
            v,
            Source::Config {
                path: path.to_string(),
            },
            format!("`{CONFIG_KEY}` in {path}"),
        )
    } else {
        return Ok(None);
    };
    let method = parse(value, &from)?;
    if method == RootfsMethod::Fuse && !fuse_wired {
        return Err(SelectError::FuseNotAvailable { from });
    }
    Ok(Some(Selection {
        method,
        source,
        reason: format!("forced by {from}"),
    }))
}

/// The probe's choice: kernel overlayfs when it mounts in a user namespace, else the
/// FUSE overlay when /dev/fuse is usable and the driver is wired, else the copy.
pub fn probed(f: &ProbeFacts, fuse_wired: bool, cached: bool) -> Selection {
    let source = Source::Probe { cached };
    let pick = |method, reason: &str| Selection {
        method,
        source: source.clone(),
        reason: reason.to_string(),
    };
    let no_overlay = match f.overlay_in_userns {
        Some(true) => {
            return pick(
                RootfsMethod::Kernel,
                "kernel overlayfs mounts in a user namespace here",
            )
        }
        Some(false) => concat!(
            "kernel overlayfs does not mount in a user namespace here (Linux < 5.11, ",
            "or the store is on a file system overlay cannot use)"
        ),
        None => "no user namespace could be made to try kernel overlayfs",
    };
    match (f.fuse_device, fuse_wired) {
        (true, true) => pick(
            RootfsMethod::Fuse,
            &format!("{no_overlay}; /dev/fuse is usable"),
        ),
        (true, false) => pick(
            RootfsMethod::Copy,
            &format!("{no_overlay}, and the FUSE overlay is not available yet"),
        ),
        (false, _) => pick(
            RootfsMethod::Copy,
            &format!("{no_overlay}, and /dev/fuse is not usable"),
        ),
    }
}

/// The note the programs print once when the copy driver is used: what it costs and
/// why it was chosen.
pub fn copy_note(s: &Selection) -> Option<String> {
    (s.method == RootfsMethod::Copy).then(|| {
        format!(
            "the copy storage driver copies the image's files for every container and RUN \
             step (slower to start, uses disk space): {}",
            s.reason
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w<'a>(flag: Option<&'a str>, env: Option<&'a str>, config: Option<&'a str>) -> Wishes<'a> {
        Wishes {
            flag,
            env,
            config: config.map(|c| (c, "/h/.config/imago/imago.toml")),
        }
    }

    #[test]
    fn flag_beats_env_beats_config() {
        let s = forced(&w(Some("copy"), Some("overlay"), Some("overlay")), false)
            .unwrap()
            .unwrap();
        assert_eq!((s.method, s.source), (RootfsMethod::Copy, Source::Flag));
        let s = forced(&w(None, Some("copy"), Some("overlay")), false)
            .unwrap()
            .unwrap();
        assert_eq!((s.method, s.source), (RootfsMethod::Copy, Source::Env));
        let s = forced(&w(None, None, Some("overlay")), false)
            .unwrap()
            .unwrap();
        assert_eq!(s.method, RootfsMethod::Kernel);
        assert!(matches!(s.source, Source::Config { .. }), "{s:?}");
        assert!(s.reason.contains("imago.toml"), "{}", s.reason);
    }

    #[test]
    fn nothing_forced_or_empty_values_means_probe() {
        assert_eq!(forced(&w(None, None, None), false).unwrap(), None);
        assert_eq!(
            forced(&w(Some(""), Some(" "), Some("")), false).unwrap(),
            None
        );
        // An empty flag falls through to the env.
        let s = forced(&w(Some(""), Some("copy"), None), false)
            .unwrap()
            .unwrap();
        assert_eq!(s.source, Source::Env);
    }

    #[test]
    fn a_bad_value_is_an_error_not_skipped() {
        let e = forced(&w(None, Some("btrfs"), Some("copy")), false).unwrap_err();
        assert!(
            e.to_string().contains("`btrfs` from $IMAGO_STORAGE_DRIVER"),
            "{e}"
        );
    }

    #[test]
    fn fuse_forced_is_refused_until_wired() {
        let e = forced(&w(Some("fuse"), None, None), false).unwrap_err();
        assert_eq!(
            e,
            SelectError::FuseNotAvailable {
                from: "--storage-driver".into()
            }
        );
        assert!(e.to_string().contains("not available yet"), "{e}");
        let s = forced(&w(Some("fuse"), None, None), true).unwrap().unwrap();
        assert_eq!(s.method, RootfsMethod::Fuse);
    }

    #[test]
    fn probe_prefers_kernel_then_fuse_then_copy() {
        let f = |o, d| ProbeFacts {
            overlay_in_userns: o,
            fuse_device: d,
        };
        assert_eq!(
            probed(&f(Some(true), false), false, true).method,
            RootfsMethod::Kernel
        );
        assert_eq!(
            probed(&f(Some(false), true), true, false).method,
            RootfsMethod::Fuse
        );
        let c = probed(&f(Some(false), true), false, false);
        assert_eq!(c.method, RootfsMethod::Copy);
        assert!(c.reason.contains("not available yet"), "{}", c.reason);
        let c = probed(&f(None, false), false, false);
        assert_eq!(c.method, RootfsMethod::Copy);
        assert!(c.reason.contains("/dev/fuse is not usable"), "{}", c.reason);
        assert_eq!(c.source, Source::Probe { cached: false });
        assert!(copy_note(&c).is_some());
        assert!(copy_note(&probed(&f(Some(true), true), true, false)).is_none());
    }

    #[test]
    fn names_round_trip() {
        for m in [RootfsMethod::Kernel, RootfsMethod::Fuse, RootfsMethod::Copy] {
            assert_eq!(parse(name(m), "x"), Ok(m));
        }
        assert!(parse("kernel", "x").is_err());
    }

    #[test]
    fn cache_is_fresh_only_for_its_kernel_and_boot() {
        let c = ProbeCache {
            version: ProbeCache::VERSION,
            kernel_release: "6.1.0-18-amd64".into(),
            boot_id: "b1".into(),
            facts: ProbeFacts {
                overlay_in_userns: Some(true),
                fuse_device: true,
            },
        };
        assert!(c.fresh_facts("6.1.0-18-amd64", "b1").is_some());
        assert!(c.fresh_facts("6.1.0-19-amd64", "b1").is_none());
        assert!(c.fresh_facts("6.1.0-18-amd64", "b2").is_none());
        let old = ProbeCache { version: 0, ..c };
        assert!(old.fresh_facts("6.1.0-18-amd64", "b1").is_none());
        assert_eq!(cache_file_name("5.4.0#1 SMP/x"), "probe-5.4.0_1_SMP_x.json");
    }
}
