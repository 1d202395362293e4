//! `irun [OPTIONS] IMAGE [COMMAND] [ARG...]`: run a container in the foreground, rootless
//! and daemonless, or detached (`-d`: its monitor, this binary run again, keeps it).
//! Exit code: the command's; 128+N when it was killed by signal N; 125 irun's own
//! failure, 126 the command cannot be executed, 127 it was not found; with `-d`, 0 once
//! the container runs (its id on stdout).
//! Glue only: flags → `imago_runtime::RunOptions` → `imago_runtime::run` (or
//! `imago_runtime::detach::run_detached`).
//! Must stay single-threaded until the container is started (the clone runs no atfork
//! handlers): no thread pools, no async runtime here.

mod args;
mod seccomp_opt;

use std::io::Write;
use std::process::ExitCode;

use args::Opts;
use imago_runtime::ports::{self, PortSpec};
use imago_runtime::{config, hpc, Network, RunOptions};

/// A flag error (irun's own: exit 125).
#[derive(Debug)]
struct FlagError(String);
impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for FlagError {}

/// One `warning:` line on stderr (a closed stderr loses it: nothing else to do).
fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {msg}");
}

/// Host ports irun chose (`-P`, `-p CTR`) are printed on stderr, one line each, as
/// `published 0.0.0.0:41023->80/tcp`: nothing else tells a foreground run's user.
fn say_chosen_ports(published: &[PortSpec]) {
    for p in published {
        // A closed stderr loses the line: the port works all the same.
        let _ = writeln!(std::io::stderr(), "published {p}");
    }
}

/// `--pid`/`--ipc`: host or private; unset: `--hpc`'s choice.
fn namespace_mode(flag: &str, value: Option<&str>, hpc: bool) -> Result<bool, FlagError> {
    match value {
        None => Ok(hpc),
        Some("host") => Ok(true),
        Some("private") => Ok(false),
        Some(other) => Err(FlagError(format!(
            "--{flag} `{other}` is not supported: use host or private"
        ))),
    }
}

/// The HPC run mode's pieces, `--hpc` expanded; a piece given alone wins over it.
struct HpcMode {
    keep_id: bool,
    pid_host: bool,
    ipc_host: bool,
    env_host: bool,
    binds: hpc::Binds,
}

fn hpc_mode(o: &Opts) -> Result<HpcMode, FlagError> {
    let keep_id = match o.userns.as_deref() {
        None => o.hpc,
        Some("keep-id") => true,
        Some("private") => false,
        Some(other) => {
            return Err(FlagError(format!(
                "--userns `{other}` is not supported: use keep-id or private"
            )))
        }
    };
    Ok(HpcMode {
        keep_id,
        pid_host: namespace_mode("pid", o.pid.as_deref(), o.hpc)?,
        ipc_host: namespace_mode("ipc", o.ipc.as_deref(), o.hpc)?,
        env_host: o.env_host || o.hpc,
        binds: hpc::Binds {
            home: o.bind_home,
            cwd: o.bind_cwd || o.hpc,
            tmp: o.hpc,
        },
    })
}

fn options(o: &Opts) -> Result<RunOptions, Box<dyn std::error::Error>> {
    let mut rest = o.rest.clone();
    let image = if o.rootfs.is_some() {
        None
    } else if rest.is_empty() {
        return Err(Box::new(FlagError(
            "\"irun\" requires at least 1 argument: irun [OPTIONS] IMAGE [COMMAND] [ARG...]".into(),
        )));
    } else {
        Some(rest.remove(0))
    };
    // A single-file image (`FILE.sqsh`) runs without the store's images.
    let (image, sqsh) = match image {
        Some(i) if imago_runtime::squash::is_image_file(&i) => (None, Some(i.into())),
        other => (other, None),
    };
    let mode = hpc_mode(o)?;
    let host = hpc::Host::current();
    // Before the user's own mounts: a `-v` on the same path wins.
    let mut mounts = hpc::mounts(mode.binds, &host)?;
    for v in &o.volume {
        mounts.push(config::volume(v)?);
    }
    for m in &o.mount {
        mounts.push(config::mount(m)?);
    }
    for t in &o.tmpfs {
        mounts.push(config::tmpfs(t)?);
    }
    let devices = imago_runtime::devices::plan(&o.device, &imago_runtime::devices::spec_dirs())?;
    for note in &devices.notes {
        warn(note);
    }
    let mut env_files = Vec::new();
    for f in &o.env_file {
        env_files.push(
            std::fs::read_to_string(f)
                .map_err(|e| FlagError(format!("read --env-file `{}`: {e}", f.display())))?,
        );
    }
    let (mut nnp, mut seccomp, mut seccomp_profile) = (false, true, None);
    for s in &o.security_opt {
        match s.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => nnp = true,
            "no-new-privileges:false" | "no-new-privileges=false" => nnp = false,
            "seccomp=unconfined" | "seccomp:unconfined" => seccomp = false,
            other => match other.strip_prefix("seccomp=").or(other.strip_prefix("seccomp:")) {
                Some(file) => {
                    (seccomp, seccomp_profile) = (true, Some(seccomp_opt::read(file)?));
                }
                None => {
                    return Err(Box::new(FlagError(format!(
                        "unsupported --security-opt `{other}` (no-new-privileges, seccomp=unconfined, seccomp=FILE)"
                    ))))
                }
            },
        }
    }
    let explicit = match o.network.as_deref() {
        None if o.hpc => Some(Network::Host),
        None => None,
        Some("host") => Some(Network::Host),
        Some("none") => Some(Network::None),
        Some("private") => Some(Network::Private),
        Some(other) => {
            return Err(Box::new(FlagError(format!(
                "network `{other}` is not supported yet: use host, none or private"
            ))))
        }
    };
    let mut ports = Vec::new();
    for p in &o.publish {
        ports.extend(PortSpec::parse(p)?);
    }
    let publishing = !ports.is_empty() || o.publish_all;
    let network = ports::choose_network(explicit, o.detach, publishing);
    if network == Network::Host && publishing {
        warn("published ports are ignored with --network host: the container uses the host's ports directly");
        ports.clear();
    }
    if network == Network::Private && ports::private_network_helper().is_none() {
        warn("neither pasta (package passt) nor slirp4netns is installed: the container's network has only a loopback interface (no outbound access; published ports work)");
    }
    let mut env = o.env.clone();
    if let (true, Some(home)) = (mode.binds.home, &host.home) {
        // HOME is where it was bound; an `-e HOME=…` comes later and wins.
        env.insert(0, format!("HOME={}", home.display()));
    }
    let workdir = match (&o.workdir, mode.binds.cwd, &host.cwd) {
        (None, true, Some(cwd)) => Some(cwd.display().to_string()),
        (w, _, _) => w.clone(),
    };
    let mut cap_add = o.cap_add.clone();
    if o.hpc {
        // docker's rule lets the NUMA calls (mbind, set_mempolicy, …) through seccomp
        // with SYS_NICE; a non-root process gets no effective capability from it.
        cap_add.push("SYS_NICE".into());
    }
    // The host's name, as Apptainer: MPI and Slurm tools compare it with their own.
    let hostname = match (o.hpc, &o.hostname) {
        (true, None) => host.hostname.clone(),
        (_, h) => h.clone(),
    };
    let limits = imago_runtime::limits::Limits::from_flags(
        o.pids_limit,
        o.memory.as_deref(),
        o.cpus.as_deref(),
    )?;
    let store_root = o.global.store_root()?;
    let storage = imago_cli::storage::choose(o.storage_driver.as_deref(), &store_root)?;
    if let Some(note) = imago_overlay::select::copy_note(&storage) {
        // A closed stderr loses the note: the run works all the same.
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    Ok(RunOptions {
        store_root,
        image,
        found: None,
        rootfs: o.rootfs.clone(),
        sqsh,
        args: rest,
        entrypoint: o.entrypoint.clone(),
        env,
        env_files,
        workdir,
        user: o.user.clone(),
        hostname,
        mounts,
        devices,
        read_only: o.read_only,
        rm: o.rm,
        name: o.name.clone(),
        interactive: o.interactive,
        tty: o.tty,
        init: !o.no_init,
        cap_add,
        cap_drop: o.cap_drop.clone(),
        privileged: o.privileged,
        no_new_privs: nnp,
        seccomp,
        seccomp_profile,
        network,
        ports,
        publish_all: o.publish_all,
        on_chosen_ports: Some(say_chosen_ports),
        storage: storage.method,
        keep_id: mode.keep_id,
        pid_host: mode.pid_host,
        ipc_host: mode.ipc_host,
        env_host: mode.env_host,
        limits,
    })
}

fn main() -> ExitCode {
    // `irun -d` runs this binary again as the container's monitor.
    if let Some(code) = imago_runtime::monitor::run_if_requested(imago_cli::logging::init) {
        return code;
    }
    let opts = match imago_cli::args::parse::<Opts>() {
        Ok(o) => o,
        Err(code) => return code,
    };
    imago_cli::logging::init(&opts.global.log_level);
    let mut run_opts = match options(&opts) {
        Ok(r) => r,
        Err(e) => return imago_cli::fail(e.as_ref()),
    };
    // docker's `--pull`: before the container's clone, whose process must be
    // single-threaded (the pull's transfer threads have ended when this returns).
    // The image is then run by the name it was found or pulled by (a short name's).
    if let Some(image) = run_opts.image.as_deref() {
        let policy = imago_cli::remote::PullPolicy::parse(&opts.pull);
        let (root, platform) = (&run_opts.store_root, opts.platform.as_ref());
        match imago_cli::remote::pull_for_run(root, image, policy, platform, false) {
            Ok(found) => (run_opts.image, run_opts.found) = (Some(found.name), found.found),
            Err(e) => return imago_cli::fail(&e),
        }
    }
    if opts.detach {
        return match imago_runtime::detach::run_detached(&run_opts) {
            Ok(id) => match imago_cli::output::print_lines([id.as_str()]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => imago_cli::fail(&e),
            },
            Err(e) => imago_cli::fail(&e),
        };
    }
    match imago_runtime::run(&run_opts) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => imago_cli::fail(&e),
    }
}
