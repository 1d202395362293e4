//! What the FUSE overlay's integration tests share: scratch dirs, the fixture and
//! posix.sh runs on kernel overlayfs and on the FUSE overlay, output comparison, and the
//! layer the committer makes of an upper dir.
#![allow(dead_code, clippy::unwrap_used)] // each test crate uses some; panics on purpose

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use imago_oci::layer::{pack, remove_tree, PackOptions};
use imago_overlay::fuse::{self, FuseOverlay, MountOptions};

pub const HERE: &str = env!("CARGO_MANIFEST_DIR");
/// Set in the re-executed test binary that serves the overlay inside the namespace.
pub const HELPER: &str = "IMAGO_FUSE_USERNS_HELPER";

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A fresh scratch dir under $IMAGO_TEST_TMP, reachable by every user.
pub fn scratch(name: &str) -> PathBuf {
    let base = std::env::var_os("IMAGO_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/imago-test"));
    std::fs::create_dir_all(&base).unwrap();
    let d = base.join(format!("overlay-fuse-{name}-{}", std::process::id()));
    remove_tree(&d).unwrap();
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Prepare /dev/fuse (no udev here) and the fixture's lowers in `dir`.
pub fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let _ = std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o666));
    let (top, bottom) = (dir.join("l1"), dir.join("l2"));
    run(Command::new("bash")
        .arg(Path::new(HERE).join("tests/fixture.sh"))
        .args([&top, &bottom]));
    (top, bottom)
}

/// posix.sh: the copy next to the user-namespace test's files, else the crate's.
pub fn script() -> PathBuf {
    match std::env::var_os(HELPER) {
        Some(d) => PathBuf::from(d).join("posix.sh"),
        None => Path::new(HERE).join("tests/posix.sh"),
    }
}

/// posix.sh on `merged`, stdout and stderr as one text (a generous bound against hangs).
pub fn posix(merged: &Path) -> String {
    run(Command::new("timeout")
        .args(["600", "sh", "-c", r#"exec bash "$0" "$1" 2>&1"#])
        .arg(script())
        .arg(merged))
}

pub fn dirs(root: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| {
            let p = root.join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        })
        .collect()
}

pub fn kernel_run(dir: &Path, top: &Path, bottom: &Path) -> (String, PathBuf) {
    let [upper, work, merged] = <[PathBuf; 3]>::try_from(dirs(dir, &["ku", "kw", "km"])).unwrap();
    let opts = format!(
        "lowerdir={}:{},upperdir={},workdir={},userxattr",
        top.display(),
        bottom.display(),
        upper.display(),
        work.display()
    );
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged));
    let out = posix(&merged);
    run(Command::new("umount").arg(&merged));
    (out, upper)
}

pub fn fuse_run(
    dir: &Path,
    tag: &str,
    top: &Path,
    bottom: &Path,
    tune: impl FnOnce(FuseOverlay) -> FuseOverlay,
) -> (String, PathBuf) {
    let names = [format!("{tag}u"), format!("{tag}w"), format!("{tag}m")];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let [upper, work, merged] = <[PathBuf; 3]>::try_from(dirs(dir, &names)).unwrap();
    let fs = tune(FuseOverlay::new(&[top, bottom], &upper, &work).unwrap());
    let session = fuse::mount(&merged, fs, &MountOptions::default()).unwrap();
    let out = posix(&merged);
    session.unmount().unwrap();
    (out, upper)
}

/// Panic with a unified diff when `a` and `b` differ.
pub fn same(dir: &Path, what: &str, a: &str, b: &str) {
    if a == b {
        return;
    }
    let (pa, pb) = (dir.join(format!("{what}.a")), dir.join(format!("{what}.b")));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let diff = Command::new("diff")
        .arg("-u")
        .args([&pa, &pb])
        .output()
        .unwrap();
    panic!("{what} differ:\n{}", String::from_utf8_lossy(&diff.stdout));
}

/// The layer the committer makes of `upper`: one line per tar entry.
pub fn committed(upper: &Path, with_modes: bool) -> String {
    let mut tar = Vec::new();
    pack(upper, &mut tar, &PackOptions::default()).unwrap();
    let mut lines = BTreeSet::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let path = e.path().unwrap().display().to_string();
        let mut line = format!("{path} {:?}", h.entry_type());
        if with_modes {
            line += &format!(" {:o} {}", h.mode().unwrap(), h.size().unwrap());
        }
        lines.insert(line);
    }
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

pub fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}
