//! The foreground run path shared by irun (and later `ictr`): resolve the image → unpack
//! its layers inside the mapping when needed → container dir and record → overlay plan →
//! [`imago_sandbox::run`] → record the exit or remove everything (`--rm`).
//! Never: parses command lines (bins do), prints (returns codes and errors).

use std::path::{Path, PathBuf};

use imago_overlay::{Layers, RootfsMethod, RootfsPlan};
use imago_sandbox::{
    run_in_mapping, CapsPolicy, ChildError, ContainerSpec, IdMap, MapKind, ProcessSpec, RootMount,
    UserMount,
};
use imago_store::{Store, StoreError, UnpackLimits};

use crate::config::{self, ConfigError, ImageDefaults};
use crate::record::{ContainerId, ContainerRecord, Containers, RecordError};

/// Everything `irun` can ask for (already split from the command line).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The store root.
    pub store_root: PathBuf,
    /// The image (name, id, digest), unless `rootfs` is given.
    pub image: Option<String>,
    /// `--rootfs DIR`: run a directory as the (read-only) lower layer instead of an image.
    pub rootfs: Option<PathBuf>,
    /// Arguments after the image (replace CMD).
    pub args: Vec<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// `-e`.
    pub env: Vec<String>,
    /// Contents of the `--env-file`s.
    pub env_files: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-v`, `--mount`, `--tmpfs`, parsed.
    pub mounts: Vec<UserMount>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--rm`.
    pub rm: bool,
    /// `--name`.
    pub name: Option<String>,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// Run the tiny init as pid 1 (`--no-init` clears it).
    pub init: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privs: bool,
    /// `--security-opt seccomp=unconfined` clears it.
    pub seccomp: bool,
    /// `--network host|none|private`.
    pub network: imago_sandbox::Network,
}

/// Failures of the run path (exit 125 in irun).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Neither an image nor `--rootfs`.
    #[error("no image given: `irun [OPTIONS] IMAGE [COMMAND] [ARG...]`")]
    NoImage,
    /// The store failed.
    #[error("image store")]
    Store(#[from] StoreError),
    /// Unpacking in the mapping failed.
    #[error("unpack the image's layers (in the user namespace)")]
    Unpack(#[source] ChildError),
    /// A flag was wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A capability name was wrong.
    #[error(transparent)]
    Caps(#[from] imago_sandbox::caps::CapsError),
    /// Container records.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The overlay could not be planned.
    #[error("plan the container's root file system")]
    Overlay(#[from] imago_overlay::OverlayError),
    /// `--rootfs` is no directory.
    #[error("--rootfs `{0}` is not a directory")]
    Rootfs(PathBuf),
    /// A file of the container could not be written.
    #[error("write `{0}`")]
    Write(PathBuf, #[source] std::io::Error),
    /// The container failed to start.
    #[error(transparent)]
    Container(#[from] imago_sandbox::ContainerError),
}

impl RunError {
    /// What the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::Store(e) => e.hint(),
            RunError::Unpack(e) => e.hint(),
            RunError::Container(e) => e.hint(),
            _ => None,
        }
    }
}

fn defaults_of(image: &imago_store::Image) -> ImageDefaults {
    match image.config.config() {
        Some(c) => ImageDefaults {
            entrypoint: c.entrypoint().clone(),
            cmd: c.cmd().clone(),
            env: c.env().clone().unwrap_or_default(),
            workdir: c.working_dir().clone(),
            user: c.user().clone().filter(|u| !u.is_empty()),
        },
        None => ImageDefaults::default(),
    }
}

/// The lower dirs (bottom → top) and the image's defaults.
fn prepare_image(
    opts: &RunOptions,
    map: &IdMap,
) -> Result<(Vec<PathBuf>, ImageDefaults, String, Option<String>), RunError> {
    if let Some(dir) = &opts.rootfs {
        let d = dir
            .canonicalize()
            .map_err(|_| RunError::Rootfs(dir.clone()))?;
        if !d.is_dir() {
            return Err(RunError::Rootfs(dir.clone()));
        }
        return Ok((
            vec![d],
            ImageDefaults::default(),
            dir.display().to_string(),
            None,
        ));
    }
    let name = opts.image.as_deref().ok_or(RunError::NoImage)?;
    let store = Store::open(&opts.store_root)?;
    let image = store.resolve(name)?;
    let mode = map.ownership();
    let chain = image.chain_ids()?;
    let ready =
        chain.iter().all(|c| store.layer_dir(c).is_some()) && store.owner_mode()? == Some(mode);
    let dirs = if ready {
        chain.iter().map(|c| store.layout().layer_diff(c)).collect()
    } else {
        // Files of other owners can only be made inside the mapping.
        run_in_mapping(map, || {
            store.unpack_layers(&image, mode, &UnpackLimits::default())
        })
        .map_err(RunError::Unpack)?
    };
    Ok((
        dirs,
        defaults_of(&image),
        name.to_string(),
        Some(image.id().to_string()),
    ))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn write(p: &Path, data: &[u8]) -> Result<(), RunError> {
    std::fs::write(p, data).map_err(|e| RunError::Write(p.to_path_buf(), e))
}

/// Run a container in the foreground; returns irun's exit code (the command's status,
/// 128+N for a signal). Call while single-threaded (see `imago_sandbox::run`).
pub fn run(opts: &RunOptions) -> Result<i32, RunError> {
    let map = IdMap::detect();
    // Clone the container's pid 1 first: newuidmap/newgidmap (a few ms of setuid execs)
    // then write its maps while we look up the image and make the container's dir.
    let pending = imago_sandbox::prepare_with(&map, opts.network)?;
    let (lowers, defaults, image_label, image_id) = prepare_image(opts, &map)?;
    let id = ContainerId::random();
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id.short().to_string());
    let command = config::command(&defaults, opts.entrypoint.as_deref(), &opts.args)?;
    let env = config::environment(
        &defaults,
        &opts.env_files,
        &opts.env,
        &hostname,
        opts.tty,
        &|k| std::env::var(k).ok(),
    )?;
    let cwd = config::workdir(&defaults, opts.workdir.as_deref())?;
    let user = opts
        .user
        .clone()
        .or(defaults.user.clone())
        .unwrap_or_default();
    let caps = if opts.privileged {
        CapsPolicy::All
    } else {
        CapsPolicy::Bounded(imago_sandbox::caps::compute(&opts.cap_add, &opts.cap_drop)?)
    };
    // docker creates missing bind sources as directories.
    for m in &opts.mounts {
        if let UserMount::Bind { src, .. } = m {
            if !src.exists() {
                std::fs::create_dir_all(src).map_err(|e| RunError::Write(src.clone(), e))?;
            }
        }
    }

    let containers = Containers::new(&opts.store_root);
    let dir = containers.create_dir(&id)?;
    if let Some(n) = &opts.name {
        if let Err(e) = containers.claim_name(n, &id) {
            remove_dir(&dir, &map);
            return Err(e.into());
        }
    }
    let result = (|| {
        let mut rec = ContainerRecord {
            id: id.as_str().to_string(),
            name: opts.name.clone(),
            image: image_label.clone(),
            image_id: image_id.clone(),
            command: command.clone(),
            created: now(),
            state: "running".into(),
            exit_code: None,
        };
        containers.write_record(&rec)?;
        let etc = write_etc_files(&dir, &hostname)?;
        let plan = imago_overlay::plan(
            RootfsMethod::Kernel,
            &Layers {
                lowers_top_first: lowers.iter().rev().cloned().collect(),
                upper: dir.join("upper"),
                work: dir.join("work"),
                links_dir: dir.clone(),
            },
        )?;
        let RootfsPlan::Kernel(k) = plan;
        let spec = ContainerSpec {
            id_map: map.clone(),
            root: RootMount::Overlay {
                cwd: k.cwd,
                data: k.data,
                links: k.links,
            },
            rootfs: dir.join("rootfs"),
            hostname: hostname.clone(),
            etc_files: etc,
            mounts: opts.mounts.clone(),
            readonly_root: opts.read_only,
            init: opts.init,
            privileged: opts.privileged,
            cleanup: if opts.rm {
                vec![dir.join("upper"), dir.join("work")]
            } else {
                vec![]
            },
            process: ProcessSpec {
                args: command.clone(),
                env,
                cwd,
                user,
                terminal: opts.tty,
                stdin: opts.interactive,
                caps,
                seccomp: opts.seccomp && !opts.privileged,
                no_new_privs: opts.no_new_privs,
            },
        };
        let code = pending.start(&spec)?;
        if !opts.rm {
            rec.state = "exited".into();
            rec.exit_code = Some(code);
            containers.write_record(&rec)?;
        }
        Ok(code)
    })();
    if opts.rm || result.is_err() {
        if let Some(n) = &opts.name {
            containers.release_name(n, &id);
        }
        remove_dir(&dir, &map);
    }
    result
}

fn write_etc_files(dir: &Path, hostname: &str) -> Result<Vec<(PathBuf, PathBuf)>, RunError> {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    write(&dir.join("hosts"), hosts.as_bytes())?;
    write(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    // With the host's network, the host's resolver configuration applies too.
    let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    write(&dir.join("resolv.conf"), &resolv)?;
    Ok(["hosts", "hostname", "resolv.conf"]
        .iter()
        .map(|f| (dir.join(f), PathBuf::from("/etc").join(f)))
        .collect())
}

/// Remove a container dir: directly when we own every file (root, single mapping),
/// else inside the mapping (files of subordinate ids).
pub fn remove_dir(dir: &Path, map: &IdMap) {
    if imago_oci::layer::remove_tree(dir).is_ok() {
        return;
    }
    if map.kind == MapKind::SubIds {
        let d = dir.to_path_buf();
        let r = run_in_mapping(map, move || imago_oci::layer::remove_tree(&d));
        if let Err(e) = r {
            tracing::warn!("could not remove container dir {}: {e}", dir.display());
        }
    }
}
