//! The FUSE overlay as an unprivileged user: imago-sub and imago-nosub run this test
//! binary again inside `unshare -Urm`, where it mounts the overlay the way the module
//! doc says (open /dev/fuse, mount with `fd=N`, `serve_on`) and runs posix.sh on it;
//! kernel overlayfs gets the same script in the same kind of namespace; outputs and
//! committed layers must match.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use imago_oci::layer::remove_tree;
use imago_overlay::fuse::{self, FuseOverlay};

/// The helper side: inside `unshare -Urm` as imago-sub, mount the FUSE overlay the way
/// the module doc says, serve it, run posix.sh on it, unmount.
fn userns_helper() {
    let var = |k: &str| PathBuf::from(std::env::var_os(k).unwrap_or_else(|| panic!("{k}")));
    let dir = var(HELPER);
    let (top, bottom) = (dir.join("l1"), dir.join("l2"));
    let [upper, work, merged] = <[PathBuf; 3]>::try_from(dirs(&dir, &["fu", "fw", "fm"])).unwrap();
    let fs = FuseOverlay::new(&[&top, &bottom], &upper, &work).unwrap();
    let dev = rustix::fs::open(
        "/dev/fuse",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let data = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other",
        std::os::fd::AsRawFd::as_raw_fd(&dev)
    );
    rustix::mount::mount(
        "imago-overlay",
        &merged,
        "fuse",
        rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
        std::ffi::CString::new(data).unwrap().as_c_str(),
    )
    .unwrap();
    let session = fuse::serve_on(dev, fs, 2).unwrap();
    let out = posix(&merged);
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::empty()).unwrap();
    session.join().unwrap();
    std::fs::write(dir.join("fuse.out"), out).unwrap();
}

#[test]
fn unprivileged_user_namespace_matches_kernel_overlay() {
    if std::env::var_os(HELPER).is_some() {
        return userns_helper();
    }
    assert!(
        is_root(),
        "the crate's tests run as root (they switch to the test users)"
    );
    // With and without a subuid range: `unshare -Urm` maps only the user either way.
    for user in ["imago-sub", "imago-nosub"] {
        as_user_in_userns(user);
    }
}

fn as_user_in_userns(user: &str) {
    let dir = scratch(&format!("userns-{user}"));
    let (top, bottom) = fixture(&dir);
    // The test binary and the scripts, where the user can run them.
    let exe = dir.join("helper");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(script(), dir.join("posix.sh")).unwrap();
    dirs(&dir, &["ku", "kw", "km"]);
    run(Command::new("chown")
        .args(["-R", &format!("{user}:{user}")])
        .arg(&dir));
    let as_user = |args: &[&OsStr]| {
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--", "env", "CHOWN_ID=0"])
            .arg(format!("{HELPER}={}", dir.display()))
            .args(["unshare", "-Urm"])
            .args(args)
            .stdin(Stdio::null());
        run(&mut c)
    };
    let kernel_sh = format!(
        "mount -t overlay overlay -o lowerdir={t}:{b},upperdir={d}/ku,workdir={d}/kw,userxattr {d}/km && exec timeout 600 bash {d}/posix.sh {d}/km 2>&1",
        t = top.display(),
        b = bottom.display(),
        d = dir.display(),
    );
    let kernel = as_user(&[OsStr::new("sh"), OsStr::new("-c"), OsStr::new(&kernel_sh)]);
    as_user(&[
        exe.as_os_str(),
        OsStr::new("--exact"),
        OsStr::new("unprivileged_user_namespace_matches_kernel_overlay"),
        OsStr::new("--test-threads=1"),
    ]);
    let fuse = std::fs::read_to_string(dir.join("fuse.out")).unwrap();
    assert!(
        kernel.contains("== final tree") && kernel.lines().count() > 150,
        "{kernel}"
    );
    same(
        &dir,
        &format!("posix.sh output as {user} in a user namespace (kernel, fuse)"),
        &kernel,
        &fuse,
    );
    same(
        &dir,
        &format!("committed layer as {user} in a user namespace (kernel, fuse)"),
        &committed(&dir.join("ku"), true),
        &committed(&dir.join("fu"), true),
    );
    remove_tree(&dir).unwrap();
}
