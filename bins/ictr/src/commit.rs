//! `ictr commit CONTAINER [REPOSITORY[:TAG]]`: a new image from a container's changes
//! (docker's `commit`), printing its id. The work is imago_builder::commit_container's;
//! this file finds the container, its image and its writable dir, and refuses the
//! containers that have no image to build on or no writable dir to read.
//!
//! A running container is not paused (docker pauses it by default): what it writes
//! while the layer is packed may be caught half-written.

use std::path::PathBuf;
use std::process::ExitCode;

use imago_builder::commit_container::{self, CommitOptions, ContainerChanges};
use imago_cli::GlobalOpts;
use imago_overlay::RootfsMethod;
use imago_runtime::launch::Launch;
use imago_sandbox::{IdMap, UserMount};
use imago_store::Store;

use crate::common::{self, CtrError};

pub use crate::args::CommitArgs as Args;

/// Failures of `ictr commit` beyond the shared ones.
#[derive(Debug, thiserror::Error)]
enum CommitError {
    #[error(transparent)]
    Ctr(#[from] CtrError),
    #[error("cannot commit container {name}: {why}")]
    Refused { name: String, why: &'static str },
    #[error(transparent)]
    Store(#[from] imago_store::StoreError),
    #[error(transparent)]
    Commit(#[from] commit_container::CommitError),
}

/// The paths a container has mounted over, which are not its changes: the /etc files
/// every container gets, and its `-v`, `--mount`, `--tmpfs` and `--device` targets.
fn mount_points(launch: &Launch) -> Vec<String> {
    let user = launch
        .mounts
        .iter()
        .chain(&launch.devices)
        .map(|m| match m {
            UserMount::Bind { dst, .. } | UserMount::Tmpfs { dst, .. } => dst.clone(),
        });
    ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
        .into_iter()
        .map(PathBuf::from)
        .chain(user)
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

fn commit(global: &GlobalOpts, a: &Args) -> Result<String, CommitError> {
    let c = common::containers(global)?;
    let name = a.container.as_str();
    let (id, rec) = common::find(&c, name)?;
    let refused = |why| CommitError::Refused {
        name: name.to_owned(),
        why,
    };
    let launch = rec
        .launch
        .as_ref()
        .ok_or_else(|| refused("its record has no launch settings (made by an older imago)"))?;
    if launch.rootfs.is_some() || launch.sqsh.is_some() {
        return Err(refused(
            "it runs from a directory or a single-file image, not an image of the store",
        ));
    }
    if launch.storage == RootfsMethod::Copy {
        return Err(refused(
            "it runs on the copy storage driver, which keeps no record of what changed",
        ));
    }
    common::need_here(
        &c,
        &id,
        format!("cannot commit container {name}"),
        String::new(),
    )?;
    let store = Store::open(c.store_root())?;
    let base = store.resolve(launch.image_id.as_deref().unwrap_or(&launch.image))?;
    let upper = c.dir(&id).join("upper");
    let map = IdMap::detect();
    let points = mount_points(launch);
    let made = commit_container::commit(
        &store,
        &ContainerChanges {
            base: &base,
            upper: &upper,
            map: &map,
            command: &launch.command,
            env: &launch.env,
            cwd: &launch.cwd,
            user: &launch.user,
            mount_points: &points,
        },
        &CommitOptions {
            changes: &a.changes,
            author: a.author.as_deref(),
            message: a.message.as_deref(),
            name: a.repository.as_deref(),
        },
    )?;
    Ok(made.id.to_string())
}

/// Run `ictr commit`.
pub fn run(global: &GlobalOpts, a: &Args) -> ExitCode {
    match commit(global, a) {
        Ok(id) => match imago_cli::output::print_lines([id]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => imago_cli::fail(&CtrError::from(e)),
        },
        Err(e) => imago_cli::fail(&e),
    }
}
