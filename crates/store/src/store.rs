//! The `Store` handle: opening (and creating) the layout, and the pin that keeps gc
//! away while a writer's blobs are not yet referenced.
//! Never: enters namespaces, knows about containers or registries.

use std::path::{Path, PathBuf};

use crate::atomic;
use crate::error::{IoCtx, Result, StoreError};
use crate::layout::Layout;
use crate::lock::{self, LockGuard};

/// An open store. Cheap to clone-by-reopen; holds no lock by itself.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) layout: Layout,
    /// Shared read-only stores read after this one (shared.rs); never written.
    pub(crate) shared: Vec<Layout>,
}

/// Held by a writer from its first `put_blob` until its image is in index.json
/// (`put_manifest`/`tag`); a gc waits until no pin is held. Drop to release.
#[derive(Debug)]
pub struct Pin {
    _guard: LockGuard,
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const EMPTY_INDEX: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

impl Store {
    /// Open the store at `root`, creating the directory and an empty OCI layout when
    /// missing. An existing OCI layout (e.g. written by skopeo) is adopted as it is.
    /// The shared read-only stores the environment or config file names
    /// ([`crate::shared::configured`]) are read after it.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let mut store = Self::open_alone(root)?;
        let (paths, source) = crate::shared::configured(store.root())?;
        store.shared = crate::shared::open_all(&paths, &source)?;
        Ok(store)
    }

    /// [`Store::open`] with these shared stores instead of the configured ones.
    pub fn open_with_shared(root: impl AsRef<Path>, shared: &[PathBuf]) -> Result<Store> {
        let mut store = Self::open_alone(root)?;
        store.shared = crate::shared::open_all(shared, "the caller")?;
        Ok(store)
    }

    /// [`Store::open`] without any shared store.
    pub fn open_alone(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        let root = if root.is_relative() {
            std::env::current_dir()
                .ctx("get current dir", root)?
                .join(root)
        } else {
            root.to_path_buf()
        };
        let layout = Layout::new(root);
        let store = Store {
            layout,
            shared: vec![],
        };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<()> {
        let l = &self.layout;
        if l.root().exists() && !l.root().is_dir() {
            return Err(StoreError::NotALayout {
                root: l.root().into(),
                why: "not a directory".into(),
            });
        }
        for d in [
            l.root().to_path_buf(),
            l.blobs(),
            l.tmp(),
            l.locks(),
            l.layers(),
        ] {
            std::fs::create_dir_all(&d).ctx("create directory", &d)?;
        }
        let ol = l.oci_layout();
        match std::fs::read(&ol) {
            Ok(bytes) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::NotALayout {
                        root: l.root().into(),
                        why: format!("bad oci-layout: {e}"),
                    })?;
                if v.get("imageLayoutVersion")
                    .and_then(|v| v.as_str())
                    .is_none()
                {
                    return Err(StoreError::NotALayout {
                        root: l.root().into(),
                        why: "oci-layout lacks imageLayoutVersion".into(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                atomic::write_file(&l.tmp(), &ol, OCI_LAYOUT)?
            }
            Err(e) => return Err(StoreError::io("read", ol, e)),
        }
        if !l.index().exists() {
            // Under the index lock so two first opens don't race.
            let _g = lock::exclusive(&l.index_lock())?;
            // Only a store without blobs gets a fresh index: blobs without index.json are
            // a damaged store, and an empty index would let gc delete every blob
            // (read_index reports it instead).
            if !l.index().exists() && !has_entries(&l.blobs())? {
                atomic::write_file(&l.tmp(), &l.index(), EMPTY_INDEX)?;
            }
        }
        Ok(())
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// All paths of this store.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A fresh path in the store's tmp dir (same file system as blobs and layers),
    /// named so gc removes it once this process is gone.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        atomic::temp_path(&self.layout.tmp(), what)
    }

    /// Keep gc from collecting blobs this process is writing; hold it until the image
    /// is recorded in index.json. Blocks while a gc runs or waits to run (bounded by
    /// the gc's wait). Take one pin per process: a second one taken while holding the
    /// first would wait for a pending gc that waits for the first.
    pub fn pin(&self) -> Result<Pin> {
        // Through the gate, so that a pending gc is not overtaken (lock.rs).
        let gate = lock::exclusive(&self.layout.gc_gate_lock())?;
        let guard = lock::shared(&self.layout.gc_lock())?;
        drop(gate);
        Ok(Pin { _guard: guard })
    }
}

fn has_entries(dir: &Path) -> Result<bool> {
    let mut rd = std::fs::read_dir(dir).ctx("read directory", dir)?;
    Ok(rd.next().is_some())
}
