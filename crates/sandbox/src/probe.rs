//! What this host allows for rootless containers, probed once into a value that callers
//! pass down (and `iimage info` prints).
//! Owns: the kernel version, whether unprivileged user namespaces, kernel overlayfs in a
//! user namespace, /dev/fuse and openat2 work, the uidmap helpers and this user's
//! subordinate ranges — and a fix text for each missing item.
//! Never: caches in globals, changes the host, reads the store.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::child::run_in_mapping;
use crate::idmap::{find_program, IdMap, IdMapInput, IdRange, MapKind};

/// A kernel release, parsed from uname.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct KernelVersion {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch number (0 when absent).
    pub patch: u32,
    /// The full release string (`6.18.44-fc`).
    pub release: String,
}

impl KernelVersion {
    /// Parse `6.18.44-fc-v657` style releases; None when the first two numbers are missing.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let mut nums = release
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty());
        let major = nums.next()?.parse().ok()?;
        let minor = nums.next()?.parse().ok()?;
        let rest = release.split('.').nth(2).unwrap_or("");
        let patch = rest
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap_or(0);
        Some(KernelVersion {
            major,
            minor,
            patch,
            release: release.to_string(),
        })
    }

    /// At least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// One missing host feature and how to get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// The probed item (the field name of [`HostProbe`]).
    pub item: &'static str,
    /// What it costs when missing and what to do.
    pub text: String,
}

/// The host's rootless capabilities. `detect()` once, pass `&HostProbe` down.
#[derive(Debug, Clone, Serialize)]
pub struct HostProbe {
    /// Kernel release.
    pub kernel: Option<KernelVersion>,
    /// Effective uid of the probing process.
    pub uid: u32,
    /// A new user namespace with a mapping can be made.
    pub userns: bool,
    /// Kernel overlayfs (with `userxattr`) mounts inside a user namespace; None when not
    /// tried (no user namespace).
    pub overlay_in_userns: Option<bool>,
    /// /dev/fuse can be opened read-write.
    pub fuse: bool,
    /// newuidmap, when found.
    pub newuidmap: Option<PathBuf>,
    /// newgidmap, when found.
    pub newgidmap: Option<PathBuf>,
    /// This user's /etc/subuid range.
    pub subuid: Option<IdRange>,
    /// This user's /etc/subgid range.
    pub subgid: Option<IdRange>,
    /// The id mapping imago will use.
    pub id_map: MapKind,
    /// openat2(2) is implemented (kernel 5.6+).
    pub openat2: bool,
    /// One fix per missing item.
    pub fixes: Vec<Fix>,
}

impl HostProbe {
    /// Probe everything, trying the overlay mount under the system temp dir.
    /// Costs two short-lived children (a few ms).
    pub fn detect() -> HostProbe {
        HostProbe::detect_in(&std::env::temp_dir())
    }

    /// Probe everything, trying the overlay mount in a scratch dir under `dir` (pass the
    /// store root: overlay on NFS or another upper file system may differ from /tmp).
    pub fn detect_in(dir: &Path) -> HostProbe {
        let uname = nix::sys::utsname::uname().ok();
        let kernel = uname.and_then(|u| KernelVersion::parse(&u.release().to_string_lossy()));
        let input = IdMapInput::current();
        let userns = probe_userns();
        let overlay_in_userns = userns.then(|| probe_overlay(dir));
        let fuse = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_ok();
        let mut p = HostProbe {
            kernel,
            uid: input.uid,
            userns,
            overlay_in_userns,
            fuse,
            newuidmap: find_program("newuidmap"),
            newgidmap: find_program("newgidmap"),
            subuid: input.subuid,
            subgid: input.subgid,
            id_map: IdMap::plan(&input).kind,
            openat2: crate::sys::has_openat2(),
            fixes: Vec::new(),
        };
        p.fixes = p.compute_fixes();
        p
    }

    /// The fix texts for what is missing (pure: from the fields).
    pub fn compute_fixes(&self) -> Vec<Fix> {
        let mut v = Vec::new();
        let mut fix = |item, text: &str| {
            v.push(Fix {
                item,
                text: text.to_string(),
            })
        };
        if !self.userns {
            fix(
                "userns",
                "no unprivileged user namespaces: irun cannot run. Enable them: \
                 `sysctl user.max_user_namespaces=15000`, on Debian/Ubuntu also \
                 `sysctl kernel.unprivileged_userns_clone=1`, on Ubuntu 24.04+ \
                 `sysctl kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile)",
            );
        }
        if self.overlay_in_userns == Some(false) {
            fix(
                "overlay_in_userns",
                "kernel overlayfs cannot be mounted in a user namespace (needs Linux 5.11+, \
                 and an upper dir on a local file system, not NFS): irun will need the FUSE \
                 or copy fallback",
            );
        }
        if !self.fuse {
            fix(
                "fuse",
                "/dev/fuse is missing or not read-writable: the FUSE overlay fallback is \
                 unavailable (`modprobe fuse`; without udev: `chmod 666 /dev/fuse`)",
            );
        }
        if self.uid != 0 && (self.newuidmap.is_none() || self.newgidmap.is_none()) {
            fix(
                "newuidmap",
                "newuidmap/newgidmap not found: containers get a single id (you = root); \
                 install the `uidmap` package (Debian/Ubuntu) or `shadow-utils` (Fedora/RHEL)",
            );
        }
        if self.uid != 0 && (self.subuid.is_none() || self.subgid.is_none()) {
            fix(
                "subuid",
                "no /etc/subuid or /etc/subgid range for this user: containers get a single \
                 id (you = root, files of other owners kept in xattrs); ask an admin for \
                 `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`",
            );
        }
        if !self.openat2 {
            fix(
                "openat2",
                "openat2(2) is missing (kernel < 5.6): path resolution in image roots uses the \
                 slower component-by-component fallback",
            );
        }
        if let Some(k) = &self.kernel {
            if !k.at_least(5, 11) {
                fix(
                    "kernel",
                    "kernel older than 5.11: overlayfs in a user namespace is unavailable, \
                     the FUSE overlay or copy fallback is used",
                );
            }
        }
        v
    }
}

/// Can this process make a user namespace with its mapping? (Forks once.)
pub fn probe_userns() -> bool {
    run_in_mapping(&IdMap::detect(), || Ok::<_, std::io::Error>(())).is_ok()
}

/// Mount kernel overlayfs with `userxattr` in a user namespace over scratch dirs under
/// `dir`; true when the mount and a write through it work.
pub fn probe_overlay(dir: &Path) -> bool {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let base = dir.join(format!(".imago-probe-{}-{nanos}", std::process::id()));
    let mk = || -> std::io::Result<()> {
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(base.join(d))?;
        }
        Ok(())
    };
    if mk().is_err() {
        // Best effort: nothing was mounted, a leftover dir is named as ours.
        let _ = std::fs::remove_dir_all(&base);
        return false;
    }
    let b = base.clone();
    let ok = run_in_mapping(&IdMap::detect(), move || {
        use nix::mount::{mount, umount, MsFlags};
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            b.join("lower").display(),
            b.join("upper").display(),
            b.join("work").display()
        );
        mount(
            Some("overlay"),
            &b.join("merged"),
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(std::io::Error::from)?;
        std::fs::write(b.join("merged/probe"), b"x")?;
        umount(&b.join("merged")).map_err(std::io::Error::from)?;
        Ok::<_, std::io::Error>(())
    })
    .is_ok();
    // Best effort: a leftover probe dir (overlay's work/work is mode 000, which
    // remove_tree handles) is harmless and named as ours.
    let _ = imago_oci::layer::remove_tree(&base);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        let k = KernelVersion::parse("6.18.44-fc-v657").unwrap();
        assert_eq!((k.major, k.minor, k.patch), (6, 18, 44));
        assert!(k.at_least(5, 11) && !k.at_least(6, 19));
        let old = KernelVersion::parse("4.18.0-553.el8_10.x86_64").unwrap();
        assert_eq!((old.major, old.minor, old.patch), (4, 18, 0));
        assert!(KernelVersion::parse("garbage").is_none());
        assert_eq!(KernelVersion::parse("5.4").unwrap().patch, 0);
    }

    fn full() -> HostProbe {
        HostProbe {
            kernel: KernelVersion::parse("6.1.0"),
            uid: 1000,
            userns: true,
            overlay_in_userns: Some(true),
            fuse: true,
            newuidmap: Some("/usr/bin/newuidmap".into()),
            newgidmap: Some("/usr/bin/newgidmap".into()),
            subuid: Some(IdRange {
                start: 100000,
                count: 65536,
            }),
            subgid: Some(IdRange {
                start: 100000,
                count: 65536,
            }),
            id_map: MapKind::SubIds,
            openat2: true,
            fixes: vec![],
        }
    }

    #[test]
    fn nothing_missing_no_fixes() {
        assert!(full().compute_fixes().is_empty());
    }

    #[test]
    fn each_missing_item_has_a_fix() {
        let mut p = full();
        p.userns = false;
        p.overlay_in_userns = None;
        p.fuse = false;
        p.newuidmap = None;
        p.subuid = None;
        p.openat2 = false;
        p.kernel = KernelVersion::parse("4.18.0");
        let items: Vec<_> = p.compute_fixes().iter().map(|f| f.item).collect();
        assert_eq!(
            items,
            ["userns", "fuse", "newuidmap", "subuid", "openat2", "kernel"]
        );
        let mut q = full();
        q.overlay_in_userns = Some(false);
        assert_eq!(q.compute_fixes()[0].item, "overlay_in_userns");
    }

    #[test]
    fn root_needs_no_helpers() {
        let mut p = full();
        p.uid = 0;
        p.newuidmap = None;
        p.subuid = None;
        assert!(p.compute_fixes().is_empty());
    }

    #[test]
    fn detect_runs_and_serializes() {
        let p = HostProbe::detect();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"userns\""));
        // This VM (and CI) allow user namespaces and kernel overlay in them; a host that
        // does not is reported loudly rather than failing.
        if !p.userns {
            eprintln!("SKIP: user namespaces unusable here: {:?}", p.fixes);
        }
        assert!(p.kernel.is_some());
    }
}
