//! docker's credential helpers: `docker-credential-NAME get|store|erase`, the protocol of
//! docker's credential-helpers project (the server on stdin for get/erase; a JSON
//! `{ServerURL, Username, Secret}` on stdin for store; get answers `{Username, Secret}`).
//! A helper may wait for a keyring to be unlocked, so each run is bounded
//! ([`HELPER_TIMEOUT`]) and then killed.
//!
//! Never: decides which helper applies (creds.rs reads that from the files).

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::creds::{CredError, Credentials};
use super::keys::helper_server;

/// How long one helper run may take.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// The most a helper may print: an answer is a small JSON object.
const MAX_OUTPUT: u64 = 1 << 20;

/// What a helper run gave.
enum Outcome {
    /// Exit 0, with its stdout.
    Done(String),
    /// The helper knows nothing of the server.
    NotFound,
    /// No `docker-credential-NAME` on PATH.
    NotInstalled,
}

/// The credentials `helper` holds for `key`; `None` when it has none or is not
/// installed (anonymous access, with a warning for the latter).
pub fn get(helper: &str, key: &str) -> Result<Option<Credentials>, CredError> {
    let stdout = match run(helper, "get", &helper_server(key))? {
        Outcome::Done(s) => s,
        Outcome::NotFound => return Ok(None),
        Outcome::NotInstalled => {
            tracing::warn!(helper, "credential helper not installed; going anonymous");
            return Ok(None);
        }
    };
    let v: Value = serde_json::from_str(&stdout).map_err(|e| failed(helper, e.to_string()))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    Ok(Some(Credentials {
        username: field("Username").to_owned(),
        password: field("Secret").to_owned(),
    }))
}

/// Give `creds` for `key` to `helper` to keep.
pub fn store(helper: &str, key: &str, creds: &Credentials) -> Result<(), CredError> {
    let input = json!({
        "ServerURL": helper_server(key),
        "Username": creds.username,
        "Secret": creds.password,
    });
    match run(helper, "store", &input.to_string())? {
        Outcome::Done(_) => Ok(()),
        Outcome::NotFound => Err(failed(helper, "it refused to store".into())),
        Outcome::NotInstalled => Err(failed(helper, "it is not installed".into())),
    }
}

/// Ask `helper` to forget `key`; true when it had it.
pub fn erase(helper: &str, key: &str) -> Result<bool, CredError> {
    match run(helper, "erase", &helper_server(key))? {
        Outcome::Done(_) => Ok(true),
        Outcome::NotFound | Outcome::NotInstalled => Ok(false),
    }
}

fn failed(helper: &str, reason: String) -> CredError {
    CredError::Helper {
        helper: format!("docker-credential-{helper}"),
        reason,
    }
}

/// Run `docker-credential-HELPER VERB` with `input` on stdin, bounded in time and output.
fn run(helper: &str, verb: &str, input: &str) -> Result<Outcome, CredError> {
    let bin = format!("docker-credential-{helper}");
    let child = Command::new(&bin)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Outcome::NotInstalled),
        Err(e) => return Err(failed(helper, e.to_string())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits before reading is judged by its status below.
        let _ = stdin.write_all(input.as_bytes());
    }
    let status = wait_bounded(&mut child).map_err(|e| failed(helper, e))?;
    let read = |r: Option<&mut dyn Read>| {
        let mut s = String::new();
        if let Some(r) = r {
            // What a helper printed is only read to judge it; unreadable is empty.
            let _ = r.take(MAX_OUTPUT).read_to_string(&mut s);
        }
        s
    };
    let stdout = read(child.stdout.as_mut().map(|s| s as &mut dyn Read));
    let stderr = read(child.stderr.as_mut().map(|s| s as &mut dyn Read));
    if status.success() {
        return Ok(Outcome::Done(stdout));
    }
    if stdout.contains("credentials not found") || stderr.contains("credentials not found") {
        return Ok(Outcome::NotFound);
    }
    Err(failed(helper, format!("{status}: {}", stderr.trim())))
}

/// Wait for the helper at most [`HELPER_TIMEOUT`]; kill it after.
fn wait_bounded(child: &mut Child) -> Result<std::process::ExitStatus, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if start.elapsed() < HELPER_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => {
                // Killed or already gone: either way it is over, and said so below.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer in {}s", HELPER_TIMEOUT.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
