//! Making a container and removing it: its record dir `<store>/containers/<id>/`, its
//! own dir (the record dir, or `<node-local dir>/containers/<id>/` on a shared store:
//! record.rs), its name, the /etc files bound into it, its first record (state
//! `created`); removal takes all of that away again, and its live dir.
//! Never: starts or signals a container (monitor.rs, control.rs), resolves images.

use std::path::{Path, PathBuf};

use imago_sandbox::{run_in_mapping, IdMap, MapKind};

use crate::launch::Launch;
use crate::lookup::Place;
use crate::record::{live_dir, ContainerId, ContainerRecord, Containers, State};
use crate::run::RunError;

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now, RFC 3339 with nanoseconds (docker's timestamps).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

fn write(p: &Path, data: &[u8]) -> Result<(), RunError> {
    std::fs::write(p, data).map_err(|e| RunError::Write(p.to_path_buf(), e))
}

fn write_etc_files(dir: &Path, hostname: &str) -> Result<(), RunError> {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    write(&dir.join("hosts"), hosts.as_bytes())?;
    write(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    // With the host's network, the host's resolver configuration applies too.
    let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    write(&dir.join("resolv.conf"), &resolv)
}

/// Make container `id` running `launch`, named `name`: its dir, the name (claimed
/// atomically), the /etc files and its record (`created`). On failure nothing is left.
pub fn create(
    containers: &Containers,
    id: &ContainerId,
    launch: &Launch,
    name: Option<&str>,
) -> Result<(PathBuf, ContainerRecord), RunError> {
    crate::launch::make_bind_sources(&launch.mounts)?;
    let local = containers.placement()?;
    let record_dir = containers.record_dir(id);
    let dir = match containers.create_dir(id, local.as_ref()) {
        Ok(d) => d,
        Err(e) => {
            // Only empty dirs of ours so far, if any: a plain removal does.
            if let Some(l) = &local {
                let _ = imago_oci::layer::remove_tree(&l.containers().join(id.as_str()));
            }
            let _ = imago_oci::layer::remove_tree(&record_dir);
            return Err(e.into());
        }
    };
    // Ours only, nothing written by the container yet: a plain removal does.
    let undo = || {
        let _ = imago_oci::layer::remove_tree(&dir);
        let _ = imago_oci::layer::remove_tree(&record_dir);
    };
    if let Some(n) = name {
        if let Err(e) = containers.claim_name(n, id) {
            undo();
            return Err(e.into());
        }
    }
    let rec = ContainerRecord {
        id: id.as_str().to_string(),
        name: name.map(str::to_string),
        image: launch.image.clone(),
        image_id: launch.image_id.clone(),
        command: launch.command.clone(),
        created: now_secs(),
        state: State::Created,
        exit_code: None,
        started: None,
        finished: None,
        monitor: None,
        pid: None,
        attach_socket: None,
        launch: Some(launch.clone()),
        ports: vec![],
    };
    let made = write_etc_files(&dir, &launch.hostname)
        .and_then(|()| containers.write_record(&rec).map_err(RunError::from));
    if let Err(e) = made {
        if let Some(n) = name {
            containers.release_name(n, id);
        }
        undo();
        return Err(e);
    }
    Ok((dir, rec))
}

/// Remove container `id` (not running: the caller made sure): its name, live dir, own
/// dir and record dir. A node-local dir on another machine stays there (said as a
/// warning): only that machine can remove it.
pub fn remove(containers: &Containers, id: &ContainerId, name: Option<&str>, map: &IdMap) {
    if let Some(n) = name {
        containers.release_name(n, id);
    }
    if let Ok(live) = live_dir(id) {
        // Best effort: a live dir left behind holds only a dead socket.
        let _ = std::fs::remove_dir_all(live);
    }
    let record = containers.record_dir(id);
    let own_gone = match containers.place(id) {
        Place::Here(d) if d != record => remove_dir(&d, map),
        Place::Elsewhere { node, path } => {
            tracing::warn!(
                "container {}: its node-local dir {} on node {node} stays there; remove it on that node",
                id.short(),
                path.display()
            );
            true
        }
        Place::Here(_) | Place::Gone(_) => true,
    };
    // Last, and only when the own dir is gone: while the record exists, `ictr ps -a`
    // lists the container and `ictr rm` can try again.
    if own_gone {
        remove_dir(&record, map);
    }
}

/// Remove a container dir: directly when we own every file (root, single mapping),
/// else inside the mapping (files of subordinate ids). False when some of it is left.
pub fn remove_dir(dir: &Path, map: &IdMap) -> bool {
    if imago_oci::layer::remove_tree(dir).is_ok() || !dir.exists() {
        return true;
    }
    if map.kind != MapKind::SubIds {
        return false;
    }
    let d = dir.to_path_buf();
    match run_in_mapping(map, move || imago_oci::layer::remove_tree(&d)) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("could not remove container dir {}: {e}", dir.display());
            false
        }
    }
}
