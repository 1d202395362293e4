//! Container paths resolved inside the container's root, never on the host. Every path
//! of an image is untrusted: `/etc` may be a symlink to `/../../host/dir`, a `-v` target's
//! parent a link to an absolute host path. [`InRoot`] resolves such a path from an fd of
//! the root the way a chroot would: absolute symlinks restart at the root, `..` stops at
//! it, at most [`MAX_SYMLINKS`] links are followed, and procfs links (the "magic" links
//! like `/proc/self/fd/N` that jump to whatever an fd points at, possibly on the host)
//! are refused. Results are `O_PATH` fds; callers mount onto `/proc/self/fd/N` of them.
//!
//! Two resolvers: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` (Linux 5.6+) for
//! lookups of existing paths, and a component walk from the root fd (every step
//! `openat(O_PATH | O_NOFOLLOW)`, symlinks read and resolved here) on older kernels
//! (RHEL 8's 4.18) and for every creation (missing components are made one by one with
//! `mkdirat` / `openat(O_CREAT | O_EXCL | O_NOFOLLOW)` relative to the already resolved
//! parent). `IMAGO_INROOT=walk` forces the walk (tests run both). The walk is stricter
//! than openat2 on one point: it refuses *every* symlink on procfs (e.g. `/proc/self`),
//! as it cannot tell a magic link from a plain one.
//! Owns: path resolution and creation inside a root, bounded reads of image files.
//! Never: mounts (mounts.rs), follows a path through the host's root.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// Symlinks followed in one resolution before giving up (the kernel's limit, ELOOP).
pub const MAX_SYMLINKS: usize = 40;

/// Steps of one walk (components, links and creations); bounds hostile trees.
const MAX_STEPS: usize = 4096;

/// How paths are resolved; picked once per container ([`Resolver::detect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS for lookups; the walk for
    /// creation.
    Openat2,
    /// The component walk only (kernels without openat2).
    Walk,
}

impl Resolver {
    /// openat2 when the kernel has it, unless `IMAGO_INROOT=walk` forces the walk.
    pub fn detect() -> Resolver {
        if std::env::var_os("IMAGO_INROOT").is_some_and(|v| v == "walk") {
            return Resolver::Walk;
        }
        if crate::sys::has_openat2() {
            Resolver::Openat2
        } else {
            Resolver::Walk
        }
    }
}

/// A path could not be resolved or made inside the root. `path` is the container path
/// asked for.
#[derive(Debug, thiserror::Error)]
pub enum InRootError {
    /// Nothing at the path (and not asked to create it).
    #[error("`{0}` does not exist in the container")]
    NotFound(PathBuf),
    /// A component that must be a directory is not one.
    #[error("`{path}`: `{component}` is not a directory")]
    NotDir {
        /// The container path.
        path: PathBuf,
        /// The offending component.
        component: String,
    },
    /// More than [`MAX_SYMLINKS`] links, or a loop.
    #[error("`{0}`: too many levels of symbolic links (or a procfs magic link)")]
    Loop(PathBuf),
    /// A symlink on procfs (a magic link may point outside the root).
    #[error("`{path}`: `{component}` is a procfs link, which is not followed")]
    MagicLink {
        /// The container path.
        path: PathBuf,
        /// The link's name.
        component: String,
    },
    /// A system call of the resolution failed.
    #[error("`{path}`: {step} `{component}`")]
    Step {
        /// The container path.
        path: PathBuf,
        /// What was done (`open`, `mkdir`, `create`, `readlink`, `stat`).
        step: &'static str,
        /// The component.
        component: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Something is already at a path that must be new (a symlink to create).
    #[error("`{0}` already exists")]
    Exists(PathBuf),
    /// An image file that should be a regular file is not one (a device, a fifo).
    #[error("`{0}` is not a regular file")]
    NotRegular(PathBuf),
    /// An image file is larger than its limit.
    #[error("`{path}` is larger than {max} bytes")]
    TooLarge {
        /// The container path.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// Reading an image file failed.
    #[error("read `{path}`")]
    Read {
        /// The container path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    No,
    Dir,
    File,
}

/// A container root (an fd of its top directory) and the resolver to use in it.
#[derive(Debug, Clone, Copy)]
pub struct InRoot<'a> {
    root: BorrowedFd<'a>,
    how: Resolver,
}

/// `/proc/self/fd/N` of `fd`: mount(2) and open(2) on it act on the file the fd holds.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The components of `bytes` split on `/`, without empty ones and `.`.
fn split(bytes: &[u8]) -> VecDeque<OsString> {
    bytes
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

fn lossy(c: &OsStr) -> String {
    c.to_string_lossy().into_owned()
}

impl<'a> InRoot<'a> {
    /// Resolve paths below `root` (an `O_PATH` or ordinary fd of a directory).
    pub fn new(root: BorrowedFd<'a>, how: Resolver) -> InRoot<'a> {
        InRoot { root, how }
    }

    /// The resolver in use.
    pub fn resolver(&self) -> Resolver {
        self.how
    }

    /// An `O_PATH` fd of the existing `path` (a final symlink is followed, in the root).
    pub fn open(&self, path: &Path) -> Result<OwnedFd, InRootError> {
        match self.how {
            Resolver::Openat2 => self.open2(path),
            Resolver::Walk => self.walk(path, Create::No),
        }
    }

    /// An `O_PATH` fd of the directory `path`, made (with its missing parents, mode 0755)
    /// when missing.
    pub fn mkdir_all(&self, path: &Path) -> Result<OwnedFd, InRootError> {
        self.walk(path, Create::Dir)
    }

    /// An `O_PATH` fd of `path`, an empty file (mode 0644) made when nothing is there;
    /// an existing entry of any type is returned as it is (a mount on it then says why).
    pub fn create_file(&self, path: &Path) -> Result<OwnedFd, InRootError> {
        self.walk(path, Create::File)
    }

    /// Make the symlink `path` → `target`; its parent is made when missing. Fails when
    /// anything (a dangling link included) is already at `path`.
    pub fn symlink(&self, path: &Path, target: &Path) -> Result<(), InRootError> {
        let name = path
            .file_name()
            .ok_or_else(|| InRootError::Exists(path.into()))?;
        let parent = self.mkdir_all(path.parent().unwrap_or(Path::new("/")))?;
        match rustix::fs::symlinkat(target, &parent, name) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => Err(InRootError::Exists(path.into())),
            Err(e) => Err(step(path, "symlink", name, e)),
        }
    }

    /// The contents of the regular file `path`, at most `max` bytes; `None` when it does
    /// not exist. A device, fifo or socket (e.g. a link to `/dev/zero`) is refused
    /// without being opened for reading.
    pub fn read_file(&self, path: &Path, max: u64) -> Result<Option<Vec<u8>>, InRootError> {
        let fd = match self.open(path) {
            Ok(fd) => fd,
            Err(InRootError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| step(path, "stat", path.as_os_str(), e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(InRootError::NotRegular(path.into()));
        }
        if st.st_size as u64 > max {
            return Err(InRootError::TooLarge {
                path: path.into(),
                max,
            });
        }
        let read = |source| InRootError::Read {
            path: path.into(),
            source,
        };
        let f = std::fs::File::open(fd_path(fd.as_fd())).map_err(read)?;
        let mut buf = Vec::new();
        f.take(max + 1).read_to_end(&mut buf).map_err(read)?;
        if buf.len() as u64 > max {
            return Err(InRootError::TooLarge {
                path: path.into(),
                max,
            });
        }
        Ok(Some(buf))
    }

    fn open2(&self, path: &Path) -> Result<OwnedFd, InRootError> {
        if split(path.as_os_str().as_bytes()).is_empty() {
            return dup(self.root, path);
        }
        let mut tries = 0;
        loop {
            match crate::sys::open_in_root(self.root, path) {
                Ok(fd) => return Ok(fd),
                // The kernel retries on renames seen mid-walk up to a limit, then EAGAIN.
                Err(Errno::AGAIN) if tries < 16 => tries += 1,
                Err(Errno::NOENT) => return Err(InRootError::NotFound(path.into())),
                Err(Errno::LOOP) => return Err(InRootError::Loop(path.into())),
                Err(Errno::NOTDIR) => {
                    return Err(InRootError::NotDir {
                        path: path.into(),
                        component: lossy(path.as_os_str()),
                    })
                }
                Err(e) => return Err(step(path, "open", path.as_os_str(), e)),
            }
        }
    }

    /// Resolve `path` component by component from the root, following symlinks here
    /// (clamped at the root) and creating what is missing when asked.
    fn walk(&self, path: &Path, create: Create) -> Result<OwnedFd, InRootError> {
        let mut todo = split(path.as_os_str().as_bytes());
        // The directories entered so far; empty = the root. `..` pops (never above it).
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let (mut links, mut steps) = (0usize, 0usize);
        while let Some(c) = todo.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(InRootError::Loop(path.into()));
            }
            if c == ".." {
                dirs.pop();
                continue;
            }
            let last = todo.is_empty();
            let cur = dirs.last().map(|d| d.as_fd()).unwrap_or(self.root);
            let fd = match rustix::fs::openat(
                cur,
                &c,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create != Create::No => {
                    make(cur, &c, create == Create::Dir || !last)
                        .map_err(|e| step(path, "create", &c, e))?;
                    todo.push_front(c); // open what was made (or raced in) next round
                    continue;
                }
                Err(Errno::NOENT) => return Err(InRootError::NotFound(path.into())),
                Err(e) => return Err(step(path, "open", &c, e)),
            };
            let st = rustix::fs::fstat(&fd).map_err(|e| step(path, "stat", &c, e))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    let fs = rustix::fs::fstatfs(&fd).map_err(|e| step(path, "statfs", &c, e))?;
                    if fs.f_type == rustix::fs::PROC_SUPER_MAGIC {
                        return Err(InRootError::MagicLink {
                            path: path.into(),
                            component: lossy(&c),
                        });
                    }
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(InRootError::Loop(path.into()));
                    }
                    let target = rustix::fs::readlinkat(&fd, "", Vec::new())
                        .map_err(|e| step(path, "readlink", &c, e))?;
                    let target = target.as_bytes();
                    if target.first() == Some(&b'/') {
                        dirs.clear();
                    }
                    for t in split(target).into_iter().rev() {
                        todo.push_front(t);
                    }
                }
                FileType::Directory => dirs.push(fd),
                _ if last => return Ok(fd),
                _ => {
                    return Err(InRootError::NotDir {
                        path: path.into(),
                        component: lossy(&c),
                    })
                }
            }
        }
        match dirs.pop() {
            Some(d) => Ok(d),
            None => dup(self.root, path),
        }
    }
}

fn step(path: &Path, step: &'static str, c: impl AsRef<OsStr>, e: Errno) -> InRootError {
    InRootError::Step {
        path: path.into(),
        step,
        component: lossy(c.as_ref()),
        source: e.into(),
    }
}

fn dup(fd: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, InRootError> {
    fd.try_clone_to_owned().map_err(|e| InRootError::Step {
        path: path.into(),
        step: "dup",
        component: "/".into(),
        source: e,
    })
}

/// Make `name` in `dir`: a directory (0755) or an empty file (0644). Never follows a
/// symlink planted meanwhile (O_EXCL | O_NOFOLLOW); EEXIST is success (the caller
/// reopens and resolves whatever is there).
fn make(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> Result<(), Errno> {
    // An O_PATH fd is a valid dirfd for mkdirat and openat(O_CREAT).
    let r = if is_dir {
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))
    } else {
        rustix::fs::openat(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop)
    };
    match r {
        Err(Errno::EXIST) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A tree with hostile links; returns (tempdir, root fd, host canary outside the root).
    fn tree() -> (tempfile::TempDir, OwnedFd, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let canary = t.path().join("canary");
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::create_dir_all(&canary).unwrap();
        std::fs::write(root.join("real/file"), b"in-root\n").unwrap();
        std::fs::write(canary.join("file"), b"HOST\n").unwrap();
        let c = canary.display().to_string();
        symlink(&c, root.join("abs")).unwrap();
        symlink(format!("../../../../../../..{c}"), root.join("dots")).unwrap();
        symlink("real/../real/./sub", root.join("rel")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        symlink("/nowhere/deep", root.join("dangling")).unwrap();
        symlink("/real/file", root.join("filelink")).unwrap();
        symlink("/proc/self/root", root.join("magic")).unwrap();
        let fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        (t, fd, canary)
    }

    fn both() -> Vec<Resolver> {
        let mut v = vec![Resolver::Walk];
        if crate::sys::has_openat2() {
            v.push(Resolver::Openat2);
        }
        v
    }

    /// The host path an fd resolves to.
    fn where_is(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd.as_fd())).unwrap()
    }

    #[test]
    fn absolute_and_dotdot_links_stay_in_the_root() {
        let (t, root, canary) = tree();
        for how in both() {
            let r = InRoot::new(root.as_fd(), how);
            for p in [
                "/abs",
                "/dots",
                "abs",
                "/../../../abs",
                "/real/../../../dots",
            ] {
                match r.open(Path::new(p)) {
                    Err(InRootError::NotFound(_)) => {}
                    other => panic!("{how:?} {p}: {other:?}"),
                }
            }
            // `..` far above the root ends at the root
            let top = r.open(Path::new("/../../../..")).unwrap();
            assert_eq!(where_is(&top), t.path().join("root"), "{how:?}");
            let sub = r.open(Path::new("/rel")).unwrap();
            assert_eq!(where_is(&sub), t.path().join("root/real/sub"), "{how:?}");
        }
        assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 1);
    }

    #[test]
    fn creation_through_hostile_links_lands_in_the_root() {
        let (t, root, canary) = tree();
        let r = InRoot::new(root.as_fd(), Resolver::Walk);
        let c = canary.display().to_string();
        let f = r.create_file(Path::new("/abs/hosts")).unwrap();
        assert_eq!(where_is(&f), t.path().join(format!("root{c}/hosts")));
        let d = r.mkdir_all(Path::new("/dots/x/y")).unwrap();
        assert_eq!(where_is(&d), t.path().join(format!("root{c}/x/y")));
        let d = r.mkdir_all(Path::new("/../../..")).unwrap();
        assert_eq!(where_is(&d), t.path().join("root"));
        assert_eq!(
            std::fs::read_dir(&canary).unwrap().count(),
            1,
            "host touched"
        );
    }

    #[test]
    fn dangling_links_are_created_at_their_target_in_the_root() {
        let (t, root, _) = tree();
        let r = InRoot::new(root.as_fd(), Resolver::Walk);
        let f = r.create_file(Path::new("/dangling")).unwrap();
        assert_eq!(where_is(&f), t.path().join("root/nowhere/deep"));
        let d = r.mkdir_all(Path::new("/dangling2/x")).unwrap();
        assert_eq!(where_is(&d), t.path().join("root/dangling2/x"));
    }

    #[test]
    fn loops_and_files_as_dirs_fail() {
        let (_t, root, _) = tree();
        for how in both() {
            let r = InRoot::new(root.as_fd(), how);
            assert!(
                matches!(r.open(Path::new("/loop1")), Err(InRootError::Loop(_))),
                "{how:?}"
            );
            assert!(
                matches!(
                    r.open(Path::new("/real/file/x")),
                    Err(InRootError::NotDir { .. })
                ),
                "{how:?}"
            );
        }
        let r = InRoot::new(root.as_fd(), Resolver::Walk);
        assert!(matches!(
            r.mkdir_all(Path::new("/loop1/x")),
            Err(InRootError::Loop(_))
        ));
        assert!(matches!(
            r.mkdir_all(Path::new("/filelink/x")),
            Err(InRootError::NotDir { .. })
        ));
    }

    #[test]
    fn magic_links_are_refused() {
        // Resolve from the host's root so that /proc is a real procfs: /proc/self/root is
        // a magic link, and must never be followed.
        let host = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        for how in both() {
            let r = InRoot::new(host.as_fd(), how);
            let got = r.open(Path::new("/proc/self/root/etc"));
            assert!(
                matches!(
                    got,
                    Err(InRootError::MagicLink { .. }) | Err(InRootError::Loop(_))
                ),
                "{how:?}: {got:?}"
            );
            let fd = r.open(Path::new("/proc/1")).unwrap(); // plain procfs dirs are fine
            drop(fd);
        }
        // a link in an image pointing at a magic link is refused as well
        let (_t, root, _) = tree();
        let r = InRoot::new(root.as_fd(), Resolver::Walk);
        assert!(r.open(Path::new("/magic")).is_err());
    }

    #[test]
    fn symlink_creation_and_bounded_reads() {
        let (t, root, canary) = tree();
        let r = InRoot::new(root.as_fd(), Resolver::Walk);
        r.symlink(Path::new("/abs/ptmx"), Path::new("pts/ptmx"))
            .unwrap();
        let c = canary.display().to_string();
        assert_eq!(
            std::fs::read_link(t.path().join(format!("root{c}/ptmx"))).unwrap(),
            PathBuf::from("pts/ptmx")
        );
        assert!(matches!(
            r.symlink(Path::new("/dangling"), Path::new("x")),
            Err(InRootError::Exists(_))
        ));
        for how in both() {
            let r = InRoot::new(root.as_fd(), how);
            let got = r.read_file(Path::new("/filelink"), 100).unwrap();
            assert_eq!(got.as_deref(), Some(&b"in-root\n"[..]));
            assert!(r.read_file(Path::new("/abs/file"), 100).unwrap().is_none());
            assert!(matches!(
                r.read_file(Path::new("/real/file"), 3),
                Err(InRootError::TooLarge { max: 3, .. })
            ));
            assert!(matches!(
                r.read_file(Path::new("/real"), 100),
                Err(InRootError::NotRegular(_))
            ));
        }
        // a device is never opened for reading
        std::fs::create_dir_all(t.path().join("root/etc")).unwrap();
        symlink("/dev/zero", t.path().join("root/etc/passwd")).unwrap();
        let dev = t.path().join("root/dev");
        std::fs::create_dir_all(&dev).unwrap();
        symlink("/nonexistent-dev-zero", dev.join("zero")).unwrap();
        let host = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let h = InRoot::new(host.as_fd(), Resolver::Walk);
        assert!(matches!(
            h.read_file(Path::new("/dev/zero"), 1 << 20),
            Err(InRootError::NotRegular(_))
        ));
    }
}
