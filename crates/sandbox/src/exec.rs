//! The container's command: from the prepared pid 1 (or its forked child, pid 2) to
//! execve. Terminal, the caller's given stdout/stderr, or /dev/null on the stdio slots
//! (of this process only), working dir (resolved in the
//! root), capability bounding set, seccomp (plus, when the owner passed its socket, the
//! recording fakeroot's notification filter, its listener sent back: imago-fakeroot),
//! groups and ids, capabilities, no_new_privs,
//! signal reset, every inherited fd closed, docker's PATH lookup, execve.
//! Owns: that order and the exit codes of a failed start (125 setup, 126 cannot
//! execute, 127 not found), printed as `PROGRAM: …` on the command's own stderr like
//! docker's runtime, PROGRAM being the caller's name (`irun`, `ictr` for `ictr exec`).
//! Never: mounts, returns to the caller.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::fd::{replace_stdio, FdError, Stdio};
use crate::idmap::IdMap;
use crate::inroot::{InRoot, InRootError, Resolver};
use crate::spec::{CapsPolicy, ProcessSpec, StdioPassed};
use crate::sys::{self, ExecFailure};
use crate::user::Ids;

/// Why the command could not be started; [`ExecError::code`] is the exit status.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// setsid failed.
    #[error("start a new session (setsid)")]
    Setsid(#[source] Errno),
    /// TIOCSCTTY failed.
    #[error("set the controlling terminal")]
    ControllingTty(#[source] Errno),
    /// dup2 of the terminal onto a stdio slot failed.
    #[error("attach the terminal")]
    AttachTty(#[source] FdError),
    /// The container's /dev/null could not be opened.
    #[error("open /dev/null")]
    OpenNull(#[source] std::io::Error),
    /// dup2 of /dev/null onto stdin failed.
    #[error("redirect stdin from /dev/null")]
    NullStdin(#[source] FdError),
    /// dup2 of the given stdout or stderr onto its slot failed.
    #[error("attach the given stdout or stderr")]
    AttachStdio(#[source] FdError),
    /// The container's root could not be opened to resolve the working dir.
    #[error("chdir to `{0}`")]
    OpenRoot(String, #[source] Errno),
    /// The working dir could not be resolved in the root.
    #[error("chdir to `{0}`")]
    Workdir(String, #[source] InRootError),
    /// fchdir to the resolved working dir failed.
    #[error("chdir to `{0}`")]
    Fchdir(String, #[source] Errno),
    /// The capability bounding set could not be set (the error names the step).
    #[error(transparent)]
    Bound(crate::caps::CapsError),
    /// The seccomp filter could not be made or installed.
    #[error(transparent)]
    Seccomp(crate::seccomp::SeccompError),
    /// The recording fakeroot's listener could not be sent to its supervisor.
    #[error(transparent)]
    Fakeroot(imago_fakeroot::FakerootError),
    /// setgroups failed.
    #[error("set supplementary groups {0:?}")]
    Groups(Vec<u32>, #[source] Errno),
    /// setresgid failed.
    #[error("set gid {0}")]
    Gid(u32, #[source] Errno),
    /// setresuid failed.
    #[error("set uid {0}")]
    Uid(u32, #[source] Errno),
    /// The process capabilities could not be set (the error names the step).
    #[error(transparent)]
    Caps(crate::caps::CapsError),
    /// PR_SET_NO_NEW_PRIVS failed.
    #[error("set no_new_privs")]
    NoNewPrivs(#[source] Errno),
    /// The spec has no command.
    #[error("no command specified")]
    NoCommand,
    /// Nothing executable of that name in PATH.
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotInPath(String),
    /// execve: no such file.
    #[error("exec `{0}`: no such file or directory")]
    NoSuchFile(String),
    /// execve failed otherwise.
    #[error("exec `{0}`")]
    Exec(String, #[source] Errno),
}

impl ExecError {
    /// The exit status of a container whose command failed to start so.
    pub fn code(&self) -> i32 {
        match self {
            ExecError::NotInPath(_) | ExecError::NoSuchFile(_) => 127,
            ExecError::Exec(..) => 126,
            _ => 125,
        }
    }
}

/// The command's stdout and stderr as received with `Go` (`None`: the inherited slot),
/// and the recording fakeroot's socket (its supervisor waits on the other end).
#[derive(Debug, Default)]
pub struct CommandStdio {
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    fakeroot: Option<OwnedFd>,
}

impl CommandStdio {
    /// Match the fds received with `Go` (stdout first) to what `passed` says was sent.
    /// A missing fd leaves its slot inherited.
    pub fn from_passed(passed: StdioPassed, fds: Vec<OwnedFd>) -> Self {
        let mut fds = fds.into_iter();
        let stdout = if passed.stdout { fds.next() } else { None };
        let stderr = if passed.stderr { fds.next() } else { None };
        let fakeroot = if passed.fakeroot { fds.next() } else { None };
        Self {
            stdout,
            stderr,
            fakeroot,
        }
    }
}

/// Become the container's process and exec it. Never returns: on failure prints
/// `PROGRAM: …` (`program`, the error and its causes) on the process's stderr and
/// exits with [`ExecError::code`].
pub fn exec_process(
    program: &str,
    p: &ProcessSpec,
    ids: &Ids,
    map: &IdMap,
    slave: Option<OwnedFd>,
    stdio: CommandStdio,
) -> ! {
    let Err(e) = exec(program, p, ids, map, slave, stdio);
    die(program, e)
}

/// Print `e` with its causes on stderr, in the name of `program`, and exit with its
/// code.
fn die(program: &str, e: ExecError) -> ! {
    let mut msg = format!("{program}: {e}");
    let mut cur = std::error::Error::source(&e);
    while let Some(c) = cur {
        msg.push_str(&format!(": {c}"));
        cur = c.source();
    }
    // Nothing else can report it: the container's stderr is the only channel left.
    let _ = writeln!(std::io::stderr(), "{msg}");
    sys::exit_now(e.code())
}

/// [`die`] for what [`sys::exec_closing_fds`] could not do.
fn exec_failed(program: &str, f: ExecFailure) -> ! {
    let e = match f {
        ExecFailure::NotInPath(arg0) => ExecError::NotInPath(arg0),
        ExecFailure::Execve(prog, Errno::ENOENT) => ExecError::NoSuchFile(prog),
        ExecFailure::Execve(prog, e) => ExecError::Exec(prog, e),
    };
    die(program, e)
}

/// Everything of [`exec_process`] up to execve; returns only on failure.
fn exec(
    program: &str,
    p: &ProcessSpec,
    ids: &Ids,
    map: &IdMap,
    slave: Option<OwnedFd>,
    mut stdio: CommandStdio,
) -> Result<std::convert::Infallible, ExecError> {
    let mut fakeroot = stdio.fakeroot.take();
    attach_stdio(p, slave, stdio)?;
    let cwd = if p.cwd.is_empty() {
        "/"
    } else {
        p.cwd.as_str()
    };
    // In the root, like the setup: an image's WORKDIR of `/proc/self/fd/N` must not
    // lead to a directory some fd of ours still holds.
    chdir_in_root(cwd)?;
    if let CapsPolicy::Bounded(keep) = &p.caps {
        crate::caps::bound(keep).map_err(ExecError::Bound)?;
    }
    if p.seccomp {
        let filter = filter_for(map, ids);
        let recording = filter == crate::seccomp::Filter::Fakeroot && fakeroot.is_some();
        let install = |f| {
            crate::seccomp::install(f, p.seccomp_profile.as_deref(), seccomp_caps(&p.caps))
                .map_err(ExecError::Seccomp)
        };
        match recording {
            // The recording fakeroot: the main filter without the no-op answers (its
            // ERRNO(0) would outrank the notification), and the notification filter.
            true => {
                install(crate::seccomp::Filter::Default)?;
                match imago_fakeroot::install() {
                    Ok(listener) => {
                        if let Some(sock) = fakeroot.take() {
                            imago_fakeroot::send_listener(sock, listener)
                                .map_err(ExecError::Fakeroot)?;
                        }
                    }
                    // No seccomp user notification here: the no-op fakeroot, stacked.
                    Err(_) => install(crate::seccomp::Filter::Fakeroot)?,
                }
            }
            false => install(filter)?,
        }
    }
    // Not recording (no filter, or not root): the supervisor sees the socket close.
    drop(fakeroot);
    // Under the single mapping setgroups is `deny` (the kernel's condition for the
    // unprivileged gid_map write): the process keeps the supplementary groups it
    // inherited from the caller (the caller's own gid shows as the user's gid, others as
    // the overflow gid), and the image's /etc/group memberships are not applied.
    if !map.setgroups_deny && !ids.keep_groups {
        let groups: Vec<nix::unistd::Gid> = ids
            .groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).map_err(|e| ExecError::Groups(ids.groups.clone(), e))?;
    }
    let gid = nix::unistd::Gid::from_raw(ids.gid);
    let uid = nix::unistd::Uid::from_raw(ids.uid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| ExecError::Gid(ids.gid, e))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| ExecError::Uid(ids.uid, e))?;
    if ids.die_with_parent {
        // Ignoring the result: PR_SET_PDEATHSIG fails only for an invalid signal.
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
    }
    if let CapsPolicy::Bounded(keep) = &p.caps {
        crate::caps::set_process(keep, ids.uid == 0).map_err(ExecError::Caps)?;
    }
    if p.no_new_privs {
        sys::set_no_new_privs().map_err(ExecError::NoNewPrivs)?;
    }
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", ids.home));
    }
    crate::init::reset_signals();
    let arg0 = p.args.first().ok_or(ExecError::NoCommand)?;
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::DEFAULT_PATH)
        .to_string();
    let cstr = |s: &str| CString::new(s.as_bytes()).unwrap_or_default();
    let argv: Vec<CString> = p.args.iter().map(|a| cstr(a)).collect();
    let envp: Vec<CString> = env.iter().map(|e| cstr(e)).collect();
    // Nothing of irun's (the channel, --rm's dirs) may stay open while the image's PATH
    // is searched and execve resolves the program.
    sys::exec_closing_fds(
        arg0,
        &path_var,
        &argv,
        &envp,
        program,
        find_in_path,
        exec_failed,
    )
}

/// The seccomp variant: fakeroot (chown & co to other ids succeed, doing nothing) for
/// root under the single mapping, where root is the only id a process can become and
/// install scripts need those calls to work. A non-root user under the single mapping
/// (its one id placed at that user) gets the default filter, as under every other
/// mapping: it could not chown or change ids in any container, and a faked success
/// would hide the real refusal from it (a "successful" chown of a file it cannot own).
fn filter_for(map: &IdMap, ids: &Ids) -> crate::seccomp::Filter {
    use crate::seccomp::Filter;
    match Filter::for_map(map.kind) {
        Filter::Fakeroot if ids.uid != 0 => Filter::Default,
        f => f,
    }
}

/// The capability set the profile's conditions see: the container's, as docker's
/// (CAP_SYS_NICE lets the NUMA calls through: `--cap-add SYS_NICE`, `--hpc`).
fn seccomp_caps(caps: &CapsPolicy) -> crate::seccomp::Caps {
    match caps {
        CapsPolicy::All => crate::seccomp::Caps::All,
        CapsPolicy::Bounded(keep) => crate::seccomp::Caps::Names(keep.clone()),
    }
}

/// `-t`: a new session with the pty slave as controlling terminal on 0, 1 and 2.
/// Otherwise the given stdout and stderr on 1 and 2 and, without `-i`, the container's
/// /dev/null on 0. Slots given nothing keep what the container inherited (the caller's).
/// This runs in the command's own process (pid 2, or pid 1 with `--no-init`), never in
/// the caller's.
fn attach_stdio(
    p: &ProcessSpec,
    slave: Option<OwnedFd>,
    stdio: CommandStdio,
) -> Result<(), ExecError> {
    if let Some(s) = &slave {
        nix::unistd::setsid().map_err(ExecError::Setsid)?;
        sys::set_controlling_tty(s.as_fd()).map_err(ExecError::ControllingTty)?;
        for slot in [Stdio::In, Stdio::Out, Stdio::Err] {
            replace_stdio(s.as_fd(), slot).map_err(ExecError::AttachTty)?;
        }
        return Ok(());
    }
    for (fd, slot) in [(stdio.stdout, Stdio::Out), (stdio.stderr, Stdio::Err)] {
        if let Some(fd) = fd {
            replace_stdio(fd.as_fd(), slot).map_err(ExecError::AttachStdio)?;
            if fd.as_raw_fd() == slot as i32 {
                // Received into that very slot (the caller had it closed): keep it open.
                std::mem::forget(fd);
            }
        }
    }
    if !p.stdin {
        let f = std::fs::File::open("/dev/null").map_err(ExecError::OpenNull)?;
        replace_stdio(f.as_fd(), Stdio::In).map_err(ExecError::NullStdin)?;
    }
    Ok(())
}

fn chdir_in_root(cwd: &str) -> Result<(), ExecError> {
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ExecError::OpenRoot(cwd.into(), e))?;
    let dir = InRoot::new(root.as_fd(), Resolver::detect())
        .open(Path::new(cwd))
        .map_err(|e| ExecError::Workdir(cwd.into(), e))?;
    nix::unistd::fchdir(&dir).map_err(|e| ExecError::Fchdir(cwd.into(), e))
}

/// docker's lookup: a name with `/` is used as is; else the first executable regular
/// file in PATH.
pub fn find_in_path(arg0: &str, path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if arg0.contains('/') {
        return Some(arg0.to_string());
    }
    if arg0.is_empty() {
        return None;
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/{arg0}"))
        .find(|c| {
            std::fs::metadata(c)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_dockers_exit_codes() {
        assert_eq!(ExecError::NotInPath("x".into()).code(), 127);
        assert_eq!(ExecError::NoSuchFile("/x".into()).code(), 127);
        assert_eq!(ExecError::Exec("/x".into(), Errno::EACCES).code(), 126);
        assert_eq!(ExecError::NoCommand.code(), 125);
        assert_eq!(
            ExecError::NotInPath("nope".into()).to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
    }

    #[test]
    fn fakeroot_only_for_root_under_the_single_mapping() {
        use crate::seccomp::Filter;
        let ids = |uid| Ids {
            uid,
            gid: uid,
            groups: vec![],
            home: "/".into(),
            in_passwd: true,
            keep_groups: false,
            die_with_parent: false,
        };
        let single = IdMap::single(1000, 1000);
        assert_eq!(filter_for(&single, &ids(0)), Filter::Fakeroot);
        assert_eq!(
            filter_for(&single.at_user(33, 33), &ids(33)),
            Filter::Default
        );
        let identity = IdMap::plan(&crate::idmap::IdMapInput::default());
        assert_eq!(filter_for(&identity, &ids(0)), Filter::Default);
    }

    #[test]
    fn path_lookup_is_dockers() {
        assert_eq!(find_in_path("/bin/x", "").as_deref(), Some("/bin/x"));
        assert_eq!(find_in_path("", "/bin"), None);
        assert_eq!(find_in_path("sh", "/nonexistent-dir"), None);
        assert!(find_in_path("sh", "::/nonexistent:/bin").is_some());
    }
}
