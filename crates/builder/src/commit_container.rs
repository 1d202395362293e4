//! A container's changes as a new image (`ictr commit`, docker's `commit`): its
//! writable dir packed as one layer on top of the image it ran from, the config it ran
//! with (environment, working dir, user, command) plus `--change` instructions, and one
//! history entry. Crash-safe as a build is: the layer and config are stored as blobs
//! first, the image is recorded after them and named last, all under a store pin.
//!
//! Never: changes the container (its writable dir is read, never edited: its mount
//! points are left out of the layer, not removed), pauses it (files a running container
//! writes meanwhile may be caught half-written, as with `docker commit --pause=false`),
//! or finds it (the caller resolves the container and hands over its paths).

use std::path::Path;

use imago_oci::Digest;
use imago_sandbox::{run_in_mapping, ChildError, IdMap};
use imago_store::{Image, Store, StoreError};
use serde_json::Value;

use crate::cache::LayerRef;
use crate::change::{self, ChangeError};
use crate::config::{self, ImageConfig};
use crate::engine::commit::commit_dir_skipping;

/// What to commit: a container as it ran.
#[derive(Debug)]
pub struct ContainerChanges<'a> {
    /// The image the container ran from.
    pub base: &'a Image,
    /// Its writable (overlay upper) dir.
    pub upper: &'a Path,
    /// The id mapping its files are owned under.
    pub map: &'a IdMap,
    /// The command it ran: ENTRYPOINT ++ CMD after docker's rules.
    pub command: &'a [String],
    /// Its whole environment.
    pub env: &'a [String],
    /// Its working dir.
    pub cwd: &'a str,
    /// Its `user[:group]` (empty: root).
    pub user: &'a str,
    /// Container paths mounted over (`/etc/hosts`, volumes): not its changes.
    pub mount_points: &'a [String],
}

/// How the new image is described.
#[derive(Debug, Default)]
pub struct CommitOptions<'a> {
    /// Dockerfile instructions applied to the config (`-c`).
    pub changes: &'a [String],
    /// The image's and the history entry's author (`-a`).
    pub author: Option<&'a str>,
    /// The history entry's comment (`-m`).
    pub message: Option<&'a str>,
    /// The name to give it (`REPOSITORY[:TAG]`).
    pub name: Option<&'a str>,
}

/// The image made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedImage {
    /// Its id: the config digest (what docker prints).
    pub id: Digest,
    /// Its manifest digest.
    pub manifest: Digest,
}

/// Errors of a commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("the image config of {what}: {source}")]
    Config {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("pack the container's changes")]
    Pack(#[source] ChildError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Commit `ctr` as a new image of `store`; see the module doc.
pub fn commit(
    store: &Store,
    ctr: &ContainerChanges<'_>,
    opts: &CommitOptions<'_>,
) -> Result<CommittedImage, CommitError> {
    // Everything that can be refused is, before anything is written.
    if let Some(n) = opts.name {
        imago_store::names::ref_name_for(n)?;
    }
    let mut cfg =
        ImageConfig::from_json(&ctr.base.config_bytes).map_err(|source| CommitError::Config {
            what: "the container's image",
            source,
        })?;
    ran_with(&mut cfg, ctr);
    apply_changes(&mut cfg, opts.changes)?;
    let _pin = store.pin()?;
    let layer = pack(store, ctr)?;
    let created = config::now();
    cfg.created = Some(created.clone());
    if let Some(a) = opts.author {
        cfg.author = Some(a.to_owned());
    }
    // docker's history entry of a commit: the container's command, author and message.
    cfg.push_history(ctr.command.join(" "), layer.is_none(), Some(created));
    if let Some(h) = cfg.history.last_mut() {
        h.author = opts.author.map(str::to_owned);
        h.comment = opts.message.map(str::to_owned);
    }
    let mut layers = ctr.base.layers()?;
    if let Some(l) = layer {
        cfg.rootfs.diff_ids.push(l.diff_id.to_string());
        layers.push(l.blob);
    }
    let config_bytes = cfg.to_json();
    let manifest = store.put_image_raw(&config_bytes, &layers)?;
    if let Some(n) = opts.name {
        store.tag(n, &manifest)?;
    }
    Ok(CommittedImage {
        id: Digest::of(&config_bytes),
        manifest,
    })
}

/// The writable dir as a layer (None when it holds nothing), packed inside the
/// container's mapping, where its files have the owners the container gave them.
fn pack(store: &Store, ctr: &ContainerChanges<'_>) -> Result<Option<LayerRef>, CommitError> {
    let skip: Vec<String> = ctr
        .mount_points
        .iter()
        .map(|p| p.trim_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let (upper, mode) = (ctr.upper, ctr.map.ownership());
    run_in_mapping(ctr.map, move || {
        commit_dir_skipping(store, upper, mode, None, skip)
    })
    .map_err(CommitError::Pack)
}

/// The config the container ran with: its environment (without the HOSTNAME it was
/// given), working dir and user, and its
/// command split back into the image's ENTRYPOINT and a CMD (docker keeps both as the
/// container had them; a command that does not start with the image's entrypoint was
/// given with `--entrypoint`, so it becomes the entrypoint-less command).
fn ran_with(cfg: &mut ImageConfig, ctr: &ContainerChanges<'_>) {
    // HOSTNAME names this container, not the image (docker's commit leaves it out),
    // unless the image set it itself.
    let image_has_hostname = cfg.env_get("HOSTNAME").is_some();
    cfg.config.env = (ctr.env.iter())
        .filter(|e| image_has_hostname || !e.starts_with("HOSTNAME="))
        .cloned()
        .collect();
    cfg.config.working_dir = ctr.cwd.to_owned();
    cfg.config.user = ctr.user.to_owned();
    let entrypoint = cfg.config.entrypoint.clone().unwrap_or_default();
    match ctr.command.strip_prefix(entrypoint.as_slice()) {
        Some(rest) if !entrypoint.is_empty() => cfg.config.cmd = Some(rest.to_vec()),
        _ => {
            cfg.config.entrypoint = None;
            cfg.config.cmd = Some(ctr.command.to_vec());
        }
    }
}

/// `--change` instructions on the config's `config` object, in order.
fn apply_changes(cfg: &mut ImageConfig, changes: &[String]) -> Result<(), CommitError> {
    if changes.is_empty() {
        return Ok(());
    }
    let json_err = |source| CommitError::Config {
        what: "the commit",
        source,
    };
    let Value::Object(mut obj) = serde_json::to_value(&cfg.config).map_err(json_err)? else {
        return Ok(());
    };
    for c in changes {
        change::apply(&mut obj, c)?;
    }
    cfg.config = serde_json::from_value(Value::Object(obj)).map_err(json_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with(entrypoint: Option<&[&str]>) -> ImageConfig {
        let mut c = ImageConfig::scratch();
        c.config.entrypoint = entrypoint.map(|e| e.iter().map(|s| s.to_string()).collect());
        c.config.cmd = Some(vec!["default".into()]);
        c
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ran(cfg: &mut ImageConfig, command: &[&str]) {
        let (command, env) = (strings(command), strings(&["A=1", "HOSTNAME=c0ffee"]));
        let img = image();
        ran_with(
            cfg,
            &ContainerChanges {
                base: &img,
                upper: Path::new("/nonexistent"),
                map: &IdMap::single(0, 0),
                command: &command,
                env: &env,
                cwd: "/w",
                user: "33",
                mount_points: &[],
            },
        );
    }

    fn image() -> Image {
        let config_bytes = ImageConfig::scratch().to_json();
        let manifest_bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": imago_store::OCI_MANIFEST,
            "config": {"mediaType": imago_store::OCI_CONFIG, "digest": Digest::of(&config_bytes).to_string(), "size": config_bytes.len()},
            "layers": [],
        }))
        .unwrap();
        Image {
            index_digest: Digest::of(&manifest_bytes),
            manifest_digest: Digest::of(&manifest_bytes),
            manifest_media_type: imago_store::OCI_MANIFEST.into(),
            manifest: serde_json::from_slice(&manifest_bytes).unwrap(),
            manifest_bytes,
            config_digest: Digest::of(&config_bytes),
            config: serde_json::from_slice(&config_bytes).unwrap(),
            config_bytes,
            names: Vec::new(),
            origin: None,
        }
    }

    #[test]
    fn the_command_splits_back_into_entrypoint_and_cmd() {
        let mut c = cfg_with(Some(&["/ep", "-x"]));
        ran(&mut c, &["/ep", "-x", "arg"]);
        assert_eq!(c.config.entrypoint, Some(strings(&["/ep", "-x"])));
        assert_eq!(c.config.cmd, Some(strings(&["arg"])));
        assert_eq!(
            (c.config.env, c.config.working_dir, c.config.user),
            (strings(&["A=1"]), "/w".to_owned(), "33".to_owned())
        );
        // --entrypoint replaced it: the whole command is the CMD
        let mut c = cfg_with(Some(&["/ep"]));
        ran(&mut c, &["/other", "a"]);
        assert_eq!(c.config.entrypoint, None);
        assert_eq!(c.config.cmd, Some(strings(&["/other", "a"])));
        // no entrypoint
        let mut c = cfg_with(None);
        ran(&mut c, &["sh", "-c", "x"]);
        assert_eq!(c.config.cmd, Some(strings(&["sh", "-c", "x"])));
    }

    #[test]
    fn changes_apply_in_order_and_a_bad_one_is_named() {
        let mut c = cfg_with(None);
        apply_changes(&mut c, &strings(&["ENV B=2", "CMD [\"/b\"]", "LABEL k=v"])).unwrap();
        assert_eq!(c.config.cmd, Some(strings(&["/b"])));
        assert!(c.config.env.contains(&"B=2".to_owned()));
        assert_eq!(c.config.labels.unwrap()["k"], "v");
        let e = apply_changes(&mut cfg_with(None), &strings(&["RUN x"])).unwrap_err();
        assert!(e.to_string().contains("RUN x"), "{e}");
    }
}
