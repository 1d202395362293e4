//! Where expansion reads variables: the [`Lookup`] trait and its implementations for
//! maps, `(name, value)` lists, closures and the empty environment.
//! Never: expands anything or decides which variables are in scope (`scope`).

use std::collections::{BTreeMap, HashMap};

/// Where expansion finds variable values. `None` means unset (not the same as empty).
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Lookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A list of `(name, value)` pairs; the last pair with the name wins.
impl Lookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Lookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

impl<T: Lookup + ?Sized> Lookup for &T {
    fn lookup(&self, name: &str) -> Option<String> {
        (**self).lookup(name)
    }
}

/// An environment with nothing set.
pub struct NoVars;

impl Lookup for NoVars {
    fn lookup(&self, _: &str) -> Option<String> {
        None
    }
}

/// A closure as a [`Lookup`].
pub struct FnLookup<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Lookup for FnLookup<F> {
    fn lookup(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}
