//! ibuild: build a Dockerfile into an image in the store, with `docker build`'s flags.
//! Glue only: arguments → `imago_builder::engine::plan` (before the store is opened, so a
//! bad Dockerfile leaves no store behind) → `engine::build` → progress on stderr (plain lines,
//! or the step display on a terminal / `--progress tty`, both `imago_cli::progress::build`),
//! the image id on stdout with `-q`.

mod args;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

use args::Opts;
use imago_builder::context::{BuildContext, InputError};
use imago_builder::engine::{self, BuildOptions, Network};
use imago_builder::events::Sink;
use imago_cli::progress::build::{PlainLines, StepDisplay};
use imago_cli::ExitCodes;

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
    #[error(transparent)]
    Store(#[from] imago_store::StoreError),
    #[error(transparent)]
    Root(#[from] imago_cli::global::NoStoreRoot),
    #[error(transparent)]
    Storage(#[from] imago_cli::storage::StorageError),
    #[error("cannot remove the old --iidfile {}: {source}", path.display())]
    IidFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    // A RUN fork bomb stops at this bound (docs/ibuild.md); the cgroup, if any, lives
    // as long as the build.
    let (_pids_bound, _cgroup) = imago_runtime::limits::bound_processes();
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = match &e {
                Error::Build(b)
                    if matches!(&**b, engine::BuildError::Step { source, .. }
                        if matches!(**source, engine::StepError::Exit { .. })) =>
                {
                    1
                }
                _ => ExitCodes::IMAGO_FAILED,
            };
            imago_cli::report(e.library_error(), &[], code)
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

impl Error {
    /// The error to report: the library's own when there is one, since a transparent
    /// wrapper hides it from `source()` and so from the reporter's search for hints.
    /// Its text and causes are the wrapper's.
    fn library_error(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            Error::Build(b) => &**b,
            Error::Cli(CliError::Store(s)) => s,
            Error::Cli(c) => c,
        }
    }
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
    // Opening the store creates it: that waits until the arguments and the Dockerfile
    // are known good, except for a context tar on stdin, which is unpacked into it.
    let open_store = || imago_store::Store::open(&root).map_err(CliError::from);
    // The context (a tar on stdin lives in a temp dir of the store, removed however the
    // build ends), the Dockerfile and the ignore file that goes with it.
    let mut stdin_store = None;
    let context = match opts.context.as_str() {
        "-" => BuildContext::open_stdin(stdin_store.insert(open_store()?), opts.file.as_deref()),
        dir => BuildContext::open_dir(dir),
    }
    .map_err(CliError::from)?;
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
        build_args: build_args(&opts.build_args, opts.http_proxy),
        no_cache: opts.no_cache,
        labels,
        tags: opts.tags.clone(),
        network,
        source_date_epoch: opts.source_date_epoch,
        secrets: secrets(&opts.secrets)?,
        quiet: opts.quiet,
        pull: opts.pull,
        platform: opts.platform.clone(),
        storage: storage_driver(opts, &root)?,
    };
    let planned = engine::plan(&bo)?;
    if let Some(file) = &opts.iidfile {
        // docker's rule: a script never reads the id of an earlier build.
        match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                let path = file.clone();
                return Err(CliError::IidFile { path, source: e }.into());
            }
            _ => {}
        }
    }
    let store = match stdin_store {
        Some(s) => s,
        None => open_store()?,
    };
    let built = build_with_progress(&store, &planned, opts)?;
    if let Some(file) = &opts.iidfile {
        write_iidfile(file, &built.id.to_string())?;
    }
    if opts.quiet {
        // Ignoring a closed stdout is what `ibuild -q | head` expects.
        let _ = writeln!(std::io::stdout(), "{}", built.id);
    }
    Ok(())
}

/// `--iidfile`: the id, whole or not at all (a temp file beside it, then a rename).
fn write_iidfile(file: &std::path::Path, id: &str) -> Result<(), CliError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    imago_store::atomic::write_file(dir, file, id.as_bytes()).map_err(CliError::from)
}

/// The storage driver of RUN steps; the copy driver's cost is said once on stderr.
fn storage_driver(
    opts: &Opts,
    root: &std::path::Path,
) -> Result<imago_overlay::RootfsMethod, CliError> {
    let s = imago_cli::storage::choose(opts.storage_driver.as_deref(), root)?;
    if let Some(note) = imago_overlay::select::copy_note(&s) {
        // A closed stderr loses the note: the build works all the same.
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    Ok(s.method)
}

/// `--build-arg K=V`, or `K` alone for the value of `$K` (left out when unset); with
/// `host_proxies`, first the host's proxy variables, which `--build-arg` may override.
fn build_args(args: &[String], host_proxies: bool) -> BTreeMap<String, String> {
    let mut build_args = BTreeMap::new();
    if host_proxies {
        for name in imago_dockerfile::HOST_PROXY_VARS {
            if let Ok(v) = std::env::var(name) {
                build_args.insert(name.to_string(), v);
            }
        }
    }
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
    planned: &engine::Planned<'_>,
    opts: &Opts,
) -> Result<engine::Built, Error> {
    let want_tty = !opts.quiet
        && match opts.progress.as_str() {
            "tty" => true,
            "plain" => false,
            _ => {
                imago_cli::progress::stderr_is_terminal()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
    // A display that cannot start (no fds left, …) falls back to plain lines.
    let tty = if want_tty {
        StepDisplay::start().ok().and_then(Captured::start)
    } else {
        None
    };
    Ok(match tty {
        Some(mut t) => {
            let r = engine::build(store, planned, &mut t.display);
            t.finish(r.is_err());
            r?
        }
        None => {
            let mut sink: Box<dyn Sink> = if opts.quiet {
                Box::new(imago_builder::events::Quiet)
            } else {
                Box::new(PlainLines::new())
            };
            engine::build(store, planned, sink.as_mut())?
        }
    })
}

/// The step display with ibuild's own fd 2 pointed at its capture pipe, so that RUN
/// output (the containers get our stderr), logs and helpers' messages show on the
/// spinner and in the failure tail. Fields drop in order: fd 2 is ours again before
/// the display ends, also when a panic unwinds (its message went to the pipe).
struct Captured {
    stderr: CapturedStderr,
    display: StepDisplay,
}

impl Captured {
    /// Point fd 2 at `display`'s pipe; `None` (after ending the display) when that fails.
    fn start(display: StepDisplay) -> Option<Self> {
        match display.capture_fd().map(CapturedStderr::start) {
            Some(Ok(stderr)) => Some(Self { stderr, display }),
            _ => {
                display.finish(false);
                None
            }
        }
    }

    /// fd 2 back, then the display's end (see [`StepDisplay::finish`]).
    fn finish(self, failed: bool) {
        drop(self.stderr);
        self.display.finish(failed);
    }
}

/// fd 2 pointed elsewhere until dropped, which puts the real stderr back.
struct CapturedStderr {
    saved: OwnedFd,
}

impl CapturedStderr {
    fn start(to: BorrowedFd<'_>) -> std::io::Result<Self> {
        // Ignoring a failed flush: what it held goes to the terminal or nowhere.
        let _ = std::io::stderr().flush();
        let saved = rustix::io::fcntl_dupfd_cloexec(std::io::stderr().as_fd(), 3)?;
        rustix::stdio::dup2_stderr(to)?;
        Ok(Self { saved })
    }
}

impl Drop for CapturedStderr {
    fn drop(&mut self) {
        // Ignoring a failure: fd 2 then stays the pipe and the display's wait for its
        // last output times out (2 s); nothing else can be done about it.
        let _ = rustix::stdio::dup2_stderr(&self.saved);
    }
}
