//! `docker import` and `docker export`: a root file system (a tar, plain or compressed, or
//! a directory) in as a one-layer image, and an image's merged root file system out as
//! one tar.
//! Never: opens the process's stdin or stdout, prints, enters namespaces (both unpack
//! layers: rootless callers run them inside the user's id mapping).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use imago_oci::layer::{self, OwnerMode, PackOptions};
use imago_oci::platform::host_arch;
use imago_oci::Digest;
use serde_json::{json, Map, Value};

use crate::error::{IoCtx, Result, StoreError};
use crate::images::{rfc3339, Image};
use crate::import::ImportedLayer;
use crate::layers::UnpackLimits;
use crate::store::Store;

/// Default size cap of an imported layer: 64 GiB apparent.
pub const DEFAULT_IMPORT_MAX_SIZE: u64 = 64 << 30;

/// Where [`Store::import_rootfs`] reads the root file system from.
pub enum RootfsSource {
    /// A directory, packed into a temp tar in the store first (owners read as the
    /// ownership mode keeps them).
    Dir(PathBuf),
    /// A tar file, plain, gzip or zstd (detected by magic).
    File(PathBuf),
    /// A tar stream (stdin), plain, gzip or zstd; `name` labels it in errors.
    Stream { reader: Box<dyn Read>, name: String },
}

impl RootfsSource {
    /// The file or directory at `path`, by what it is. Fails when it cannot be looked at,
    /// before any store work starts.
    pub fn path(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).ctx("open import source", path)?;
        Ok(if meta.is_dir() {
            Self::Dir(path.to_path_buf())
        } else {
            Self::File(path.to_path_buf())
        })
    }
}

/// What goes into the image besides the layer.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Name the image gets (`[REGISTRY/]NAME[:TAG]`).
    pub name: Option<String>,
    /// The config's `config` object (Cmd, Env, …: `docker import --change`).
    pub config: Map<String, Value>,
    /// The history entry's comment.
    pub message: Option<String>,
    pub limits: UnpackLimits,
}

/// The image [`Store::import_rootfs`] made.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImportedImage {
    /// The image id (config digest).
    pub id: Digest,
    pub manifest: Digest,
}

impl Store {
    /// Make a one-layer image of `src` and name it, like `docker import`. `created` is
    /// the newest mtime in the layer (deterministic: the same tree gives the same id).
    /// Pins the store until the image is recorded. Rootless with Real, call inside the
    /// user namespace.
    pub fn import_rootfs(
        &self,
        src: RootfsSource,
        opts: &ImportOptions,
        mode: OwnerMode,
    ) -> Result<ImportedImage> {
        let _pin = self.pin()?;
        let layer = match src {
            RootfsSource::Dir(dir) => self.import_dir(&dir, mode, &opts.limits)?,
            RootfsSource::File(p) => {
                let f = File::open(&p).ctx("open", &p)?;
                let (_, plain) =
                    imago_oci::compress::auto_decompress(BufReader::new(f)).ctx("read", &p)?;
                self.import_layer(plain, None, mode, &opts.limits)?
            }
            RootfsSource::Stream { reader, name } => {
                let (_, plain) = imago_oci::compress::auto_decompress(BufReader::new(reader))
                    .ctx("read", Path::new(&name))?;
                self.import_layer(plain, None, mode, &opts.limits)?
            }
        };
        let config = import_config(&layer, opts);
        let bytes = serde_json::to_vec(&config).map_err(|e| StoreError::Other {
            what: format!("encode config: {e}"),
        })?;
        let manifest = self.put_image_raw(&bytes, &[layer.layer_ref()])?;
        if let Some(n) = &opts.name {
            self.tag(n, &manifest)?;
        }
        Ok(ImportedImage {
            id: Digest::of(&bytes),
            manifest,
        })
    }

    /// Pack `dir` into a temp tar in the store, then import that.
    fn import_dir(
        &self,
        dir: &Path,
        mode: OwnerMode,
        limits: &UnpackLimits,
    ) -> Result<ImportedLayer> {
        let tmp = self.temp_path("import.tar");
        let r = (|| {
            let f = File::create(&tmp).ctx("create", &tmp)?;
            layer::pack(dir, BufWriter::new(f), &pack_options(mode)).map_err(|source| {
                StoreError::PackDir {
                    path: dir.to_path_buf(),
                    source,
                }
            })?;
            let f = File::open(&tmp).ctx("open", &tmp)?;
            self.import_layer(BufReader::new(f), None, mode, limits)
        })();
        // The result is `r`; a leftover temp tar is gc's.
        let _ = std::fs::remove_file(&tmp);
        r
    }

    /// Write the merged root file system of `img` to `w` as one tar (whiteouts applied),
    /// like `docker export`; returns the number of entries. Unpacks the layers that are
    /// not yet: rootless with Real, call inside the user namespace.
    pub fn export_rootfs(&self, img: &Image, mode: OwnerMode, mut w: impl Write) -> Result<u64> {
        let dirs = self.unpack_layers(img, mode, &UnpackLimits::default())?;
        let stats = layer::flatten(&dirs, &mut w, &pack_options(mode)).map_err(|source| {
            StoreError::Export {
                id: img.id().short().to_owned(),
                source,
            }
        })?;
        w.flush().ctx("write", Path::new("<output>"))?;
        Ok(stats.entries)
    }
}

/// Owners as `mode` keeps them; files without a record (or stat showing the host user
/// outside the namespace) belong to root.
fn pack_options(mode: OwnerMode) -> PackOptions {
    PackOptions {
        owner: mode,
        default_owner: Some((0, 0)),
        ..PackOptions::default()
    }
}

/// The image config of an import: host platform, the layer's newest mtime as `created`,
/// one history entry.
fn import_config(layer: &ImportedLayer, opts: &ImportOptions) -> Value {
    let created = rfc3339(u64::try_from(layer.newest_mtime).unwrap_or(0));
    let mut history = json!({ "created": created, "created_by": "iimage import" });
    if let Some(m) = &opts.message {
        history["comment"] = Value::from(m.clone());
    }
    json!({
        "created": created,
        "architecture": host_arch(),
        "os": "linux",
        "config": Value::Object(opts.config.clone()),
        "rootfs": { "type": "layers", "diff_ids": [layer.diff_id] },
        "history": [history],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(3);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, "etc/hello", &b"hi\n"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn import_names_the_image_and_export_gives_the_tree_back() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        let mut config = Map::new();
        config.insert("Cmd".into(), json!(["sh"]));
        let opts = ImportOptions {
            name: Some("bb:1".into()),
            config,
            message: Some("why".into()),
            limits: UnpackLimits::default(),
        };
        let src = RootfsSource::Stream {
            reader: Box::new(std::io::Cursor::new(rootfs_tar())),
            name: "<test>".into(),
        };
        let got = s.import_rootfs(src, &opts, OwnerMode::Xattr).unwrap();
        let img = s.resolve("bb:1").unwrap();
        assert_eq!((img.id(), &img.manifest_digest), (&got.id, &got.manifest));
        assert_eq!(img.created(), Some("2023-11-14T22:13:20Z"));
        let cfg: Value = serde_json::from_slice(&img.config_bytes).unwrap();
        assert_eq!(cfg["config"]["Cmd"], json!(["sh"]));
        assert_eq!(cfg["history"][0]["comment"], json!("why"));

        let mut out = Vec::new();
        assert!(s.export_rootfs(&img, OwnerMode::Xattr, &mut out).unwrap() >= 1);
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(
            names.iter().any(|n| n.trim_end_matches('/') == "etc/hello"),
            "{names:?}"
        );
    }

    #[test]
    fn a_missing_source_is_named_before_store_work() {
        let e = RootfsSource::path(Path::new("/nonexistent/rootfs.tar")).err();
        assert!(
            matches!(
                &e,
                Some(StoreError::Io {
                    op: "open import source",
                    ..
                })
            ),
            "{e:?}"
        );
    }
}
