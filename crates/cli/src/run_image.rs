//! The image a program is about to use, found or pulled: the store looked up by every
//! name a short name may mean (registries.conf's aliases and search list, then docker's
//! rule), a pull when it is missing (docker's `--pull`) or of another platform than
//! `--platform` asks, and [`pull_first`], the pull of the first of several candidate
//! references that `ipull` shares.
//!
//! Never: runs a container or writes the store but through a pull (and the cache of
//! registries.conf in the store's own dir).

use std::path::{Path, PathBuf};

use imago_registry::shortnames::{self as names, PullFailed};
use imago_registry::{
    ConnectOptions, PullOptions, Pulled, Reference, RegistriesConf, RegistryError,
};
use imago_runtime::FoundImage;
use imago_store::{Image, Store, StoreError};

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

/// Pull into the store at `root` (made when missing) the first of `candidates` that
/// pulls, as podman does (`imago_registry::shortnames::pull_first`, the store pinned
/// against a concurrent gc): every failure but the last is said on `progress` and the
/// next is tried. Returns the candidate that pulled.
pub fn pull_first(
    root: &Path,
    candidates: &[String],
    connect: &ConnectOptions,
    opts: &PullOptions,
    progress: &TransferProgress,
) -> Result<(String, Pulled), Box<PullFailed>> {
    let failed = |source: StoreError| PullFailed {
        reference: candidates.first().cloned().unwrap_or_default(),
        source: source.into(),
    };
    let store = Store::open(root).map_err(failed)?;
    let _pin = store.pin().map_err(failed)?;
    let mut skipped = |name: &str, e: &RegistryError| {
        progress.line(&format!("{name}: {e}; trying the next"));
    };
    names::pull_first(&store, candidates, connect, opts, progress, &mut skipped)
}

/// What the store holds under the names `image` may mean.
enum Found {
    /// The name it was found by, and the image.
    Image(String, Box<Image>),
    /// Found, but of another platform than asked.
    OtherPlatform {
        name: String,
        has: Platform,
    },
    Missing(StoreError),
}

/// The image irun runs: the name to show, and the image when the store had it (a
/// pulled image is looked up again by the run).
#[derive(Debug)]
pub struct RunImage {
    pub name: String,
    pub found: Option<FoundImage>,
}

/// The cache of registries.conf irun reads at every start (`RegistriesConf::
/// load_cached`): in the node-local dir when containers are placed there (a store on a
/// shared file system holds image data only, and each node's /etc has its own inodes),
/// else in the store's own dir.
pub fn registries_conf_cache(store: &Store) -> PathBuf {
    let dir = match imago_store::local::placement(store.root()) {
        Ok(Some(local)) => local.path,
        _ => store.layout().imago(),
    };
    dir.join("registries-conf.json")
}

/// docker's `--pull` for `irun`, with `--platform`: the image to run `image` by.
///
/// - The store (and shared stores) are looked up by the names `image` may mean; the
///   first found is the answer, unless `platform` is given and the image is another
///   platform's: then, as `docker run --platform`, it counts as missing. This look-up
///   reads registries.conf through its cache ([`registries_conf_cache`]), and nothing
///   else of the registry settings: a start that finds its image stays cheap.
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
) -> Result<RunImage, RemoteError> {
    let why = match policy {
        PullPolicy::Always => None,
        _ => match local_for_run(store_root, image, policy, platform)? {
            Local::Use(run) => return Ok(*run),
            Local::Pull(why) => why,
        },
    };
    let progress = TransferProgress::new(quiet);
    if let Some(why) = why {
        progress.line(&why);
    }
    let connect = ConnectOptions::from_env()?;
    let candidates = shortnames::pull_candidates(&connect.registries, image)?;
    let pull_opts = PullOptions {
        platform: platform.cloned().unwrap_or_else(Platform::host),
        ..PullOptions::default()
    };
    match pull_first(store_root, &candidates, &connect, &pull_opts, &progress) {
        Ok((name, _)) => Ok(RunImage {
            name: as_typed(image, name),
            found: None,
        }),
        Err(failed) => Err(match failed.source {
            RegistryError::Reference(e) => {
                RemoteError::NotPullable(failed.reference, e.to_string())
            }
            source => RemoteError::PullMissing {
                image: image.to_owned(),
                reference: failed.reference,
                source: Box::new(source),
            },
        }),
    }
}

/// What the store says about running `image` under `policy`.
enum Local {
    /// Run it.
    Use(Box<RunImage>),
    /// Pull it first; the line to show why, if any.
    Pull(Option<String>),
}

/// The store's answer for [`pull_for_run`]; `--pull=never` with no usable image is the
/// error.
fn local_for_run(
    store_root: &Path,
    image: &str,
    policy: PullPolicy,
    platform: Option<&Platform>,
) -> Result<Local, RemoteError> {
    let store = Store::open(store_root)?;
    let conf =
        RegistriesConf::load_cached(&registries_conf_cache(&store)).map_err(RegistryError::from)?;
    match look_up(&store, &conf, image, platform)? {
        Found::Image(name, img) => Ok(Local::Use(Box::new(RunImage {
            name: as_typed(image, name),
            found: Some(FoundImage { store, image: *img }),
        }))),
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
            let shown = match conf.qualify(image).as_slice() {
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
    conf: &RegistriesConf,
    image: &str,
    platform: Option<&Platform>,
) -> Result<Found, StoreError> {
    match imago_registry::shortnames::find_stored(store, conf, image) {
        Ok((name, img)) => Ok(match (platform, Platform::of_config(&img.config_bytes)) {
            (Some(wanted), Some(has)) if !wanted.matches(&has) => {
                Found::OtherPlatform { name, has }
            }
            _ => Found::Image(name, Box::new(img)),
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
