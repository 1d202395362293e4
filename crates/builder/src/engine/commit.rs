//! Layers in and out of the store, run inside the build's id mapping: a state's layers
//! unpacked into dirs ([`unpack`]), a layer dir packed and stored as a gzip layer
//! ([`commit_dir`]), and a stack of layer dirs merged into one tree ([`flatten_into`],
//! for `RUN --mount=from=`).
//!
//! Never: decides what goes into a layer (the instruction files do) or touches the cache.

use std::io::Write;
use std::path::{Path, PathBuf};

use imago_oci::{layer, Digest};
use imago_store::{Image, Store, OCI_LAYER_GZIP};
use serde::{Deserialize, Serialize};

use super::error::{io_err, StepError};
use crate::cache::LayerRef;
use crate::config;
use crate::fsview::OwnerMode;
use crate::temp::TempPath;

/// What a child in the mapping sends back after committing a layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Committed {
    pub layer: Option<LayerRef>,
}

/// A stand-in [`Image`] over a build state's layers, so the store unpacks them.
fn image_of(state_layers: &[LayerRef]) -> Result<Image, StepError> {
    let cfg = serde_json::json!({
        "architecture": config::host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": state_layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    });
    let config_bytes = serde_json::to_vec(&cfg).map_err(StepError::StateJson)?;
    let config_digest = Digest::of(&config_bytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": imago_store::OCI_MANIFEST,
        "config": {"mediaType": imago_store::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": state_layers.iter().map(|l| &l.blob).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(StepError::StateJson)?;
    Ok(Image {
        index_digest: Digest::of(&manifest_bytes),
        manifest_digest: Digest::of(&manifest_bytes),
        manifest_media_type: imago_store::OCI_MANIFEST.into(),
        manifest: serde_json::from_slice(&manifest_bytes).map_err(StepError::StateJson)?,
        manifest_bytes,
        config_digest,
        config: serde_json::from_slice(&config_bytes).map_err(StepError::StateJson)?,
        config_bytes,
        names: Vec::new(),
        origin: None,
    })
}

/// Inside the mapping: the unpacked layer dirs of a state, bottom first.
pub(super) fn unpack(
    store: &Store,
    layers: &[LayerRef],
    mode: OwnerMode,
) -> Result<Vec<PathBuf>, StepError> {
    if layers.is_empty() {
        return Ok(Vec::new());
    }
    let img = image_of(layers)?;
    Ok(store.unpack_layers(&img, mode, &imago_store::UnpackLimits::default())?)
}

/// Inside the mapping: pack `dir` as a gzip layer into the store. None when the dir is
/// empty (no layer, like BuildKit drops empty layers).
pub(super) fn commit_dir(
    store: &Store,
    dir: &Path,
    mode: OwnerMode,
    epoch: Option<i64>,
) -> Result<Option<LayerRef>, StepError> {
    commit_dir_skipping(store, dir, mode, epoch, Vec::new())
}

/// [`commit_dir`], leaving out the paths of `skip` (as in the tar: `etc/hosts`) with
/// everything below them.
pub(crate) fn commit_dir_skipping(
    store: &Store,
    dir: &Path,
    mode: OwnerMode,
    epoch: Option<i64>,
    skip: Vec<String>,
) -> Result<Option<LayerRef>, StepError> {
    commit_dir_with(store, dir, mode, epoch, skip, Default::default())
}

/// [`commit_dir_skipping`], with the owners of symlinks and fifos by path
/// (`PackOptions::side_owners`: the recording fakeroot's side record).
pub(super) fn commit_dir_with(
    store: &Store,
    dir: &Path,
    mode: OwnerMode,
    epoch: Option<i64>,
    skip: Vec<String>,
    side_owners: std::collections::BTreeMap<String, (u32, u32)>,
) -> Result<Option<LayerRef>, StepError> {
    let empty = std::fs::read_dir(dir)
        .map_err(io_err("read", dir))?
        .next()
        .is_none();
    if empty {
        return Ok(None);
    }
    // Removed on every way out, e.g. ENOSPC while packing (the store copies it into a blob).
    let guard = TempPath::new(store.temp_path("layer.tar.gz"));
    let tmp = guard.path();
    let f = std::fs::File::create(tmp).map_err(io_err("create", tmp))?;
    let gz = imago_oci::Compressor::new(
        std::io::BufWriter::new(f),
        imago_oci::Compression::Gzip,
        imago_oci::Level::Fast,
    )
    .map_err(io_err("compress", tmp))?;
    let mut hw = HashWriter::new(gz);
    let opts = layer::PackOptions {
        owner: mode,
        default_owner: Some((0, 0)),
        mtime_clamp: epoch,
        skip,
        side_owners,
        ..Default::default()
    };
    // A full store says so, naming the file, rather than as the packer's io error.
    layer::pack(dir, &mut hw, &opts).map_err(|e| match imago_store::error::no_space_in(&e) {
        Some(io) => imago_store::StoreError::io("write the layer", tmp, io).into(),
        None => StepError::from(e),
    })?;
    let (gz, diff_id) = hw.finish();
    let mut w = gz.finish().map_err(io_err("compress", tmp))?;
    w.flush().map_err(io_err("write", tmp))?;
    drop(w);
    let f = std::fs::File::open(tmp).map_err(io_err("open", tmp))?;
    let l = store.put_layer(f, OCI_LAYER_GZIP)?;
    guard.remove()?;
    Ok(Some(LayerRef { blob: l, diff_id }))
}

/// A writer that hashes what it passes on (a layer's diff id, a download's digest).
pub(super) struct HashWriter<W: Write> {
    inner: W,
    hasher: imago_oci::Hasher,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: imago_oci::Hasher::new(),
        }
    }

    /// The inner writer and the digest of everything written.
    pub fn finish(self) -> (W, Digest) {
        (self.inner, self.hasher.finish())
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.hasher.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Inside the mapping: merge layer dirs (bottom first) into a fresh dir `dest`, through a
/// flattened tar at `tar` (whiteouts applied, ownership kept).
pub(super) fn flatten_into(
    dirs: &[PathBuf],
    dest: &Path,
    tar: &Path,
    mode: OwnerMode,
) -> Result<(), StepError> {
    std::fs::create_dir_all(dest).map_err(io_err("create", dest))?;
    if dirs.is_empty() {
        return Ok(());
    }
    let tar_guard = TempPath::new(tar.to_path_buf());
    let f = std::fs::File::create(tar).map_err(io_err("create", tar))?;
    let mut w = std::io::BufWriter::new(f);
    let popts = layer::PackOptions {
        owner: mode,
        default_owner: Some((0, 0)),
        ..Default::default()
    };
    layer::flatten(dirs, &mut w, &popts)?;
    w.flush().map_err(io_err("write", tar))?;
    drop(w);
    let r = std::io::BufReader::new(std::fs::File::open(tar).map_err(io_err("open", tar))?);
    let uopts = layer::UnpackOptions {
        owner: mode,
        ..Default::default()
    };
    layer::unpack(r, dest, &uopts)?;
    tar_guard.remove()?;
    Ok(())
}
