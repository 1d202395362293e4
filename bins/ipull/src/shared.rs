//! What ipull, ipush and ilogin share (included by path from the other two): the
//! registry flags, building `ConnectOptions` from them, error reporting with hints, and
//! progress drawing (a bar per blob on a tty, plain lines otherwise, nothing with -q).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use imago_registry::{
    AuthFiles, ConnectOptions, Credentials, Events, Outcome, RegistryError, TransportOptions,
};

/// Registry connection flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteOpts {
    /// Verify TLS (default: yes, except for localhost/127.0.0.1, which may also use plain HTTP)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Directory of CA files (`*.crt`) for the registry, instead of the certs.d search
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Credentials file (default: $REGISTRY_AUTH_FILE, then podman's and docker's files)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// USER:PASSWORD to use instead of stored credentials
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
}

impl RemoteOpts {
    pub fn connect_options(&self) -> Result<ConnectOptions, String> {
        let mut o = ConnectOptions::from_env().map_err(|e| e.to_string())?;
        if let Some(f) = &self.authfile {
            o.auth_files = AuthFiles {
                read: vec![f.clone()],
                write: Some(f.clone()),
            };
        }
        if let Some(c) = &self.creds {
            let (u, p) = c.split_once(':').ok_or("--creds takes USER:PASSWORD")?;
            o.credentials = Some(Credentials {
                username: u.into(),
                password: p.into(),
            });
        }
        o.transport = TransportOptions {
            tls_verify: self.tls_verify,
            certs_dirs: None,
            ca_dir: self.cert_dir.clone(),
            limits: o.transport.limits,
        };
        Ok(o)
    }
}

/// Print the error with its chain and hint; exit 125.
pub fn report(err: &RegistryError) -> ExitCode {
    let hints: Vec<String> = err.hint().into_iter().collect();
    imago_cli::report(err, &hints, imago_cli::ExitCodes::IMAGO_FAILED)
}

/// Print a usage-level error (bad flag value); exit 125.
pub fn report_msg(msg: &str) -> ExitCode {
    #[derive(Debug)]
    struct Msg(String);
    impl std::fmt::Display for Msg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Msg {}
    imago_cli::report(
        &Msg(msg.to_owned()),
        &[],
        imago_cli::ExitCodes::IMAGO_FAILED,
    )
}

/// Progress on stderr.
pub enum Progress {
    Quiet,
    Lines {
        started: Mutex<HashMap<String, Instant>>,
    },
    Bars {
        multi: indicatif::MultiProgress,
        bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    },
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Bars {
                multi: indicatif::MultiProgress::new(),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Self::Lines {
                started: Mutex::new(HashMap::new()),
            }
        }
    }

    /// A line that does not garble the bars.
    pub fn line(&self, text: &str) {
        match self {
            Self::Quiet => {}
            Self::Lines { .. } => eprintln!("{text}"),
            Self::Bars { multi, .. } => {
                let _ = multi.println(text); // a failed draw is not worth failing the transfer
            }
        }
    }
}

fn human(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

impl Events for Progress {
    fn blob_start(&self, digest: &imago_oci::Digest, size: u64, kind: &str) {
        match self {
            Self::Quiet => {}
            Self::Lines { started } => {
                started
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest.to_string(), Instant::now());
                if kind != "manifest" {
                    eprintln!("{}: {kind}, {}", digest.short(), human(size));
                }
            }
            Self::Bars { multi, bars } => {
                let style = indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
                let bar = multi.add(
                    indicatif::ProgressBar::new(size)
                        .with_style(style)
                        .with_prefix(digest.short().to_owned()),
                );
                bars.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest.to_string(), bar);
            }
        }
    }

    fn blob_progress(&self, digest: &imago_oci::Digest, bytes: u64) {
        if let Self::Bars { bars, .. } = self {
            if let Some(b) = bars
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&digest.to_string())
            {
                b.set_position(bytes);
            }
        }
    }

    fn blob_done(&self, digest: &imago_oci::Digest, outcome: &Outcome) {
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
                let t = started
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&digest.to_string());
                match t {
                    Some(t) => eprintln!("{}: {what} in {:.2?}", digest.short(), t.elapsed()),
                    None => eprintln!("{}: {what}", digest.short()),
                }
            }
            Self::Bars { multi, bars } => match bars
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&digest.to_string())
            {
                Some(b) => b.finish_with_message(what),
                None => {
                    let _ = multi.println(format!("{}: {what}", digest.short()));
                    // best effort
                }
            },
        }
    }

    fn note(&self, text: &str) {
        self.line(text);
    }
}
