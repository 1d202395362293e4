//! Transfer progress on stderr for `ipull` and `ipush`: a bar per blob with bytes and
//! rate on a terminal, one line per blob otherwise (logs, Slurm's .err files), nothing
//! with `-q`. Draws the registry's [`Events`] with the setup of [`super`]; never decides
//! anything about a transfer.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use imago_oci::Digest;
use imago_registry::{Events, Outcome};

use super::{dup_stderr, lock, multi_on, println, stderr_is_terminal, style};

/// Progress of blob transfers, drawn as the registry reports it.
pub enum TransferProgress {
    Quiet,
    Lines {
        started: Mutex<HashMap<String, Instant>>,
    },
    Bars {
        multi: indicatif::MultiProgress,
        bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    },
}

/// One line on stderr. A failed write is ignored: stderr is the only channel there is,
/// and progress is not worth failing a transfer for.
fn eline(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

impl TransferProgress {
    /// Bars on a terminal, lines otherwise (also when stderr cannot be duplicated to
    /// draw on), nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            return Self::Quiet;
        }
        match stderr_is_terminal().then(dup_stderr) {
            Some(Ok(term)) => Self::Bars {
                multi: multi_on(term),
                bars: Mutex::new(HashMap::new()),
            },
            _ => Self::Lines {
                started: Mutex::new(HashMap::new()),
            },
        }
    }

    /// A line that does not garble the bars.
    pub fn line(&self, text: &str) {
        match self {
            Self::Quiet => {}
            Self::Lines { .. } => eline(text),
            Self::Bars { multi, .. } => println(multi, text),
        }
    }
}

fn human(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

impl Events for TransferProgress {
    fn blob_start(&self, digest: &Digest, size: u64, kind: &str) {
        match self {
            Self::Quiet => {}
            Self::Lines { started } => {
                lock(started).insert(digest.to_string(), Instant::now());
                if kind != "manifest" {
                    eline(&format!("{}: {kind}, {}", digest.short(), human(size)));
                }
            }
            Self::Bars { multi, bars } => {
                let style = style(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
                    indicatif::ProgressStyle::default_bar,
                )
                .progress_chars("=> ");
                let bar = multi.add(
                    indicatif::ProgressBar::new(size)
                        .with_style(style)
                        .with_prefix(digest.short().to_owned()),
                );
                lock(bars).insert(digest.to_string(), bar);
            }
        }
    }

    fn blob_progress(&self, digest: &Digest, bytes: u64) {
        if let Self::Bars { bars, .. } = self {
            if let Some(b) = lock(bars).get(&digest.to_string()) {
                b.set_position(bytes);
            }
        }
    }

    fn blob_done(&self, digest: &Digest, outcome: &Outcome) {
        let what = match outcome {
            Outcome::Present => "already in the store".to_owned(),
            Outcome::Downloaded => "downloaded".to_owned(),
            Outcome::Exists => "already in the registry".to_owned(),
            Outcome::Mounted { from } => format!("mounted from {from}"),
            Outcome::Uploaded => "uploaded".to_owned(),
        };
        match self {
            Self::Quiet => {}
            Self::Lines { started } => {
                let t = lock(started).remove(&digest.to_string());
                match t {
                    Some(t) => eline(&format!(
                        "{}: {what} in {:.2?}",
                        digest.short(),
                        t.elapsed()
                    )),
                    None => eline(&format!("{}: {what}", digest.short())),
                }
            }
            Self::Bars { multi, bars } => match lock(bars).remove(&digest.to_string()) {
                Some(b) => b.finish_with_message(what),
                None => println(multi, format!("{}: {what}", digest.short())),
            },
        }
    }

    fn note(&self, text: &str) {
        self.line(text);
    }
}
