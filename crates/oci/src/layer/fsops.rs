//! The file-system side of layer handling, always relative to directory fds: resolving a
//! path inside a layer root without ever following a symlink (openat2
//! `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`, or a component-by-component `O_NOFOLLOW` walk on
//! kernels without openat2 — Linux < 5.6, e.g. RHEL 8), removing trees (also for the
//! store and the bins: [`remove_tree`]), xattrs, and the `user.containers.override_stat`
//! record.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// The xattr containers/storage and fuse-overlayfs use for ownership that could not be
/// applied: `uid:gid:0mode[:type]` (type: file, dir, symlink, pipe, socket, block-M-m,
/// char-M-m).
pub const OVERRIDE_STAT_XATTR: &str = "user.containers.override_stat";

/// How paths are resolved under a layer root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolver {
    /// openat2 when the kernel has it (5.6+), else the walk.
    #[default]
    Auto,
    /// Always the component-by-component `O_NOFOLLOW` walk (the old-kernel path; forced
    /// in tests so it stays tested).
    Walk,
}

/// An open layer root.
pub struct Root {
    pub fd: OwnedFd,
    openat2: bool,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::RDONLY);

impl Root {
    pub fn open(path: &Path, resolver: Resolver) -> io::Result<Self> {
        let fd = rustix::fs::open(path, DIR_FLAGS, Mode::empty())?;
        let openat2 = resolver == Resolver::Auto && probe_openat2(&fd);
        Ok(Self { fd, openat2 })
    }

    /// True when openat2 resolves paths (for tests and `--log-level debug`).
    pub fn uses_openat2(&self) -> bool {
        self.openat2
    }

    /// Open the existing directory at `parts`. Fails with ELOOP or ENOTDIR when any
    /// component is a symlink or not a directory, ENOENT when one is missing.
    pub fn open_dir(&self, parts: &[Vec<u8>]) -> io::Result<OwnedFd> {
        if parts.is_empty() {
            return Ok(rustix::fs::openat(
                &self.fd,
                c".",
                DIR_FLAGS,
                Mode::empty(),
            )?);
        }
        if self.openat2 {
            let joined =
                CString::new(parts.join(&b'/')).map_err(|_| io::Error::from(Errno::INVAL))?;
            let how =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            loop {
                match rustix::fs::openat2(
                    &self.fd,
                    joined.as_c_str(),
                    DIR_FLAGS,
                    Mode::empty(),
                    how,
                ) {
                    Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                    r => return Ok(r?),
                }
            }
        }
        let mut cur = rustix::fs::openat(&self.fd, c".", DIR_FLAGS, Mode::empty())?;
        for p in parts {
            cur = open_child_dir(&cur, p)?;
        }
        Ok(cur)
    }
}

/// openat2 exists and works here (ENOSYS on old kernels; EPERM under some seccomp
/// profiles that predate it).
fn probe_openat2(fd: &OwnedFd) -> bool {
    rustix::fs::openat2(
        fd,
        c".",
        DIR_FLAGS,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
    .is_ok()
}

/// Open the child directory `name` of `dir`, refusing to follow a symlink.
pub fn open_child_dir(dir: &OwnedFd, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        cstr(name)?.as_c_str(),
        DIR_FLAGS,
        Mode::empty(),
    )?)
}

pub fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(Errno::INVAL))
}

/// `lstat` of a name in a directory; `None` when it does not exist.
pub fn lstat_at(dir: &OwnedFd, name: &CStr) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub fn file_type(st: &rustix::fs::Stat) -> rustix::fs::FileType {
    rustix::fs::FileType::from_raw_mode(st.st_mode)
}

/// Remove `path` and everything under it: the workspace's one remover for trees that may
/// hold mode-000 or read-only directories (overlay's `work/work`, layer dirs, failed
/// unpacks). Fd-relative below the parent of `path`; never follows a symlink (a symlink
/// at `path` itself is removed, not its target). A missing path is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name to remove"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // The caller's own path up to the parent is trusted: follow symlinks there.
    let dir = rustix::fs::open(
        parent,
        OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
    )?;
    remove_all_at(&dir, cstr(name.as_encoded_bytes())?.as_c_str())
}

/// Remove `name` from `dir`, recursively when it is a directory. Never follows symlinks.
pub fn remove_all_at(dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if file_type(&st) != rustix::fs::FileType::Directory {
        return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
    }
    if st.st_mode & 0o700 != 0o700 {
        make_owner_rwx(dir, name, st.st_mode);
    }
    let child = rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?;
    for n in list_dir(&child)? {
        remove_all_at(&child, &n)?;
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Give the owner read, write and search on the directory `name` of `dir` (mode 000 or
/// 0555 from a layer, or overlay's work dir), so it can be listed and emptied. An `O_PATH`
/// open needs no permission on the directory and `O_NOFOLLOW` refuses a symlink; chmod
/// through `/proc/self/fd` then acts on exactly that directory (fchmod does not take an
/// `O_PATH` fd). Failure is ignored: the removal that follows reports what is in the way.
fn make_owner_rwx(dir: &OwnedFd, name: &CStr, mode: rustix::fs::RawMode) {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if let Ok(fd) = rustix::fs::openat(dir, name, flags, Mode::empty()) {
        let p = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let _ignored = rustix::fs::chmod(p.as_str(), Mode::from_raw_mode((mode & 0o7777) | 0o700));
    }
}

/// The names in a directory (without `.` and `..`), unsorted.
pub fn list_dir(dir: &OwnedFd) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    let dup = rustix::fs::openat(dir, c".", DIR_FLAGS, Mode::empty())?;
    let mut d = rustix::fs::Dir::new(dup)?;
    while let Some(ent) = d.read() {
        let ent = ent?;
        let n = ent.file_name();
        if n != c"." && n != c".." {
            names.push(n.to_owned());
        }
    }
    Ok(names)
}

/// The `/proc/self/fd/N/name` path of a name in an open directory: lets the `l*xattr`
/// calls act on the entry itself (never following it) without a path from the root.
pub fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    cstr(&p)
}

/// Set an xattr on `name` in `dir` without following it.
pub fn set_xattr_at(dir: &OwnedFd, name: &[u8], key: &[u8], value: &[u8]) -> io::Result<()> {
    let p = proc_path(dir.as_fd(), name)?;
    Ok(rustix::fs::lsetxattr(
        p.as_c_str(),
        cstr(key)?.as_c_str(),
        value,
        rustix::fs::XattrFlags::empty(),
    )?)
}

/// All xattrs of `name` in `dir` (not following it), sorted by name. Filesystems without
/// xattr support give an empty list.
pub fn xattrs_at(dir: &OwnedFd, name: &[u8]) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let p = proc_path(dir.as_fd(), name)?;
    let mut list = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(p.as_c_str(), &mut list[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let need = rustix::fs::llistxattr_query(p.as_c_str())?;
                list.resize(need.max(list.len() * 2), 0);
            }
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for key in list[..n].split(|b| *b == 0).filter(|k| !k.is_empty()) {
        if let Some(v) = get_xattr_path(&p, key)? {
            out.push((key.to_vec(), v));
        }
    }
    out.sort();
    Ok(out)
}

/// One xattr of `name` in `dir` (not following it); `None` when absent.
pub fn get_xattr_at(dir: &OwnedFd, name: &[u8], key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    get_xattr_path(&proc_path(dir.as_fd(), name)?, key)
}

fn get_xattr_path(p: &CStr, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let key = cstr(key)?;
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(p, key.as_c_str(), &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => {
                let need = rustix::fs::lgetxattr_query(p, key.as_c_str())?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Ownership and mode recorded in [`OVERRIDE_STAT_XATTR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideStat {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits incl. setuid/setgid/sticky (0o7777).
    pub mode: u32,
    /// `file`, `dir`, `symlink`, `pipe`, `socket`, `block-M-m`, `char-M-m`; empty when the
    /// record has the older three-field form.
    pub kind: String,
}

impl OverrideStat {
    /// `uid:gid:0mode:type`, as containers/storage writes it (`1000:1011:0644:file`).
    pub fn format(&self) -> String {
        if self.kind.is_empty() {
            format!("{}:{}:0{:o}", self.uid, self.gid, self.mode & 0o7777)
        } else {
            format!(
                "{}:{}:0{:o}:{}",
                self.uid,
                self.gid,
                self.mode & 0o7777,
                self.kind
            )
        }
    }

    /// The device a record stands for, `(is_char, major, minor)`, from a `char-M-m` or
    /// `block-M-m` kind: a rootless mknod makes a plain file that carries it.
    pub fn device(&self) -> Option<(bool, u32, u32)> {
        let (is_char, rest) = match self.kind.strip_prefix("char-") {
            Some(r) => (true, r),
            None => (false, self.kind.strip_prefix("block-")?),
        };
        let (major, minor) = rest.split_once('-')?;
        Some((is_char, major.parse().ok()?, minor.parse().ok()?))
    }

    /// Parse both the three- and four-field forms; `None` when malformed.
    pub fn parse(v: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(v).ok()?.trim_end_matches('\0');
        let mut it = s.splitn(4, ':');
        let uid = it.next()?.parse().ok()?;
        let gid = it.next()?.parse().ok()?;
        let mode = u32::from_str_radix(it.next()?, 8).ok()?;
        let kind = it.next().unwrap_or("").to_owned();
        Some(Self {
            uid,
            gid,
            mode: mode & 0o7777,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_tree_empties_mode_000_dirs_and_never_follows_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        let t = d.path().join("t");
        std::fs::create_dir_all(t.join("a/b")).unwrap();
        std::fs::write(t.join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, t.join("a/link")).unwrap();
        std::fs::create_dir(t.join("ro")).unwrap();
        std::fs::write(t.join("ro/f"), b"x").unwrap();
        std::fs::set_permissions(t.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        std::fs::set_permissions(t.join("a/b"), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(t.join("a"), std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&t).unwrap();
        assert!(!t.exists());
        assert!(outside.join("keep").exists());
        // Missing is fine; a symlink at the top goes, its target stays.
        remove_tree(&t).unwrap();
        let top = d.path().join("top");
        std::os::unix::fs::symlink(&outside, &top).unwrap();
        remove_tree(&top).unwrap();
        assert!(top.symlink_metadata().is_err() && outside.join("keep").exists());
        assert!(remove_tree(Path::new("/")).is_err());
    }

    #[test]
    fn override_stat_format_matches_containers_storage() {
        let s = OverrideStat {
            uid: 1000,
            gid: 1011,
            mode: 0o644,
            kind: "file".into(),
        };
        assert_eq!(s.format(), "1000:1011:0644:file");
        let d = OverrideStat {
            uid: 0,
            gid: 0,
            mode: 0o4755,
            kind: "dir".into(),
        };
        assert_eq!(d.format(), "0:0:04755:dir");
        assert_eq!(OverrideStat::parse(b"1000:1011:0644:file"), Some(s));
        assert_eq!(
            OverrideStat::parse(b"33:33:0755").map(|s| (s.uid, s.mode)),
            Some((33, 0o755))
        );
        assert_eq!(
            OverrideStat::parse(b"1:2:0600:char-10-11").unwrap().kind,
            "char-10-11"
        );
        let dev = |v: &[u8]| OverrideStat::parse(v).and_then(|s| s.device());
        assert_eq!(dev(b"1:2:0600:char-10-11"), Some((true, 10, 11)));
        assert_eq!(dev(b"0:6:0660:block-8-0"), Some((false, 8, 0)));
        for v in [
            &b"0:0:0644:file"[..],
            b"0:0:0644:char-1",
            b"0:0:0644:block-x-1",
        ] {
            assert_eq!(dev(v), None);
        }
        assert_eq!(OverrideStat::parse(b"x:1:0644"), None);
    }
}
