//! ibuild: build a Dockerfile into an image in the store, with `docker build`'s flags.
//! Glue only: arguments → `imago_builder::engine::build` → progress on stderr (plain lines,
//! or the [`tty`] display on a terminal / `--progress tty`), the image id on stdout with
//! `-q`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use imago_builder::context::{BuildContext, InputError};
use imago_builder::engine::{self, BuildOptions, Network};
use imago_builder::events::{Event, Sink};
use imago_cli::{ExitCodes, GlobalOpts};

/// Build an image from a Dockerfile.
#[derive(Debug, Parser)]
#[command(name = "ibuild", version, about)]
struct Opts {
    #[command(flatten)]
    global: GlobalOpts,
    /// Name (and optionally a tag) for the image: `name:tag` (repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/Containerfile); `-` reads stdin
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// The stage to build (default: the last one)
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// A build-time variable: `K=V`, or `K` to take it from the environment (repeatable)
    #[arg(long = "build-arg", value_name = "K[=V]")]
    build_args: Vec<String>,
    /// Do not use the build cache
    #[arg(long)]
    no_cache: bool,
    /// Print only the image id (on stdout)
    #[arg(short, long)]
    quiet: bool,
    /// Add a label to the image: `K=V` (repeatable)
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Network for RUN steps
    #[arg(long, value_name = "MODE", default_value = "host", value_parser = ["host", "none", "private", "default"])]
    network: String,
    /// Progress display: `tty` (a spinner per step with its last output line), `plain`
    /// (one line per step and the RUN output as is), `auto` (tty when stderr is a terminal)
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    progress: String,
    /// Always pull base images from their registry (default: only when missing from the store)
    #[arg(long)]
    pull: bool,
    /// Target platform (only this machine's platform is supported)
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// A secret for `RUN --mount=type=secret`: `id=NAME,src=FILE` (repeatable)
    #[arg(long = "secret", value_name = "id=NAME,src=FILE")]
    secrets: Vec<String>,
    /// Clamp timestamps to this Unix time for reproducible images (default: $SOURCE_DATE_EPOCH)
    #[arg(long, value_name = "SECONDS", env = "SOURCE_DATE_EPOCH")]
    source_date_epoch: Option<i64>,
    /// The build context: a directory, or `-` for a tar on stdin
    #[arg(value_name = "CONTEXT")]
    context: String,
}

/// Errors of the program itself (arguments, context).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("invalid {what} `{value}`: expected {expected}")]
    Arg {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("platform `{0}` is not this machine's ({1}); cross-platform builds are not supported")]
    Platform(String, String),
    #[error(transparent)]
    Store(#[from] imago_store::StoreError),
    #[error(transparent)]
    Root(#[from] imago_cli::global::NoStoreRoot),
}

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hints: Vec<String> = match &e {
                Error::Build(b) => b.hint().into_iter().collect(),
                _ => vec![],
            };
            let code = match &e {
                Error::Build(b)
                    if matches!(&**b, engine::BuildError::Step { source, .. }
                        if matches!(**source, engine::StepError::Exit { .. })) =>
                {
                    1
                }
                _ => ExitCodes::IMAGO_FAILED,
            };
            imago_cli::report(&e, &hints, code)
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Cli(#[from] CliError),
    /// Boxed: a build error is large, and the common path should not carry it.
    #[error(transparent)]
    Build(Box<engine::BuildError>),
}

impl From<engine::BuildError> for Error {
    fn from(e: engine::BuildError) -> Self {
        Error::Build(Box::new(e))
    }
}

fn kv(what: &'static str, s: &str) -> Result<(String, String), CliError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(CliError::Arg {
            what,
            value: s.into(),
            expected: "K=V",
        }),
    }
}

fn run(opts: &Opts) -> Result<(), Error> {
    let root = opts.global.store_root().map_err(CliError::from)?;
    let store = imago_store::Store::open(&root).map_err(CliError::from)?;
    if let Some(p) = &opts.platform {
        let host = format!("linux/{}", imago_builder::config::host_arch());
        if p != &host && p.trim_end_matches("/v8") != host {
            return Err(CliError::Platform(p.clone(), host).into());
        }
    }
    // The context (a tar on stdin lives in a temp dir of the store, removed however the
    // build ends), the Dockerfile and the ignore file that goes with it.
    let context =
        BuildContext::open(&store, &opts.context, opts.file.as_deref()).map_err(CliError::from)?;
    let dockerfile = (context.dockerfile(opts.file.as_deref())).map_err(CliError::from)?;
    let ignore = context.ignore(&dockerfile).map_err(CliError::from)?;
    let labels = opts
        .labels
        .iter()
        .map(|l| kv("--label", l))
        .collect::<Result<Vec<_>, _>>()?;
    let network = match opts.network.as_str() {
        "none" => Network::None,
        "private" => Network::Private,
        _ => Network::Host,
    };
    let bo = BuildOptions {
        context_dir: context.dir().to_path_buf(),
        dockerfile: dockerfile.text,
        dockerfile_name: dockerfile.name,
        ignore,
        target: opts.target.clone(),
        build_args: build_args(&opts.build_args),
        no_cache: opts.no_cache,
        labels,
        tags: opts.tags.clone(),
        network,
        source_date_epoch: opts.source_date_epoch,
        secrets: secrets(&opts.secrets)?,
        quiet: opts.quiet,
        pull: opts.pull,
    };
    let built = build_with_progress(&store, &bo, opts)?;
    if opts.quiet {
        // Ignoring a closed stdout is what `ibuild -q | head` expects.
        let _ = writeln!(std::io::stdout(), "{}", built.id);
    }
    Ok(())
}

/// `--build-arg K=V`, or `K` alone for the value of `$K` (left out when unset).
fn build_args(args: &[String]) -> BTreeMap<String, String> {
    let mut build_args = BTreeMap::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    build_args
}

/// `--secret id=NAME,src=FILE`.
fn secrets(specs: &[String]) -> Result<BTreeMap<String, PathBuf>, CliError> {
    let mut secrets = BTreeMap::new();
    for s in specs {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                _ => {
                    return Err(CliError::Arg {
                        what: "--secret",
                        value: s.clone(),
                        expected: "id=NAME,src=FILE",
                    })
                }
            }
        }
        match (id, src) {
            (Some(i), Some(p)) => {
                secrets.insert(i, p);
            }
            _ => {
                return Err(CliError::Arg {
                    what: "--secret",
                    value: s.clone(),
                    expected: "id=NAME,src=FILE",
                })
            }
        }
    }
    Ok(secrets)
}

/// Run the build with the progress display `--progress` and `-q` ask for.
fn build_with_progress(
    store: &imago_store::Store,
    bo: &BuildOptions,
    opts: &Opts,
) -> Result<engine::Built, Error> {
    let want_tty = !opts.quiet
        && match opts.progress.as_str() {
            "tty" => true,
            "plain" => false,
            _ => {
                std::io::stderr().is_terminal()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
    // A display that cannot start (no fds left, …) falls back to plain lines.
    let tty = if want_tty {
        tty::Tty::start().ok()
    } else {
        None
    };
    Ok(match tty {
        Some(mut t) => {
            let r = engine::build(store, bo, &mut t);
            t.finish(r.is_err());
            r?
        }
        None => {
            let mut sink: Box<dyn Sink> = if opts.quiet {
                Box::new(imago_builder::events::Quiet)
            } else {
                Box::new(Plain::new())
            };
            engine::build(store, bo, sink.as_mut())?
        }
    })
}

/// Plain progress lines on stderr: `[3/9] RUN …`, then `[3/9] CACHED` or `DONE 0.1s`.
struct Plain {
    start: Instant,
}

impl Plain {
    fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Sink for Plain {
    fn event(&mut self, e: Event) {
        let mut err = std::io::stderr().lock();
        // Ignoring write errors: progress is best effort.
        let _ = match e {
            Event::Stage { .. } => Ok(()),
            Event::Step { n, total, text } => writeln!(err, "[{n}/{total}] {text}"),
            Event::Cached { n } => writeln!(err, "[{n}] CACHED"),
            Event::Done { n, took } => writeln!(err, "[{n}] DONE {:.1}s", took.as_secs_f64()),
            Event::Output { line, .. } => writeln!(err, "{line}"),
            Event::Warning(w) => writeln!(err, "warning: {w}"),
            Event::Written { id, tags } => {
                let _ = writeln!(
                    err,
                    "writing image {id} done ({:.1}s)",
                    self.start.elapsed().as_secs_f64()
                );
                for t in tags {
                    let _ = writeln!(err, "naming to {t} done");
                }
                Ok(())
            }
        };
    }
}

/// The tty display (`--progress tty`, or `auto` on a terminal): a spinner line for the
/// active step with its elapsed time and its last output line; each finished step becomes
/// a permanent line above it (`[3/9] RUN make  DONE 1.2s`, `[2/9] COPY . /  CACHED`).
///
/// RUN output is the container's own fd 2 (the engine points fd 1 at fd 2 for a RUN), so
/// while the display is up fd 2 is a pipe: a reader thread splits it into lines, shows the
/// latest on the spinner and keeps the step's last [`TAIL`] lines, printed with the error
/// when the build fails. The bars draw on a private duplicate of the real stderr. Every
/// other writer of fd 2 during the build (tracing logs, helpers) is shown the same way.
mod tty {
    use std::collections::VecDeque;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::time::{Duration, Instant};

    use imago_builder::events::{Event, Sink};
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

    /// Lines of a failed step's output printed with the error.
    pub const TAIL: usize = 20;
    /// Longest line kept (bytes); longer lines are cut.
    const MAX_LINE: usize = 4096;

    /// Why the display could not be set up (the caller falls back to plain lines).
    #[derive(Debug, thiserror::Error)]
    pub enum TtyError {
        #[error("duplicate stderr for the progress display")]
        Dup(#[source] std::io::Error),
        #[error("create the pipe that captures RUN output")]
        Pipe(#[source] std::io::Error),
        #[error("spawn the RUN output reader thread")]
        Thread(#[source] std::io::Error),
    }

    /// The real terminal, written with plain ANSI sequences (indicatif's `TermLike`).
    #[derive(Debug)]
    struct Term(File);

    impl Term {
        fn put(&self, s: &str) -> std::io::Result<()> {
            (&self.0).write_all(s.as_bytes())
        }
    }

    impl TermLike for Term {
        fn width(&self) -> u16 {
            match rustix::termios::tcgetwinsize(&self.0) {
                Ok(w) if w.ws_col > 0 => w.ws_col,
                _ => 80,
            }
        }
        fn height(&self) -> u16 {
            match rustix::termios::tcgetwinsize(&self.0) {
                Ok(w) if w.ws_row > 0 => w.ws_row,
                _ => 24,
            }
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            if n == 0 {
                return Ok(());
            }
            self.put(&format!("\x1b[{n}A"))
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            if n == 0 {
                return Ok(());
            }
            self.put(&format!("\x1b[{n}B"))
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            if n == 0 {
                return Ok(());
            }
            self.put(&format!("\x1b[{n}C"))
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            if n == 0 {
                return Ok(());
            }
            self.put(&format!("\x1b[{n}D"))
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

    /// What the reader thread and the sink share.
    #[derive(Default)]
    struct Shared {
        /// The active step's spinner (none between steps).
        bar: Option<ProgressBar>,
        /// The active (or last) step's last lines.
        tail: VecDeque<String>,
    }

    fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
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
        pub fn finish(&mut self, f: &mut impl FnMut(String, bool)) {
            if !self.partial.is_empty() {
                let line = clean_line(&self.partial);
                self.partial.clear();
                f(line, true);
            }
        }
    }

    /// The tty display; [`Tty::finish`] (or drop) puts the real stderr back.
    pub struct Tty {
        start: Instant,
        mp: MultiProgress,
        shared: Arc<Mutex<Shared>>,
        /// The real stderr, put back on fd 2 at the end.
        saved: Option<OwnedFd>,
        /// Our end of the pipe (fd 2 is a copy of it).
        writer: Option<std::io::PipeWriter>,
        done: Option<mpsc::Receiver<()>>,
        /// The active step: its number and its `[n/total] text` header.
        step: Option<(usize, String)>,
        style: ProgressStyle,
        /// [`Tty::finish`] ran.
        ended: bool,
    }

    impl Tty {
        /// Starts capturing fd 2 and drawing on the terminal fd 2 was.
        pub fn start() -> Result<Self, TtyError> {
            let _ = std::io::stderr().flush();
            let saved = rustix::io::fcntl_dupfd_cloexec(std::io::stderr().as_fd(), 3)
                .map_err(|e| TtyError::Dup(e.into()))?;
            let term_fd =
                rustix::io::fcntl_dupfd_cloexec(&saved, 3).map_err(|e| TtyError::Dup(e.into()))?;
            // std's pipe ends are close-on-exec: only fd 2 reaches the containers.
            let (mut reader, writer) = std::io::pipe().map_err(TtyError::Pipe)?;
            let shared = Arc::new(Mutex::new(Shared::default()));
            let (tx, rx) = mpsc::channel();
            let sh = shared.clone();
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
                Box::new(Term(File::from(term_fd))),
                10,
            ));
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
                            None if keep && !line.is_empty() => {
                                let _ = mp2.println(line);
                            }
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
                    let _ = tx.send(());
                })
                .map_err(TtyError::Thread)?;
            rustix::stdio::dup2_stderr(&writer).map_err(|e| TtyError::Dup(e.into()))?;
            let style = ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            Ok(Self {
                start: Instant::now(),
                mp,
                shared,
                saved: Some(saved),
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
            let _ = self.mp.println(format!("{header}  {status}"));
        }

        /// Puts the real stderr back and waits (briefly) for the last captured output.
        fn restore(&mut self) {
            if let Some(saved) = self.saved.take() {
                let _ = rustix::stdio::dup2_stderr(&saved);
            }
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
            let _ = self.mp.clear();
            self.restore();
            if failed {
                let tail: Vec<String> = lock(&self.shared).tail.iter().cloned().collect();
                if !tail.is_empty() {
                    let mut err = std::io::stderr().lock();
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

    impl Drop for Tty {
        /// Without [`Tty::finish`] (a panic): as a failure, so that the panic message, which
        /// went to the pipe, is printed with the tail.
        fn drop(&mut self) {
            self.end(true);
        }
    }

    impl Sink for Tty {
        fn event(&mut self, e: Event) {
            match e {
                Event::Stage { .. } => {}
                Event::Step { n, total, text } => {
                    if let Some((m, _)) = self.step {
                        self.end_step(m, "");
                    }
                    let header = format!("[{n}/{total}] {text}");
                    let width = usize::from(Term::width_of(&self.saved)).max(20);
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
                Event::Done { n, took } => {
                    self.end_step(n, &format!("DONE {:.1}s", took.as_secs_f64()))
                }
                Event::Output { line, .. } => {
                    if let Some(b) = &lock(&self.shared).bar {
                        b.set_message(clean_line(line.as_bytes()));
                    }
                }
                Event::Warning(w) => {
                    let _ = self.mp.println(format!("warning: {w}"));
                }
                Event::Written { id, tags } => {
                    let _ = self.mp.println(format!(
                        "writing image {id} done ({:.1}s)",
                        self.start.elapsed().as_secs_f64()
                    ));
                    for t in tags {
                        let _ = self.mp.println(format!("naming to {t} done"));
                    }
                }
            }
        }
    }

    impl Term {
        /// The width of the terminal behind `fd` (80 when unknown).
        fn width_of(fd: &Option<OwnedFd>) -> u16 {
            fd.as_ref()
                .and_then(|f| rustix::termios::tcgetwinsize(f).ok())
                .map(|w| w.ws_col)
                .filter(|&c| c > 0)
                .unwrap_or(80)
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
    }
}
