//! The container of a RUN: an overlay of the parent state's layers with a fresh upper
//! dir, the sandbox's /etc files, the step's `--mount`s, and its output sent to stderr
//! (stdout carries data such as `-q`'s image id) or nowhere with `-q`.
//! Never: touches this process's own fds 0, 1, 2 (the container gets its stdout and
//! stderr as fds in its spec).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use imago_sandbox::spec::{
    CapsPolicy, ContainerSpec, ProcessSpec, RootMount, StdioFds, DEFAULT_CAPS,
};

use super::error::{io_err, StepError};
use super::run_mounts::user_mounts;
use super::run_step::RunPlan;
use super::state::Ctx;

/// The process a RUN starts.
pub(super) struct Process {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
}

/// Run the container over `lowers` (bottom first) with the upper/work dirs in `dir`;
/// returns its exit status.
pub(super) fn start(
    cx: &Ctx<'_>,
    plan: &RunPlan,
    dir: &Path,
    lowers: &[PathBuf],
    mut process: Process,
) -> Result<i32, StepError> {
    let mut top_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    if top_first.is_empty() {
        top_first.push(dir.join("empty"));
    }
    let layers = imago_overlay::Layers {
        lowers_top_first: top_first,
        upper: dir.join("upper"),
        work: dir.join("work"),
        links_dir: dir.join("links"),
    };
    let imago_overlay::RootfsPlan::Kernel(k) =
        imago_overlay::plan(imago_overlay::RootfsMethod::Kernel, &layers)?;
    let mounts = user_mounts(cx, plan, dir, &mut process.env)?;
    let spec = ContainerSpec {
        id_map: cx.map.clone(),
        root: RootMount::Overlay {
            cwd: k.cwd.clone(),
            data: k.data.clone(),
            links: k.links.clone(),
        },
        rootfs: dir.join("rootfs"),
        hostname: "buildkitsandbox".into(),
        etc_files: etc_files(dir)?,
        mounts,
        readonly_root: false,
        init: true,
        privileged: false,
        cleanup: vec![],
        process: ProcessSpec {
            args: process.argv,
            env: process.env,
            cwd: process.cwd,
            user: process.user,
            terminal: false,
            stdin: false,
            caps: CapsPolicy::Bounded(DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()),
            seccomp: true,
            no_new_privs: false,
        },
    };
    let pending = imago_sandbox::prepare_with(&spec.id_map, plan.network)?;
    // RUN output never reaches stdout, which carries data such as `-q`'s image id: the
    // command's fd 1 is our stderr and its fd 2 stays the inherited one (our stderr too);
    // with `-q` both are /dev/null. Our own fds 0, 1, 2 are left alone.
    let stderr = std::io::stderr();
    let null = match cx.opts.quiet {
        true => Some(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map_err(io_err("open", Path::new("/dev/null")))?,
        ),
        false => None,
    };
    let stdio = match &null {
        Some(null) => StdioFds {
            stdout: Some(null.as_fd()),
            stderr: Some(null.as_fd()),
        },
        None => StdioFds {
            stdout: Some(stderr.as_fd()),
            stderr: None,
        },
    };
    Ok(pending.start_with_stdio(&spec, stdio)?)
}

/// /etc/hosts, /etc/hostname, /etc/resolv.conf for a RUN container.
fn etc_files(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, StepError> {
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    .map_err(io_err("write", &hosts))?;
    let hostname = dir.join("hostname");
    std::fs::write(&hostname, "buildkitsandbox\n").map_err(io_err("write", &hostname))?;
    let mut v = vec![
        (hosts, PathBuf::from("/etc/hosts")),
        (hostname, PathBuf::from("/etc/hostname")),
    ];
    let resolv = dir.join("resolv.conf");
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_else(|_| "nameserver 127.0.0.1\n".into());
    std::fs::write(&resolv, text).map_err(io_err("write", &resolv))?;
    v.push((resolv, PathBuf::from("/etc/resolv.conf")));
    Ok(v)
}
