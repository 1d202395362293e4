//! Where a stage or a `--from` starts: a stored image (pulled first when missing, or
//! always with `--pull`), an earlier stage's state, or scratch. An image name means
//! what it means to `irun` (imago-registry's `shortnames`: registries.conf's aliases,
//! search list and `short-name-mode`, with no one to ask), and a stored image of
//! another platform than the stage's counts as missing.
//!
//! Never: changes a state; the stage loop and the instruction files do.

use imago_dockerfile::StageScope;
use imago_oci::BlobRef;
use imago_registry::shortnames::{find_stored, pull_candidates, pull_first};
use imago_registry::{ConnectOptions, Platform, PullOptions, RegistriesConf, RegistryError};
use imago_store::{Image, StoreError};

use super::error::StepError;
use super::state::{Ctx, State, States};
use crate::cache::LayerRef;
use crate::config::ImageConfig;
use crate::events::{Event, Sink};
use crate::stage::Source;

/// Why a base image could not be had.
pub(super) enum Fetch {
    Store(StoreError),
    Pull(RegistryError),
}

impl Fetch {
    /// As the error of a step that uses image `r` (`COPY --from`, `RUN --mount=from=`).
    fn into_step(self, r: &str) -> StepError {
        match self {
            Fetch::Store(StoreError::ImageNotFound { .. }) => StepError::NoImage(r.to_string()),
            Fetch::Store(e) => StepError::Store(e),
            Fetch::Pull(source) => StepError::Pull(r.to_string(), Box::new(source)),
        }
    }
}

/// A base image from the store, found by any name `r` may mean; pulled first when it
/// is missing or of another platform than the stage's, or always with `--pull`. A name
/// that is no registry reference (an id, a digest) is the stored image, whatever its
/// platform.
pub(super) fn resolve_or_pull(cx: &Ctx<'_>, r: &str, sink: &mut dyn Sink) -> Result<Image, Fetch> {
    let conf = &RegistriesConf::load().map_err(|e| Fetch::Pull(e.into()))?;
    let wanted = cx.platform.as_ref();
    let pullable = imago_oci::Reference::parse(r).is_ok();
    if !cx.opts.pull {
        match find_stored(cx.store, conf, r) {
            Ok((name, img)) => match other_platform(wanted, &img).filter(|_| pullable) {
                Some((w, has)) => sink.event(Event::Warning(format!(
                    "image '{name}' in the store is {has}, not {w}: pulling {w}"
                ))),
                None => return Ok(img),
            },
            Err(StoreError::ImageNotFound { .. }) => {}
            Err(e) => return Err(Fetch::Store(e)),
        }
    }
    if !pullable {
        return cx.store.resolve(r).map_err(Fetch::Store);
    }
    let connect = ConnectOptions::from_env().map_err(Fetch::Pull)?;
    // No terminal question here: a build runs unattended, as podman build does.
    let candidates = pull_candidates(conf, r, None).map_err(|e| Fetch::Pull(e.into()))?;
    sink.event(Event::Warning(format!("pulling {}", shown(&candidates))));
    let opts = PullOptions {
        platform: wanted.cloned().unwrap_or_else(Platform::host),
        ..PullOptions::default()
    };
    let mut skipped = |name: &str, e: &RegistryError| {
        sink.event(Event::Warning(format!("{name}: {e}; trying the next")))
    };
    let events = &imago_registry::NoEvents;
    match pull_first(cx.store, &candidates, &connect, &opts, events, &mut skipped) {
        Ok((name, _)) => cx.store.resolve(&name).map_err(Fetch::Store),
        // With --pull, an image we already have (of the stage's platform) is still
        // usable when the registry is not.
        Err(e) if cx.opts.pull => match find_stored(cx.store, conf, r) {
            Ok((_, img)) if other_platform(wanted, &img).is_none() => Ok(img),
            _ => Err(Fetch::Pull(e.source)),
        },
        Err(e) => Err(Fetch::Pull(e.source)),
    }
}

/// `(wanted, what img is)` when `img`'s config declares another platform than `wanted`.
fn other_platform<'w>(
    wanted: Option<&'w Platform>,
    img: &Image,
) -> Option<(&'w Platform, Platform)> {
    let has = Platform::of_config(&img.config_bytes)?;
    let w = wanted?;
    (!w.matches(&has)).then_some((w, has))
}

/// The references a pull tries, for the progress line: one in full
/// (`docker.io/library/busybox:latest`), several as a list.
fn shown(candidates: &[String]) -> String {
    match candidates {
        [one] => imago_oci::Reference::parse(one).map_or_else(|_| one.clone(), |r| r.to_string()),
        many => many.join(", then "),
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
