//! A recording [`Sys`] for unit tests without privileges: every call is recorded with
//! its arguments (a typed [`Call`]) and succeeds, unless a predicate given to
//! [`FakeSys::failing`] matches it. Never touches the kernel: a mount target that is an
//! fd path is only read back (readlink) to record where it points.

use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::Sys;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// mount(2); `resolved`: where an fd path target pointed at the time of the call.
    Mount {
        src: Option<PathBuf>,
        target: PathBuf,
        resolved: Option<PathBuf>,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    /// umount2(2).
    Umount2 { target: PathBuf, flags: MntFlags },
    /// pivot_root(2).
    PivotRoot { new_root: PathBuf, put_old: PathBuf },
    /// chdir(2).
    Chdir(PathBuf),
    /// fchdir(2), with the path the fd held.
    Fchdir(PathBuf),
    /// sethostname(2).
    Sethostname(String),
    /// mount_setattr(2) read-only, recursive, with the path the fd held.
    ReadOnlyTree(PathBuf),
}

type Predicate = Box<dyn Fn(&Call) -> bool>;

/// The recording fake.
#[derive(Default)]
pub struct FakeSys {
    calls: RefCell<Vec<Call>>,
    fail: Option<(Predicate, Errno)>,
}

impl FakeSys {
    /// Every call succeeds.
    pub fn new() -> FakeSys {
        FakeSys::default()
    }

    /// Calls matching `when` fail with `errno` (after being recorded).
    pub fn failing(when: impl Fn(&Call) -> bool + 'static, errno: Errno) -> FakeSys {
        FakeSys {
            calls: RefCell::default(),
            fail: Some((Box::new(when), errno)),
        }
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn record(&self, call: Call) -> Result<(), Errno> {
        let failed = match &self.fail {
            Some((when, errno)) if when(&call) => Err(*errno),
            _ => Ok(()),
        };
        self.calls.borrow_mut().push(call);
        failed
    }
}

fn where_is(p: &Path) -> Option<PathBuf> {
    p.starts_with("/proc/self/fd")
        .then(|| std::fs::read_link(p).ok())
        .flatten()
}

impl Sys for FakeSys {
    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        self.record(Call::Mount {
            src: src.map(Path::to_path_buf),
            target: target.to_path_buf(),
            resolved: where_is(target),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        self.record(Call::Umount2 {
            target: target.to_path_buf(),
            flags,
        })
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        self.record(Call::PivotRoot {
            new_root: new_root.to_path_buf(),
            put_old: put_old.to_path_buf(),
        })
    }

    fn chdir(&self, dir: &Path) -> Result<(), Errno> {
        self.record(Call::Chdir(dir.to_path_buf()))
    }

    fn fchdir(&self, dir: BorrowedFd<'_>) -> Result<(), Errno> {
        let p = where_is(&crate::inroot::fd_path(dir)).unwrap_or_default();
        self.record(Call::Fchdir(p))
    }

    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        self.record(Call::Sethostname(name.to_string()))
    }

    fn read_only_tree(&self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        let p = where_is(&crate::inroot::fd_path(fd)).unwrap_or_default();
        self.record(Call::ReadOnlyTree(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_records_in_order_and_fails_when_told() {
        let sys = FakeSys::failing(|c| matches!(c, Call::Chdir(_)), Errno::EACCES);
        sys.sethostname("h").unwrap();
        assert_eq!(sys.chdir(Path::new("/x")), Err(Errno::EACCES));
        assert_eq!(
            sys.calls(),
            vec![Call::Sethostname("h".into()), Call::Chdir("/x".into())]
        );
    }
}
