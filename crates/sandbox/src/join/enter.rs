//! The two processes that carry a command into a running container, forked by
//! [`super::run`]:
//! - **J1** (a fresh fork, single-threaded as joining a user namespace requires) makes
//!   itself non-dumpable (no process of the container may ptrace it or open its fds
//!   while it holds the caller's), joins the user namespace, then the mount namespace
//!   (root and working dir become the namespace's root, checked to be the container's
//!   own), then pid, ipc, uts, net and cgroup; forks J2 into the container's pid
//!   namespace, hands J2's pid to the caller and exits.
//! - **J2** (a process of the container, reparented to the caller, a subreaper)
//!   resolves the user in the container's own /etc/passwd and /etc/group (bounded),
//!   checks the working dir and the command inside the root, detaches (`-d`) or opens a
//!   pty in the container's devpts (`-t`), and becomes the command through exec.rs
//!   (bounding set, seccomp, ids, capabilities, no_new_privs, execve).
//!
//! A failure before exec goes to the caller as `Failed(RemoteError)` on the channel and
//! the process exits with [`EnterError::code`].
//! Owns: that order. Never: opens anything through the host's /proc (target.rs did),
//! waits for the command (the caller does).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::ForkResult;

use super::target::{Namespace, Target};
use crate::channel::{self, Msg};
use crate::child::RemoteError;
use crate::exec::{exec_process, find_in_path, CommandStdio};
use crate::idmap::IdMap;
use crate::inroot::{InRoot, InRootError, Resolver};
use crate::setup::SetupError;
use crate::spec::{ProcessSpec, StdioPassed};
use crate::sys;
use crate::tty::TtyError;
use crate::user::Ids;

/// Why the command could not be started in the container.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    /// PR_SET_DUMPABLE failed.
    #[error("make the joining process non-dumpable")]
    Dumpable(#[source] Errno),
    /// setns failed.
    #[error("join the container's {} namespace (setns)", .0.file().trim_start_matches("ns/"))]
    Setns(Namespace, #[source] Errno),
    /// `/` could not be compared with the container's root.
    #[error("check the container's root after joining its mount namespace")]
    StatRoot(#[source] rustix::io::Errno),
    /// The mount namespace's root is not the container's.
    #[error("the root of the container's mount namespace is not its pid 1's root: refusing to run anything there")]
    OtherRoot,
    /// fork into the pid namespace failed.
    #[error("fork into the container's pid namespace")]
    Fork(#[source] Errno),
    /// The container's root could not be opened.
    #[error("open the container's root")]
    OpenRoot(#[source] Errno),
    /// The user could not be resolved in the container (the same errors as a
    /// container's own setup: passwd or group unreadable, no such user, an id the
    /// single mapping does not have).
    #[error(transparent)]
    User(SetupError),
    /// The working dir is not in the container.
    #[error("chdir to `{0}` in the container")]
    Workdir(String, #[source] InRootError),
    /// The working dir is no directory.
    #[error("chdir to `{0}` in the container: not a directory")]
    NotADir(String),
    /// The command was not found.
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
    /// A command given by path does not exist.
    #[error("exec `{0}`: no such file or directory")]
    NoSuchFile(String),
    /// The command is not executable.
    #[error("exec `{0}`: permission denied (not an executable file)")]
    NotExecutable(String),
    /// The spec has no command.
    #[error("no command specified")]
    NoCommand,
    /// `-t`: no pty.
    #[error("open a pty in the container")]
    Pty(#[source] TtyError),
    /// `-d`: setsid failed.
    #[error("detach from the caller's session (setsid)")]
    Setsid(#[source] Errno),
    /// `-d`: /dev/null could not be opened.
    #[error("open the container's /dev/null")]
    DevNull(#[source] Errno),
}

impl EnterError {
    /// The exit status: 127 not found, 126 cannot execute, 125 otherwise (as irun).
    pub fn code(&self) -> i32 {
        match self {
            EnterError::NotFound(_) | EnterError::NoSuchFile(_) => 127,
            EnterError::NotExecutable(_) => 126,
            _ => 125,
        }
    }
}

/// J1: join, fork J2, write its pid on `pid_out` (4 bytes, native order), exit.
/// `program` names the caller in a failed exec's message on the command's stderr.
pub fn first(
    program: &str,
    target: &Target,
    process: &ProcessSpec,
    detach: bool,
    chan: OwnedFd,
    pid_out: OwnedFd,
) -> ! {
    if let Err(e) = join_namespaces(target) {
        fail(chan.as_fd(), &e)
    }
    match sys::fork() {
        Ok(ForkResult::Child) => {
            drop(pid_out);
            second(program, &target.map, process, detach, chan)
        }
        Ok(ForkResult::Parent { child }) => {
            // A failed write shows as a missing pid to the caller, who then reports
            // the start as failed; there is nobody else to tell.
            let _ = nix::unistd::write(pid_out.as_fd(), &child.as_raw().to_ne_bytes());
            sys::exit_now(0)
        }
        Err(e) => fail(chan.as_fd(), &EnterError::Fork(e)),
    }
}

/// Send `e` to the caller and exit with its code.
fn fail(chan: BorrowedFd<'_>, e: &EnterError) -> ! {
    // Ignoring a send failure: the caller then sees the channel close and reports the
    // exit status itself.
    let _ = channel::send(chan, &Msg::Failed(RemoteError::from_chain(e)), &[]);
    sys::exit_now(e.code())
}

fn join_namespaces(target: &Target) -> Result<(), EnterError> {
    nix::sys::prctl::set_dumpable(false).map_err(EnterError::Dumpable)?;
    for (ns, fd) in &target.namespaces {
        nix::sched::setns(fd, ns.flag()).map_err(|e| EnterError::Setns(*ns, e))?;
        if *ns == Namespace::Mount {
            check_root(target.root.as_fd())?;
        }
    }
    Ok(())
}

/// setns into a mount namespace made `/` (and the working dir) the namespace's root:
/// it must be the very directory the container's pid 1 has as its root (same mount,
/// same inode), so that nothing but the container's tree is reachable from here.
fn check_root(container_root: BorrowedFd<'_>) -> Result<(), EnterError> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    let mask = StatxFlags::INO | StatxFlags::MNT_ID;
    let ours = statx(rustix::fs::CWD, "/", AtFlags::empty(), mask).map_err(EnterError::StatRoot)?;
    let theirs =
        statx(container_root, "", AtFlags::EMPTY_PATH, mask).map_err(EnterError::StatRoot)?;
    let key = |s: &rustix::fs::Statx| (s.stx_dev_major, s.stx_dev_minor, s.stx_ino);
    // Kernels before 5.8 give no mount id; device and inode still tell the roots apart.
    let mnt = |s: &rustix::fs::Statx| {
        (s.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(s.stx_mnt_id)
    };
    if key(&ours) != key(&theirs) || mnt(&ours) != mnt(&theirs) {
        return Err(EnterError::OtherRoot);
    }
    Ok(())
}

/// J2: prepare inside the container and become the command.
fn second(program: &str, map: &IdMap, process: &ProcessSpec, detach: bool, chan: OwnedFd) -> ! {
    let (ids, slave, stdio) = match prepare(map, process, detach, chan.as_fd()) {
        Ok(p) => p,
        Err(e) => fail(chan.as_fd(), &e),
    };
    // Closed by exec (every fd from 3 up); the caller sees EOF then.
    exec_process(program, process, &ids, map, slave, stdio)
}

type Prepared = (Ids, Option<OwnedFd>, CommandStdio);

fn prepare(
    map: &IdMap,
    p: &ProcessSpec,
    detach: bool,
    chan: BorrowedFd<'_>,
) -> Result<Prepared, EnterError> {
    let root = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(EnterError::OpenRoot)?;
    let in_root = InRoot::new(root.as_fd(), Resolver::detect());
    let ids = crate::setup::resolve_ids(&p.user, map, &in_root).map_err(EnterError::User)?;
    let cwd = if p.cwd.is_empty() { "/" } else { &p.cwd };
    let dir = in_root
        .open(Path::new(cwd))
        .map_err(|e| EnterError::Workdir(cwd.into(), e))?;
    let is_dir = rustix::fs::fstat(&dir)
        .map(|s| rustix::fs::FileType::from_raw_mode(s.st_mode).is_dir())
        .unwrap_or(false);
    if !is_dir {
        return Err(EnterError::NotADir(cwd.into()));
    }
    check_command(p)?;
    if detach {
        nix::unistd::setsid().map_err(EnterError::Setsid)?;
        let null = || {
            open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(EnterError::DevNull)
        };
        let passed = StdioPassed {
            stdout: true,
            stderr: true,
            fakeroot: false,
        };
        let stdio = CommandStdio::from_passed(passed, vec![null()?, null()?]);
        return Ok((ids, None, stdio));
    }
    let slave = if p.terminal {
        Some(crate::tty::open_pty(chan).map_err(EnterError::Pty)?)
    } else {
        None
    };
    Ok((ids, slave, CommandStdio::default()))
}

/// The command exists and is an executable file (docker's lookup, in the container's
/// root: `/` is that root here), so a missing one is reported to the caller — also with
/// `-d`, where the command's own stderr is /dev/null.
fn check_command(p: &ProcessSpec) -> Result<(), EnterError> {
    use std::os::unix::fs::PermissionsExt;
    let arg0 = p.args.first().ok_or(EnterError::NoCommand)?;
    let path = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::DEFAULT_PATH);
    let prog = find_in_path(arg0, path).ok_or_else(|| EnterError::NotFound(arg0.clone()))?;
    match std::fs::metadata(&prog) {
        Err(_) => Err(EnterError::NoSuchFile(prog)),
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
            Err(EnterError::NotExecutable(prog))
        }
        Ok(_) => Ok(()),
    }
}
