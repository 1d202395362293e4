//! Mounted checks of what the speed work changed: a created file's fd (direct I/O where
//! the kernel allows it) and the host fds the server keeps per created file.
//! As root (they mount), like the crate's other FUSE tests.
#![allow(clippy::unwrap_used)] // a test's failures are its panics

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{mount, FuseOverlay, FuseSession, MountOptions};

/// A mounted overlay over one lower holding `old`.
struct Mounted {
    dir: PathBuf,
    upper: PathBuf,
    merged: PathBuf,
    session: Option<FuseSession>,
}

impl Mounted {
    fn new(name: &str) -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "the crate's FUSE tests run as root (they mount)"
        );
        let base = std::env::var_os("IMAGO_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/imago-test"));
        let dir = base.join(format!("overlay-fuse-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let [low, upper, work, merged] = ["low", "u", "w", "m"].map(|d| dir.join(d));
        for d in [&low, &upper, &work, &merged] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(low.join("old"), "old").unwrap();
        let fs = FuseOverlay::new(&[&low], &upper, &work).unwrap();
        let session = mount(&merged, fs, &MountOptions::default()).unwrap();
        Self {
            dir,
            upper,
            merged,
            session: Some(session),
        }
    }

    fn at(&self, name: &str) -> PathBuf {
        self.merged.join(name)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            s.unmount().unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run python3 (from the system's dirs: another user cannot reach root's) with `code`,
/// in `dir`, as root or, with `user`, as that uid and gid; its stdout.
fn python(dir: &Path, user: Option<u32>, code: &str) -> String {
    let mut cmd = match user {
        Some(id) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={id}"),
                format!("--regid={id}"),
                "--clear-groups".into(),
                "python3".into(),
            ]);
            c
        }
        None => Command::new("python3"),
    };
    let out = cmd
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_creating_fd_is_coherent_with_other_fds_and_a_shared_mmap() {
    let m = Mounted::new("coherent");
    let out = python(
        &m.merged,
        None,
        r#"import mmap, os
a = os.open("cw", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644); os.write(a, b"aaaa")
b = os.open("cw", os.O_RDONLY); print(os.pread(b, 4, 0)); os.pwrite(a, b"bbbb", 0); print(os.pread(b, 4, 0))
os.ftruncate(a, 4096); m = mmap.mmap(a, 4096); m[0:2] = b"MM"; m.flush(); print(os.pread(b, 4, 0))
os.pwrite(a, b"dd", 2); print(m[0:4]); m.close(); os.close(a); os.close(b)"#,
    );
    assert_eq!(out, "b'aaaa'\nb'bbbb'\nb'MMbb'\nb'MMdd'\n");
    assert_eq!(std::fs::read(m.upper.join("cw")).unwrap()[..4], *b"MMdd");
}

/// A write through the creating fd by a user without CAP_FSETID clears setuid and
/// group-executable setgid, as on any file system (direct writes leave it to the server).
#[test]
fn a_write_through_the_creating_fd_clears_setuid() {
    let m = Mounted::new("suid");
    let public = m.at("pub");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = python(
        &public,
        Some(1),
        r#"import os
f = os.open("ks", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o755); os.fchmod(f, 0o6775)
os.write(f, b"x"); print(oct(os.fstat(f).st_mode & 0o7777)); os.close(f)"#,
    );
    assert_eq!(out, "0o775\n");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&public.join("ks")), 0o775);
    assert_eq!(mode(&m.upper.join("pub/ks")), 0o775);
}

/// With zero-message opens the kernel of Linux 6.18 sends no RELEASE for a created file
/// once it has seen an OPEN refused: the server must keep nothing per created file that
/// only a RELEASE would free (each held a host fd before).
#[test]
fn created_files_hold_no_host_fd_once_the_kernel_forgets_them() {
    let m = Mounted::new("fds");
    // The first open: the server refuses it, the kernel stops sending OPEN and RELEASE.
    assert_eq!(std::fs::read(m.at("old")).unwrap(), b"old");
    // Host fds of this process (other tests serve mounts here too) into this upper.
    let held = || {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|t| t.starts_with(&m.upper) && t != &m.upper)
            .count()
    };
    for i in 0..200 {
        std::fs::write(m.at(&format!("new{i}")), "x").unwrap();
    }
    for i in 0..200 {
        std::fs::remove_file(m.at(&format!("new{i}"))).unwrap();
    }
    // The kernel forgets an unlinked inode on its last close; FORGET comes a little later.
    let mut now = held();
    for _ in 0..100 {
        if now == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        now = held();
    }
    assert_eq!(
        now, 0,
        "host fds into the upper after 200 new files were removed"
    );
}
