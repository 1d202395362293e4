//! Every path under the store root, in one place.
//!
//! ```text
//! ROOT/oci-layout                 {"imageLayoutVersion":"1.0.0"}   (OCI image layout)
//! ROOT/index.json                 the image index; tags = ref.name annotations
//! ROOT/blobs/sha256/<hex>         content-addressed blobs (manifests, configs, layers)
//! ROOT/imago/tmp/<pid>.<host>-…   temp files and dirs of running writers (gc removes those
//!                                 of dead processes)
//! ROOT/imago/locks/index.lock     flock around index.json read-modify-write
//! ROOT/imago/locks/gc.lock        shared by writers (pins), exclusive for gc
//! ROOT/imago/locks/gc-gate.lock   a pending gc holds it so new pins queue behind it
//! ROOT/imago/locks/pull/<hex>.lock    one pull of a manifest at a time (jobs.rs)
//! ROOT/imago/locks/unpack/<hex>.lock  one unpack of a layer (chain id) at a time
//! ROOT/imago/cache/<key>[.refs]  build cache entries (value; JSON list of blobs kept)
//! ROOT/imago/layers/MODE          `real` or `xattr`: the ownership mode of unpacked layers
//! ROOT/imago/layers/<chainhex>/   one unpacked layer: `diff/` (the tree) + `layer.json`
//! ROOT/containers/                container records and names (imago_runtime's)
//! ```
//! What must stay on one machine (containers' writable layers, RUN scratch, live state)
//! goes to the node-local dir instead when the store is shared (`crate::local`).
//! Never: opens or writes files (the other modules do).

use std::path::{Path, PathBuf};

use imago_oci::Digest;

/// The paths of one store.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn oci_layout(&self) -> PathBuf {
        self.root.join("oci-layout")
    }
    pub fn index(&self) -> PathBuf {
        self.root.join("index.json")
    }
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }
    pub fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs().join(d.hex())
    }
    pub fn imago(&self) -> PathBuf {
        self.root.join("imago")
    }
    pub fn tmp(&self) -> PathBuf {
        self.imago().join("tmp")
    }
    pub fn locks(&self) -> PathBuf {
        self.imago().join("locks")
    }
    pub fn index_lock(&self) -> PathBuf {
        self.locks().join("index.lock")
    }
    pub fn gc_lock(&self) -> PathBuf {
        self.locks().join("gc.lock")
    }
    pub fn gc_gate_lock(&self) -> PathBuf {
        self.locks().join("gc-gate.lock")
    }
    /// The keyed lock of one pull (by manifest digest).
    pub fn pull_lock(&self, manifest: &Digest) -> PathBuf {
        self.locks()
            .join("pull")
            .join(format!("{}.lock", manifest.hex()))
    }
    /// The keyed lock of one unpack (by chain id).
    pub fn unpack_lock(&self, chain_id: &Digest) -> PathBuf {
        self.locks()
            .join("unpack")
            .join(format!("{}.lock", chain_id.hex()))
    }
    pub fn cache(&self) -> PathBuf {
        self.imago().join("cache")
    }
    pub fn layers(&self) -> PathBuf {
        self.imago().join("layers")
    }
    pub fn layers_mode(&self) -> PathBuf {
        self.layers().join("MODE")
    }
    pub fn layer(&self, chain_id: &Digest) -> PathBuf {
        self.layers().join(chain_id.hex())
    }
    pub fn layer_diff(&self, chain_id: &Digest) -> PathBuf {
        self.layer(chain_id).join("diff")
    }
    pub fn layer_meta(&self, chain_id: &Digest) -> PathBuf {
        self.layer(chain_id).join("layer.json")
    }
    /// imago_runtime's container records (the store itself never writes here).
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
}
