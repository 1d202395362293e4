//! The syscall seam of the fakeroot: installing a filter with a listener, the three
//! notification ioctls, reading and writing another process's memory, and the raw
//! stat calls whose results are written back. Each `unsafe` block says why it is sound.
//! Never: decides anything (filter.rs and the supervisor do).

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, prog)`: install
/// `prog` on the calling thread and return the listener fd (close-on-exec).
pub fn install_listener(prog: &[libc::sock_filter]) -> Result<OwnedFd, Errno> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: fprog points to `prog`, alive for the duration of the call; the kernel
    // copies the program. The syscall takes exactly (op, flags, pointer).
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    let fd = Errno::result(r)?;
    // SAFETY: with NEW_LISTENER a successful seccomp() returns a new fd that nothing
    // else owns (the kernel opens it O_CLOEXEC).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A zeroed notification (the kernel wants RECV's buffer zeroed).
pub fn empty_notif() -> libc::seccomp_notif {
    // SAFETY: seccomp_notif is plain integers (and a struct of integers): all-zero is a
    // valid value.
    unsafe { std::mem::zeroed() }
}

/// The argument type of each notification ioctl: the one its request number encodes.
trait NotifArg {
    const REQUEST: libc::Ioctl;
}

impl NotifArg for libc::seccomp_notif {
    const REQUEST: libc::Ioctl = libc::SECCOMP_IOCTL_NOTIF_RECV;
}

impl NotifArg for libc::seccomp_notif_resp {
    const REQUEST: libc::Ioctl = libc::SECCOMP_IOCTL_NOTIF_SEND;
}

/// SECCOMP_IOCTL_NOTIF_ID_VALID takes the notification id.
impl NotifArg for u64 {
    const REQUEST: libc::Ioctl = libc::SECCOMP_IOCTL_NOTIF_ID_VALID;
}

impl NotifArg for libc::seccomp_notif_addfd {
    const REQUEST: libc::Ioctl = libc::SECCOMP_IOCTL_NOTIF_ADDFD;
}

/// The notification ioctl of `T` on `listener`; its non-negative result.
fn notif_ioctl<T: NotifArg>(listener: BorrowedFd<'_>, arg: &mut T) -> Result<i32, Errno> {
    // SAFETY: `arg` is a valid, writable value of the type the request number encodes
    // (NotifArg pairs them), alive for the duration of the call.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), T::REQUEST, arg as *mut T) };
    Errno::result(r)
}

/// SECCOMP_IOCTL_NOTIF_RECV: wait for the next notification.
pub fn notif_recv(listener: BorrowedFd<'_>, n: &mut libc::seccomp_notif) -> Result<(), Errno> {
    // The kernel wants the buffer zeroed.
    *n = empty_notif();
    notif_ioctl(listener, n).map(drop)
}

/// SECCOMP_IOCTL_NOTIF_SEND: answer notification `id`.
pub fn notif_send(listener: BorrowedFd<'_>, resp: &libc::seccomp_notif_resp) -> Result<(), Errno> {
    notif_ioctl(listener, &mut { *resp }).map(drop)
}

/// SECCOMP_IOCTL_NOTIF_ID_VALID: is the caller of notification `id` still waiting (its
/// pid not reused since)?
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    notif_ioctl(listener, &mut { id }).is_ok()
}

/// SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND (Linux 5.14): install `fd` in
/// the caller of notification `id` (close-on-exec when `cloexec`) and answer its call
/// with the new fd's number, in one step.
pub fn notif_addfd_send(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    cloexec: bool,
) -> Result<(), Errno> {
    let mut add = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    notif_ioctl(listener, &mut add).map(drop)
}

/// Read `buf.len()` bytes at `addr` of process `pid` (process_vm_readv); the count read.
pub fn read_mem(pid: i32, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` covers `buf`, which we own and may write; the remote iovec is only
    // an address in the other process, checked by the kernel.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    Errno::result(r).map(|n| n as usize)
}

/// Write `buf` at `addr` of process `pid` (process_vm_writev); the count written.
pub fn write_mem(pid: i32, addr: u64, buf: &[u8]) -> Result<usize, Errno> {
    let local = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` covers `buf`, only read by the kernel; the remote address is
    // checked by the kernel against the other process's mappings.
    let r = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    Errno::result(r).map(|n| n as usize)
}

/// `struct stat` of an open fd (O_PATH allowed), as the kernel's fstat family gives it.
pub fn fstat_raw(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    // SAFETY: stat is plain integers: all-zero is valid; the kernel fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: an empty C string, a valid fd and a writable stat buffer.
    let r = unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Errno::result(r).map(|_| st)
}

/// `struct statx` of an open fd (O_PATH allowed) with the caller's mask and sync flags.
pub fn statx_raw(fd: BorrowedFd<'_>, flags: i32, mask: u32) -> Result<libc::statx, Errno> {
    // SAFETY: statx is plain integers: all-zero is valid; the kernel fills it.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let flags =
        (flags & libc::AT_STATX_SYNC_TYPE) | libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: an empty C string, a valid fd and a writable statx buffer.
    let r = unsafe { libc::statx(fd.as_raw_fd(), c"".as_ptr(), flags, mask, &mut st) };
    Errno::result(r).map(|_| st)
}

/// The bytes of a plain-integer struct (stat, statx) to write into the caller.
pub fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    let n = std::mem::size_of::<T>();
    // SAFETY: T is Copy and (for the callers: stat, statx) plain integers with no
    // padding the kernel would not write itself; we read exactly size_of::<T>() bytes.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), n) }.to_vec()
}

/// Own an fd just received with SCM_RIGHTS.
pub fn received_fd(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this fd in our table for this message; nothing else
    // owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
