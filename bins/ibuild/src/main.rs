//! ibuild: build a Dockerfile into an image in the store, with `docker build`'s flags.
//! Glue only: arguments → `imago_build::engine::build` → progress lines on stderr, the
//! image id on stdout with `-q`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use imago_build::engine::{self, BuildOptions, Network};
use imago_build::events::{Event, Sink};
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
    #[error("read the Dockerfile `{0}`")]
    Dockerfile(PathBuf, #[source] std::io::Error),
    #[error("no Dockerfile or Containerfile in `{0}` (use -f FILE)")]
    NoDockerfile(PathBuf),
    #[error("the build context `{0}` is not a directory")]
    NoContext(PathBuf),
    #[error("read the build context tar from stdin")]
    ContextTar(#[source] std::io::Error),
    #[error("`-f -` and a context on stdin (`-`) cannot both read stdin")]
    BothStdin,
    #[error("read `{0}`")]
    Ignore(PathBuf, #[source] std::io::Error),
    #[error("{0}")]
    IgnoreParse(String),
    #[error("platform `{0}` is not this machine's ({1}); cross-platform builds are not supported")]
    Platform(String, String),
    #[error(transparent)]
    Store(#[from] imago_store::StoreError),
    #[error(transparent)]
    Root(#[from] imago_cli::global::NoStoreRoot),
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    imago_cli::logging::init(&opts.global.log_level);
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hints: Vec<String> = match &e {
                Error::Build(b) => b.hint().into_iter().collect(),
                _ => vec![],
            };
            let code = match &e {
                Error::Build(engine::BuildError::Step { source, .. })
                    if matches!(**source, engine::StepError::Exit { .. }) =>
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
    #[error(transparent)]
    Build(#[from] engine::BuildError),
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
        let host = format!("linux/{}", imago_build::config::host_arch());
        if p != &host && p.trim_end_matches("/v8") != host {
            return Err(CliError::Platform(p.clone(), host).into());
        }
    }
    // The context: a dir, or a tar on stdin extracted into a temp dir of the store.
    let mut _tmp_ctx = None;
    let context_dir = if opts.context == "-" {
        if opts.file.as_deref() == Some("-") {
            return Err(CliError::BothStdin.into());
        }
        let dir = store.temp_path("context");
        std::fs::create_dir_all(&dir).map_err(CliError::ContextTar)?;
        let mut ar = tar::Archive::new(std::io::stdin().lock());
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(false);
        ar.unpack(&dir).map_err(CliError::ContextTar)?;
        _tmp_ctx = Some(TempDir(dir.clone()));
        dir
    } else {
        let d = PathBuf::from(&opts.context);
        if !d.is_dir() {
            return Err(CliError::NoContext(d).into());
        }
        d
    };
    // The Dockerfile.
    let (text, name) = match opts.file.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::Dockerfile("-".into(), e))?;
            (s, "Dockerfile".to_string())
        }
        Some(f) => {
            let p = if opts.context == "-" {
                context_dir.join(f)
            } else {
                PathBuf::from(f)
            };
            let s = std::fs::read_to_string(&p).map_err(|e| CliError::Dockerfile(p.clone(), e))?;
            (s, f.to_string())
        }
        None => {
            let found = ["Dockerfile", "Containerfile"]
                .iter()
                .map(|n| context_dir.join(n))
                .find(|p| p.is_file());
            let p = found.ok_or_else(|| CliError::NoDockerfile(context_dir.clone()))?;
            let s = std::fs::read_to_string(&p).map_err(|e| CliError::Dockerfile(p.clone(), e))?;
            (
                s,
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        }
    };
    // .dockerignore: <Dockerfile>.dockerignore next to it, else the context's.
    let df_path = match opts.file.as_deref() {
        Some(f) if f != "-" && opts.context != "-" => PathBuf::from(f),
        _ => context_dir.join(&name),
    };
    let candidates = [
        PathBuf::from(format!("{}.dockerignore", df_path.display())),
        context_dir.join(".dockerignore"),
    ];
    let mut ignore = None;
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        let t = std::fs::read_to_string(p).map_err(|e| CliError::Ignore(p.clone(), e))?;
        let di = imago_dockerfile::DockerIgnore::parse(&t, &p.to_string_lossy())
            .map_err(|e| CliError::IgnoreParse(e.render()))?;
        ignore = Some(di);
    }
    let mut build_args = BTreeMap::new();
    for a in &opts.build_args {
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
    let labels = opts
        .labels
        .iter()
        .map(|l| kv("--label", l))
        .collect::<Result<Vec<_>, _>>()?;
    let mut secrets = BTreeMap::new();
    for s in &opts.secrets {
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
                    }
                    .into())
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
                }
                .into())
            }
        }
    }
    let network = match opts.network.as_str() {
        "none" => Network::None,
        "private" => Network::Private,
        _ => Network::Host,
    };
    let bo = BuildOptions {
        context_dir: context_dir.clone(),
        dockerfile: text,
        dockerfile_name: name,
        ignore,
        target: opts.target.clone(),
        build_args,
        no_cache: opts.no_cache,
        labels,
        tags: opts.tags.clone(),
        network,
        source_date_epoch: opts.source_date_epoch,
        secrets,
        quiet: opts.quiet,
        pull: opts.pull,
    };
    let mut sink: Box<dyn Sink> = if opts.quiet {
        Box::new(imago_build::events::Quiet)
    } else {
        Box::new(Plain::new())
    };
    let built = engine::build(&store, &bo, sink.as_mut())?;
    if opts.quiet {
        // Ignoring a closed stdout is what `ibuild -q | head` expects.
        let _ = writeln!(std::io::stdout(), "{}", built.id);
    }
    Ok(())
}

/// A temp dir removed on drop.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Plain progress lines on stderr: `[3/9] RUN …`, then `[3/9] CACHED` or `DONE 0.1s`.
struct Plain {
    start: Instant,
    tty: bool,
}

impl Plain {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }
}

impl Sink for Plain {
    fn event(&mut self, e: Event) {
        let mut err = std::io::stderr().lock();
        let _ = self.tty;
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
