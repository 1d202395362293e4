//! Short image names at the programs' edge: which references a name the user typed
//! may mean, for a pull ([`pull_candidates`], registries.conf's `short-name-mode`
//! applied, with a question on a terminal) and for a look-up in the store
//! ([`store_candidates`]).
//!
//! Never: reads registries.conf itself (imago-registry's `RegistriesConf` does), pulls
//! or opens a store.

use std::io::{IsTerminal, Write};

use imago_registry::registries_conf::{ShortNameMode, Source};
use imago_registry::RegistriesConf;

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

/// The references to try, in order, to pull `name`: a qualified name itself; a short
/// name's alias; else its search-list references, filtered by `short-name-mode` (one
/// search registry is no ambiguity; with several, enforcing and permissive ask which
/// on a terminal, enforcing fails without one, permissive and disabled try all); with
/// no search list, Docker Hub's (docker's rule).
pub fn pull_candidates(conf: &RegistriesConf, name: &str) -> Result<Vec<String>, ShortNameError> {
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    choose(conf, name, terminal, |list| {
        let mut err = std::io::stderr();
        for (i, c) in list.iter().enumerate() {
            // A closed stderr loses the list; the question still reads the answer.
            let _ = writeln!(err, "  {}) {c}", i + 1);
        }
        crate::prompt::ask(&format!("Which image is `{name}`? [1-{}]: ", list.len()))
    })
}

/// [`pull_candidates`] with the terminal and the question given (tests drive them).
fn choose(
    conf: &RegistriesConf,
    name: &str,
    terminal: bool,
    ask: impl FnOnce(&[String]) -> std::io::Result<String>,
) -> Result<Vec<String>, ShortNameError> {
    let (candidates, source) = conf.short_name(name);
    if source != Source::Search || candidates.len() < 2 {
        return Ok(candidates);
    }
    match (conf.short_name_mode(), terminal) {
        (ShortNameMode::Disabled, _) | (ShortNameMode::Permissive, false) => Ok(candidates),
        (ShortNameMode::Enforcing, false) => Err(ShortNameError::Ambiguous {
            name: name.to_owned(),
            candidates,
        }),
        (_, true) => {
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

/// The names to look `name` up by in the store (`RegistriesConf::local_names`).
pub fn store_candidates(conf: &RegistriesConf, name: &str) -> Vec<String> {
    conf.local_names(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("imago-shortnames-{}-{n}.conf", std::process::id()));
        std::fs::write(&p, text).unwrap();
        let mut c = RegistriesConf::default();
        let merged = c.merge_file(&p);
        std::fs::remove_file(&p).unwrap();
        merged.unwrap();
        c
    }

    const TWO: &str = "unqualified-search-registries = [\"r1.example\", \"r2.example\"]\n";

    fn never(_: &[String]) -> std::io::Result<String> {
        panic!("asked")
    }

    #[test]
    fn modes_without_a_terminal() {
        let enforcing = conf(&format!("{TWO}short-name-mode = \"enforcing\"\n"));
        let e = choose(&enforcing, "tool", false, never).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("r1.example/tool, r2.example/tool"), "{text}");
        // qualified names and aliases are never ambiguous
        assert_eq!(
            choose(&enforcing, "r9.example/x", false, never).unwrap(),
            ["r9.example/x"]
        );
        let permissive = conf(TWO);
        assert_eq!(choose(&permissive, "tool", false, never).unwrap().len(), 2);
        let one = conf(
            "unqualified-search-registries = [\"r1.example\"]\nshort-name-mode = \"enforcing\"\n",
        );
        assert_eq!(
            choose(&one, "tool", false, never).unwrap(),
            ["r1.example/tool"]
        );
    }

    #[test]
    fn a_terminal_is_asked() {
        let c = conf(&format!("{TWO}short-name-mode = \"enforcing\"\n"));
        let got = choose(&c, "tool:1", true, |l| {
            assert_eq!(l.len(), 2);
            Ok("2\n".into())
        });
        assert_eq!(got.unwrap(), ["r2.example/tool:1"]);
        let bad = choose(&c, "tool", true, |_| Ok("3".into())).unwrap_err();
        assert!(bad.to_string().contains("none of the 2"), "{bad}");
        let disabled = conf(&format!("{TWO}short-name-mode = \"disabled\"\n"));
        assert_eq!(choose(&disabled, "tool", true, never).unwrap().len(), 2);
    }

    #[test]
    fn store_look_up_ends_with_the_name_as_typed() {
        let c = conf(&format!("{TWO}[aliases]\n\"app\" = \"quay.io/t/app\"\n"));
        assert_eq!(
            store_candidates(&c, "tool"),
            ["r1.example/tool", "r2.example/tool", "tool"]
        );
        assert_eq!(store_candidates(&c, "app"), ["quay.io/t/app", "app"]);
        assert_eq!(store_candidates(&RegistriesConf::default(), "abc"), ["abc"]);
    }
}
