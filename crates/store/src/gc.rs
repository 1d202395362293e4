//! Garbage collection: blobs no image in index.json reaches, unpacked layers no image
//! uses, and temp debris of processes that are gone. Runs under the exclusive gc lock,
//! so writers holding a [`crate::Pin`] finish first; a pending gc holds the gate that
//! new pins pass through, so it is not starved by overlapping writers, and it gives up
//! with [`StoreError::StoreBusy`] after [`GcOptions::wait`] (lock.rs says why a gate).
//!
//! A damaged store is refused ([`StoreError::StoreDamaged`]) unless
//! [`GcOptions::force`]: when a manifest or config that index.json reaches is missing,
//! does not hash to its name or does not parse, gc cannot see what it references and
//! would delete it. Manifests and configs are small, so gc verifies them every time;
//! layer blobs are not read (their damage hides no references; `iimage fsck` finds it).
//!
//! Temp entries carry their writer's pid and host tag: this host's are removed when the
//! pid is gone, another host's (a store shared between nodes) after a day. Partial
//! downloads (`tmp/partial-sha256-<hex>`, partial.rs) are kept while a download holds them
//! and for a day after their last write, so a rerun can resume them; then removed.
//!
//! Rootless with [`crate::OwnerMode::Real`], unpacked layers hold files owned by
//! subordinate ids: the caller runs gc inside the user namespace to remove them.
//! Never: removes anything outside the store root; touches index.json.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use imago_oci::layer::remove_tree;
use imago_oci::Digest;

use crate::atomic;
use crate::error::{IoCtx, Result, StoreError};
use crate::index::IndexFile;
use crate::lock;
use crate::partial::PartialState;
use crate::store::Store;

/// How long gc waits, by default, for the writes running when it starts.
pub const DEFAULT_GC_WAIT: Duration = Duration::from_secs(60);

/// What gc should remove.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Also remove unpacked layers that images still use (they are unpacked again when
    /// needed), e.g. to switch the store's ownership mode.
    pub all_layers: bool,
    /// Report what would go, remove nothing (also on a damaged store).
    pub dry_run: bool,
    /// Drop every build cache entry (else only those whose blobs are gone).
    pub build_cache: bool,
    /// Collect a damaged store too: what only damaged manifests or configs reference
    /// is deleted.
    pub force: bool,
    /// How long to wait for running writers (and another gc) before giving up with
    /// [`StoreError::StoreBusy`]; writers that start meanwhile wait for this gc.
    pub wait: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            all_layers: false,
            dry_run: false,
            build_cache: false,
            force: false,
            wait: DEFAULT_GC_WAIT,
        }
    }
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
    /// Damage found (only with `force` or `dry_run`; otherwise gc refuses).
    #[serde(default)]
    pub damaged: Vec<String>,
}

/// What index.json reaches, and what stopped the walk.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    pub blobs: HashSet<Digest>,
    pub chains: HashSet<Digest>,
    /// One line per manifest or config that is missing, damaged or not JSON.
    pub damage: Vec<String>,
}

/// Temp entries made on another host are removed only after this long.
const FOREIGN_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn what_is_wrong(e: &StoreError) -> String {
    match e {
        StoreError::BlobMissing { .. } => "missing".into(),
        StoreError::BlobDamaged { actual, .. } => {
            format!("damaged (its content hashes to {actual})")
        }
        StoreError::Json { source, .. } => format!("not valid JSON ({source})"),
        other => other.to_string(),
    }
}

fn digests_under(v: &serde_json::Value, key: &str) -> Vec<Digest> {
    v.get(key)
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("digest")?.as_str()?.parse().ok())
        .collect()
}

impl Store {
    /// A small JSON blob (manifest, index, config), verified.
    fn read_json_blob(&self, d: &Digest, what: &'static str) -> Result<serde_json::Value> {
        let bytes = self.read_blob(d)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Json {
            what,
            digest: d.to_string(),
            source: e,
        })
    }

    /// Digests reachable from index.json: manifests (and image index children present),
    /// configs, layers; chain ids of the configs' layers; and the damage that hid
    /// references (see the module doc).
    pub(crate) fn reachable(&self, idx: &IndexFile) -> Reach {
        let mut r = Reach::default();
        // (digest, must be present): an image index may list platforms never copied.
        let mut todo: Vec<(Digest, bool)> = idx
            .manifests
            .iter()
            .map(|e| (e.digest.clone(), true))
            .collect();
        while let Some((d, required)) = todo.pop() {
            if !r.blobs.insert(d.clone()) {
                continue;
            }
            let v = match self.read_json_blob(&d, "manifest") {
                Ok(v) => v,
                Err(StoreError::BlobMissing { .. }) if !required => continue,
                Err(e) => {
                    r.damage
                        .push(format!("manifest {d}: {}", what_is_wrong(&e)));
                    continue;
                }
            };
            todo.extend(
                digests_under(&v, "manifests")
                    .into_iter()
                    .map(|c| (c, false)),
            );
            r.blobs.extend(digests_under(&v, "layers"));
            let Some(c) = v
                .pointer("/config/digest")
                .and_then(|c| c.as_str())
                .and_then(|c| c.parse::<Digest>().ok())
            else {
                continue;
            };
            r.blobs.insert(c.clone());
            match self.read_json_blob(&c, "config") {
                Ok(cv) => {
                    let diffs: Vec<Digest> = cv
                        .pointer("/rootfs/diff_ids")
                        .and_then(|a| a.as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(|d| d.as_str()?.parse().ok())
                        .collect();
                    r.chains.extend(crate::images::chain_ids(&diffs));
                }
                Err(e) => r
                    .damage
                    .push(format!("config {c} of manifest {d}: {}", what_is_wrong(&e))),
            }
        }
        r
    }

    /// Collect garbage; see the module doc.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        let deadline = Instant::now() + opts.wait;
        let busy = || StoreError::StoreBusy { waited: opts.wait };
        // Gate first: from here on new pins queue behind us (lock.rs).
        let _gate =
            lock::exclusive_until(&self.layout.gc_gate_lock(), deadline)?.ok_or_else(busy)?;
        let _g = lock::exclusive_until(&self.layout.gc_lock(), deadline)?.ok_or_else(busy)?;
        let idx = self.read_index()?;
        let reach = self.reachable(&idx);
        if !reach.damage.is_empty() && !opts.force && !opts.dry_run {
            return Err(StoreError::StoreDamaged {
                problems: reach.damage,
            });
        }
        let Reach {
            blobs: mut keep,
            chains,
            damage,
        } = reach;
        let mut report = GcReport {
            damaged: damage,
            ..GcReport::default()
        };
        // Temp debris first (a dead writer's half-unpacked layer may be big).
        let tmp = self.layout.tmp();
        let me = std::process::id();
        for e in std::fs::read_dir(&tmp).ctx("read directory", &tmp)? {
            let e = e.ctx("read directory", &tmp)?;
            let name = e.file_name().to_string_lossy().into_owned();
            // A partial download is kept for a rerun to resume, until it goes stale.
            match self.partial_state(&name, &e.path()) {
                PartialState::NotPartial => {}
                PartialState::Keep => continue,
                PartialState::Stale(held) => {
                    report.temp_removed += 1;
                    if !opts.dry_run {
                        let p = e.path();
                        std::fs::remove_file(&p).ctx("remove", &p)?;
                    }
                    drop(held);
                    continue;
                }
            }
            let live = match atomic::temp_owner(&name) {
                Some((pid, host)) if host == atomic::host_tag() => {
                    pid == me || atomic::pid_alive(pid)
                }
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
                let p = e.path();
                remove_tree(&p).ctx("remove", &p)?;
            }
        }
        // Keyed pull and unpack locks nobody holds: empty files, one per image or layer
        // ever pulled or unpacked (jobs.rs).
        if !opts.dry_run {
            self.sweep_job_locks()?;
        }
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
                remove_tree(&to).ctx("remove", &to)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::OCI_LAYER_GZIP;
    use imago_oci::BlobRef;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        (d, s)
    }

    /// An image with one (fake) layer: (manifest, config, layer) digests.
    fn image(s: &Store, salt: &str) -> (Digest, Digest, Digest) {
        let layer = s
            .put_blob_bytes(format!("layer {salt}").as_bytes())
            .unwrap();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(salt.as_bytes())]},
        });
        let bytes = serde_json::to_vec(&config).unwrap();
        let m = s
            .put_image_raw(
                &bytes,
                &[BlobRef {
                    media_type: OCI_LAYER_GZIP.into(),
                    digest: layer.digest.clone(),
                    size: layer.size,
                }],
            )
            .unwrap();
        (m, Digest::of(&bytes), layer.digest)
    }

    fn damage(s: &Store, d: &Digest) {
        let p = s.blob_path(d);
        let mut b = std::fs::read(&p).unwrap();
        b[0] ^= 0xff;
        std::fs::write(&p, b).unwrap();
    }

    #[test]
    fn a_damaged_manifest_or_config_stops_gc_unless_forced() {
        let (_d, s) = store();
        let (m, config, layer) = image(&s, "a");
        s.tag("a", &m).unwrap();
        let garbage = s.put_blob_bytes(b"garbage").unwrap().digest;
        for victim in [&config, &m] {
            let before = std::fs::read(s.blob_path(victim)).unwrap();
            damage(&s, victim);
            let e = s.gc(&GcOptions::default()).unwrap_err();
            assert!(
                matches!(&e, StoreError::StoreDamaged { problems } if problems[0].contains(&victim.to_string())),
                "{e:?}"
            );
            assert!(e.to_string().contains("iimage fsck"), "{e}");
            assert!(s.has_blob(&garbage) && s.has_blob(&layer) && s.has_blob(&config));
            // A dry run reports the damage and what it would take.
            let r = s
                .gc(&GcOptions {
                    dry_run: true,
                    ..GcOptions::default()
                })
                .unwrap();
            assert_eq!(r.damaged.len(), 1, "{r:?}");
            std::fs::write(s.blob_path(victim), before).unwrap();
        }
        // A missing config is damage too.
        std::fs::remove_file(s.blob_path(&config)).unwrap();
        assert!(matches!(
            s.gc(&GcOptions::default()),
            Err(StoreError::StoreDamaged { .. })
        ));
        // Forced: what the readable entries do not reach goes (the layer is still
        // listed by the readable manifest).
        let r = s
            .gc(&GcOptions {
                force: true,
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(r.damaged.len(), 1);
        assert!(!s.has_blob(&garbage) && s.has_blob(&layer) && s.has_blob(&m));
    }

    #[test]
    fn blobs_without_index_json_are_a_damaged_store_not_an_empty_one() {
        let (d, s) = store();
        let (m, _, _) = image(&s, "b");
        std::fs::remove_file(s.layout().index()).unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        assert!(!s.layout().index().exists());
        let e = s.gc(&GcOptions::default()).unwrap_err();
        assert!(matches!(e, StoreError::IndexDamaged { .. }), "{e:?}");
        assert!(s.has_blob(&m));
        assert!(matches!(
            s.resolve("b"),
            Err(StoreError::IndexDamaged { .. })
        ));
        // Truncated: damaged as well, and never "not found".
        std::fs::write(s.layout().index(), br#"{"schemaVersion":2,"manif"#).unwrap();
        let e = s.resolve("b").unwrap_err();
        assert!(matches!(e, StoreError::IndexDamaged { .. }), "{e:?}");
        assert!(e.to_string().contains("index.json") && e.to_string().contains("iimage fsck"));
        let f = s.fsck().unwrap();
        assert!(f.problems.iter().any(|p| p.object == "index.json"), "{f:?}");
    }

    #[test]
    fn a_damaged_named_image_resolves_to_damage_not_to_not_found() {
        let (_d, s) = store();
        let (m, _, _) = image(&s, "c");
        s.tag("c", &m).unwrap();
        damage(&s, &m);
        let e = s.resolve("c").unwrap_err();
        assert!(
            matches!(&e, StoreError::ImageDamaged { source, .. } if matches!(**source, StoreError::BlobDamaged { .. })),
            "{e:?}"
        );
        assert!(matches!(
            s.resolve("other"),
            Err(StoreError::ImageNotFound { .. })
        ));
        // It can be removed all the same; then gc runs and takes the damaged blob.
        assert!(matches!(
            s.gc(&GcOptions::default()),
            Err(StoreError::StoreDamaged { .. })
        ));
        let r = s.remove_image("c", false).unwrap();
        assert_eq!(
            (r.untagged, r.deleted),
            (vec!["c".to_owned()], vec![m.clone()])
        );
        assert!(s.read_index().unwrap().manifests.is_empty());
        s.gc(&GcOptions::default()).unwrap();
        assert!(!s.has_blob(&m));
        assert!(s.fsck().unwrap().is_clean());
    }

    #[test]
    fn a_pending_gc_is_not_starved_by_overlapping_pins() {
        let (_d, s) = store();
        let stop = Arc::new(AtomicBool::new(false));
        // Two writers whose pins overlap: at every moment one of them holds a pin.
        let first = s.pin().unwrap();
        let writers: Vec<_> = (0..2)
            .map(|i| {
                let (s, stop) = (s.clone(), stop.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(10 * i));
                    while !stop.load(Ordering::Relaxed) {
                        let _p = s.pin().unwrap();
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        // Generous: the gc only has to wait for the two pins held when it arrives.
        let r = s.gc(&GcOptions {
            wait: Duration::from_secs(20),
            ..GcOptions::default()
        });
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        r.unwrap();
    }

    #[test]
    fn gc_gives_up_on_a_pin_held_too_long_and_lets_writers_go() {
        let (_d, s) = store();
        let held = s.pin().unwrap();
        let e = s
            .gc(&GcOptions {
                wait: Duration::from_millis(100),
                ..GcOptions::default()
            })
            .unwrap_err();
        assert!(matches!(e, StoreError::StoreBusy { .. }), "{e:?}");
        // The gate is open again: another writer gets its pin at once.
        let _second = s.pin().unwrap();
        drop(held);
    }
}
