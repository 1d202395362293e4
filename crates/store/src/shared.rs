//! Shared read-only stores (podman's "additional image stores"): other imago stores,
//! typically on a cluster's parallel file system and filled by an administrator, whose
//! images a user runs, lists, inspects and builds on in place. Names resolve in the
//! user's own store first, then in each shared store in the order given.
//!
//! Where they come from, first that is set: `$IMAGO_ADDITIONAL_STORES` (a `:`
//! separated list of absolute paths; the programs' `--additional-store DIR` flags are
//! put in front of it), else the config file's top-level `additional_stores` key (the
//! same list form). An entry that is not an imago store (no `oci-layout`) is an error
//! naming where it came from: a misspelt path must not quietly hide the images.
//!
//! Never: writes to a shared store, takes a lock in it, or collects garbage there.
//! What a user's work needs to write (blobs a build or a tag refers to, layers the
//! shared store has not unpacked) goes to the user's own store, copied or unpacked
//! from the shared store's blobs.

use std::io::Read;
use std::path::{Path, PathBuf};

use imago_oci::Digest;

use crate::error::{Result, StoreError};
use crate::images::write;
use crate::layers::OwnerMode;
use crate::layout::Layout;
use crate::store::Store;

/// The environment variable naming the shared stores (a `:` separated list).
pub const ENV: &str = "IMAGO_ADDITIONAL_STORES";
/// The config file key naming the shared stores (the same list form).
pub const CONFIG_KEY: &str = "additional_stores";

/// The shared stores this process is configured with, in order, and where the list
/// came from (for error messages). `own` (the user's store) is left out if listed.
pub fn configured(own: &Path) -> Result<(Vec<PathBuf>, String)> {
    let (list, source) = match std::env::var(ENV) {
        Ok(v) => (v, format!("${ENV}")),
        Err(_) => match config_list()? {
            Some((v, file)) => (v, format!("`{CONFIG_KEY}` in {}", file.display())),
            None => return Ok((vec![], String::new())),
        },
    };
    let paths = parse_list(&list, &source)?;
    Ok((paths.into_iter().filter(|p| p != own).collect(), source))
}

/// The config file's `additional_stores` value and the file, when set.
fn config_list() -> Result<Option<(String, PathBuf)>> {
    let Some(file) = crate::local::config_file() else {
        return Ok(None);
    };
    let mut text = String::new();
    // At most 64 KiB: a config file is a few lines (as for `local_dir`).
    match std::fs::File::open(&file).and_then(|f| f.take(64 * 1024).read_to_string(&mut text)) {
        Ok(_) => Ok(crate::local::config_value(&text, CONFIG_KEY).map(|v| (v, file))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read the config file", file, e)),
    }
}

/// Split a `:` list into absolute paths (empty entries skipped; duplicates once).
pub fn parse_list(list: &str, source: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = vec![];
    for entry in list.split(':').filter(|e| !e.is_empty()) {
        let p = PathBuf::from(entry);
        if !p.is_absolute() {
            return Err(StoreError::Setting {
                setting: format!("additional store `{entry}` from {source}"),
                why: "not an absolute path".into(),
            });
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Check that each of `paths` is an imago (OCI layout) store; their layouts.
pub(crate) fn open_all(paths: &[PathBuf], source: &str) -> Result<Vec<Layout>> {
    paths
        .iter()
        .map(|p| {
            let l = Layout::new(p);
            if l.oci_layout().is_file() && l.index().is_file() {
                Ok(l)
            } else {
                Err(StoreError::Setting {
                    setting: format!("additional store `{}` from {source}", p.display()),
                    why: "not an imago store (no oci-layout and index.json there)".into(),
                })
            }
        })
        .collect()
}

impl Store {
    /// The shared read-only stores this store reads after its own images, in order.
    pub fn shared_roots(&self) -> Vec<PathBuf> {
        self.shared.iter().map(|l| l.root().to_path_buf()).collect()
    }

    /// Read-only handles on the shared stores (no shared stores of their own).
    pub(crate) fn shared_stores(&self) -> impl Iterator<Item = Store> + '_ {
        self.shared.iter().map(|l| Store {
            layout: l.clone(),
            shared: vec![],
        })
    }

    /// The path of blob `d` in the first shared store that has it.
    pub(crate) fn shared_blob(&self, d: &Digest) -> Option<PathBuf> {
        self.shared.iter().map(|l| l.blob(d)).find(|p| p.is_file())
    }

    /// The unpacked tree of layer `chain_id` in the first shared store that has it in a
    /// form this process can use in place: unpacked in ownership `mode`, by this user
    /// (the tree's root belongs to this process's uid, as seen from where it runs,
    /// outside or inside the user's mapping). Other users' trees hold files of owners
    /// outside this user's mapping, which a container cannot change, not even to make
    /// its mount points (`/etc/hosts`); such a layer is unpacked into the user's own
    /// store from the shared store's blob instead. `mode` `None`: any usable form.
    pub(crate) fn shared_layer(
        &self,
        chain_id: &Digest,
        mode: Option<OwnerMode>,
    ) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        self.shared_stores().find_map(|s| {
            let dir = s.layer_dir(chain_id)?;
            let fits = match mode {
                None => true,
                Some(m) => {
                    s.layer_meta(chain_id).is_ok_and(|meta| meta.mode == m)
                        && std::fs::metadata(&dir).is_ok_and(|st| st.uid() == me)
                }
            };
            fits.then_some(dir)
        })
    }

    /// Copy into this store the blobs of `digests` it lacks from the shared stores that
    /// have them (verified as any incoming blob). A blob no store has is left missing:
    /// the caller's own check reports it. A pull calls it before downloading: what a
    /// shared store has is copied, not fetched.
    pub fn adopt_blobs(&self, digests: &[Digest]) -> Result<()> {
        for d in digests {
            if self.has_blob(d) {
                continue;
            }
            if let Some(p) = self.shared_blob(d) {
                let f = std::fs::File::open(&p).map_err(|e| StoreError::io("open", &p, e))?;
                let size = f
                    .metadata()
                    .map_err(|e| StoreError::io("stat", &p, e))?
                    .len();
                self.put_blob(f, Some((d, size)))?;
            }
        }
        Ok(())
    }

    /// Copy the image with manifest `manifest` (its manifest, config and layer blobs)
    /// from a shared store into this one, so this store's index may name it.
    pub(crate) fn adopt_image(&self, manifest: &Digest) -> Result<()> {
        if self.has_blob(manifest) || self.shared_blob(manifest).is_none() {
            return Ok(());
        }
        let bytes = self.read_blob(manifest)?;
        let need = write::manifest_blobs(&write::manifest_json(&bytes, manifest)?)?;
        self.adopt_blobs(&need)?;
        self.put_blob_bytes(&bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_absolute_paths_in_order() {
        assert_eq!(
            parse_list("/a::/b:/a", "$X").unwrap(),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert!(parse_list("", "$X").unwrap().is_empty());
        let e = parse_list("/a:rel", "$X").unwrap_err();
        assert!(
            e.to_string().contains("rel") && e.to_string().contains("$X"),
            "{e}"
        );
    }

    /// Every path under `root` with its size and mtime, to see that nothing changed.
    fn listing(root: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
        let mut out = vec![];
        let mut todo = vec![root.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                out.push((e.path(), m.len(), m.modified().unwrap()));
                if m.is_dir() {
                    todo.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn shared_images_are_used_in_place_and_never_written() {
        let d = tempfile::tempdir().unwrap();
        let shared = Store::open_alone(d.path().join("shared")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, "hello.txt", &b"hi\n"[..]).unwrap();
        let (layer, diff) = shared.put_layer_tar(&b.into_inner().unwrap()[..]).unwrap();
        let cfg = serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[diff]}});
        let m = shared
            .put_image_raw(
                &serde_json::to_vec(&cfg).unwrap(),
                std::slice::from_ref(&layer),
            )
            .unwrap();
        shared.tag("app:1", &m).unwrap();
        let img = shared.resolve("app:1").unwrap();
        let dirs = shared
            .unpack_layers(&img, crate::OwnerMode::Xattr, &Default::default())
            .unwrap();
        let before = listing(shared.root());

        let own = Store::open_with_shared(d.path().join("own"), &[shared.root().into()]).unwrap();
        let found = own.resolve("app:1").unwrap();
        assert_eq!(found.origin.as_deref(), Some(shared.root()));
        assert_eq!(own.list_images().unwrap().len(), 1);
        // Unpacked by this user in this mode: used in place, no unpack needed.
        let xattr = crate::OwnerMode::Xattr;
        assert_eq!(
            own.unpacked_lowers(&found, xattr).unwrap(),
            Some(dirs.clone())
        );
        assert_eq!(
            own.unpack_layers(&found, xattr, &Default::default())
                .unwrap(),
            dirs
        );
        // In another mode: unpacked into the own store, from the shared store's blob.
        let real = crate::OwnerMode::Real;
        assert_eq!(own.unpacked_lowers(&found, real).unwrap(), None);
        let mine = own
            .unpack_layers(&found, real, &Default::default())
            .unwrap();
        assert!(mine[0].starts_with(own.root()), "{mine:?}");
        assert_eq!(std::fs::read(mine[0].join("hello.txt")).unwrap(), b"hi\n");
        assert_eq!(own.unpacked_lowers(&found, real).unwrap(), Some(mine));
        drop(own.hold_layers(&found.chain_ids().unwrap()).unwrap());
        let e = own.remove_image("app:1", false).unwrap_err();
        assert!(matches!(e, StoreError::SharedReadOnly { .. }), "{e}");
        // A name in the own store copies the image in; it is whole there.
        own.tag("mine", &found.manifest_digest).unwrap();
        let mine = own.resolve("mine").unwrap();
        assert_eq!(mine.origin, None);
        assert!(own.has_blob(&layer.digest) && own.has_blob(mine.id()));
        assert!(own.fsck().unwrap().is_clean());
        // A new image on top of the shared one's layer: its blob is copied in.
        let own2 = Store::open_with_shared(d.path().join("own2"), &[shared.root().into()]).unwrap();
        own2.put_image_raw(
            &serde_json::to_vec(&cfg).unwrap(),
            std::slice::from_ref(&layer),
        )
        .unwrap();
        assert!(own2.has_blob(&layer.digest));
        own.gc(&Default::default()).unwrap();
        assert_eq!(listing(shared.root()), before, "the shared store changed");
    }

    #[test]
    fn a_path_that_is_no_store_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let e = open_all(&[d.path().to_path_buf()], "$X").unwrap_err();
        assert!(e.to_string().contains("not an imago store"), "{e}");
        Store::open(d.path()).unwrap();
        assert_eq!(open_all(&[d.path().to_path_buf()], "$X").unwrap().len(), 1);
    }
}
