//! mknod of a device, which no process in a user namespace may make: as fakeroot(1)
//! does, an empty regular file is made in its place and recorded as the device
//! (`uid:gid:0mode:char-M-m` or `block-M-m`, containers/storage's form); the layer
//! committer writes a device entry for it, and the stat family shows it as the device
//! (files.rs). The owner is who the caller believes it is (the group a set-group-id
//! parent's: create.rs). A caller that believes it is not root gets EPERM, as a real
//! non-root user (without CAP_MKNOD) does.
//! Anything else (sockets, files, the 0:0 whiteout) runs as is; fifos: special.rs.
//! Never: makes a real node, resolves a path itself (create.rs, record.rs).

use std::os::fd::AsFd;

use imago_oci::layer::OverrideStat;
use nix::errno::Errno;
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::record;
use crate::supervisor::{Answer, Stats};

/// A device node's call.
pub(crate) struct Mknod {
    pub dirfd: i32,
    pub path: u64,
    pub mode: u32,
    pub dev: u64,
}

impl Mknod {
    /// mknodat(dirfd, path, mode, dev).
    pub fn at(a: &[u64; 6]) -> Mknod {
        Mknod {
            dirfd: a[0] as i32,
            path: a[1],
            mode: a[2] as u32,
            dev: a[3],
        }
    }

    /// mknod(path, mode, dev), relative to the cwd.
    #[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
    pub fn cwd(a: &[u64; 6]) -> Mknod {
        Mknod {
            dirfd: libc::AT_FDCWD,
            path: a[0],
            mode: a[1] as u32,
            dev: a[2],
        }
    }
}

/// The record's kind for a device `mode`/`dev`; `None` for what the kernel makes itself.
fn kind(mode: u32, dev: u64) -> Option<String> {
    let name = match mode & libc::S_IFMT {
        libc::S_IFBLK => "block",
        libc::S_IFCHR if dev != 0 => "char",
        _ => return None,
    };
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    Some(format!("{name}-{major}-{minor}"))
}

/// Answer a mknod/mknodat of process `n.pid`, who believes it is `owner`.
pub(crate) fn mknod(
    listener: std::os::fd::BorrowedFd<'_>,
    n: &libc::seccomp_notif,
    stats: &mut Stats,
    owner: (u32, u32),
    call: &Mknod,
) -> Answer {
    let Some(kind) = kind(call.mode, call.dev) else {
        return Answer::Continue;
    };
    if owner.0 != 0 {
        return Answer::Fail(Errno::EPERM);
    }
    let pid = n.pid as i32;
    let path = match record::read_path(pid, call.path) {
        Ok(p) => p,
        Err(e) => return Answer::Fail(e),
    };
    // Not on the container's root file system, or not resolvable from here: no node,
    // a success, as under the no-op fakeroot.
    let Some((dir, name)) = crate::create::parent_of(pid, call.dirfd, &path) else {
        return Answer::Value(0);
    };
    if !crate::sys::notif_id_valid(listener, n.id) {
        return Answer::Fail(Errno::ESRCH);
    }
    let perm = call.mode & 0o7777 & !crate::create::umask(pid);
    let make = OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let made = match rustix::fs::openat(&dir, name.as_str(), make, Mode::from_raw_mode(perm)) {
        Ok(fd) => fd,
        // EEXIST and the rest, as the kernel's mknod would say.
        Err(e) => return Answer::Fail(Errno::from_raw(e.raw_os_error())),
    };
    // stat shows this file's own mode bits (files.rs): the caller's, as the record's.
    crate::create::undo_own_umask(made.as_fd(), libc::S_IFREG, perm);
    let (uid, gid) = crate::create::owner_in(dir.as_fd(), owner);
    let rec = OverrideStat {
        uid,
        gid,
        mode: perm,
        kind,
    };
    match record::put(made.as_fd(), &rec) {
        Ok(()) => stats.recorded += 1,
        Err(e) => {
            tracing::debug!("fakeroot: device not recorded: {e}");
            // A plain file that is not the device would be committed as a file: gone
            // again, the call a success that made nothing, as before. A failed unlink
            // leaves that plain file; nothing better is left to do.
            let _ = rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty());
        }
    }
    Answer::Value(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_get_a_kind_the_rest_runs() {
        let null = libc::makedev(1, 3);
        assert_eq!(
            kind(libc::S_IFCHR | 0o666, null).as_deref(),
            Some("char-1-3")
        );
        let sda = libc::makedev(8, 0);
        assert_eq!(
            kind(libc::S_IFBLK | 0o660, sda).as_deref(),
            Some("block-8-0")
        );
        assert_eq!(kind(libc::S_IFCHR, 0), None, "the whiteout is real");
        assert_eq!(kind(libc::S_IFIFO | 0o644, 0), None);
        assert_eq!(kind(libc::S_IFREG | 0o644, 0), None);
    }
}
