//! The forwarder's syscall seam: fork a child that closes every inherited fd but a
//! few and ends with `_exit`. Each `unsafe` has its reason next to it.
//! Owns: the fork, the fd closing, `_exit`. Never: decides what the child does
//! (forwarder.rs).

#![allow(unsafe_code)]

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

/// Fork a child that closes every fd above 2 but `keep`, runs `body` and `_exit`s with
/// its result: it never returns into the caller's frames. The parent gets the child's
/// pid and drops `body` unrun (closing whatever it owns in the parent). Only while
/// single-threaded.
pub(crate) fn fork_child(keep: &[RawFd], body: impl FnOnce() -> i32) -> Result<Pid, Errno> {
    // SAFETY: the callers (irun, a detached container's monitor) are single-threaded
    // when they start the forwarder (`Forwarder::start`'s contract), so no lock can be
    // held by a thread that does not exist in the child, and the child `_exit`s without
    // returning (it never uses or drops the parent's owners of the fds it closes).
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // SAFETY: this child ends below, without returning to the frames that own
            // the closed fds.
            unsafe { close_all_but(keep) };
            exit_now(body())
        }
    }
}

/// `_exit(2)`: end the forked child now, without atexit handlers or flushing stdio
/// buffers the parent also holds.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { nix::libc::_exit(code) }
}

/// Close every fd above 2 except `keep` (the caller's open files, the container's
/// control channel, a terminal's master must not stay open in the forwarder).
///
/// # Safety
/// Every owner (`OwnedFd`, `File`, …) of a closed fd is left holding a closed number:
/// only for the freshly forked child, which never uses or drops those owners (it ends
/// with [`exit_now`]).
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for fd in keep {
        if fd > first {
            // SAFETY: as this function's contract.
            unsafe { close_range(first, fd - 1) };
        }
        first = fd + 1;
    }
    // SAFETY: as this function's contract.
    unsafe { close_range(first, u32::MAX) };
}

/// close_range(first, last, 0), else each open fd in the range.
///
/// # Safety
/// As [`close_all_but`].
unsafe fn close_range(first: u32, last: u32) {
    // SAFETY: only descriptors are closed; the caller guarantees their owners are done.
    let r = unsafe { nix::libc::syscall(nix::libc::SYS_close_range, first, last, 0u32) };
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
        // SAFETY: as above; the read_dir's own fd, closed meanwhile, fails with EBADF.
        unsafe { nix::libc::close(fd as RawFd) };
    }
}
