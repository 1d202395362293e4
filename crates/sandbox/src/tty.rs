//! `-t`: the container's pty and the relay between irun's terminal and its master.
//! The container's pid 1 opens the pty in the container's own devpts and passes the
//! master to irun over the control channel ([`open_pty`]); irun copies its terminal's
//! size onto it ([`copy_size`]) and relays ([`relay`]). The host terminal goes raw for the
//! duration and is restored on every exit path (a guard whose Drop restores; signals are
//! read from a signalfd, so no handler can skip it). SIGWINCH copies the outer size to
//! the pty. Bytes are written as soon as read.
//! Never: touches namespaces, mounts, reaps other than through wait.rs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::Pid;

use crate::channel::{self, ChannelError, Msg};
use crate::wait::{forward, try_reap};

/// Failures of opening the container's pty or of relaying it.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    /// posix_openpt in the container's devpts failed.
    #[error("open a pty master (posix_openpt /dev/ptmx)")]
    Openpt(#[source] Errno),
    /// grantpt failed.
    #[error("grant the pty (grantpt)")]
    Grantpt(#[source] Errno),
    /// unlockpt failed.
    #[error("unlock the pty (unlockpt)")]
    Unlockpt(#[source] Errno),
    /// ptsname_r failed.
    #[error("name the pty's slave (ptsname)")]
    Ptsname(#[source] Errno),
    /// The slave could not be opened.
    #[error("open the pty slave `{0}`")]
    OpenSlave(String, #[source] Errno),
    /// The master could not be passed to irun, or irun's answer not received.
    #[error("pass the pty master to irun")]
    Pass(#[source] ChannelError),
    /// irun did not answer `PtyReady`.
    #[error("pass the pty master to irun: it closed the channel or answered something else")]
    NoAnswer,
    /// The signalfd of the relay could not be made.
    #[error("read signals during the relay (signalfd)")]
    Signalfd(#[source] Errno),
    /// poll in the relay failed.
    #[error("wait for terminal input (poll)")]
    Poll(#[source] Errno),
}

/// In the container's pid 1, after the mount plan and pivot_root: a pty from the
/// container's devpts; the master is passed to irun, which sets its size and answers
/// `PtyReady`. Returns the slave, to become the command's controlling terminal.
pub fn open_pty(chan: BorrowedFd<'_>) -> Result<OwnedFd, TtyError> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = nix::pty::posix_openpt(flags).map_err(TtyError::Openpt)?;
    nix::pty::grantpt(&master).map_err(TtyError::Grantpt)?;
    nix::pty::unlockpt(&master).map_err(TtyError::Unlockpt)?;
    let name = nix::pty::ptsname_r(&master).map_err(TtyError::Ptsname)?;
    let slave =
        open(name.as_str(), flags, Mode::empty()).map_err(|e| TtyError::OpenSlave(name, e))?;
    channel::send(chan, &Msg::Pty, &[master.as_fd()]).map_err(TtyError::Pass)?;
    match channel::recv(chan) {
        Ok(Some((Msg::PtyReady, _))) => Ok(slave),
        Ok(_) => Err(TtyError::NoAnswer),
        Err(e) => Err(TtyError::Pass(e)),
    }
}

/// Give the pty `master` the size of irun's terminal (stdin), if it is one.
pub fn copy_size(master: BorrowedFd<'_>) {
    if let Ok(ws) = crate::sys::get_winsize(std::io::stdin().as_fd()) {
        // Best effort: a pty keeps its default 0x0 size, which programs survive.
        let _ = crate::sys::set_winsize(master, &ws);
    }
}

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
            // Nothing else to try when the terminal refuses its own saved mode.
            let _ = tcsetattr(self.fd, SetArg::TCSANOW, &t);
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
pub fn relay(pid: Pid, master: OwnedFd, with_stdin: bool, set: &SigSet) -> Result<i32, TtyError> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let in_fd = stdin.as_fd();
    let out_fd = stdout.as_fd();
    let mut raw = RawMode::enter(in_fd);
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(TtyError::Signalfd)?;
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
            // A failed or interrupted poll only shortens the wait: the loop reaps again.
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
            Err(errno) => return Err(TtyError::Poll(errno)),
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
                    Signal::SIGWINCH => copy_size(master.as_fd()),
                    s => forward(pid, s),
                }
            }
        }
        if i_ready {
            match nix::unistd::read(in_fd, &mut buf) {
                Ok(0) => {
                    stdin_open = false;
                    // EOF on our stdin: send the pty's EOF character (^D) once. A
                    // failed write means the container closed its side: the master
                    // read above sees that and ends the relay.
                    let _ = write_all(master.as_fd(), &[4]);
                }
                Ok(n) => {
                    // As above: a dead pty shows on the master's read side.
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
    drop(master);
    Ok(code.unwrap_or(125))
}
