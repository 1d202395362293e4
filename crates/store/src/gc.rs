//! Garbage collection: blobs no image in index.json reaches, unpacked layers no image
//! uses, and temp debris of processes that are gone. Runs under the exclusive gc lock,
//! so writers holding a [`crate::Pin`] finish first.
//!
//! Temp entries carry their writer's pid and host tag: this host's are removed when the
//! pid is gone, another host's (a store shared between nodes) after a day.
//!
//! Rootless with [`crate::OwnerMode::Real`], unpacked layers hold files owned by
//! subordinate ids: the caller runs gc inside the user namespace to remove them.
//! Never: removes anything outside the store root; touches index.json.

use std::collections::HashSet;
use std::path::Path;

use imago_oci::Digest;

use crate::atomic;
use crate::error::{IoCtx, Result};
use crate::fsutil;
use crate::index::IndexFile;
use crate::lock;
use crate::store::Store;

/// What gc should remove.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Also remove unpacked layers that images still use (they are unpacked again when
    /// needed), e.g. to switch the store's ownership mode.
    pub all_layers: bool,
    /// Report what would go, remove nothing.
    pub dry_run: bool,
    /// Drop every build cache entry (else only those whose blobs are gone).
    pub build_cache: bool,
}

/// What gc removed (or would remove).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub bytes_freed: u64,
    pub layers_removed: Vec<Digest>,
    pub temp_removed: usize,
    #[serde(default)]
    pub cache_removed: usize,
    /// Unreferenced unpacked layers kept because a container holds them.
    #[serde(default)]
    pub layers_in_use: usize,
}

/// Temp entries made on another host are removed only after this long.
const FOREIGN_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Store {
    /// Digests reachable from index.json: manifests (and index children present),
    /// configs, layers. Unreadable manifests keep what is reachable so far.
    pub(crate) fn reachable(&self, idx: &IndexFile) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let mut blobs = HashSet::new();
        let mut chains = HashSet::new();
        let mut todo: Vec<Digest> = idx.manifests.iter().map(|e| e.digest.clone()).collect();
        while let Some(d) = todo.pop() {
            if !blobs.insert(d.clone()) {
                continue;
            }
            let Ok(bytes) = std::fs::read(self.layout.blob(&d)) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let digests = |key: &str| -> Vec<Digest> {
                v.get(key)
                    .and_then(|a| a.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("digest")?.as_str()?.parse().ok())
                    .collect()
            };
            todo.extend(digests("manifests"));
            blobs.extend(digests("layers"));
            if let Some(c) = v
                .pointer("/config/digest")
                .and_then(|c| c.as_str())
                .and_then(|c| c.parse::<Digest>().ok())
            {
                blobs.insert(c.clone());
                if let Ok(cb) = std::fs::read(self.layout.blob(&c)) {
                    if let Ok(cv) = serde_json::from_slice::<serde_json::Value>(&cb) {
                        let diffs: Vec<Digest> = cv
                            .pointer("/rootfs/diff_ids")
                            .and_then(|a| a.as_array())
                            .into_iter()
                            .flatten()
                            .filter_map(|d| d.as_str()?.parse().ok())
                            .collect();
                        chains.extend(crate::images::chain_ids(&diffs));
                    }
                }
            }
        }
        Ok((blobs, chains))
    }

    /// Collect garbage; see the module doc.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        let _g = lock::exclusive(&self.layout.gc_lock())?;
        let mut report = GcReport::default();
        // Temp debris first (a dead writer's half-unpacked layer may be big).
        let tmp = self.layout.tmp();
        let me = std::process::id();
        for e in std::fs::read_dir(&tmp).ctx("read directory", &tmp)? {
            let e = e.ctx("read directory", &tmp)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let live = match atomic::temp_owner(&name) {
                Some((pid, host)) if host == atomic::host_tag() => pid == me || pid_alive(pid),
                // Another node of a shared store: only when it is a day old.
                Some(_) => e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age < FOREIGN_TEMP_AGE),
                None => false,
            };
            if live {
                continue;
            }
            report.temp_removed += 1;
            if !opts.dry_run {
                fsutil::remove_tree(&e.path())?;
            }
        }
        let idx = self.read_index()?;
        let (mut keep, chains) = self.reachable(&idx)?;
        for (key, refs) in self.cache_entries()? {
            if opts.build_cache || !refs.iter().all(|d| self.has_blob(d)) {
                report.cache_removed += 1;
                if !opts.dry_run {
                    self.cache_remove(&key)?;
                }
                if !opts.dry_run {
                    continue;
                }
            }
            keep.extend(refs);
        }
        let blobs = self.layout.blobs();
        for e in std::fs::read_dir(&blobs).ctx("read directory", &blobs)? {
            let e = e.ctx("read directory", &blobs)?;
            let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            if keep.contains(&d) {
                continue;
            }
            report.bytes_freed += e.metadata().map(|m| m.len()).unwrap_or(0);
            if !opts.dry_run {
                let p = e.path();
                std::fs::remove_file(&p).ctx("remove", &p)?;
            }
            report.blobs_removed.push(d);
        }
        for chain in self.unpacked_layers()? {
            if !opts.all_layers && chains.contains(&chain) {
                continue;
            }
            let from = self.layout.layer(&chain);
            // A running container holds its layers (Store::hold_layers): keep those.
            let Some(_busy_check) = lock::try_exclusive(&from)? else {
                report.layers_in_use += 1;
                continue;
            };
            if !opts.dry_run {
                // Rename first so a half-removed layer never looks unpacked.
                let to = self.temp_path("gc-layer");
                std::fs::rename(&from, &to).ctx("move away", &from)?;
                fsutil::remove_tree(&to)?;
            }
            report.layers_removed.push(chain);
        }
        if opts.all_layers && !opts.dry_run && self.unpacked_layers()?.is_empty() {
            let p = self.layout.layers_mode();
            if p.exists() {
                std::fs::remove_file(&p).ctx("remove", &p)?;
            }
        }
        report.blobs_removed.sort();
        Ok(report)
    }
}
