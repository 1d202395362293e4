//! `ictr exec [OPTIONS] CONTAINER COMMAND [ARG...]`: run a command in a running
//! container, like `docker exec`. The command gets the container's environment (plus
//! `--env-file`, `-e`), working dir (`-w`), user (`-u`), capability bounding set,
//! seccomp filter and no_new_privs, and joins all of its namespaces
//! (`imago_sandbox::join`). Exit code: the command's (128+N when killed by signal N),
//! 126 cannot execute, 127 not found, 125 ictr's own failure (no such container, not
//! running, bad flag). `-d` returns at once (0) once the command started.
//! Glue only: record → `JoinSpec` → `imago_sandbox::join::run`. Single-threaded.

use std::path::PathBuf;
use std::process::ExitCode;

use imago_cli::GlobalOpts;
use imago_runtime::config::{self, ImageDefaults};
use imago_runtime::{status, Containers};
use imago_sandbox::join::JoinSpec;
use imago_sandbox::ProcessSpec;

pub use crate::args::ExecArgs as Args;

/// Why `ictr exec` did not get to start the command.
#[derive(Debug, thiserror::Error)]
enum ExecError {
    /// Fewer than two arguments.
    #[error("\"ictr exec\" requires at least 2 arguments: ictr exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Usage,
    /// `-d` with a terminal or stdin.
    #[error("-d cannot be combined with -i or -t: nothing would be left to hold the terminal or stdin (imago has no daemon)")]
    DetachAttached,
    /// An --env-file could not be read.
    #[error("read --env-file `{0}`")]
    EnvFile(PathBuf, #[source] std::io::Error),
    /// The container is not running.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// The record lacks what exec needs.
    #[error("container {0} has no recorded settings to run a command with (made by an older imago): start it again with this version")]
    NoLaunch(String),
}

/// Run `ictr exec`.
pub fn run(global: &GlobalOpts, args: &Args) -> ExitCode {
    let spec = match spec(global, args) {
        Ok(s) => s,
        Err(e) => return imago_cli::fail(e.as_ref()),
    };
    match imago_sandbox::join::run(&spec) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let hints: Vec<String> = e.hint().into_iter().collect();
            imago_cli::report(&e, &hints, e.code().clamp(0, 255) as u8)
        }
    }
}

/// The record of the named container → what to run in it.
fn spec(global: &GlobalOpts, args: &Args) -> Result<JoinSpec, Box<dyn std::error::Error>> {
    let [name, command @ ..] = args.rest.as_slice() else {
        return Err(Box::new(ExecError::Usage));
    };
    if command.is_empty() {
        return Err(Box::new(ExecError::Usage));
    }
    if args.detach && (args.interactive || args.tty) {
        return Err(Box::new(ExecError::DetachAttached));
    }
    let mut env_files = Vec::new();
    for f in &args.env_file {
        env_files.push(std::fs::read_to_string(f).map_err(|e| ExecError::EnvFile(f.clone(), e))?);
    }
    let containers = Containers::new(&global.store_root()?);
    let id = containers.find(name)?;
    let not_running = || ExecError::NotRunning(name.clone());
    let rec = containers.read_record(&id).ok_or_else(not_running)?;
    let pid = match (status::of(&rec).running(), rec.pid) {
        (true, Some(pid)) => pid,
        _ => return Err(Box::new(not_running())),
    };
    let launch = rec
        .launch
        .ok_or_else(|| ExecError::NoLaunch(name.clone()))?;
    // The container's own environment stands where an image's would: -e and
    // --env-file go on top, with docker's rules (TERM with -t, `-e K` from ours).
    let defaults = ImageDefaults {
        env: launch.env.clone(),
        workdir: Some(launch.cwd.clone()),
        ..ImageDefaults::default()
    };
    let env = config::environment(
        &defaults,
        &env_files,
        &args.env,
        &launch.hostname,
        args.tty,
        &|k| std::env::var(k).ok(),
    )?;
    let cwd = config::workdir(&defaults, args.workdir.as_deref())?;
    Ok(JoinSpec {
        pid: pid.pid,
        start_time: Some(pid.start_time),
        process: ProcessSpec {
            args: command.to_vec(),
            env,
            cwd,
            user: args.user.clone().unwrap_or(launch.user),
            terminal: args.tty,
            stdin: args.interactive,
            caps: launch.caps,
            seccomp: launch.seccomp,
            seccomp_profile: launch.seccomp_profile,
            no_new_privs: launch.no_new_privs,
        },
        detach: args.detach,
        program: "ictr".into(),
    })
}
