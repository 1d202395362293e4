//! What a container runs, resolved once when it is created and kept in its record so
//! that `ictr start` runs it again the same way: [`Launch`] (the command, environment,
//! user, mounts, security settings, network, tty, the image's stop signal). Also the
//! image's lower dirs (unpacking them inside the mapping when they are missing), the
//! [`ContainerSpec`] for the sandbox with the container's id mapping (its pid 1 is
//! cloned by clone.rs).
//! Never: creates container dirs or records (create.rs), starts the container.

use std::path::{Path, PathBuf};

use imago_overlay::{Layers, RootfsMethod, RootfsPlan};
use imago_sandbox::{
    run_in_mapping, CapsPolicy, ContainerSpec, IdMap, Network, ProcessSpec, RootMount, Sharing,
    UserMount,
};
use imago_store::{LayerHold, Store, UnpackLimits};
use serde::{Deserialize, Serialize};

use crate::config::{self, ImageDefaults};
use crate::ports::PortSpec;
use crate::run::{RunError, RunOptions};

/// A container's settings, resolved from its image and the user's flags at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// The image as the user named it (or the `--rootfs` dir).
    pub image: String,
    /// The image id (config digest), when run from the store.
    pub image_id: Option<String>,
    /// `--rootfs DIR` instead of an image.
    pub rootfs: Option<PathBuf>,
    /// A single-file image (absolute path) instead of an image from the store.
    #[serde(default)]
    pub sqsh: Option<PathBuf>,
    /// ENTRYPOINT ++ CMD after docker's rules.
    pub command: Vec<String>,
    /// The complete environment.
    pub env: Vec<String>,
    /// Working dir.
    pub cwd: String,
    /// `user[:group]`, empty for root.
    pub user: String,
    /// Host name inside.
    pub hostname: String,
    /// `-v`, `--mount`, `--tmpfs`.
    pub mounts: Vec<UserMount>,
    /// `--device` binds (device nodes, CDI mounts), applied after `mounts`. Kept apart
    /// from them: a missing device is an error at start, never a dir made in its place.
    #[serde(default)]
    pub devices: Vec<UserMount>,
    /// `--read-only`.
    pub read_only: bool,
    /// The tiny init as pid 1.
    pub init: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// Capabilities.
    pub caps: CapsPolicy,
    /// The seccomp filter.
    pub seccomp: bool,
    /// The user's seccomp profile (JSON) when one was given; records without it use
    /// docker's default profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<String>,
    /// `no-new-privileges`.
    pub no_new_privs: bool,
    /// The network.
    pub network: Network,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--rm`: removed when it exits.
    pub auto_remove: bool,
    /// The image's STOPSIGNAL, when it has one.
    pub stop_signal: Option<String>,
    /// Ports a detached container publishes, docker's form (`0.0.0.0:8080->80/tcp`;
    /// host port 0: a free one, chosen at each start).
    #[serde(default)]
    pub publish: Vec<String>,
    /// The storage driver it was created with (`ictr start` keeps it: a copy-driver
    /// container's files are in its copy). Records without it used kernel overlayfs.
    #[serde(default)]
    pub storage: RootfsMethod,
    /// `--userns keep-id`: the caller's uid and gid mapped at themselves
    /// ([`IdMap::keep_id`]); `user` is them.
    #[serde(default)]
    pub keep_id: bool,
    /// What it shares with the host (`--pid host`, `--ipc host`, keep-id's groups and
    /// HOME).
    #[serde(default)]
    pub sharing: Sharing,
    /// `--pids-limit`, `--memory`, `--cpus`: the monitor of a detached container puts
    /// it in a cgroup with them at every start.
    #[serde(default)]
    pub limits: crate::limits::Limits,
}

/// The image's part: lower dirs bottom → top, its defaults, label, id and stop signal.
struct ImageParts {
    lowers: Vec<PathBuf>,
    defaults: ImageDefaults,
    label: String,
    id: Option<String>,
    stop_signal: Option<String>,
}

fn defaults_of(image: &imago_store::Image) -> (ImageDefaults, Option<String>) {
    match image.config.config() {
        Some(c) => (
            ImageDefaults {
                entrypoint: c.entrypoint().clone(),
                cmd: c.cmd().clone(),
                env: c.env().clone().unwrap_or_default(),
                workdir: c.working_dir().clone(),
                user: c.user().clone().filter(|u| !u.is_empty()),
            },
            c.stop_signal().clone().filter(|s| !s.is_empty()),
        ),
        None => (ImageDefaults::default(), None),
    }
}

fn rootfs_dir(dir: &Path) -> Result<PathBuf, RunError> {
    let d = dir
        .canonicalize()
        .map_err(|_| RunError::Rootfs(dir.to_path_buf()))?;
    if !d.is_dir() {
        return Err(RunError::Rootfs(dir.to_path_buf()));
    }
    Ok(d)
}

/// The unpacked layers of `image` (bottom → top), unpacking them inside the mapping
/// when they are missing or were unpacked for another ownership mode.
fn image_lowers(
    store: &Store,
    image: &imago_store::Image,
    map: &IdMap,
) -> Result<Vec<PathBuf>, RunError> {
    let mode = map.ownership();
    // Unpacked already, in this store or in a shared read-only one.
    if let Some(lowers) = store.unpacked_lowers(image, mode)? {
        return Ok(lowers);
    }
    // Files of other owners can only be made inside the mapping.
    run_in_mapping(map, || {
        store.unpack_layers(image, mode, &UnpackLimits::default())
    })
    .map_err(RunError::Unpack)
}

fn prepare_image(opts: &RunOptions, map: &IdMap) -> Result<ImageParts, RunError> {
    if let Some(file) = &opts.sqsh {
        // Its lower is mounted per container (crate::squash::spec): none here.
        let (defaults, stop_signal) = crate::squash::defaults(file)?;
        return Ok(ImageParts {
            lowers: vec![],
            defaults,
            label: crate::squash::canonical(file)?.display().to_string(),
            id: None,
            stop_signal,
        });
    }
    if let Some(dir) = &opts.rootfs {
        return Ok(ImageParts {
            lowers: vec![rootfs_dir(dir)?],
            defaults: ImageDefaults::default(),
            label: dir.display().to_string(),
            id: None,
            stop_signal: None,
        });
    }
    let name = opts.image.as_deref().ok_or(RunError::NoImage)?;
    let looked_up;
    let (store, image) = match &opts.found {
        Some(found) => (&found.store, &found.image),
        None => {
            let store = Store::open(&opts.store_root)?;
            let image = store.resolve(name)?;
            looked_up = (store, image);
            (&looked_up.0, &looked_up.1)
        }
    };
    let (defaults, stop_signal) = defaults_of(image);
    Ok(ImageParts {
        lowers: image_lowers(store, image, map)?,
        defaults,
        label: name.to_string(),
        id: Some(image.id().to_string()),
        stop_signal,
    })
}

/// Resolve `opts` for a new container whose short id is `short_id` (the default host
/// name): the image's layers (unpacked when needed) and the [`Launch`].
pub fn resolve(
    opts: &RunOptions,
    map: &IdMap,
    short_id: &str,
) -> Result<(Launch, Vec<PathBuf>), RunError> {
    let img = prepare_image(opts, map)?;
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| short_id.to_string());
    let command = config::command(&img.defaults, opts.entrypoint.as_deref(), &opts.args)?;
    let host = crate::hpc::Host::current();
    let env = config::environment_with_host(
        &crate::devices::with_device_env(&img.defaults, &opts.devices),
        &crate::hpc::passed(&host.vars, opts.env_host),
        &opts.env_files,
        &opts.env,
        &hostname,
        opts.tty,
        &|k| std::env::var(k).ok(),
    )?;
    let cwd = config::workdir(&img.defaults, opts.workdir.as_deref())?;
    let user = match (opts.keep_id, &opts.user) {
        (true, Some(_)) => return Err(RunError::Config(config::ConfigError::KeepIdUser)),
        (true, None) => host.keep_id_user(),
        (false, u) => u.clone().or(img.defaults.user.clone()).unwrap_or_default(),
    };
    let sharing = Sharing {
        pid: opts.pid_host,
        ipc: opts.ipc_host,
        // Root keeps today's rules: its groups are the image's.
        keep_groups: opts.keep_id && host.uid != 0,
        home: match opts.keep_id {
            true => host.home.as_ref().map(|h| h.display().to_string()),
            false => None,
        },
    };
    let caps = if opts.privileged {
        CapsPolicy::All
    } else {
        CapsPolicy::Bounded(imago_sandbox::caps::compute(&opts.cap_add, &opts.cap_drop)?)
    };
    let launch = Launch {
        image: img.label,
        image_id: img.id,
        rootfs: opts.rootfs.as_deref().map(rootfs_dir).transpose()?,
        sqsh: opts
            .sqsh
            .as_deref()
            .map(crate::squash::canonical)
            .transpose()?,
        command,
        env,
        cwd,
        user,
        hostname,
        mounts: opts.mounts.clone(),
        devices: opts.devices.mounts.clone(),
        read_only: opts.read_only,
        init: opts.init,
        privileged: opts.privileged,
        caps,
        seccomp: opts.seccomp && !opts.privileged,
        seccomp_profile: opts.seccomp_profile.clone(),
        no_new_privs: opts.no_new_privs,
        network: opts.network,
        tty: opts.tty,
        interactive: opts.interactive,
        auto_remove: opts.rm,
        stop_signal: img.stop_signal,
        publish: vec![],
        storage: opts.storage,
        keep_id: opts.keep_id,
        sharing,
        limits: opts.limits.clone(),
    };
    Ok((launch, img.lowers))
}

/// The lower dirs of an existing container, for starting it again, with a hold that
/// keeps them through a gc while the container runs (`None` for `--rootfs`).
pub fn lowers_again(
    store_root: &Path,
    launch: &Launch,
    map: &IdMap,
) -> Result<(Vec<PathBuf>, Option<LayerHold>), RunError> {
    if let Some(dir) = &launch.rootfs {
        return Ok((vec![rootfs_dir(dir)?], None));
    }
    if launch.sqsh.is_some() {
        return Ok((vec![], None));
    }
    let store = Store::open(store_root)?;
    let image = store.resolve(launch.image_id.as_deref().unwrap_or(&launch.image))?;
    let lowers = image_lowers(&store, &image, map)?;
    let hold = store.hold_layers(&image.chain_ids()?)?;
    Ok((lowers, Some(hold)))
}

/// The ports of [`Launch::publish`] (entries that do not parse are skipped: the record
/// is ours, written by [`PortSpec`]'s `Display`).
pub fn publish_specs(launch: &Launch) -> Vec<PortSpec> {
    launch
        .publish
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// docker creates missing bind sources as directories.
pub fn make_bind_sources(mounts: &[UserMount]) -> Result<(), RunError> {
    for m in mounts {
        if let UserMount::Bind { src, .. } = m {
            if !src.exists() {
                std::fs::create_dir_all(src).map_err(|e| RunError::Write(src.clone(), e))?;
            }
        }
    }
    Ok(())
}

/// The container's root by its storage driver, and its writable dirs (emptied by pid 1
/// after the command under `--rm`): kernel overlayfs over `lowers` with `dir`'s
/// upper/work dirs, or the copy driver's private copy `dir/copy`, made inside the mapping
/// the first time (a restarted container keeps its copy).
fn root_mount(
    method: RootfsMethod,
    dir: &Path,
    map: &IdMap,
    lowers: &[PathBuf],
) -> Result<(RootMount, Vec<PathBuf>), RunError> {
    let plan = imago_overlay::plan(
        method,
        &Layers {
            lowers_top_first: lowers.iter().rev().cloned().collect(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            links_dir: dir.to_path_buf(),
        },
    )?;
    match plan {
        RootfsPlan::Kernel(k) => Ok((
            RootMount::Overlay {
                cwd: k.cwd,
                data: k.data,
                links: k.links,
            },
            vec![dir.join("upper"), dir.join("work")],
        )),
        RootfsPlan::Copy(c) => {
            let (from, to) = (c.lowers_bottom_first.clone(), c.dir.clone());
            // Files of every owner of the image can only be made inside the mapping.
            run_in_mapping(map, move || imago_overlay::copy::make(&from, &to, None)).map_err(
                |e| imago_overlay::OverlayError::Copy {
                    what: "make the container's private copy of its image",
                    source: Box::new(e),
                },
            )?;
            Ok((RootMount::Bind(c.dir.clone()), vec![c.dir]))
        }
        RootfsPlan::Fuse(l) => Ok((
            RootMount::Fuse(imago_sandbox::fuse_root::FuseLayers {
                lowers_top_first: l.lowers_top_first,
                upper: l.upper.clone(),
                work: l.work.clone(),
            }),
            vec![l.upper, l.work],
        )),
    }
}

/// The sandbox's spec for `launch` in the container dir `dir` over `lowers`, with `map`
/// placed at the container's user (`IdMap::for_container`: under the single mapping its
/// one id becomes the user's, looked up in the container's root). With `remove` the
/// container's pid 1 empties the writable dirs after the command (`--rm`).
pub fn spec(
    launch: &Launch,
    dir: &Path,
    map: &IdMap,
    lowers: &[PathBuf],
    remove: bool,
) -> Result<ContainerSpec, RunError> {
    if let Some(file) = &launch.sqsh {
        return crate::squash::spec(launch, file, dir, map, remove);
    }
    let (root, writable) = root_mount(launch.storage, dir, map, lowers)?;
    let mut spec = ContainerSpec {
        id_map: map.clone(),
        root,
        rootfs: dir.join("rootfs"),
        hostname: launch.hostname.clone(),
        etc_files: ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|f| (dir.join(f), PathBuf::from("/etc").join(f)))
            .collect(),
        mounts: [&launch.mounts[..], &launch.devices[..]].concat(),
        readonly_root: launch.read_only,
        init: launch.init,
        privileged: launch.privileged,
        cleanup: if remove { writable } else { vec![] },
        process: ProcessSpec {
            args: launch.command.clone(),
            env: launch.env.clone(),
            cwd: launch.cwd.clone(),
            user: launch.user.clone(),
            terminal: launch.tty,
            stdin: launch.interactive,
            caps: launch.caps.clone(),
            seccomp: launch.seccomp,
            seccomp_profile: launch.seccomp_profile.clone(),
            no_new_privs: launch.no_new_privs,
        },
        sharing: launch.sharing.clone(),
    };
    spec.id_map = crate::clone::container_map(map, launch.keep_id).for_container(&spec)?;
    Ok(spec)
}
