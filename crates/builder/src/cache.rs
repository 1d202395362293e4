//! Cache keys of build steps: a step is a hit when its parent state, its
//! instruction after expansion, the build args it uses and — for COPY/ADD — the content,
//! mode and ownership of its sources (never mtimes) match. Also the cache entry: the
//! state after the step (config + layer descriptors), serialised as JSON.
//!
//! Never: reads the store (`engine::step` does the lookups) or the file system.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::ImageConfig;

/// Bumped when the meaning of a key changes, so old entries are never reused.
pub const CACHE_VERSION: &str = "imago-build-cache-v1";

/// Everything a step's key is made of.
#[derive(Debug, Clone, Default)]
pub struct KeyParts<'a> {
    /// The key of the state before the step (or the base image id / `scratch`).
    pub parent: &'a str,
    /// The instruction, expanded (e.g. `RUN /bin/sh -c make`, `COPY --chown=1 a /b`).
    pub instruction: &'a str,
    /// The build args the step sees (RUN: every declared ARG; others: none), sorted.
    pub args: Vec<(String, String)>,
    /// The content digest of COPY/ADD sources (`context::tree_digest`), else empty.
    pub sources: &'a str,
    /// Anything else that changes the result (the platform, RUN's network mode...).
    pub extra: &'a str,
}

/// The hex sha256 key of a step.
pub fn step_key(parts: &KeyParts<'_>) -> String {
    let mut h = Sha256::new();
    let mut field = |name: &str, v: &str| {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    };
    field("v", CACHE_VERSION);
    field("parent", parts.parent);
    field("instruction", parts.instruction);
    let mut args = parts.args.clone();
    args.sort();
    for (k, v) in &args {
        field("arg", &format!("{k}={v}"));
    }
    field("sources", parts.sources);
    field("extra", parts.extra);
    hex::encode(h.finalize())
}

/// One layer of a build state, as stored in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// Digest of the (compressed) blob, `sha256:…`.
    pub digest: String,
    /// Digest of the uncompressed tar, `sha256:…`.
    pub diff_id: String,
    /// Blob size in bytes.
    pub size: u64,
    /// The blob's media type.
    pub media_type: String,
}

/// A cache entry: the whole state after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
}

impl CacheEntry {
    /// The blob digests this entry keeps alive (for the store's gc).
    pub fn refs(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.digest.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parent: &str, instr: &str, args: &[(&str, &str)], src: &str) -> String {
        step_key(&KeyParts {
            parent,
            instruction: instr,
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sources: src,
            extra: "",
        })
    }

    #[test]
    fn key_changes_with_each_part() {
        let k = key("p", "RUN x", &[("A", "1")], "");
        assert_eq!(k, key("p", "RUN x", &[("A", "1")], ""));
        assert_ne!(k, key("q", "RUN x", &[("A", "1")], ""));
        assert_ne!(k, key("p", "RUN y", &[("A", "1")], ""));
        assert_ne!(k, key("p", "RUN x", &[("A", "2")], ""));
        assert_ne!(k, key("p", "RUN x", &[("A", "1")], "s"));
        assert_eq!(k.len(), 64);
    }

    #[test]
    fn args_order_does_not_matter_but_boundaries_do() {
        assert_eq!(
            key("p", "i", &[("A", "1"), ("B", "2")], ""),
            key("p", "i", &[("B", "2"), ("A", "1")], "")
        );
        assert_ne!(key("pi", "", &[], ""), key("p", "i", &[], ""));
    }
}
