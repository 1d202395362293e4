//! Short image names: which references a name the user typed may mean, for a pull
//! ([`pull_candidates`], registries.conf's `short-name-mode` applied, with a question
//! when the caller can ask one), for a look-up in a store ([`store_candidates`],
//! [`find_stored`]), and the pull of the first candidate that pulls ([`pull_first`]).
//! Every program that takes an image name (ipull, irun, ibuild's FROM, iimage, itag,
//! ipush) resolves it here, so a short name means the same everywhere.
//!
//! Never: reads registries.conf itself ([`RegistriesConf`] does), talks to a terminal
//! (the caller's `ask` does), or writes a store but through a pull.

use imago_store::{Image, Store, StoreError};

use crate::registries_conf::{ShortNameMode, Source};
use crate::{ConnectOptions, PullOptions, Pulled, Reference, RegistriesConf, RegistryError};

/// A short name that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ShortNameError {
    #[error(
        "short name `{name}` is ambiguous (short-name-mode is enforcing and there is no \
         terminal to ask on): it may be any of {}; give the full name, or add an alias in \
         registries.conf",
        candidates.join(", ")
    )]
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
    #[error("read the choice for `{name}`")]
    Ask {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{answer}` is none of the {count} choices for `{name}`")]
    BadChoice {
        name: String,
        answer: String,
        count: usize,
    },
}

/// The question a caller with a terminal asks: the candidates in, the answer (a number
/// from 1) out.
pub type Ask<'a> = &'a mut dyn FnMut(&[String]) -> std::io::Result<String>;

/// The references to try, in order, to pull `name`: a qualified name itself; a short
/// name's alias; else its search-list references, filtered by `short-name-mode` (one
/// search registry is no ambiguity; with several, enforcing and permissive `ask` which
/// when the caller can ask, enforcing fails when it cannot, permissive and disabled try
/// all); with no search list, Docker Hub's (docker's rule). `ask` is `None` where no
/// one can answer (no terminal, ibuild).
pub fn pull_candidates(
    conf: &RegistriesConf,
    name: &str,
    ask: Option<Ask<'_>>,
) -> Result<Vec<String>, ShortNameError> {
    let (candidates, source) = conf.short_name(name);
    if source != Source::Search || candidates.len() < 2 {
        return Ok(candidates);
    }
    match (conf.short_name_mode(), ask) {
        (ShortNameMode::Disabled, _) | (ShortNameMode::Permissive, None) => Ok(candidates),
        (ShortNameMode::Enforcing, None) => Err(ShortNameError::Ambiguous {
            name: name.to_owned(),
            candidates,
        }),
        (_, Some(ask)) => {
            let answer = ask(&candidates).map_err(|source| ShortNameError::Ask {
                name: name.to_owned(),
                source,
            })?;
            let pick = answer.trim().parse::<usize>().ok();
            match pick
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| candidates.get(i))
            {
                Some(c) => Ok(vec![c.clone()]),
                None => Err(ShortNameError::BadChoice {
                    name: name.to_owned(),
                    answer: answer.trim().to_owned(),
                    count: candidates.len(),
                }),
            }
        }
    }
}

/// The names to look `name` up by in a store ([`RegistriesConf::local_names`]): what a
/// pull of it stores, then the name as typed.
pub fn store_candidates(conf: &RegistriesConf, name: &str) -> Vec<String> {
    conf.local_names(name)
}

/// The first of `name`'s [`store_candidates`] that `store` (or a shared store) has:
/// that name and the image. None: the store's "not found" for `name` as typed (ids,
/// digests and built images' names are found by that last candidate).
pub fn find_stored(
    store: &Store,
    conf: &RegistriesConf,
    name: &str,
) -> Result<(String, Image), StoreError> {
    for candidate in store_candidates(conf, name) {
        match store.resolve(&candidate) {
            Ok(img) => return Ok((candidate, img)),
            Err(StoreError::ImageNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::ImageNotFound {
        input: name.to_owned(),
    })
}

/// Why no candidate of [`pull_first`] pulled: the last one tried, and its failure.
#[derive(Debug, thiserror::Error)]
#[error("pull {reference}")]
pub struct PullFailed {
    pub reference: String,
    #[source]
    pub source: RegistryError,
}

/// Pull into `store` the first of `candidates` that pulls, as podman does; `skipped`
/// hears each failure but the last before the next is tried. Returns the candidate
/// that pulled. Callers that may race a gc hold a [`Store::pin`].
pub fn pull_first(
    store: &Store,
    candidates: &[String],
    connect: &ConnectOptions,
    opts: &PullOptions,
    events: &dyn crate::Events,
    skipped: &mut dyn FnMut(&str, &RegistryError),
) -> Result<(String, Pulled), Box<PullFailed>> {
    let pull = |name: &str| -> Result<Pulled, RegistryError> {
        let reference = Reference::parse(name)?;
        let client = crate::connect_pull(&reference, connect)?;
        crate::pull::pull(&client, store, &reference, opts, events)
    };
    let mut last = None;
    for (i, name) in candidates.iter().enumerate() {
        match pull(name) {
            Ok(p) => return Ok((name.clone(), p)),
            Err(e) if i + 1 < candidates.len() => skipped(name, &e),
            Err(e) => last = Some((name.clone(), e)),
        }
    }
    let (reference, source) = last.unwrap_or_else(|| {
        let empty = imago_oci::ReferenceError::Empty(String::new());
        (String::new(), RegistryError::Reference(empty))
    });
    Err(Box::new(PullFailed { reference, source }))
}

#[cfg(test)]
#[path = "shortnames_tests.rs"]
mod tests;
