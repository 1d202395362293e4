//! The build engine: walks the stages the target needs, applies each instruction
//! (metadata ones on the config, COPY/ADD/WORKDIR into a new layer dir, RUN through the
//! sandbox on an overlay of the parent's layers), commits layers into the store, keeps a
//! cache entry per step, and writes + tags the final image only when everything worked.
//!
//! Rootless: every file operation on layer trees (unpack, COPY into a layer dir, packing
//! an upper dir, removing temp trees) runs inside the user's id mapping
//! ([`imago_sandbox::run_in_mapping`]); RUN starts a container with the same mapping.
//!
//! Files: `stages` (the stage loop), `step` (one step and its cache key), `base` (base
//! images and `--from` sources), `commit` (layers in and out of the store), one file per
//! instruction family (`meta_step`, `workdir_step`, `copy_step` + `add_url`,
//! `run_step` + `run_container` + `run_mounts`), `users` (USER and `--chown` names),
//! `platform` (each stage's platform, and whether its RUN steps can run here).
//!
//! Never: draws progress (events go to a [`Sink`]), parses Dockerfile text itself.

mod add_url;
mod base;
pub(crate) mod commit;
mod copy_step;
mod error;
mod meta_step;
mod options;
mod platform;
mod run_container;
mod run_mounts;
mod run_step;
mod stages;
mod state;
mod step;
mod users;
mod workdir_step;

use std::collections::BTreeMap;

use imago_oci::Digest;
use imago_sandbox::IdMap;
use imago_store::Store;

pub use add_url::DownloadError;
pub use error::{BuildError, StepError};
pub use options::{BuildOptions, Built, Network};
pub use platform::PlatformError;

use crate::config;
use crate::events::{Event, Sink};
use state::{Ctx, State};

/// A build whose Dockerfile parsed and whose stages are planned ([`plan`]): everything
/// about it that is checked without a store.
pub struct Planned<'o> {
    opts: &'o BuildOptions,
    plan: stages::Plan,
}

/// Parse the Dockerfile in `opts` and plan the stages its target needs (syntax,
/// `--target`, global ARGs, FROM expansion, the stage graph). Touches no store, so a
/// caller can fail on a bad Dockerfile before it opens (and so creates) one.
pub fn plan(opts: &BuildOptions) -> Result<Planned<'_>, BuildError> {
    if !opts.context_dir.is_absolute() {
        return Err(BuildError::RelativeContext(opts.context_dir.clone()));
    }
    let plan = stages::plan(opts)?;
    Ok(Planned { opts, plan })
}

/// Build a [`plan`]ned Dockerfile into `store`.
pub fn build(
    store: &Store,
    planned: &Planned<'_>,
    sink: &mut dyn Sink,
) -> Result<Built, BuildError> {
    let (opts, plan) = (planned.opts, &planned.plan);
    store
        .read_index()
        .map_err(|source| BuildError::StoreIndex {
            path: store.layout().index(),
            source,
        })?;
    let map = IdMap::detect();
    let mode = map.ownership();
    let _pin = store.pin()?;
    let mut cx = Ctx {
        store,
        opts,
        map,
        mode,
        global: plan.global.clone(),
        escape: plan.dfile.escape,
        platform: None,
        step: 0,
        total: plan.total,
        bind_context: None,
    };
    let mut states = stages::build_all(&mut cx, plan, sink)?;
    let Some(fin) = states.remove(&plan.target) else {
        return Err(BuildError::Stage(crate::stage::StageError::NoStages));
    };
    write_image(store, opts, fin, sink)
}

/// The final image: `--label`s, times (SOURCE_DATE_EPOCH clamps them), config and
/// manifest into the store, then the tags.
fn write_image(
    store: &Store,
    opts: &BuildOptions,
    mut fin: State,
    sink: &mut dyn Sink,
) -> Result<Built, BuildError> {
    if !opts.labels.is_empty() {
        let l = fin.config.config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &opts.labels {
            l.insert(k.clone(), v.clone());
        }
    }
    fin.config.created = Some(match opts.source_date_epoch {
        Some(e) => config::format_time(e),
        None => (fin.config.history.last())
            .and_then(|h| h.created.clone())
            .unwrap_or_else(config::now),
    });
    if let Some(e) = opts.source_date_epoch {
        fin.config.clamp_times(e);
    }
    fin.config.rootfs.diff_ids = fin.layers.iter().map(|l| l.diff_id.to_string()).collect();
    let layers = base::store_layers(&fin.layers);
    let config_bytes = fin.config.to_json();
    let manifest = store.put_image_raw(&config_bytes, &layers)?;
    let id = Digest::of(&config_bytes);
    let mut tags = Vec::new();
    for t in &opts.tags {
        let n = store.tag(t, &manifest).map_err(|source| BuildError::Tag {
            name: t.clone(),
            source,
        })?;
        tags.push(format!("{}:{}", n.repository, n.tag));
    }
    sink.event(Event::Written {
        id: id.to_string(),
        tags: tags.clone(),
    });
    Ok(Built { id, manifest, tags })
}
