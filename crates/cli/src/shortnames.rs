//! Short image names at the programs' edge: imago-registry's `shortnames` (the one
//! resolution every program shares) with the terminal question of `short-name-mode`
//! ([`pull_candidates`]) and registries.conf read from the environment
//! ([`find_stored`]).
//!
//! Never: resolves a name itself, pulls, or opens a store.

use std::io::{IsTerminal, Write};

use imago_registry::shortnames::{self as names, Ask};
use imago_registry::{RegistriesConf, RegistryError};
use imago_store::{Image, Store};

pub use imago_registry::shortnames::{store_candidates, ShortNameError};

/// The references to try, in order, to pull `name` (`imago_registry::shortnames::
/// pull_candidates`), asking which one on a terminal when registries.conf's
/// `short-name-mode` says to.
pub fn pull_candidates(conf: &RegistriesConf, name: &str) -> Result<Vec<String>, ShortNameError> {
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut question = |list: &[String]| {
        let mut err = std::io::stderr();
        for (i, c) in list.iter().enumerate() {
            // A closed stderr loses the list; the question still reads the answer.
            let _ = writeln!(err, "  {}) {c}", i + 1);
        }
        crate::prompt::ask(&format!("Which image is `{name}`? [1-{}]: ", list.len()))
    };
    let ask: Option<Ask<'_>> = match terminal {
        true => Some(&mut question),
        false => None,
    };
    names::pull_candidates(conf, name, ask)
}

/// The image `name` means in `store`, and the name it was found by: the first of its
/// store names (registries.conf of the environment: aliases, search list, then the
/// name as typed) that the store has. `iimage`, `itag` and `ipush` find images so.
pub fn find_stored(store: &Store, name: &str) -> Result<(String, Image), RegistryError> {
    let conf = RegistriesConf::load()?;
    Ok(names::find_stored(store, &conf, name)?)
}
