//! The image a program is about to use, found or pulled: the store looked up by every
//! name a short name may mean (registries.conf's aliases and search list, then docker's
//! rule), a pull when it is missing (docker's `--pull`) or of another platform than
//! `--platform` asks, and [`pull_first`], the pull of the first of several candidate
//! references that `ipull` shares.
//!
//! Never: runs a container or writes the store but through a pull.

use std::path::Path;

use imago_registry::{ConnectOptions, PullOptions, Pulled, Reference, RegistryError};
use imago_store::{Store, StoreError};

use crate::progress::TransferProgress;
use crate::remote::RemoteError;
use crate::shortnames;

pub use imago_registry::Platform;

/// When `irun` pulls its image (docker's `--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when the store (or a shared store) lacks it: docker's default.
    Missing,
    /// Every time, so the image is the registry's latest (the store keeps what it has
    /// when the pull fails).
    Always,
    /// Never: a missing image is an error.
    Never,
}

impl PullPolicy {
    /// `missing`, `always` or `never` (clap checks the value).
    pub fn parse(s: &str) -> PullPolicy {
        match s {
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            _ => PullPolicy::Missing,
        }
    }
}

/// Why one candidate of [`pull_first`] did not pull.
#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    #[error(transparent)]
    Reference(#[from] imago_oci::ReferenceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The last candidate's failure, when none pulled.
#[derive(Debug)]
pub struct PullFailed {
    pub reference: String,
    pub source: CandidateError,
}

/// Pull the first of `candidates` that pulls, as podman does: every failure but the
/// last is said on `progress` and the next is tried. Returns the candidate that pulled.
pub fn pull_first(
    root: &Path,
    candidates: &[String],
    connect: &ConnectOptions,
    opts: &PullOptions,
    progress: &TransferProgress,
) -> Result<(String, Pulled), Box<PullFailed>> {
    let pull = |name: &str| -> Result<Pulled, CandidateError> {
        let reference = Reference::parse(name)?;
        Ok(imago_registry::pull_into_root(
            root, &reference, connect, opts, progress,
        )?)
    };
    let mut last = None;
    for (i, name) in candidates.iter().enumerate() {
        match pull(name) {
            Ok(p) => return Ok((name.clone(), p)),
            Err(e) if i + 1 < candidates.len() => {
                progress.line(&format!("{name}: {e}; trying the next"))
            }
            Err(e) => last = Some((name.clone(), e)),
        }
    }
    let (reference, source) = last.unwrap_or_else(|| {
        (
            String::new(),
            CandidateError::Reference(imago_oci::ReferenceError::Empty(String::new())),
        )
    });
    Err(Box::new(PullFailed { reference, source }))
}

/// What the store holds under the names `image` may mean.
enum Found {
    /// The name it was found by.
    Image(String),
    /// Found, but of another platform than asked.
    OtherPlatform {
        name: String,
        has: Platform,
    },
    Missing(StoreError),
}

/// docker's `--pull` for `irun`, with `--platform`: the name to run `image` by.
///
/// - The store (and shared stores) are looked up by the names `image` may mean; the
///   first found is the answer, unless `platform` is given and the image is another
///   platform's: then, as `docker run --platform`, it counts as missing.
/// - [`PullPolicy::Missing`] pulls a missing image that is a registry reference (the
///   short name's candidates in order, registries.conf's `short-name-mode` applied);
///   [`PullPolicy::Always`] pulls whatever the store has; [`PullPolicy::Never`] makes a
///   missing image the store's "not found" (another platform's: an error that says so).
///
/// Progress goes to stderr unless `quiet`. Concurrent callers pulling the same image
/// download it once (the store's pull lock). Runs its transfer threads to the end
/// before it returns, so a caller that must be single-threaded afterwards (irun's
/// clone) still is.
pub fn pull_for_run(
    store_root: &Path,
    image: &str,
    policy: PullPolicy,
    platform: Option<&Platform>,
    quiet: bool,
) -> Result<String, RemoteError> {
    let progress = TransferProgress::new(quiet);
    let connect = ConnectOptions::from_env()?;
    match local_for_run(store_root, &connect, image, policy, platform)? {
        Local::Use(name) => return Ok(name),
        Local::Pull(Some(why)) => progress.line(&why),
        Local::Pull(None) => {}
    }
    let candidates = shortnames::pull_candidates(&connect.registries, image)?;
    let pull_opts = PullOptions {
        platform: platform.cloned().unwrap_or_else(Platform::host),
        ..PullOptions::default()
    };
    match pull_first(store_root, &candidates, &connect, &pull_opts, &progress) {
        Ok((name, _)) => Ok(as_typed(image, name)),
        Err(failed) => Err(match failed.source {
            CandidateError::Reference(e) => {
                RemoteError::NotPullable(failed.reference, e.to_string())
            }
            CandidateError::Registry(source) => RemoteError::PullMissing {
                image: image.to_owned(),
                reference: failed.reference,
                source: Box::new(source),
            },
        }),
    }
}

/// What the store says about running `image` under `policy`.
enum Local {
    /// Run it by this name.
    Use(String),
    /// Pull it first; the line to show why, if any.
    Pull(Option<String>),
}

/// The store's answer for [`pull_for_run`]; `--pull=never` with no usable image is the
/// error.
fn local_for_run(
    store_root: &Path,
    connect: &ConnectOptions,
    image: &str,
    policy: PullPolicy,
    platform: Option<&Platform>,
) -> Result<Local, RemoteError> {
    if policy == PullPolicy::Always {
        return Ok(Local::Pull(None));
    }
    let store = Store::open(store_root)?;
    match look_up(&store, connect, image, platform)? {
        Found::Image(name) => Ok(Local::Use(as_typed(image, name))),
        Found::OtherPlatform { name, has } => {
            let wanted = platform.map(Platform::to_string).unwrap_or_default();
            if policy == PullPolicy::Never {
                return Err(RemoteError::OtherPlatform {
                    image: name,
                    has: has.to_string(),
                    wanted,
                });
            }
            Ok(Local::Pull(Some(format!(
                "image '{name}' in the store is {has}, not {wanted}: pulling {wanted}"
            ))))
        }
        Found::Missing(e) => {
            let Ok(reference) = Reference::parse(image) else {
                return Err(e.into());
            };
            if policy == PullPolicy::Never {
                return Err(e.into());
            }
            // docker's line; a short name registries.conf resolves is shown as typed.
            let shown = match connect.registries.qualify(image).as_slice() {
                [one] if one == image => reference.to_string(),
                _ => image.to_owned(),
            };
            Ok(Local::Pull(Some(format!(
                "Unable to find image '{shown}' locally"
            ))))
        }
    }
}

/// `found`, or `image` as typed when both name the same reference (an alias such as
/// containers-common's `busybox = "docker.io/library/busybox"`): the container shows
/// the name the user gave, as docker's `Config.Image` does.
fn as_typed(image: &str, found: String) -> String {
    match (Reference::parse(image), Reference::parse(&found)) {
        (Ok(a), Ok(b)) if a == b => image.to_owned(),
        _ => found,
    }
}

/// The first of `image`'s store names (registries.conf's, as irun and ibuild look them
/// up) the store has, and whether it is of the platform asked for.
fn look_up(
    store: &Store,
    connect: &ConnectOptions,
    image: &str,
    platform: Option<&Platform>,
) -> Result<Found, StoreError> {
    match imago_registry::shortnames::find_stored(store, &connect.registries, image) {
        Ok((name, img)) => Ok(match (platform, Platform::of_config(&img.config_bytes)) {
            (Some(wanted), Some(has)) if !wanted.matches(&has) => {
                Found::OtherPlatform { name, has }
            }
            _ => Found::Image(name),
        }),
        Err(e @ StoreError::ImageNotFound { .. }) => Ok(Found::Missing(e)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::as_typed;

    #[test]
    fn a_name_that_means_the_same_reference_stays_as_typed() {
        let found = |s: &str| s.to_owned();
        assert_eq!(
            as_typed("busybox", found("docker.io/library/busybox")),
            "busybox"
        );
        assert_eq!(
            as_typed("busybox", found("quay.io/team/busybox")),
            "quay.io/team/busybox"
        );
        assert_eq!(
            as_typed("busybox:1", found("docker.io/library/busybox")),
            "docker.io/library/busybox"
        );
    }
}
