//! The FUSE overlay against kernel overlayfs, as root: posix.sh runs on both over the
//! same lowers (fixture.sh) and must print the same, with both whiteout forms and with
//! and without zero-message opens; the uppers are read back the way imago's layer
//! committer reads them (`imago_oci::layer::pack`) and must hold the same layer. Also
//! lowers in the OCI `.wh.` form and hostile shapes.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use common::*;
use imago_oci::layer::remove_tree;
use imago_overlay::fuse::{self, Forms, FuseOverlay, MountOptions};

#[test]
fn posix_behaviour_matches_kernel_overlay_and_the_upper_commits_alike() {
    assert!(is_root(), "the crate's tests run as root (they mount)");
    let dir = scratch("posix");
    let (top, bottom) = fixture(&dir);
    let (kernel, kupper) = kernel_run(&dir, &top, &bottom);
    let (fuse, fupper) = fuse_run(&dir, "f", &top, &bottom, |fs| fs);
    same(&dir, "posix.sh output (kernel, fuse)", &kernel, &fuse);
    assert!(
        kernel.contains("== final tree") && kernel.lines().count() > 150,
        "{kernel}"
    );
    let files = Forms {
        whiteout_chardev: false,
        opaque_xattr: false,
    };
    // The OCI forms, and a file handle per open (kernels without zero-message opens).
    let (fuse_files, wupper) = fuse_run(&dir, "w", &top, &bottom, |fs| {
        fs.with_forms(files).with_zero_message_open(false)
    });
    same(
        &dir,
        "posix.sh output (kernel, fuse with .wh. files)",
        &kernel,
        &fuse_files,
    );

    same(
        &dir,
        "committed layer (kernel, fuse)",
        &committed(&kupper, true),
        &committed(&fupper, true),
    );
    same(
        &dir,
        "committed layer (kernel, fuse with .wh. files)",
        &committed(&kupper, false),
        &committed(&wupper, false),
    );

    // The forms on disk: a 0:0 char device or `.wh.` file; the opaque xattr or marker.
    let wh = std::fs::symlink_metadata(fupper.join("base2")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(std::fs::symlink_metadata(wupper.join(".wh.base2"))
        .unwrap()
        .is_file());
    assert!(!wupper.join("base2").exists());
    assert_eq!(
        xattr(&fupper.join("dir"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(wupper.join("dir/.wh..wh..opq").exists());
    // A user's `user.overlay.opaque` is stored escaped; it makes nothing opaque.
    assert_eq!(xattr(&fupper.join("big"), "user.overlay.opaque"), None);
    // The sparse copy-up wrote no holes (8 MiB with two short runs of data).
    let sparse = std::fs::metadata(fupper.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 8 << 20);
    assert!(
        sparse.blocks() * 512 <= 64 << 10,
        "{} blocks",
        sparse.blocks()
    );
    remove_tree(&dir).unwrap();
}

#[test]
fn lowers_in_the_oci_form_and_hostile_shapes() {
    assert!(is_root(), "the crate's tests run as root (they mount)");
    let dir = scratch("forms");
    let [low, upper, work, merged] =
        <[PathBuf; 4]>::try_from(dirs(&dir, &["low", "u", "w", "m"])).unwrap();
    let bottom = dirs(&dir, &["bottom"]).remove(0);
    // bottom: files the layer above deletes in the `.wh.` form, dirs it makes opaque.
    for d in ["a", "opq1", "opq2", "opq3", "link-or-dir", "etc-shadow"] {
        std::fs::create_dir_all(bottom.join(d)).unwrap();
        std::fs::write(bottom.join(d).join("old"), "old").unwrap();
    }
    std::fs::write(bottom.join("gone"), "x").unwrap();
    // low: `.wh.gone`, `.wh..wh..opq` in opq1, the fuse-overlayfs and trusted markers.
    for d in ["a", "opq1", "opq2", "opq3"] {
        std::fs::create_dir_all(low.join(d)).unwrap();
        std::fs::write(low.join(d).join("new"), "new").unwrap();
    }
    std::fs::write(low.join(".wh.gone"), "").unwrap();
    std::fs::write(low.join("a/.wh.old"), "").unwrap();
    std::fs::write(low.join("opq1/.wh..wh..opq"), "").unwrap();
    rustix::fs::setxattr(
        low.join("opq2"),
        "user.fuseoverlayfs.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(
        low.join("opq3"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // A symlink over a lower dir hides it; an upper dir over a symlink to /etc never
    // merges with /etc.
    std::os::unix::fs::symlink("/nonexistent", low.join("link-or-dir")).unwrap();
    std::os::unix::fs::symlink("/etc", low.join("etc-shadow")).unwrap();
    std::fs::create_dir_all(upper.join("etc-shadow")).unwrap();
    std::fs::write(upper.join("etc-shadow/mine"), "mine").unwrap();

    let fs = FuseOverlay::new(&[&low, &bottom], &upper, &work).unwrap();
    let session = fuse::mount(&merged, fs, &MountOptions::default()).unwrap();
    let ls = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(merged.join(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let result = std::panic::catch_unwind(|| {
        assert_eq!(
            ls(""),
            ["a", "etc-shadow", "link-or-dir", "opq1", "opq2", "opq3"]
        );
        assert_eq!(ls("a"), ["new"]);
        for d in ["opq1", "opq2", "opq3"] {
            assert_eq!(ls(d), ["new"], "{d}");
        }
        assert_eq!(ls("etc-shadow"), ["mine"]);
        assert!(std::fs::symlink_metadata(merged.join("link-or-dir"))
            .unwrap()
            .is_symlink());
        assert!(!merged.join("gone").exists());
        // `.wh.` names are the overlay's: never shown, never created.
        let e = std::fs::write(merged.join(".wh.x"), "").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc_einval()), "{e}");
        let e = rustix::fs::lsetxattr(
            merged.join("a/new"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap_err();
        assert_eq!(e, rustix::io::Errno::OPNOTSUPP);
        // Inode numbers survive a copy-up.
        let before = std::fs::metadata(merged.join("a/new")).unwrap().ino();
        std::fs::set_permissions(merged.join("a/new"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        assert_eq!(
            std::fs::metadata(merged.join("a/new")).unwrap().ino(),
            before
        );
        assert_eq!(
            std::fs::read_to_string(merged.join("a/new")).unwrap(),
            "new"
        );
        // A directory with lower parts cannot be renamed (no redirect_dir): EXDEV.
        let e = std::fs::rename(merged.join("a"), merged.join("b")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(18), "{e}");
        let statfs = rustix::fs::statvfs(&merged).unwrap();
        assert!(statfs.f_blocks > 0);
    });
    session.unmount().unwrap();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    // The upper: the copied-up file and its dir, nothing else new.
    assert!(upper.join("a/new").is_file());
    assert!(!upper.join("gone").exists() && !upper.join(".wh.x").exists());
    remove_tree(&dir).unwrap();
}

fn libc_einval() -> i32 {
    rustix::io::Errno::INVAL.raw_os_error()
}
