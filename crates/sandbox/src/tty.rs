//! `-t`: the relay between irun's terminal and the container's pty master. The host
//! terminal goes raw for the duration and is restored on every exit path (a guard whose
//! Drop restores; signals are read from a signalfd, so no handler can skip it).
//! SIGWINCH copies the outer size to the pty. Bytes are written as soon as read.
//! Never: touches namespaces, mounts.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::Pid;

use crate::container::{try_reap, ContainerError};

/// The host terminal in raw mode until dropped (or [`RawMode::restore`]d).
#[must_use = "dropping the guard restores the terminal at once"]
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Option<Termios>,
}

impl<'a> RawMode<'a> {
    /// Put `fd` in raw mode if it is a terminal; a no-op guard otherwise.
    pub fn enter(fd: BorrowedFd<'a>) -> RawMode<'a> {
        let saved = tcgetattr(fd).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            // Ignoring failure: the relay still works, just cooked.
            let _ = tcsetattr(fd, SetArg::TCSANOW, &raw);
        }
        RawMode { fd, saved }
    }

    /// Restore the saved mode now.
    pub fn restore(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = tcsetattr(self.fd, SetArg::TCSANOW, &t); // last resort: nothing else to try
        }
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        self.restore();
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Relay until the container (`pid`) ended and its pty is drained; forward signals.
pub fn relay(
    pid: Pid,
    master: OwnedFd,
    with_stdin: bool,
    set: &SigSet,
) -> Result<i32, ContainerError> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let in_fd = stdin.as_fd();
    let out_fd = stdout.as_fd();
    let mut raw = RawMode::enter(in_fd);
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(
        |errno| ContainerError::Tty {
            what: "signalfd",
            errno,
        },
    )?;
    let mut stdin_open = with_stdin;
    let mut master_open = true;
    let mut code: Option<i32> = None;
    let mut buf = vec![0u8; 64 * 1024];
    while master_open || code.is_none() {
        if code.is_none() {
            code = try_reap(pid);
        }
        if !master_open {
            // Output drained; block on signals until the container is reaped.
            if let Ok(Some(_)) = sfd.read_signal() {}
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            continue;
        }
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(in_fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(ContainerError::Tty {
                    what: "poll",
                    errno,
                })
            }
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .map(|r| !r.is_empty())
                .unwrap_or(false)
        };
        let (m_ready, s_ready, i_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if m_ready {
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => master_open = false,
                Ok(n) => {
                    if write_all(out_fd, &buf[..n]).is_err() {
                        master_open = false; // our stdout is gone: stop relaying, still reap
                    }
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => master_open = false,
            }
        }
        if s_ready {
            while let Ok(Some(si)) = sfd.read_signal() {
                let Ok(sig) = Signal::try_from(si.ssi_signo as i32) else {
                    continue;
                };
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => {
                        if let Ok(ws) = crate::sys::get_winsize(in_fd) {
                            let _ = crate::sys::set_winsize(master.as_fd(), &ws);
                        }
                    }
                    s => {
                        let _ = kill(pid, s);
                    }
                }
            }
        }
        if i_ready {
            match nix::unistd::read(in_fd, &mut buf) {
                Ok(0) => {
                    stdin_open = false;
                    // EOF on our stdin: send the pty's EOF character (^D) once.
                    let _ = write_all(master.as_fd(), &[4]);
                }
                Ok(n) => {
                    let _ = write_all(master.as_fd(), &buf[..n]);
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
        if code.is_none() {
            code = try_reap(pid);
        }
        // The container ended but someone still holds the slave (cannot happen once pid
        // 1 is gone: the pid namespace dies with it), so stop at EIO or when reaped and
        // nothing more is readable.
        if code.is_some() && !m_ready {
            master_open = false;
        }
    }
    raw.restore();
    let _ = master.as_raw_fd();
    Ok(code.unwrap_or(125))
}
