//! ibuild's progress: [`PlainLines`] (a line per step, RUN output as is) and, on a
//! terminal, [`StepDisplay`] (a spinner for the active step with its elapsed time and its
//! last output line; each finished step becomes a permanent line above it:
//! `[3/9] RUN make  DONE 1.2s`, `[2/9] COPY . /  CACHED`). Both draw the builder's
//! [`Event`]s with the same texts.
//!
//! RUN output is the container's fd 1 and 2, which the engine sets to this process's
//! stderr. The display reads a pipe ([`StepDisplay::capture_fd`]) that the program
//! points its own fd 2 at while the build runs: a reader thread splits it into lines,
//! shows the latest on the spinner and keeps the step's last [`TAIL`] lines, printed
//! with the error when the build fails. Every other writer of fd 2 during the build
//! (tracing logs, helpers) is shown the same way. The bars and the tail go to a private
//! duplicate of the real stderr.
//! Never: decides anything about the build, replaces the process's fds 0, 1, 2 (the
//! program does, it owns them).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imago_builder::events::{Event, Sink};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{dup_stderr, lock, multi_on, println, style, Term};

/// Lines of a failed step's output printed with the error.
pub const TAIL: usize = 20;
/// Longest line kept (bytes); longer lines are cut.
const MAX_LINE: usize = 4096;

/// `[3/9] RUN make`.
fn step_header(n: usize, total: usize, text: &str) -> String {
    format!("[{n}/{total}] {text}")
}

/// `DONE 1.2s`.
fn done_status(took: Duration) -> String {
    format!("DONE {:.1}s", took.as_secs_f64())
}

/// The lines of `Written`: the image, then each name.
fn written_lines(id: &impl std::fmt::Display, tags: &[String], start: Instant) -> Vec<String> {
    let mut lines = vec![format!(
        "writing image {id} done ({:.1}s)",
        start.elapsed().as_secs_f64()
    )];
    lines.extend(tags.iter().map(|t| format!("naming to {t} done")));
    lines
}

/// Plain progress lines on stderr: `[3/9] RUN …`, then `[3/9] CACHED` or `DONE 0.1s`.
pub struct PlainLines {
    start: Instant,
}

impl PlainLines {
    /// Lines from now on (the build's time counts from here).
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for PlainLines {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for PlainLines {
    fn event(&mut self, e: Event) {
        let lines = match e {
            Event::Stage { .. } => vec![],
            Event::Step { n, total, text } => vec![step_header(n, total, &text)],
            Event::Cached { n } => vec![format!("[{n}] CACHED")],
            Event::Done { n, took } => vec![format!("[{n}] {}", done_status(took))],
            Event::Output { line, .. } => vec![line],
            Event::Warning(w) => vec![format!("warning: {w}")],
            Event::Written { id, tags } => written_lines(&id, &tags, self.start),
        };
        let mut err = std::io::stderr().lock();
        for l in lines {
            // Ignoring write errors: progress is best effort.
            let _ = writeln!(err, "{l}");
        }
    }
}

/// Why the display could not be set up (the caller falls back to plain lines).
#[derive(Debug, thiserror::Error)]
pub enum StepDisplayError {
    /// stderr could not be duplicated to draw on.
    #[error("duplicate stderr for the progress display")]
    Dup(#[source] std::io::Error),
    /// No pipe.
    #[error("create the pipe that captures RUN output")]
    Pipe(#[source] std::io::Error),
    /// No reader thread.
    #[error("spawn the RUN output reader thread")]
    Thread(#[source] std::io::Error),
}

/// What the reader thread and the sink share.
#[derive(Default)]
struct Shared {
    /// The active step's spinner (none between steps).
    bar: Option<ProgressBar>,
    /// The active (or last) step's last lines.
    tail: VecDeque<String>,
}

/// One line of captured output, printable on one terminal line: escape sequences
/// and control characters dropped, tabs as spaces, invalid UTF-8 replaced.
pub fn clean_line(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(&raw[..raw.len().min(MAX_LINE)]);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI `ESC [ params letter`, else `ESC intermediates… final`.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next();
                }
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim_end().to_string()
}

/// Splits a byte stream into lines at `\n` (a line) and `\r` (a progress update:
/// shown, not kept), calling `f(line, keep)`.
/// `\r\n` is one line end.
#[derive(Default)]
pub struct Splitter {
    partial: Vec<u8>,
    /// The line a `\r` just ended: a `\n` right after keeps it.
    after_cr: Option<String>,
}

impl Splitter {
    /// Split `data`, calling `f` for each line it ends.
    pub fn feed(&mut self, data: &[u8], f: &mut impl FnMut(String, bool)) {
        for &b in data {
            match b {
                b'\n' if self.partial.is_empty() && self.after_cr.is_some() => {
                    if let Some(line) = self.after_cr.take() {
                        f(line, true);
                    }
                }
                b'\n' | b'\r' => {
                    let line = clean_line(&self.partial);
                    self.partial.clear();
                    if b == b'\r' {
                        self.after_cr = Some(line.clone());
                    }
                    f(line, b == b'\n');
                }
                _ => {
                    self.after_cr = None;
                    if self.partial.len() < MAX_LINE {
                        self.partial.push(b);
                    }
                }
            }
        }
    }

    /// The last, unterminated line, if any.
    pub fn finish(&mut self, f: &mut impl FnMut(String, bool)) {
        if !self.partial.is_empty() {
            let line = clean_line(&self.partial);
            self.partial.clear();
            f(line, true);
        }
    }
}

/// The tty display; [`StepDisplay::finish`] (or drop) ends it. The program's fd 2 must
/// be its own again by then (else the last output waits 2 s and may be lost).
pub struct StepDisplay {
    start: Instant,
    mp: MultiProgress,
    shared: Arc<Mutex<Shared>>,
    /// The real stderr (a duplicate): the tail is printed on it.
    term: File,
    /// The write end of the capture pipe, until the end.
    writer: Option<std::io::PipeWriter>,
    done: Option<mpsc::Receiver<()>>,
    /// The active step: its number and its `[n/total] text` header.
    step: Option<(usize, String)>,
    style: ProgressStyle,
    /// [`StepDisplay::finish`] ran.
    ended: bool,
}

impl StepDisplay {
    /// Starts drawing on the terminal stderr is now; shows what is written to
    /// [`StepDisplay::capture_fd`].
    pub fn start() -> Result<Self, StepDisplayError> {
        let term = dup_stderr().map_err(StepDisplayError::Dup)?;
        let term_fd = rustix::io::fcntl_dupfd_cloexec(&term, 3)
            .map_err(|e| StepDisplayError::Dup(e.into()))?;
        // std's pipe ends are close-on-exec: only a copy on fd 2 reaches the containers.
        let (mut reader, writer) = std::io::pipe().map_err(StepDisplayError::Pipe)?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (tx, rx) = mpsc::channel();
        let sh = shared.clone();
        let mp = multi_on(term_fd);
        let mp2 = mp.clone();
        std::thread::Builder::new()
            .name("ibuild-output".into())
            .spawn(move || {
                let mut split = Splitter::default();
                let mut buf = [0u8; 8192];
                let mut show = |line: String, keep: bool| {
                    let mut s = lock(&sh);
                    if keep {
                        if s.tail.len() == TAIL {
                            s.tail.pop_front();
                        }
                        s.tail.push_back(line.clone());
                    }
                    match &s.bar {
                        Some(b) => b.set_message(line),
                        // Output outside a step (logs): above the display.
                        None if keep && !line.is_empty() => println(&mp2, line),
                        None => {}
                    }
                };
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => split.feed(&buf[..n], &mut show),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                split.finish(&mut show);
                // Ignoring a gone receiver: the display ended without waiting for us.
                let _ = tx.send(());
            })
            .map_err(StepDisplayError::Thread)?;
        let style = style(
            "{spinner} {prefix} {elapsed:>4} {wide_msg}",
            ProgressStyle::default_spinner,
        );
        Ok(Self {
            start: Instant::now(),
            mp,
            shared,
            term: File::from(term),
            writer: Some(writer),
            done: Some(rx),
            step: None,
            style,
            ended: false,
        })
    }

    /// Ends the active step with `status` as a permanent line.
    fn end_step(&mut self, n: usize, status: &str) {
        let bar = lock(&self.shared).bar.take();
        if let Some(b) = bar {
            b.finish_and_clear();
            self.mp.remove(&b);
        }
        let header = match self.step.take() {
            Some((m, h)) if m == n => h,
            _ => format!("[{n}]"),
        };
        println(&self.mp, format!("{header}  {status}"));
    }

    /// The pipe whose lines the display shows (`None` once it ended): the program
    /// points its fd 2 at it for the build and back before [`StepDisplay::finish`].
    pub fn capture_fd(&self) -> Option<BorrowedFd<'_>> {
        self.writer.as_ref().map(|w| w.as_fd())
    }

    /// Closes our end of the pipe and waits (briefly) for the last captured output.
    fn stop_capture(&mut self) {
        self.writer = None;
        if let Some(rx) = self.done.take() {
            // A process that outlived its RUN step may hold the pipe: do not hang.
            let _ = rx.recv_timeout(Duration::from_secs(2));
        }
    }

    /// Ends the display. On failure, the failed step is marked `ERROR` and its last
    /// [`TAIL`] output lines are printed on the real stderr (the error follows).
    pub fn finish(mut self, failed: bool) {
        self.end(failed);
    }

    fn end(&mut self, failed: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        if failed {
            if let Some((n, _)) = self.step {
                self.end_step(n, "ERROR");
            }
        }
        // Ignoring a failed clear: the lines stay on the terminal, nothing is lost.
        let _ = self.mp.clear();
        self.stop_capture();
        if failed {
            let tail: Vec<String> = lock(&self.shared).tail.iter().cloned().collect();
            if !tail.is_empty() {
                let mut err = &self.term;
                // Ignoring write errors: stderr is the last channel we have.
                let _ = writeln!(err, "--- last {} lines of output ---", tail.len());
                for l in tail {
                    let _ = writeln!(err, "{l}");
                }
                let _ = writeln!(err, "---");
            }
        }
    }
}

impl Drop for StepDisplay {
    /// Without [`StepDisplay::finish`] (a panic): as a failure, so that the panic message,
    /// which went to the pipe, is printed with the tail (the program's fd 2 capture must
    /// be dropped first).
    fn drop(&mut self) {
        self.end(true);
    }
}

impl Sink for StepDisplay {
    fn event(&mut self, e: Event) {
        match e {
            Event::Stage { .. } => {}
            Event::Step { n, total, text } => {
                if let Some((m, _)) = self.step {
                    self.end_step(m, "");
                }
                let header = step_header(n, total, &text);
                let width = usize::from(Term::width_of(&self.term)).max(20);
                let prefix: String = header.chars().take(width / 2).collect();
                let bar = self.mp.add(
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
                        .with_style(self.style.clone())
                        .with_prefix(prefix),
                );
                bar.enable_steady_tick(Duration::from_millis(100));
                let mut s = lock(&self.shared);
                s.tail.clear();
                s.bar = Some(bar);
                drop(s);
                self.step = Some((n, header));
            }
            Event::Cached { n } => self.end_step(n, "CACHED"),
            Event::Done { n, took } => self.end_step(n, &done_status(took)),
            Event::Output { line, .. } => {
                if let Some(b) = &lock(&self.shared).bar {
                    b.set_message(clean_line(line.as_bytes()));
                }
            }
            Event::Warning(w) => println(&self.mp, format!("warning: {w}")),
            Event::Written { id, tags } => {
                for l in written_lines(&id, &tags, self.start) {
                    println(&self.mp, l);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_line_drops_escapes_and_controls() {
        assert_eq!(clean_line(b"\x1b[1;31mred\x1b[0m\tok\x07"), "red ok");
        assert_eq!(clean_line(b"\x1b(Bplain  "), "plain");
        assert_eq!(clean_line(b"caf\xc3\xa9 \xff"), "caf\u{e9} \u{fffd}");
    }

    #[test]
    fn splitter_lines_and_carriage_returns() {
        let mut got = Vec::new();
        let mut s = Splitter::default();
        let mut f = |l: String, keep: bool| got.push((l, keep));
        s.feed(b"one\ntw", &mut f);
        s.feed(b"o\n10%\r20%\rdos\r\nlast", &mut f);
        s.finish(&mut f);
        assert_eq!(
            got,
            [
                ("one".to_string(), true),
                ("two".to_string(), true),
                ("10%".to_string(), false),
                ("20%".to_string(), false),
                ("dos".to_string(), false),
                ("dos".to_string(), true),
                ("last".to_string(), true),
            ]
        );
    }

    #[test]
    fn splitter_cuts_long_lines() {
        let mut got = Vec::new();
        let mut s = Splitter::default();
        s.feed(&vec![b'x'; MAX_LINE * 2], &mut |l, _| got.push(l));
        s.feed(b"\n", &mut |l, _| got.push(l));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_LINE);
    }

    #[test]
    fn plain_and_tty_texts_are_the_same() {
        assert_eq!(step_header(3, 9, "RUN make"), "[3/9] RUN make");
        assert_eq!(done_status(Duration::from_millis(1240)), "DONE 1.2s");
        let lines = written_lines(&"sha256:ab", &["a:1".to_string()], Instant::now());
        assert!(
            lines[0].starts_with("writing image sha256:ab done ("),
            "{lines:?}"
        );
        assert_eq!(lines[1], "naming to a:1 done");
    }
}
