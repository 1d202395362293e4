//! The monitor's I/O thread: one poll loop over the container's output (two pipes, or
//! the host side of its terminal), the attach socket and its clients, and a "done" pipe
//! the main thread closes when the container has ended. Output goes to the log file and,
//! with a terminal, to every attached client; client input goes to the terminal.
//! While the start is under way it also watches for the container to be running
//! ([`StartWatch`]) and says so once.
//! Never: starts, signals (but SIGWINCH to its own process) or reaps the container.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::attach::{Decoder, Frame};
use crate::logfile::{self, Stream};

/// Attached clients at most (more are refused).
const MAX_CLIENTS: usize = 16;
/// Output a slow client may lag behind before it is dropped.
const MAX_CLIENT_BACKLOG: usize = 1024 * 1024;
/// How long output may still come after the container ended (a process outside the
/// container that inherited a pipe end must not keep the monitor alive).
const DRAIN: Duration = Duration::from_secs(2);
/// How often the start is checked while it is under way.
const WATCH_EVERY: Duration = Duration::from_millis(2);

/// Tells when the container runs. The sandbox reports `Running` on its control channel
/// and closes the channel right after, inside the call that then waits for the end; so
/// the monitor watches its own fd table: the channel socket is the one socket made by
/// `prepare_with`. Closed while the container's pid 1 still exists (even as a zombie)
/// means running; the failure paths reap pid 1 before they close the channel.
pub(crate) struct StartWatch {
    fd: i32,
    link: PathBuf,
    container: i32,
}

/// The sockets among our fds: (fd, link target).
pub(crate) fn sockets() -> Vec<(i32, PathBuf)> {
    let Ok(d) = std::fs::read_dir("/proc/self/fd") else {
        return vec![];
    };
    d.flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            link.to_string_lossy()
                .starts_with("socket:")
                .then_some((fd, link))
        })
        .collect()
}

impl StartWatch {
    /// The one socket in `after` that was not in `before`, for container pid `container`.
    pub(crate) fn new(
        before: &[(i32, PathBuf)],
        after: Vec<(i32, PathBuf)>,
        container: i32,
    ) -> Option<StartWatch> {
        let mut new: Vec<_> = after.into_iter().filter(|s| !before.contains(s)).collect();
        (new.len() == 1).then(|| {
            let (fd, link) = new.remove(0);
            StartWatch {
                fd,
                link,
                container,
            }
        })
    }

    /// `None` while the start is under way; `Some(true)` running, `Some(false)` it failed.
    fn check(&self) -> Option<bool> {
        let now = std::fs::read_link(format!("/proc/self/fd/{}", self.fd)).ok();
        if now.as_deref() == Some(self.link.as_path()) {
            return None;
        }
        Some(Path::new(&format!("/proc/{}", self.container)).exists())
    }
}

/// The terminal side: the host end of the container's terminal and its attach socket.
pub(crate) struct PtyServe {
    /// For input (the same terminal the output is read from).
    pub master: OwnedFd,
    /// `attach.sock`.
    pub listener: UnixListener,
    /// Input is passed on only with `-i`.
    pub interactive: bool,
}

struct Client {
    sock: UnixStream,
    decoder: Decoder,
    backlog: Vec<u8>,
}

/// Everything the I/O thread owns.
pub(crate) struct Io {
    /// Read ends: stdout and stderr pipes, or the terminal's host end (as stdout).
    pub streams: Vec<(OwnedFd, Stream)>,
    /// With a terminal.
    pub pty: Option<PtyServe>,
    /// The log.
    pub log: logfile::Writer,
    /// Read end of the main thread's "done" pipe.
    pub done: OwnedFd,
    /// Watching the start, until it is decided.
    pub watch: Option<StartWatch>,
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        match nix::unistd::read(fd.as_fd(), buf) {
            Ok(0) | Err(Errno::EIO) => return None,
            Ok(n) => return Some(n),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Some(0),
            Err(_) => return None,
        }
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd.as_fd(), data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return, // the terminal is gone: the output side sees that too
        }
    }
}

impl Io {
    /// Run until the container ended and its output is drained. `started` is called
    /// once when the watch sees the container running.
    pub(crate) fn run(mut self, started: &dyn Fn()) {
        if self.watch.is_none() {
            // The channel could not be told apart: say "running" now rather than make
            // the starter wait for the container's end (a failed start then shows as an
            // exit with code 125 instead of the starter's error).
            started();
        }
        let mut open = vec![true; self.streams.len()];
        let mut clients: Vec<Client> = vec![];
        let mut done_at: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if done_at.is_some_and(|t| t.elapsed() >= DRAIN)
                || (done_at.is_some() && !open.contains(&true))
            {
                break;
            }
            let mut fds: Vec<PollFd> = vec![];
            let mut idx_stream = vec![];
            for (i, (fd, _)) in self.streams.iter().enumerate() {
                if open[i] {
                    idx_stream.push(i);
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
            let done_slot = done_at.is_none().then(|| {
                fds.push(PollFd::new(self.done.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let listen_slot = self.pty.as_ref().map(|p| {
                fds.push(PollFd::new(p.listener.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let first_client = fds.len();
            for c in &clients {
                let mut f = PollFlags::POLLIN;
                if !c.backlog.is_empty() {
                    f |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.sock.as_fd(), f));
            }
            let timeout = if self.watch.is_some() {
                PollTimeout::try_from(WATCH_EVERY).unwrap_or(PollTimeout::NONE)
            } else if let Some(t) = done_at {
                PollTimeout::try_from(DRAIN.saturating_sub(t.elapsed()))
                    .unwrap_or(PollTimeout::NONE)
            } else {
                PollTimeout::NONE
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    tracing::warn!("monitor poll: {e}");
                    break;
                }
            }
            let ready: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);
            if let Some(w) = &self.watch {
                if let Some(running) = w.check() {
                    if running {
                        started();
                    }
                    self.watch = None;
                }
            }
            for (slot, &i) in idx_stream.iter().enumerate() {
                if ready[slot].is_empty() {
                    continue;
                }
                let (fd, stream) = &self.streams[i];
                match read_some(fd, &mut buf) {
                    None => open[i] = false,
                    Some(0) => {}
                    Some(n) => {
                        if let Err(e) = self.log.write(*stream, &buf[..n]) {
                            tracing::warn!("write the container's log: {e}");
                        }
                        broadcast(&mut clients, &buf[..n]);
                    }
                }
            }
            if done_slot.is_some_and(|s| !ready[s].is_empty()) {
                done_at = Some(Instant::now());
            }
            if let (Some(s), Some(p)) = (listen_slot, &self.pty) {
                if !ready[s].is_empty() {
                    accept(p, &mut clients);
                }
            }
            let flags: Vec<PollFlags> = ready[first_client..].to_vec();
            serve_clients(self.pty.as_ref(), &mut clients, &flags, &mut buf);
        }
        if let Err(e) = self.log.flush_partial() {
            tracing::warn!("write the container's log: {e}");
        }
    }
}

fn accept(p: &PtyServe, clients: &mut Vec<Client>) {
    let Ok((sock, _)) = p.listener.accept() else {
        return;
    };
    if clients.len() >= MAX_CLIENTS || sock.set_nonblocking(true).is_err() {
        return; // dropped: the client sees the connection close
    }
    clients.push(Client {
        sock,
        decoder: Decoder::default(),
        backlog: vec![],
    });
}

/// Queue output for every client and send what the socket takes now.
fn broadcast(clients: &mut Vec<Client>, data: &[u8]) {
    clients.retain_mut(|c| {
        c.backlog.extend_from_slice(data);
        flush(c) && c.backlog.len() <= MAX_CLIENT_BACKLOG
    });
}

/// Send the backlog; false when the client is gone.
fn flush(c: &mut Client) -> bool {
    while !c.backlog.is_empty() {
        match c.sock.write(&c.backlog) {
            Ok(0) => return false,
            Ok(n) => {
                c.backlog.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true
}

fn serve_clients(
    pty: Option<&PtyServe>,
    clients: &mut Vec<Client>,
    flags: &[PollFlags],
    buf: &mut [u8],
) {
    let mut i = 0;
    clients.retain_mut(|c| {
        let f = flags.get(i).copied().unwrap_or(PollFlags::empty());
        i += 1;
        if f.contains(PollFlags::POLLOUT) && !flush(c) {
            return false;
        }
        if !f.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            return true;
        }
        let n = match c.sock.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        c.decoder.push(&buf[..n]);
        loop {
            match c.decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Some(p) = pty {
                        handle(p, frame);
                    }
                }
                Ok(None) => return true,
                Err(e) => {
                    tracing::warn!("attach client: {e}");
                    return false;
                }
            }
        }
    });
}

fn handle(p: &PtyServe, frame: Frame) {
    match frame {
        Frame::Input(data) if p.interactive => write_all(&p.master, &data),
        Frame::Input(_) => {}
        Frame::Resize { rows, cols } => {
            let ws = rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // Best effort: a terminal that keeps its size still works.
            let _ = rustix::termios::tcsetwinsize(&p.master, ws);
            // The sandbox's relay copies the size on to the container's own terminal
            // when it reads SIGWINCH (blocked in every thread, read from a signalfd).
            // Ignoring the result: a signal to ourselves cannot fail.
            let _ =
                nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGWINCH);
        }
    }
}
