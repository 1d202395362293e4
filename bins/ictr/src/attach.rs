//! `ictr attach`: connect to a running container. With a terminal (`-t` at its start)
//! through its monitor's attach socket: our terminal goes raw (restored on every exit
//! path), its size follows ours, input goes to the container with `-i`, and the detach
//! keys (default ctrl-p ctrl-q) leave it running. Without a terminal: its output from now
//! on, until it ends. Either way exits with the container's exit code when it ends.
//! Also `ictr start -a`.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use imago_cli::GlobalOpts;
use imago_runtime::attach::{self, Frame, MAX_FRAME};
use imago_runtime::logfile::{self, Reader};
use imago_runtime::status::LOST_EXIT_CODE;
use imago_runtime::{control, status, ContainerId, ContainerRecord, Containers};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::common::{self, CtrError};

/// How long the end of a container may take to be recorded after its output closed.
const END_WAIT: Duration = Duration::from_secs(10);

pub use crate::args::AttachArgs as Args;

/// How an attachment ended.
pub enum Ended {
    /// The container ended with this code.
    Exit(i32),
    /// The user detached.
    Detached,
}

impl Ended {
    /// The exit code of ictr.
    pub fn code(&self) -> ExitCode {
        match self {
            Ended::Exit(c) => ExitCode::from((*c).clamp(0, 255) as u8),
            Ended::Detached => ExitCode::SUCCESS,
        }
    }
}

/// docker's detach keys: `ctrl-p,ctrl-q`, `ctrl-@`, `a`.
pub fn parse_keys(s: &str) -> Result<Vec<u8>, CtrError> {
    let bad = || {
        CtrError::Usage(format!(
            "invalid --detach-keys `{s}`: use ctrl-<key> or a character, comma separated"
        ))
    };
    s.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let [b] = c.as_bytes() else { return Err(bad()) };
                let up = b.to_ascii_uppercase();
                if (b'@'..=b'_').contains(&up) {
                    return Ok(up & 0x1f);
                }
                return Err(bad());
            }
            match k.as_bytes() {
                [b] => Ok(*b),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Attach to container `id` (running): `stdin` passes our input, `from` is where the
/// output of a container without a terminal starts (default: now).
pub fn attach_to(
    c: &Containers,
    id: &ContainerId,
    rec: &ContainerRecord,
    stdin: bool,
    keys: &[u8],
    from: Option<Reader>,
) -> Result<Ended, CtrError> {
    let tty = rec.launch.as_ref().is_some_and(|l| l.tty);
    if tty {
        let sock = attach::connect(rec)?;
        if relay(&sock, stdin, keys)? {
            return Ok(Ended::Detached);
        }
    } else {
        let path = logfile::path(&c.dir(id), id.as_str());
        let mut r = from.unwrap_or_else(|| Reader::open_at_end(&path));
        crate::logs::follow(c, id, &mut r, &crate::logs::plain())?;
    }
    let code = match control::wait_stopped(c, id, Some(END_WAIT)) {
        Ok(Some(st)) => st.exit_code.unwrap_or(0),
        Ok(None) | Err(_) => LOST_EXIT_CODE,
    };
    Ok(Ended::Exit(code))
}

fn send(sock: &UnixStream, f: &Frame) -> std::io::Result<()> {
    let mut s = sock;
    s.write_all(&attach::encode(f))
}

fn send_size(sock: &UnixStream) -> std::io::Result<()> {
    match imago_runtime::detach::terminal_size() {
        Some((rows, cols)) => send(sock, &Frame::Resize { rows, cols }),
        None => Ok(()),
    }
}

/// Relay between our terminal and the socket; true when the user detached.
fn relay(sock: &UnixStream, with_stdin: bool, keys: &[u8]) -> Result<bool, CtrError> {
    let stdin = std::io::stdin();
    let mut raw = imago_sandbox::tty::RawMode::enter(stdin.as_fd());
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&winch), None)
        .map_err(|e| CtrError::Output(e.into()))?;
    let sfd = SignalFd::with_flags(&winch, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| CtrError::Output(e.into()))?;
    send_size(sock)?;
    let mut stdin_open = with_stdin;
    let mut matched = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = std::io::stdout();
    loop {
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(CtrError::Output(e.into())),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            let n = match (&mut &*sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
        if ready[1] {
            while let Ok(Some(_)) = sfd.read_signal() {}
            send_size(sock)?;
        }
        if ready.get(2).copied().unwrap_or(false) {
            let n = match stdin.lock().read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                stdin_open = false;
                continue;
            }
            let (data, detach) = scan_keys(&buf[..n], keys, &mut matched);
            for chunk in data.chunks(MAX_FRAME) {
                // A closed socket shows on its read side next.
                let _ = send(sock, &Frame::Input(chunk.to_vec()));
            }
            if detach {
                raw.restore();
                return Ok(true);
            }
        }
    }
    raw.restore();
    Ok(false)
}

/// Pass `input` on except a detach sequence: bytes that may start one are held back
/// (in `matched`) until it is complete (detach) or broken (they go out after all).
fn scan_keys(input: &[u8], keys: &[u8], matched: &mut usize) -> (Vec<u8>, bool) {
    let mut out = vec![];
    for &b in input {
        if keys.is_empty() {
            out.push(b);
            continue;
        }
        if b == keys[*matched] {
            *matched += 1;
            if *matched == keys.len() {
                *matched = 0;
                return (out, true);
            }
            continue;
        }
        out.extend_from_slice(&keys[..*matched]);
        *matched = 0;
        if b == keys[0] {
            *matched = 1;
            if keys.len() == 1 {
                *matched = 0;
                return (out, true);
            }
        } else {
            out.push(b);
        }
    }
    (out, false)
}

fn run_attach(global: &GlobalOpts, a: &Args) -> Result<Ended, CtrError> {
    let keys = parse_keys(&a.detach_keys)?;
    let c = common::containers(global)?;
    let (id, rec) = common::find(&c, &a.container)?;
    if !status::of(&rec).running() {
        return Err(CtrError::Usage(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    attach_to(&c, &id, &rec, !a.no_stdin, &keys, None)
}

/// Run `ictr attach`.
pub fn run(global: &GlobalOpts, args: &Args) -> ExitCode {
    match run_attach(global, args) {
        Ok(e) => e.code(),
        Err(e) => imago_cli::fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), [0x10, 0x11]);
        assert_eq!(parse_keys("ctrl-@,a").unwrap(), [0, b'a']);
        assert!(parse_keys("ctrl-pp").is_err());
    }

    #[test]
    fn detach_sequences_are_held_back_until_decided() {
        let keys = [0x10, 0x11];
        let mut m = 0;
        assert_eq!(scan_keys(b"ab", &keys, &mut m), (b"ab".to_vec(), false));
        assert_eq!(
            scan_keys(&[b'x', 0x10], &keys, &mut m),
            (b"x".to_vec(), false)
        );
        assert_eq!(m, 1);
        assert_eq!(scan_keys(b"y", &keys, &mut m), (vec![0x10, b'y'], false));
        assert_eq!(
            scan_keys(&[0x10, 0x11, b'z'], &keys, &mut m),
            (vec![], true)
        );
    }
}
