//! The container of a RUN: an overlay of the parent state's layers with a fresh upper
//! dir (or, under the copy storage driver, a private copy of them, diffed back into the
//! upper dir after the command), the sandbox's /etc files, the step's `--mount`s, its id
//! mapping (under the single mapping placed at the RUN's USER, as irun places it), and
//! its output sent to stderr (stdout carries data such as `-q`'s image id) or nowhere
//! with `-q`.
//! Never: touches this process's own fds 0, 1, 2 (the container gets its stdout and
//! stderr as fds in its spec).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use imago_sandbox::spec::{
    CapsPolicy, ContainerSpec, ProcessSpec, RootMount, StdioFds, DEFAULT_CAPS,
};
use imago_sandbox::{run_in_mapping, IdMap, MapKind};

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

/// What a RUN's container did.
pub(super) struct Ran {
    /// Its exit status.
    pub code: i32,
    /// Under the single mapping with a non-root USER: that user's uid and gid. Its new
    /// files are on disk as the caller's with no ownership record; they are its.
    pub owner: Option<(u32, u32)>,
    /// The recording fakeroot's owners of symlinks and fifos, by path as in the tar.
    pub side_owners: std::collections::BTreeMap<String, (u32, u32)>,
}

/// Run the container over `lowers` (bottom first) with the upper/work dirs in `dir`.
pub(super) fn start(
    cx: &Ctx<'_>,
    plan: &RunPlan,
    dir: &Path,
    lowers: &[PathBuf],
    mut process: Process,
) -> Result<Ran, StepError> {
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
    let root = root_mount(cx, imago_overlay::plan(cx.opts.storage, &layers)?)?;
    let mounts = user_mounts(cx, plan, dir, &mut process.env)?;
    let mut spec = ContainerSpec {
        id_map: cx.map.clone(),
        root,
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
            seccomp_profile: None,
            no_new_privs: false,
        },
        sharing: Default::default(),
    };
    spec.id_map = cx.map.for_container(&spec)?;
    let mut pending = imago_sandbox::prepare_with(&spec.id_map, plan.network)?;
    let recorder = recorder(&spec.id_map, &mut pending);
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
    let code = pending.start_with_stdio(&spec, stdio)?;
    let mut side_owners = Default::default();
    if let Some(r) = recorder {
        match r.finish_with_side() {
            Ok((stats, side)) => {
                tracing::debug!("fakeroot: {stats:?}");
                side_owners = side.into_map();
            }
            Err(e) => tracing::warn!("{e}: owners chown'ed in this RUN may be missing"),
        }
    }
    if code == 0 && matches!(spec.root, RootMount::Bind(_)) {
        copy_to_upper(cx, dir)?;
    }
    Ok(Ran {
        code,
        owner: single_user(&spec.id_map),
        side_owners,
    })
}

/// The root of a RUN by the build's storage driver: kernel overlayfs, or the copy
/// driver's private copy `dir/copy` of the lowers, made in the mapping with the
/// manifest `dir/copy.manifest` its commit diffs against.
fn root_mount(cx: &Ctx<'_>, plan: imago_overlay::RootfsPlan) -> Result<RootMount, StepError> {
    match plan {
        imago_overlay::RootfsPlan::Kernel(k) => Ok(RootMount::Overlay {
            cwd: k.cwd,
            data: k.data,
            links: k.links,
        }),
        imago_overlay::RootfsPlan::Copy(c) => {
            let manifest = manifest_of(&c.dir);
            let (from, to) = (c.lowers_bottom_first, c.dir.clone());
            run_in_mapping(&cx.map, move || {
                imago_overlay::copy::make(&from, &to, Some(&manifest))
            })
            .map_err(|e| copy_err("make the RUN's private copy of its parent's layers", e))?;
            Ok(RootMount::Bind(c.dir))
        }
        imago_overlay::RootfsPlan::Fuse(l) => {
            Ok(RootMount::Fuse(imago_sandbox::fuse_root::FuseLayers {
                lowers_top_first: l.lowers_top_first,
                upper: l.upper,
                work: l.work,
            }))
        }
    }
}

fn manifest_of(copy: &Path) -> PathBuf {
    copy.with_extension("manifest")
}

fn copy_err(what: &'static str, e: imago_sandbox::ChildError) -> StepError {
    imago_overlay::OverlayError::Copy {
        what,
        source: Box::new(e),
    }
    .into()
}

/// After a RUN under the copy driver: what it changed in `dir/copy`, as the upper dir
/// `dir/upper` the commit packs (the same layer the overlay would give: see
/// `imago_overlay::copy::diff`).
fn copy_to_upper(cx: &Ctx<'_>, dir: &Path) -> Result<(), StepError> {
    let (copy, upper) = (dir.join("copy"), dir.join("upper"));
    let manifest = manifest_of(&copy);
    run_in_mapping(&cx.map, move || {
        imago_overlay::copy::to_upper(&copy, &manifest, &upper)
    })
    .map_err(|e| copy_err("find what the RUN changed in its copy", e))?;
    Ok(())
}

/// Under the single mapping with USER root: the recording fakeroot's supervisor, whose
/// ownership records the commit reads (none with `IMAGO_FAKEROOT=noop`, or when its
/// thread cannot start: the RUN then gets the no-op fakeroot).
fn recorder(
    map: &IdMap,
    pending: &mut imago_sandbox::Pending,
) -> Option<imago_fakeroot::Supervisor> {
    if map.kind != MapKind::Single || single_user(map).is_some() || !imago_fakeroot::enabled() {
        return None;
    }
    match imago_fakeroot::Supervisor::spawn() {
        Ok((s, sock)) => {
            pending.record_ownership(sock);
            Some(s)
        }
        Err(e) => {
            tracing::warn!("{e}: chown in this RUN records nothing");
            None
        }
    }
}

/// Where the single mapping's one id sits inside, when not at root.
fn single_user(map: &IdMap) -> Option<(u32, u32)> {
    if map.kind != MapKind::Single {
        return None;
    }
    let ids = (map.uid.first()?.inside, map.gid.first()?.inside);
    (ids != (0, 0)).then_some(ids)
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
