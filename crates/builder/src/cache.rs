//! Cache keys of build steps: a step is a hit when its parent state, its
//! instruction after expansion, the build args it uses and — for COPY/ADD — the content,
//! mode and ownership of its sources (never mtimes) match. Also the cache entry: the
//! state after the step (config + layer descriptors), serialised as JSON; an entry that
//! does not parse (an older format) is a cache miss, never an error.
//!
//! Never: reads the store (`engine::step` does the lookups) or the file system.

use imago_oci::{BlobRef, Digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::ImageConfig;

/// Bumped when the meaning of a key or the format of an entry changes, so old entries
/// are never looked up (v2: layers are `imago_oci::BlobRef` + `diffId`).
pub const CACHE_VERSION: &str = "imago-build-cache-v2";

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

/// One layer of a build state: its blob as the manifest names it, and the digest of
/// its uncompressed tar (the config's `rootfs.diff_ids` entry). Serialised flat:
/// `{"mediaType", "digest", "size", "diffId"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    #[serde(flatten)]
    pub blob: BlobRef,
    #[serde(rename = "diffId")]
    pub diff_id: Digest,
}

/// A cache entry: the whole state after a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
}

impl CacheEntry {
    /// An entry as the store keeps it; `None` when the bytes do not parse (an entry of
    /// an older format, a torn file): the step then runs again, like any cache miss.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The blob digests this entry keeps alive (for the store's gc).
    pub fn refs(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.blob.digest.clone()).collect()
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

    fn entry() -> CacheEntry {
        let layer = |s: &str| LayerRef {
            blob: BlobRef::new(
                imago_oci::media_type::OCI_LAYER_GZIP,
                Digest::of(s.as_bytes()),
                7,
            ),
            diff_id: Digest::of(format!("{s} tar").as_bytes()),
        };
        CacheEntry {
            config: ImageConfig::scratch(),
            layers: vec![layer("a"), layer("b")],
        }
    }

    #[test]
    fn entry_round_trips_with_flat_layers() {
        let e = entry();
        let bytes = serde_json::to_vec(&e).unwrap();
        assert_eq!(CacheEntry::parse(&bytes), Some(e.clone()));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let l = &v["layers"][0];
        assert_eq!(l["mediaType"], imago_oci::media_type::OCI_LAYER_GZIP);
        assert_eq!(l["digest"], Digest::of(b"a").to_string());
        assert_eq!(l["size"], 7);
        assert_eq!(l["diffId"], Digest::of(b"a tar").to_string());
        assert_eq!(e.refs(), vec![Digest::of(b"a"), Digest::of(b"b")]);
    }

    #[test]
    fn entries_that_do_not_parse_are_misses() {
        let d = Digest::of(b"a");
        // The v1 format: snake_case fields, digests as plain strings.
        let v1 = format!(
            r#"{{"config":{{}},"layers":[{{"digest":"{d}","diff_id":"{d}","size":1,"media_type":"m"}}]}}"#
        );
        assert_eq!(CacheEntry::parse(v1.as_bytes()), None);
        assert_eq!(
            CacheEntry::parse(b"{\"config\":{},\"layers\":[{\"mediaType\":\"m\"}]"),
            None
        );
        assert_eq!(CacheEntry::parse(b""), None);
        let bad_digest = r#"{"config":{},"layers":[{"mediaType":"m","digest":"md5:x","size":1,"diffId":"md5:y"}]}"#;
        assert_eq!(CacheEntry::parse(bad_digest.as_bytes()), None);
    }
}
