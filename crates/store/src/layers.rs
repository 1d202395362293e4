//! Unpacked layers, keyed by chain id and shared by every image that has them:
//! `imago/layers/<chainhex>/diff/` (the tree, stacked later as an overlay lower dir)
//! and `layer.json` (chain id, diff id, blob digest, ownership mode). A layer is
//! unpacked into a temp dir in the store and renamed into place, so a reader sees it
//! whole or not at all. One process unpacks a layer at a time (a keyed lock, jobs.rs):
//! others asking for it wait and use its tree; should two unpack it all the same (a
//! lock file removed under them), both succeed (the loser of the rename drops its copy).
//!
//! Ownership: the whole store uses one [`OwnerMode`], recorded in `imago/layers/MODE`
//! at the first unpack; a run asking for the other mode fails
//! ([`StoreError::OwnerModeMismatch`]) rather than mixing them. Rootless with
//! `Real`, the caller runs [`Store::unpack_layers`] inside the user namespace (the
//! store itself never enters namespaces).
//! Never: mounts anything, enters namespaces, parses tar entries itself (imago_oci's
//! layer module does, with its escape checks).

use std::path::PathBuf;

pub use imago_oci::layer::OwnerMode;
use imago_oci::layer::{remove_tree, UnpackOptions, UnpackStats};
use imago_oci::{Digest, HashingReader};

use crate::atomic;
use crate::error::{IoCtx, Result, StoreError};
use crate::images::Image;
use crate::lock;
use crate::store::Store;

/// Limits applied while unpacking (default: no size cap, device nodes skipped).
#[derive(Debug, Clone, Default)]
pub struct UnpackLimits {
    /// Apparent bytes one layer may write (sparse holes count); `None`: no cap.
    pub max_bytes: Option<u64>,
    /// Create device nodes (only root outside a user namespace can make them). Off, a
    /// layer's device nodes are skipped, with one warning per layer.
    pub allow_devices: bool,
}

/// One warning line for a layer whose device nodes were skipped (the store reports
/// through `tracing`, which the programs print on stderr; once per layer, never per
/// entry).
pub(crate) fn warn_skipped_devices(stats: &UnpackStats, layer: &Digest) {
    let n = stats.devices_skipped;
    if n > 0 {
        let s = if n == 1 { "" } else { "s" };
        tracing::warn!(
            "skipped {n} device node{s} in layer sha256:{}… (a container's /dev is made at \
             run time)",
            layer.short()
        );
    }
}

impl UnpackLimits {
    /// The unpacker's options for these limits and `owner`.
    pub(crate) fn unpack_options(&self, owner: OwnerMode) -> UnpackOptions {
        UnpackOptions {
            owner,
            allow_devices: self.allow_devices,
            // Image layers may carry /dev entries (mmdebstrap, docker export); a run makes
            // its own /dev, so they are left out, reported once per layer.
            skip_devices: true,
            max_bytes: self.max_bytes,
            ..UnpackOptions::default()
        }
    }
}

/// Unpacked layers a running container uses: gc keeps them while this is held (a
/// shared flock on each layer's directory). Hold it in the process that lives as long
/// as the container (e.g. its monitor); a forked child shares it.
#[derive(Debug)]
pub struct LayerHold {
    _guards: Vec<crate::lock::LockGuard>,
}

/// `layer.json` beside an unpacked layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LayerMeta {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// The blob it was unpacked from.
    pub digest: Digest,
    pub mode: OwnerMode,
}

impl Store {
    /// The ownership mode of this store's unpacked layers, if any were unpacked.
    pub fn owner_mode(&self) -> Result<Option<OwnerMode>> {
        let p = self.layout.layers_mode();
        match std::fs::read_to_string(&p) {
            // A malformed record counts as none: the next unpack rewrites it.
            Ok(s) => Ok(s.parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", p, e)),
        }
    }

    fn ensure_mode(&self, mode: OwnerMode) -> Result<()> {
        let _g = lock::exclusive(&self.layout.index_lock())?;
        match self.owner_mode()? {
            Some(m) if m == mode => Ok(()),
            Some(m) => Err(StoreError::OwnerModeMismatch {
                existing: m.as_str(),
                requested: mode.as_str(),
            }),
            None => atomic::write_file(
                &self.layout.tmp(),
                &self.layout.layers_mode(),
                mode.as_str().as_bytes(),
            ),
        }
    }

    /// Record `mode` as the store's ownership mode, or fail when it has the other one.
    pub(crate) fn ensure_mode_pub(&self, mode: OwnerMode) -> Result<()> {
        self.ensure_mode(mode)
    }

    /// The trees of `image`'s layers (bottom to top) when none needs unpacking for
    /// `mode`: each in this store in that mode, or in a shared store. `None`: call
    /// [`Store::unpack_layers`] (inside the user namespace when rootless with `Real`).
    pub fn unpacked_lowers(&self, image: &Image, mode: OwnerMode) -> Result<Option<Vec<PathBuf>>> {
        let own_mode = self.owner_mode()?;
        let mut out = vec![];
        for c in image.chain_ids()? {
            match self.layer_dir(&c) {
                Some(dir) if own_mode == Some(mode) => out.push(dir),
                Some(_) => return Ok(None),
                None => match self.shared_layer(&c, Some(mode)) {
                    Some(dir) => out.push(dir),
                    None => return Ok(None),
                },
            }
        }
        Ok(Some(out))
    }

    /// Keep the unpacked layers `chain_ids` from gc until the hold is dropped. Fails with
    /// [`StoreError::Other`] naming a layer that is not unpacked (unpack first).
    pub fn hold_layers(&self, chain_ids: &[Digest]) -> Result<LayerHold> {
        let mut guards = Vec::with_capacity(chain_ids.len());
        for c in chain_ids {
            // A shared store's layers need no hold: nobody collects them from here.
            if self.layer_dir(c).is_none() && self.shared_layer(c, None).is_some() {
                continue;
            }
            if self.layer_dir(c).is_none() {
                return Err(StoreError::Other {
                    what: format!("layer {c} is not unpacked, so it cannot be held"),
                });
            }
            guards.push(crate::lock::shared_on(&self.layout.layer(c))?);
            // gc may have moved it away between the check and the lock.
            if self.layer_dir(c).is_none() {
                return Err(StoreError::Other {
                    what: format!("layer {c} was collected while being held; unpack again"),
                });
            }
        }
        Ok(LayerHold { _guards: guards })
    }

    /// The unpacked tree of a layer, when it is unpacked.
    pub fn layer_dir(&self, chain_id: &Digest) -> Option<PathBuf> {
        let meta = self.layout.layer_meta(chain_id);
        meta.is_file().then(|| self.layout.layer_diff(chain_id))
    }

    /// The metadata of an unpacked layer.
    pub fn layer_meta(&self, chain_id: &Digest) -> Result<LayerMeta> {
        let p = self.layout.layer_meta(chain_id);
        let bytes = std::fs::read(&p).ctx("read", &p)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::FileJson { path: p, source: e })
    }

    /// Chain ids of every unpacked layer.
    pub fn unpacked_layers(&self) -> Result<Vec<Digest>> {
        let dir = self.layout.layers();
        let mut out = vec![];
        for e in std::fs::read_dir(&dir).ctx("read directory", &dir)? {
            let e = e.ctx("read directory", &dir)?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Unpack the image's layers (those not yet unpacked) and return their trees, bottom
    /// to top (overlay wants lowerdir top first: reverse it). Each layer's uncompressed
    /// content is checked against the config's diff id. Rootless with
    /// [`OwnerMode::Real`], call this inside the user namespace.
    pub fn unpack_layers(
        &self,
        image: &Image,
        mode: OwnerMode,
        limits: &UnpackLimits,
    ) -> Result<Vec<PathBuf>> {
        let layers = image.layers()?;
        let diff_ids = image.diff_ids()?;
        if layers.len() != diff_ids.len() {
            return Err(StoreError::Other {
                what: format!(
                    "image {} lists {} layers but {} diff ids in its config",
                    image.id().short(),
                    layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let chain = crate::images::chain_ids(&diff_ids);
        let wait = crate::jobs::job_wait()?;
        let mut out = Vec::with_capacity(layers.len());
        for ((layer, diff_id), chain_id) in layers.iter().zip(&diff_ids).zip(&chain) {
            if self.layer_dir(chain_id).is_none() {
                // Unpacked in a shared store, by this user in this mode: used in place.
                if let Some(dir) = self.shared_layer(chain_id, Some(mode)) {
                    out.push(dir);
                    continue;
                }
                // One unpack per layer: others asking for it wait, then find it here.
                let _job = self.unpack_lock(chain_id, wait)?;
                if self.layer_dir(chain_id).is_none() {
                    self.ensure_mode(mode)?;
                    self.unpack_one(&layer.digest, diff_id, chain_id, mode, limits)?;
                }
            }
            // Whoever unpacked it (we, a process we waited for, an earlier run): in our
            // ownership mode?
            let meta = self.layer_meta(chain_id)?;
            if meta.mode != mode {
                return Err(StoreError::OwnerModeMismatch {
                    existing: meta.mode.as_str(),
                    requested: mode.as_str(),
                });
            }
            out.push(self.layout.layer_diff(chain_id));
        }
        Ok(out)
    }

    fn unpack_one(
        &self,
        digest: &Digest,
        diff_id: &Digest,
        chain_id: &Digest,
        mode: OwnerMode,
        limits: &UnpackLimits,
    ) -> Result<()> {
        // Said at info level: how many processes unpack a layer is what tells one
        // unpack per node from one per process.
        tracing::info!("layer {chain_id}: unpacking");
        let tmp = self.temp_path("layer");
        let diff = tmp.join("diff");
        std::fs::create_dir_all(&diff).ctx("create directory", &diff)?;
        let r = (|| {
            let blob = self.open_blob(digest)?;
            let wrap = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Unpack {
                digest: digest.clone(),
                chain_id: chain_id.clone(),
                source: e,
            };
            let unpacked = (|| {
                let (_c, plain) =
                    imago_oci::compress::auto_decompress(std::io::BufReader::new(blob))
                        .map_err(|e| wrap(e.into()))?;
                let mut hr = HashingReader::new(plain);
                let stats = imago_oci::layer::unpack(&mut hr, &diff, &limits.unpack_options(mode))
                    .map_err(|e| wrap(e.into()))?;
                // The tar may end before its padding; hash the rest too.
                std::io::copy(&mut hr, &mut std::io::sink()).map_err(|e| wrap(e.into()))?;
                let (got, _) = hr.finish();
                if &got != diff_id {
                    return Err(wrap(
                        format!("uncompressed content hashes to {got}, the config says {diff_id}")
                            .into(),
                    ));
                }
                Ok(stats)
            })();
            match unpacked {
                Ok(stats) => warn_skipped_devices(&stats, digest),
                Err(e) => {
                    // A blob damaged on disk mostly fails in the decompressor before the
                    // digest check at EOF is reached: hash it whole, so the user learns
                    // which blob is damaged rather than "corrupt deflate stream".
                    return Err(match self.verify_blob(digest) {
                        Err(damage @ StoreError::BlobDamaged { .. }) => damage,
                        _ => e,
                    });
                }
            }
            let meta = LayerMeta {
                chain_id: chain_id.clone(),
                diff_id: diff_id.clone(),
                digest: digest.clone(),
                mode,
            };
            let bytes = serde_json::to_vec(&meta).map_err(|e| StoreError::Other {
                what: e.to_string(),
            })?;
            atomic::write_file(&self.layout.tmp(), &tmp.join("layer.json"), &bytes)?;
            atomic::sync_dir(&tmp)?;
            let to = self.layout.layer(chain_id);
            match std::fs::rename(&tmp, &to) {
                Ok(()) => atomic::sync_dir(&self.layout.layers()),
                // Someone else unpacked it first: theirs is as good as ours. Ours is
                // debris in tmp/ if it cannot be removed now, which gc collects.
                Err(_) if self.layer_dir(chain_id).is_some() => {
                    let _ = remove_tree(&tmp);
                    Ok(())
                }
                Err(e) => Err(StoreError::io("rename into place", to, e)),
            }
        })();
        if r.is_err() {
            // The error that matters is `r`; what is left in tmp/ is gc's.
            let _ = remove_tree(&tmp);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::OCI_LAYER_GZIP;
    use imago_oci::BlobRef;

    fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    fn image_of(s: &Store, tar: &[u8], diff_override: Option<Digest>) -> Image {
        let (layer, diff): (BlobRef, Digest) = s.put_layer_tar(tar).unwrap();
        assert_eq!(layer.media_type, OCI_LAYER_GZIP);
        let diff = diff_override.unwrap_or(diff);
        let cfg = serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[diff]}});
        let m = s
            .put_image_raw(&serde_json::to_vec(&cfg).unwrap(), &[layer])
            .unwrap();
        s.resolve(&m.to_string()).unwrap()
    }

    #[test]
    fn unpack_once_shared_and_verified() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        let img = image_of(&s, &tar_with("hello.txt", b"hi\n"), None);
        let dirs = s
            .unpack_layers(&img, OwnerMode::Xattr, &UnpackLimits::default())
            .unwrap();
        assert_eq!(std::fs::read(dirs[0].join("hello.txt")).unwrap(), b"hi\n");
        assert_eq!(s.owner_mode().unwrap(), Some(OwnerMode::Xattr));
        // Again: the same dir, nothing redone.
        assert_eq!(
            s.unpack_layers(&img, OwnerMode::Xattr, &UnpackLimits::default())
                .unwrap(),
            dirs
        );
        // The other mode is refused rather than mixed.
        let e = s
            .unpack_layers(&img, OwnerMode::Real, &UnpackLimits::default())
            .unwrap_err();
        assert!(matches!(e, StoreError::OwnerModeMismatch { .. }), "{e:?}");
        assert!(s.fsck().unwrap().is_clean());
        // A config whose diff id lies is caught, and nothing is left behind.
        let bad = image_of(&s, &tar_with("other.txt", b"x"), Some(Digest::of(b"lie")));
        let e = s
            .unpack_layers(&bad, OwnerMode::Xattr, &UnpackLimits::default())
            .unwrap_err();
        assert!(
            format!("{e}: {:?}", std::error::Error::source(&e)).contains("hashes to"),
            "{e:?}"
        );
        assert_eq!(std::fs::read_dir(s.layout().tmp()).unwrap().count(), 0);
        assert_eq!(s.unpacked_layers().unwrap().len(), 1);
        // A held layer survives a gc that would take it; released, it goes.
        let chain = img.chain_ids().unwrap();
        s.remove_image(&img.manifest_digest.to_string(), true)
            .unwrap();
        let hold = s.hold_layers(&chain).unwrap();
        let g = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!((g.layers_removed.len(), g.layers_in_use), (0, 1));
        drop(hold);
        let g = s.gc(&crate::GcOptions::default()).unwrap();
        assert_eq!(g.layers_removed, chain);
    }

    #[test]
    fn a_damaged_layer_blob_is_reported_as_damaged_not_as_bad_deflate() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let img = image_of(&s, &tar_with("f", &data), None);
        let layer = img.layers().unwrap()[0].digest.clone();
        let p = s.blob_path(&layer);
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        for x in &mut b[mid..mid + 64] {
            *x ^= 0xa5;
        }
        std::fs::write(&p, b).unwrap();
        let e = s
            .unpack_layers(&img, OwnerMode::Xattr, &UnpackLimits::default())
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::BlobDamaged { digest, .. } if digest == &layer),
            "{e:?}"
        );
        assert_eq!(std::fs::read_dir(s.layout().tmp()).unwrap().count(), 0);
    }
}
