//! Repair (`iimage fsck --repair`, podman's `system check --repair`): what fsck finds,
//! taken out so the store works again — blobs whose content does not match their digest
//! are deleted, index entries whose image is incomplete are dropped (their names are
//! reported: pull or load those images again), broken unpacked layers are removed (they
//! are unpacked again when needed). All of it under gc's exclusive locks, so no writer
//! runs meanwhile; then a gc collects what only the dropped entries referenced, and a
//! last fsck says what is left.
//!
//! Never: "fixes" content (damage is deleted, never guessed), rewrites a damaged
//! index.json (that is reported: names cannot be recovered from blobs), removes an
//! unpacked layer a running container holds, or repairs a shared read-only store.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use imago_oci::layer::remove_tree;
use imago_oci::Digest;

use crate::error::{IoCtx, Result, StoreError};
use crate::fsck::FsckReport;
use crate::gc::{GcOptions, GcReport};
use crate::lock;
use crate::store::Store;

/// What repair removed, and what fsck still finds afterwards.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RepairReport {
    /// Damaged blobs deleted.
    pub blobs_deleted: Vec<Digest>,
    /// Index entries dropped, as fsck labels them (`image NAME (sha256:…)`), with why.
    pub images_dropped: Vec<String>,
    /// Broken unpacked layers removed.
    pub layers_removed: Vec<Digest>,
    /// Unpacked layers left broken because a running container holds them.
    pub layers_in_use: usize,
    /// The gc that followed.
    pub gc: GcReport,
    /// fsck after it all: clean unless something could not be repaired.
    pub after: FsckReport,
}

impl Store {
    /// Repair the store; see the module doc. `wait` bounds the wait for running writers
    /// (and for the gc after), as [`GcOptions::wait`].
    pub fn repair(&self, wait: Duration) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let verified;
        {
            let deadline = Instant::now() + wait;
            let busy = || StoreError::StoreBusy { waited: wait };
            let _gate =
                lock::exclusive_until(&self.layout.gc_gate_lock(), deadline)?.ok_or_else(busy)?;
            let _g = lock::exclusive_until(&self.layout.gc_lock(), deadline)?.ok_or_else(busy)?;
            verified = self.delete_damaged_blobs(&mut report)?;
            self.drop_broken_images(&mut report)?;
            self.remove_broken_layers(&mut report)?;
        }
        report.gc = self.gc(&GcOptions {
            wait,
            ..GcOptions::default()
        })?;
        report.after = self.fsck_trusting(&verified)?;
        Ok(report)
    }

    /// Hash every blob, delete the damaged ones; the digests of the sound ones.
    fn delete_damaged_blobs(&self, report: &mut RepairReport) -> Result<HashSet<Digest>> {
        let mut sound = HashSet::new();
        let blobs = self.layout.blobs();
        for e in std::fs::read_dir(&blobs).ctx("read directory", &blobs)? {
            let e = e.ctx("read directory", &blobs)?;
            let Some(d) = (e.file_name().to_str()).and_then(|n| Digest::from_hex(n).ok()) else {
                continue;
            };
            if self.blob_problem(&d).is_some() {
                let p = e.path();
                std::fs::remove_file(&p).ctx("remove", &p)?;
                report.blobs_deleted.push(d);
            } else {
                sound.insert(d);
            }
        }
        Ok(sound)
    }

    /// Drop every index entry whose blob, manifest, config or layers are missing or
    /// damaged (after [`Self::delete_damaged_blobs`], damaged means missing).
    fn drop_broken_images(&self, report: &mut RepairReport) -> Result<()> {
        let dropped = self.update_index(|idx| {
            let mut dropped = Vec::new();
            idx.manifests.retain(|e| {
                let label = match e.ref_name() {
                    Some(n) => format!("image {n} ({})", e.digest),
                    None => format!("image {}", e.digest),
                };
                let why = match self.entry_problem(e) {
                    Some(p) => vec![p],
                    None => self.image_problems(e),
                };
                if why.is_empty() {
                    return true;
                }
                dropped.push(format!("{label}: {}", why.join("; ")));
                false
            });
            Ok((!dropped.is_empty(), dropped))
        })?;
        report.images_dropped = dropped;
        Ok(())
    }

    fn remove_broken_layers(&self, report: &mut RepairReport) -> Result<()> {
        let mode = self.owner_mode().unwrap_or(None);
        for chain in self.unpacked_layers()? {
            if self.layer_problems(&chain, mode).is_empty() {
                continue;
            }
            let from = self.layout.layer(&chain);
            // A running container holds its layers (Store::hold_layers): keep those.
            let Some(_busy_check) = lock::try_exclusive(&from)? else {
                report.layers_in_use += 1;
                continue;
            };
            // Moved away first, so a half-removed layer never looks unpacked.
            let to = self.temp_path("repair-layer");
            std::fs::rename(&from, &to).ctx("move away", &from)?;
            remove_tree(&to).ctx("remove", &to)?;
            report.layers_removed.push(chain);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::OCI_LAYER_GZIP;
    use imago_oci::BlobRef;

    fn layer(s: &Store, content: &[u8]) -> (BlobRef, Digest) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, "f", content).unwrap();
        let (l, diff) = s.put_layer_tar(&b.into_inner().unwrap()[..]).unwrap();
        assert_eq!(l.media_type, OCI_LAYER_GZIP);
        (l, diff)
    }

    fn image(s: &Store, name: &str, content: &[u8]) -> (Digest, BlobRef) {
        let (l, diff) = layer(s, content);
        let cfg = serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[diff]}});
        let m = s
            .put_image_raw(&serde_json::to_vec(&cfg).unwrap(), std::slice::from_ref(&l))
            .unwrap();
        s.tag(name, &m).unwrap();
        (m, l)
    }

    #[test]
    fn a_damaged_layer_drops_its_image_and_keeps_the_others() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let (_, bad_layer) = image(&s, "broken:1", b"one");
        let (good, _) = image(&s, "fine:1", b"two");
        // Bytes changed under the store (a disk or NFS fault).
        std::fs::write(s.blob_path(&bad_layer.digest), b"garbage").unwrap();
        assert!(!s.fsck().unwrap().is_clean());
        let r = s.repair(Duration::from_secs(5)).unwrap();
        assert_eq!(r.blobs_deleted, vec![bad_layer.digest.clone()]);
        assert_eq!(r.images_dropped.len(), 1, "{:?}", r.images_dropped);
        assert!(
            r.images_dropped[0].contains("broken:1"),
            "{:?}",
            r.images_dropped
        );
        // What only the dropped image used is collected; the other image is whole.
        assert!(!r.gc.blobs_removed.is_empty());
        assert!(r.after.is_clean(), "{:?}", r.after.problems);
        assert_eq!(s.resolve("fine:1").unwrap().manifest_digest, good);
        assert!(s.resolve("broken:1").is_err());
    }

    #[test]
    fn a_clean_store_is_left_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        image(&s, "fine:1", b"two");
        let before = std::fs::read(s.layout().index()).unwrap();
        let r = s.repair(Duration::from_secs(5)).unwrap();
        assert!(r.blobs_deleted.is_empty() && r.images_dropped.is_empty());
        assert!(r.after.is_clean());
        assert_eq!(std::fs::read(s.layout().index()).unwrap(), before);
    }

    #[test]
    fn a_damaged_index_is_reported_not_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        image(&s, "fine:1", b"two");
        std::fs::write(s.layout().index(), b"{not json").unwrap();
        let e = s.repair(Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, StoreError::IndexDamaged { .. }), "{e:?}");
        assert_eq!(std::fs::read(s.layout().index()).unwrap(), b"{not json");
    }
}
