//! Removing from a RUN's upper dir what exists only because the sandbox mounted
//! something there (the /etc files and RUN --mount targets): empty files or dirs the
//! parent state lacks, then parents left empty (BuildKit keeps neither in the layer).
//! A parent left empty stays when its owner or mode is not the parent state's: the RUN
//! changed it (`chown 33 /etc`, recorded by the fakeroot as the owner record), and
//! that change is the layer's.
//!
//! The upper dir is written by the RUN: any of its components may be a symlink the
//! command planted (`ln -s /host/dir /etc`). Everything here is done relative to fds
//! opened with O_NOFOLLOW below the upper dir, so a stub is only removed where it
//! literally is, never through a link — on the host that would delete host files.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{openat, statat, unlinkat, AtFlags, FileType, Mode, OFlags, CWD};

use crate::fsview::{self, LowerView};

/// Drop the mount stubs of `targets` (container paths) from `upper`; best effort: a
/// stub that cannot be removed only leaves an empty file or dir in the layer.
pub fn drop_mount_points(upper: &Path, below: &LowerView, targets: &[String]) {
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(root) = openat(CWD, upper, dir_flags, Mode::empty()) else {
        return;
    };
    for t in targets {
        let comps = fsview::components(t);
        if comps.is_empty() || below.lookup(&comps).is_some() {
            continue;
        }
        // dirs[i] is the directory holding comps[i]; a symlink or non-dir on the way
        // stops the walk, and then nothing is removed for this target.
        let Some(dirs) = parents(&root, &comps, dir_flags) else {
            continue;
        };
        let leaf = &comps[comps.len() - 1];
        if !remove_if_empty(dirs[dirs.len() - 1].as_fd(), leaf) {
            continue;
        }
        // Parents now empty were only copied up, or made as mount stubs, unless the
        // RUN changed their metadata. REMOVEDIR fails on a non-empty dir, which ends
        // the climb.
        for n in (0..comps.len() - 1).rev() {
            if changed_here(upper, below, &comps[..=n])
                || unlinkat(dirs[n].as_fd(), comps[n].as_str(), AtFlags::REMOVEDIR).is_err()
            {
                break;
            }
        }
    }
}

/// True when the dir at `comps` in `upper` differs from the parent state in owner or
/// mode (as the committer reads them: the owner record under the single mapping). A dir
/// the parent state lacks was made as a mount stub: not a change. The walk in
/// [`parents`] already refused links on the way, so the literal path is the dir.
fn changed_here(upper: &Path, below: &LowerView, comps: &[String]) -> bool {
    let Some(old) = below.lookup(comps) else {
        return false;
    };
    match fsview::stat(&fsview::host_path(upper, comps), below.mode) {
        Ok(new) => (new.uid, new.gid, new.mode) != (old.uid, old.gid, old.mode),
        // Unreadable: keep it (an extra dir in the layer loses nothing).
        Err(_) => true,
    }
}

/// The fds of `root` and of each parent component of `comps`, opened without following
/// links; `None` when one is missing, a symlink or not a directory.
fn parents(root: &OwnedFd, comps: &[String], flags: OFlags) -> Option<Vec<OwnedFd>> {
    let mut dirs = vec![root.try_clone().ok()?];
    for c in &comps[..comps.len() - 1] {
        let next = openat(
            dirs[dirs.len() - 1].as_fd(),
            c.as_str(),
            flags,
            Mode::empty(),
        )
        .ok()?;
        dirs.push(next);
    }
    Some(dirs)
}

/// Remove `name` in `dir` when it is an empty regular file or an empty directory (never
/// a symlink); true when it was removed.
fn remove_if_empty(dir: std::os::fd::BorrowedFd<'_>, name: &str) -> bool {
    let Ok(st) = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return false;
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile if st.st_size == 0 => unlinkat(dir, name, AtFlags::empty()).is_ok(),
        FileType::Directory => unlinkat(dir, name, AtFlags::REMOVEDIR).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fsview::OwnerMode;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn mount_points_are_dropped_from_the_upper_dir() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("run/secrets")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::write(upper.join("etc/kept"), "x").unwrap();
        std::fs::write(upper.join("run/secrets/tok"), "").unwrap();
        std::fs::create_dir_all(upper.join("cache")).unwrap();
        let below = LowerView::from_bottom_first(vec![lower], OwnerMode::Real);
        drop_mount_points(
            &upper,
            &below,
            &[
                "/etc/hosts".into(),
                "/run/secrets/tok".into(),
                "/cache".into(),
            ],
        );
        assert!(!upper.join("etc/hosts").exists() && upper.join("etc/kept").exists());
        assert!(!upper.join("run").exists() && !upper.join("cache").exists());
    }

    #[test]
    fn a_parent_the_run_changed_stays() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        for d in ["etc", "opt", "srv"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
            std::fs::create_dir_all(upper.join(d)).unwrap();
            std::fs::write(upper.join(d).join("hosts"), "").unwrap();
        }
        // /etc: chowned under the single mapping (the fakeroot's record); /opt:
        // chmodded; /srv: only copied up for the stub.
        let rec = |p: &Path| {
            let mode = std::fs::metadata(p).unwrap().mode() & 0o7777;
            fsview::set_owner(p, fsview::Kind::Dir, 33, 33, mode, OwnerMode::Xattr).unwrap()
        };
        rec(&upper.join("etc"));
        std::fs::set_permissions(upper.join("opt"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let below = LowerView::from_bottom_first(vec![lower], OwnerMode::Xattr);
        let targets = [
            "/etc/hosts".into(),
            "/opt/hosts".into(),
            "/srv/hosts".into(),
        ];
        drop_mount_points(&upper, &below, &targets);
        assert!(upper.join("etc").is_dir() && !upper.join("etc/hosts").exists());
        assert!(upper.join("opt").is_dir() && !upper.join("opt/hosts").exists());
        assert!(!upper.join("srv").exists());
    }

    #[test]
    fn a_relinked_parent_is_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper, host) = (
            t.path().join("lower"),
            t.path().join("upper"),
            t.path().join("host"),
        );
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(host.join("sub")).unwrap();
        std::fs::write(host.join("hosts"), "").unwrap();
        // The RUN replaced /etc and /d with links to a host dir.
        std::os::unix::fs::symlink(&host, upper.join("etc")).unwrap();
        std::os::unix::fs::symlink(host.join("sub"), upper.join("d")).unwrap();
        let below = LowerView::from_bottom_first(vec![lower], OwnerMode::Real);
        drop_mount_points(
            &upper,
            &below,
            &["/etc/hosts".into(), "/d".into(), "/etc".into()],
        );
        assert!(host.join("hosts").exists(), "a host file was removed");
        assert!(host.join("sub").is_dir(), "a host dir was removed");
        assert!(
            upper.join("d").symlink_metadata().is_ok(),
            "the link is the RUN's"
        );
    }
}
