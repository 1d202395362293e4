//! Where a stage or a `--from` starts: a stored image (pulled first when missing, or
//! always with `--pull`), an earlier stage's state, or scratch.
//!
//! Never: changes a state; the stage loop and the instruction files do.

use imago_dockerfile::StageScope;
use imago_oci::BlobRef;
use imago_store::Image;

use super::error::StepError;
use super::state::{Ctx, State, States};
use crate::cache::LayerRef;
use crate::config::ImageConfig;
use crate::events::{Event, Sink};
use crate::stage::Source;

/// Why a base image could not be had.
pub(super) enum Fetch {
    Store(imago_store::StoreError),
    Pull(imago_registry::RegistryError),
}

impl Fetch {
    /// As the error of a step that uses image `r` (`COPY --from`, `RUN --mount=from=`).
    fn into_step(self, r: &str) -> StepError {
        match self {
            Fetch::Store(imago_store::StoreError::ImageNotFound { .. }) => {
                StepError::NoImage(r.to_string())
            }
            Fetch::Store(e) => StepError::Store(e),
            Fetch::Pull(source) => StepError::Pull(r.to_string(), Box::new(source)),
        }
    }
}

/// A base image from the store; pulled from its registry first when it is missing, or
/// always with `--pull`.
pub(super) fn resolve_or_pull(cx: &Ctx<'_>, r: &str, sink: &mut dyn Sink) -> Result<Image, Fetch> {
    if !cx.opts.pull {
        match cx.store.resolve(r) {
            Ok(img) => return Ok(img),
            Err(imago_store::StoreError::ImageNotFound { .. }) => {}
            Err(e) => return Err(Fetch::Store(e)),
        }
    }
    let reference = match imago_oci::Reference::parse(r) {
        Ok(x) => x,
        Err(_) => return cx.store.resolve(r).map_err(Fetch::Store),
    };
    sink.event(Event::Warning(format!("pulling {reference}")));
    match imago_registry::pull_image(cx.store, &reference, &imago_registry::NoEvents) {
        Ok(_) => cx.store.resolve(r).map_err(Fetch::Store),
        // With --pull, an image we already have is still usable when the registry is not.
        Err(e) if cx.opts.pull => cx.store.resolve(r).map_err(|_| Fetch::Pull(e)),
        Err(e) => Err(Fetch::Pull(e)),
    }
}

/// The state at a stored image.
pub(super) fn state_of_image(img: &Image) -> Result<State, imago_store::StoreError> {
    let config =
        ImageConfig::from_json(&img.config_bytes).map_err(|e| imago_store::StoreError::Other {
            what: format!("image {}: config: {e}", img.id().short()),
        })?;
    let diff_ids = img.diff_ids()?;
    let layers = img
        .layers()?
        .into_iter()
        .zip(diff_ids)
        .map(|(blob, diff_id)| LayerRef { blob, diff_id })
        .collect();
    let scope = StageScope::with_image_env(config.config.env.iter().map(String::as_str));
    Ok(State {
        config,
        layers,
        key: format!("image:{}", img.id()),
        scope,
        cmd_set: false,
    })
}

/// The layers and cache key of a `--from` source (`COPY --from`, `RUN --mount=from=`).
pub(super) fn source_layers(
    cx: &Ctx<'_>,
    states: &States,
    from: &Source,
    sink: &mut dyn Sink,
) -> Result<(Vec<LayerRef>, String), StepError> {
    match from {
        Source::Scratch => Ok((Vec::new(), "scratch".into())),
        Source::Stage(j) => {
            let s = states.get(j).ok_or(StepError::StageNotBuilt(*j))?;
            Ok((s.layers.clone(), s.key.clone()))
        }
        Source::Image(r) => {
            let img = resolve_or_pull(cx, r, sink).map_err(|e| e.into_step(r))?;
            let s = state_of_image(&img)?;
            Ok((s.layers, s.key))
        }
    }
}

/// The manifest's form of a state's layers, for writing the final image.
pub(super) fn store_layers(layers: &[LayerRef]) -> Vec<BlobRef> {
    layers.iter().map(|l| l.blob.clone()).collect()
}
