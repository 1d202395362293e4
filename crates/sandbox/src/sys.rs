//! The syscall seam: the few calls nix does not wrap safely, each `unsafe` block with its
//! reason, and [`Sys`], the privileged calls of the setup sequence (setup.rs) and of the
//! mount plan's apply step (mounts.rs), so that their order and arguments are unit-tested
//! without privileges against the recording fake (`sys/fake.rs`).
//! Owns: fork/raw clone, `_exit`, pipes, seccomp installation, raw prctl and ioctl,
//! openat2 in a root, closing inherited fds, [`Sys`] and [`RealSys`].
//! Never: decides anything (callers plan; this only executes).

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::unistd::{ForkResult, Pid};

#[cfg(test)]
pub mod fake;

/// The privileged calls that set up a container's root: mount, umount2, pivot_root,
/// chdir/fchdir, sethostname. Paths are passed on unchanged; the mount plan passes
/// `/proc/self/fd/N` of fds resolved inside the root (inroot.rs), never a container
/// path. Unprivileged lookups (openat, mkdirat, stat) stay with their callers.
pub trait Sys {
    /// mount(2).
    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno>;
    /// chdir(2).
    fn chdir(&self, dir: &Path) -> Result<(), Errno>;
    /// fchdir(2).
    fn fchdir(&self, dir: BorrowedFd<'_>) -> Result<(), Errno>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> Result<(), Errno>;
    /// mount_setattr(2) with `AT_RECURSIVE` and `MOUNT_ATTR_RDONLY` on the mount `fd`
    /// holds: the mount and every mount below it read-only in one call, all or none
    /// (Linux 5.12+; older kernels say ENOSYS).
    fn read_only_tree(&self, fd: BorrowedFd<'_>) -> Result<(), Errno>;
}

/// [`Sys`] on the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealSys;

impl Sys for RealSys {
    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(src, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        nix::mount::umount2(target, flags)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chdir(&self, dir: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(dir)
    }

    fn fchdir(&self, dir: BorrowedFd<'_>) -> Result<(), Errno> {
        nix::unistd::fchdir(dir)
    }

    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn read_only_tree(&self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        /// `struct mount_attr` (linux/mount.h), the first version (MOUNT_ATTR_SIZE_VER0).
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        const MOUNT_ATTR_RDONLY: u64 = 0x1;
        const AT_RECURSIVE: libc::c_uint = 0x8000;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: a valid fd, a NUL-terminated empty path and a live struct of the size
        // passed; the kernel only reads them.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if ret == -1 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

/// A pipe with both ends close-on-exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// fork(2). The child must only do what the callers document (see child.rs).
pub fn fork() -> Result<ForkResult, Errno> {
    // SAFETY: glibc's fork runs its atfork handlers (malloc stays usable in the child); the
    // callers' contract is that the child touches no lock another thread may hold.
    unsafe { nix::unistd::fork() }
}

/// The raw `clone` syscall with namespace flags and no new stack (fork-like: the child
/// continues on a copy of the caller's stack), for the container's pid 1. The child
/// closes every fd it inherited except `keep` (the caller's open files, a shell's
/// `9</proc`, must not stay in a process of the container, where /proc/1/fd/N would
/// lead back to the host), runs `child(keep)` and `_exit`s with its result: it never
/// returns into the caller's frames. Returns the child's pid. Only while
/// single-threaded: no atfork handlers run (see [`crate::container::prepare`]).
pub fn clone_child(
    flags: libc::c_int,
    keep: OwnedFd,
    child: fn(OwnedFd) -> i32,
) -> Result<Pid, Errno> {
    // SAFETY: with a null stack, clone behaves like fork (copy-on-write memory, same stack
    // addresses); the caller is single-threaded (the contract of `prepare` and `run`), so
    // no lock can be held by a thread that does not exist in the child. Argument order
    // differs per arch only for tid/tls pointers, all null here.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => {
            // SAFETY: this child never returns to a frame of the caller (it `_exit`s
            // below), so no owner of the closed fds is used or dropped again.
            unsafe { close_all_but(&[keep.as_raw_fd()]) };
            exit_now(child(keep))
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// `_exit(2)`: end this (forked) process now, without running atexit handlers or
/// flushing stdio buffers the parent also holds.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// Fork a child that closes every fd above 2 but `keep`, runs `body` and `_exit`s with
/// its result: it never returns into the caller's frames. The parent gets the child's
/// pid and drops `body` unrun (closing whatever it owns in the parent). Only while
/// single-threaded.
pub fn fork_child(keep: &[RawFd], body: impl FnOnce() -> i32) -> Result<Pid, Errno> {
    // The callers are single-threaded (this function's contract), so the child touches
    // no lock another thread may hold ([`fork`]'s contract).
    match fork()? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // SAFETY: this child ends below, without returning to the frames that own
            // the closed fds.
            unsafe { close_all_but(keep) };
            exit_now(body())
        }
    }
}

/// One read(2), retried on EINTR.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// Make every mount of this (new) mount namespace private, recursively, so nothing
/// mounted here propagates to the host (the host's / may be shared: systemd makes it so).
pub fn make_mounts_private(sys: &dyn Sys) -> Result<(), Errno> {
    let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    sys.mount(None, Path::new("/"), None, flags, None)
}

/// Install a classic BPF seccomp filter on this thread (and its future children).
pub fn install_seccomp(prog: &[libc::sock_filter]) -> Result<(), Errno> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: fprog points to `prog`, alive for the duration of the call; the kernel copies
    // the filter. PR_SET_SECCOMP with SECCOMP_MODE_FILTER takes exactly this pointer.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(r).map(drop)
}

/// prctl(PR_SET_NO_NEW_PRIVS, 1).
pub fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(r).map(drop)
}

/// Have `cmd`'s process get SIGKILL when its parent (the spawning thread) ends, so a
/// helper such as pasta does not outlive a SIGKILLed irun or monitor.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs between fork and exec and only calls prctl, which is
    // async-signal-safe; the error conversion does not allocate.
    unsafe {
        cmd.pre_exec(|| set_parent_death_signal(libc::SIGKILL).map_err(std::io::Error::from));
    }
}

/// prctl(PR_SET_PDEATHSIG, sig).
pub fn set_parent_death_signal(sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            sig as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(r).map(drop)
}

/// Enter the user namespace of the nsfs file `ns` (full capabilities in it, as its
/// owner's process may), then unshare the CLONE_NEW* `flags` there: the new namespaces
/// belong to that user namespace. Single-threaded callers only.
pub fn join_userns(ns: &std::path::Path, flags: libc::c_int) -> Result<(), Errno> {
    use nix::sched::CloneFlags;
    let fd = nix::fcntl::open(
        ns,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::sched::setns(&fd, CloneFlags::CLONE_NEWUSER)?;
    nix::sched::unshare(CloneFlags::from_bits_truncate(flags))
}

/// Become the subreaper of our descendants (PR_SET_CHILD_SUBREAPER): orphans are
/// re-parented to us, as to a pid 1, when the container shares the host's pids.
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(r).map(drop)
}

/// Is `openat2(2)` implemented? (ENOSYS on kernels before 5.6, e.g. RHEL 8's 4.18.)
pub fn has_openat2() -> bool {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: libc::O_RDONLY as u64 | libc::O_CLOEXEC as u64,
        mode: 0,
        resolve: 0,
    };
    // SAFETY: path is a valid C string, `how` lives across the call and its size is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r >= 0 {
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        drop(unsafe { OwnedFd::from_raw_fd(r as i32) });
        return true;
    }
    Errno::last() != Errno::ENOSYS
}

/// openat2(root, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): `path` resolved as
/// if `root` were `/` (absolute links and `..` stay below it), procfs magic links refused.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &std::path::Path,
) -> Result<OwnedFd, rustix::io::Errno> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Why [`exec_closing_fds`] did not exec.
#[derive(Debug)]
pub enum ExecFailure {
    /// `lookup` found nothing for this name.
    NotInPath(String),
    /// execve of this program failed.
    Execve(String, Errno),
}

/// The end of the container process: close every fd from 3 up, find `arg0` with
/// `lookup(arg0, path)`, execve it with `argv` and `envp`; on failure
/// `fail(program, failure)` reports (in the name of `program`) and ends the process.
/// Closing is needed as close-on-exec is not enough: the PATH search and execve resolve
/// paths (e.g. `/proc/self/fd/N/...`) while the fds are still open. Never returns, and
/// its arguments own no fd, so nothing of the caller's can use or drop a closed fd
/// afterwards.
pub fn exec_closing_fds(
    arg0: &str,
    path: &str,
    argv: &[CString],
    envp: &[CString],
    program: &str,
    lookup: fn(&str, &str) -> Option<String>,
    fail: fn(&str, ExecFailure) -> !,
) -> ! {
    // SAFETY: this function never returns (execve or `fail`), and `lookup` is a plain fn
    // that captures nothing, so no owner of a closed fd is used or dropped again.
    unsafe { close_all_but(&[]) };
    let Some(prog) = lookup(arg0, path) else {
        fail(program, ExecFailure::NotInPath(arg0.to_string()))
    };
    let c = CString::new(prog.as_bytes()).unwrap_or_default();
    let Err(errno) = nix::unistd::execve(&c, argv, envp);
    fail(program, ExecFailure::Execve(prog, errno))
}

/// Close every fd above 2 except those in `keep` (the caller's open files, a shell's
/// `9</proc`, must not stay open in a child that goes on to other work).
///
/// # Safety
/// Every owner (`OwnedFd`, `File`, …) of a closed fd is left holding a closed number:
/// the caller must make sure none is used or dropped afterwards (e.g. by never
/// returning to the frames that hold them).
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    // SAFETY: the caller's guarantee covers every fd above 2.
    unsafe {
        for fd in keep {
            if fd > first {
                close_range(first, fd - 1);
            }
            first = fd + 1;
        }
        close_range(first, u32::MAX);
    }
}

/// close_range(first, last, 0), else each listed fd in that range.
///
/// # Safety
/// As [`close_all_but`]: no owner of an fd in the range may be used or dropped
/// afterwards.
unsafe fn close_range(first: u32, last: u32) {
    // SAFETY: only descriptors are closed; the caller guarantees their owners are done.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        return;
    }
    let fds: Vec<u32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|fd| (first..=last).contains(fd)) {
        // SAFETY: as above; an fd closed meanwhile (the read_dir's own) fails with EBADF,
        // which is why the result is not checked.
        unsafe { libc::close(fd as i32) };
    }
}

/// TIOCSCTTY: make the tty on `fd` the controlling terminal of this (session leader).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(r).map(drop)
}

/// Default disposition for `sig` (nothing of ours runs on it, as after a fresh exec).
pub fn set_default_disposition(sig: nix::sys::signal::Signal) -> Result<(), Errno> {
    use nix::sys::signal::{signal, SigHandler};
    // SAFETY: SIG_DFL installs no handler, so no code of ours runs in signal context.
    unsafe { signal(sig, SigHandler::SigDfl) }.map(drop)
}

/// TIOCGWINSZ on `fd`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<libc::winsize, Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the pointer, which is valid and aligned.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    Errno::result(r).map(|_| ws)
}

/// TIOCSWINSZ on `fd`.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const libc::winsize) };
    Errno::result(r).map(drop)
}

/// Bring the loopback interface of this (new) network namespace up (SIOCSIFFLAGS).
pub fn set_loopback_up() -> Result<(), Errno> {
    // SAFETY: a plain socket() call; the fd is owned below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just gave us `s`; nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, c) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *c as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills ifr_flags of the ifreq we pass, valid for the call.
    let r = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS,
            &mut req as *mut libc::ifreq,
        )
    };
    Errno::result(r)?;
    // SAFETY: ifr_flags is the union member SIOCGIFFLAGS just set.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we pass, valid for the call.
    let r = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &req as *const libc::ifreq,
        )
    };
    Errno::result(r).map(drop)
}
