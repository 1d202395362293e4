//! Progress on stderr, drawn with indicatif: blob transfers for `ipull` and `ipush`
//! ([`transfer`]) and the steps of a build for `ibuild` ([`build`]).
//! Owns what both share: whether stderr is a terminal, the draw target (the terminal
//! behind a private duplicate of stderr, redrawn [`REFRESH_HZ`] times a second), the
//! styles, the best-effort line above the bars and the lock on the state they share.
//! Never: decides anything about a transfer or a build, writes stdout.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use indicatif::{MultiProgress, ProgressDrawTarget, ProgressStyle, TermLike};

pub mod build;
pub mod transfer;

pub use transfer::TransferProgress;

/// Redraws per second of every display.
const REFRESH_HZ: u8 = 10;

/// Whether stderr is a terminal (bars), else plain lines.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A private duplicate of stderr (close-on-exec, above the stdio slots) to draw on: it
/// stays the terminal whatever fd 2 becomes later.
fn dup_stderr() -> std::io::Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(std::io::stderr().as_fd(), 3).map_err(Into::into)
}

/// Bars drawn on the terminal `term` (see [`dup_stderr`]).
fn multi_on(term: OwnedFd) -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
        Box::new(Term(File::from(term))),
        REFRESH_HZ,
    ))
}

/// The style of `template` (ours are constants, so the fallback is never seen).
fn style(template: &str, fallback: fn() -> ProgressStyle) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| fallback())
}

/// A permanent line above the bars.
fn println(multi: &MultiProgress, text: impl AsRef<str>) {
    // Ignoring a failed draw: progress is not worth failing the work for.
    let _ = multi.println(text);
}

/// The state behind `m`, also after a panic of another holder (progress only draws it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The terminal, written with plain ANSI sequences (indicatif's `TermLike`).
#[derive(Debug)]
struct Term(File);

impl Term {
    fn put(&self, s: &str) -> std::io::Result<()> {
        (&self.0).write_all(s.as_bytes())
    }

    fn winsize(fd: impl AsFd) -> Option<rustix::termios::Winsize> {
        rustix::termios::tcgetwinsize(fd).ok()
    }

    /// The width of the terminal behind `fd` (80 when unknown).
    fn width_of(fd: impl AsFd) -> u16 {
        Self::winsize(fd)
            .map(|w| w.ws_col)
            .filter(|&c| c > 0)
            .unwrap_or(80)
    }

    /// `n` times the cursor move `ESC [ n letter`; nothing for 0.
    fn move_cursor(&self, n: usize, letter: char) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}{letter}"))
    }
}

impl TermLike for Term {
    fn width(&self) -> u16 {
        Self::width_of(&self.0)
    }
    fn height(&self) -> u16 {
        Self::winsize(&self.0)
            .map(|w| w.ws_row)
            .filter(|&r| r > 0)
            .unwrap_or(24)
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        (&self.0).flush()
    }
}
