//! Helpers for the hostile-image tests: a host canary dir that every test user may write
//! (so an escape is visible for unprivileged users too), images whose paths imago touches
//! are symlinks aiming at it, written with the `tar` crate on top of the busybox rootfs and
//! imported with the real `iimage import`.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a test failure

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use imago_it::Env;

/// How a hostile link reaches the canary dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aim {
    /// Through the old root that stayed reachable during setup: `/.imago-oldroot/<canary>`.
    OldRoot,
    /// An absolute link: `/<canary>` (the host's path, meaningful only on the host).
    Absolute,
    /// A `..` chain climbing far above the root, then the canary's path.
    DotDot,
}

impl Aim {
    pub const ALL: [Aim; 3] = [Aim::OldRoot, Aim::Absolute, Aim::DotDot];

    pub fn name(self) -> &'static str {
        match self {
            Aim::OldRoot => "oldroot",
            Aim::Absolute => "abs",
            Aim::DotDot => "dotdot",
        }
    }

    /// The link text aiming at `canary` (an absolute host path).
    pub fn target(self, canary: &Path) -> String {
        let c = canary.display();
        match self {
            Aim::OldRoot => format!("/.imago-oldroot{c}"),
            Aim::Absolute => format!("{c}"),
            Aim::DotDot => format!("../../../../../../../../../..{c}"),
        }
    }
}

/// A world-writable host dir that must stay empty.
pub struct Canary(pub PathBuf);

impl Canary {
    pub fn new(env: &Env) -> Canary {
        let p = env.path("canary");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        Canary(p)
    }

    /// Everything in the canary dir (names), recursively.
    pub fn entries(&self) -> Vec<String> {
        fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&p, base, out);
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.0, &self.0, &mut v);
        v
    }

    /// Panic when anything appeared in the canary dir (then empty it for the next case).
    pub fn assert_untouched(&self, what: &str) {
        let e = self.entries();
        if !e.is_empty() {
            for x in std::fs::read_dir(&self.0).unwrap().flatten() {
                let p = x.path();
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
        }
        assert!(
            e.is_empty(),
            "ESCAPE: {what} created {e:?} in the host canary dir"
        );
    }
}

/// The busybox rootfs tar, made once per test process.
pub fn busybox_tar() -> &'static PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir =
            imago_it::scratch_base().join(format!("imago-hostile-base-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("busybox-rootfs.tar");
        let st = std::process::Command::new(
            imago_it::repo_root().join("scripts/make-busybox-rootfs.sh"),
        )
        .arg(&out)
        .status()
        .unwrap();
        assert!(st.success(), "make-busybox-rootfs.sh failed");
        out
    })
}

/// One entry added to the busybox rootfs.
pub enum Extra<'a> {
    /// A symlink (path, target).
    Link(&'a str, &'a str),
    /// A directory.
    Dir(&'a str),
}

/// Write a layer tar: the busybox rootfs without the entries under `drop` (top-level
/// names replaced by the extras), plus `extras`.
pub fn write_tar(out: &Path, drop: &[&str], extras: &[Extra<'_>]) {
    let base = std::fs::File::open(busybox_tar()).unwrap();
    let mut ar = tar::Archive::new(base);
    let f = std::fs::File::create(out).unwrap();
    let mut b = tar::Builder::new(f);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().into_owned();
        let rel = path.strip_prefix(".").unwrap_or(&path).to_path_buf();
        let top = rel.components().next().map(|c| c.as_os_str().to_owned());
        if top.is_some_and(|t| drop.iter().any(|d| t == *d)) {
            continue;
        }
        let mut h = e.header().clone();
        if h.entry_type().is_symlink() {
            let target = e.link_name().unwrap().unwrap().into_owned();
            b.append_link(&mut h, &path, target).unwrap();
        } else {
            b.append_data(&mut h, &path, &mut e).unwrap();
        }
    }
    for x in extras {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match x {
            Extra::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            Extra::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap();
}

/// `iimage import` of `tar` as `name`, as the env's user, with `--change`s.
pub fn import(env: &Env, tar: &Path, name: &str, changes: &[&str]) {
    env.give(tar);
    let mut c = env.cmd("iimage").arg("import");
    for ch in changes {
        c = c.args(["--change", ch]);
    }
    c.arg(tar).arg(name).ok();
}
