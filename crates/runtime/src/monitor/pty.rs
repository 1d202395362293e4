//! The host side of a detached container's terminal (`-t`): a pty whose slave becomes
//! the monitor's own fds 0 and 1, where the sandbox's terminal relay reads and writes,
//! and whose master the I/O thread reads for output and serves on the attach socket.
//! Never: reads or writes the terminal's data (io.rs does).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;

use super::io::PtyServe;
use super::{io_err, MonitorError, Request};

/// The host side of the container's terminal: a pty whose slave becomes our fds 0 and 1
/// (the sandbox relays between those and the container's own pty), in raw mode; its
/// master is read for output and served on the attach socket.
pub(super) fn terminal(
    req: &Request,
    live: &Path,
    interactive: bool,
) -> Result<(OwnedFd, PtyServe), MonitorError> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = nix::pty::posix_openpt(flags).map_err(|e| MonitorError::Sys("open a pty", e))?;
    nix::pty::grantpt(&master).map_err(|e| MonitorError::Sys("grant the pty", e))?;
    nix::pty::unlockpt(&master).map_err(|e| MonitorError::Sys("unlock the pty", e))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| MonitorError::Sys("name the pty", e))?;
    let slave = nix::fcntl::open(name.as_str(), flags, nix::sys::stat::Mode::empty())
        .map_err(|e| MonitorError::Sys("open the pty's slave", e))?;
    let master = OwnedFd::from(master);
    if let Some((rows, cols)) = req.winsize {
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // Best effort: programs survive a 0x0 terminal.
        let _ = rustix::termios::tcsetwinsize(&master, ws);
    }
    if let Ok(mut t) = tcgetattr(&slave) {
        cfmakeraw(&mut t);
        // Best effort: the relay makes it raw as well.
        let _ = tcsetattr(&slave, SetArg::TCSANOW, &t);
    }
    nix::unistd::dup2_stdin(&slave).map_err(|e| MonitorError::Sys("use the pty", e))?;
    nix::unistd::dup2_stdout(&slave).map_err(|e| MonitorError::Sys("use the pty", e))?;
    let path = live.join(crate::attach::SOCKET);
    let listener = crate::attach::bind(&path).map_err(io_err("listen on", &path))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("listen on", &path))?;
    let writer = master
        .try_clone()
        .map_err(io_err("duplicate the pty", &path))?;
    Ok((
        master,
        PtyServe {
            master: writer,
            listener,
            interactive,
        },
    ))
}

/// Put /dev/null back on fds 0 and 1 (closing our hold on the terminal's slave).
pub(super) fn release_terminal() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        // Ignoring failures: the slave then stays open until we exit, which only delays
        // the end of the I/O thread by its drain limit.
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
}
