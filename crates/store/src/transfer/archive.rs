//! `docker save` and `docker load`: images out to a docker-archive or oci-archive, and an
//! archive's images in, named as the archive names them. imago_oci reads and writes the
//! archives; this module picks the images and names and keeps the store consistent.
//! Never: opens the process's stdin or stdout, prints.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use imago_oci::archive::{self, ArchiveFormat, LoadOptions, SaveImage, SaveStats};
use imago_oci::{Digest, Reference};

use crate::error::{IoCtx, Result, StoreError};
use crate::names::{self, ImageName};
use crate::store::Store;

/// One image [`Store::load_archive`] brought in.
#[derive(Debug)]
pub struct LoadedImage {
    /// The image id (config digest).
    pub id: Digest,
    /// The names it got, in archive order.
    pub names: Vec<ImageName>,
    /// Names the archive gave that it could not get (invalid names), with why.
    pub refused: Vec<(String, StoreError)>,
}

impl Store {
    /// Write the images `inputs` name to `w` as one archive; each image carries the
    /// names the input matches (none for an id or digest).
    pub fn save_images(
        &self,
        inputs: &[String],
        format: ArchiveFormat,
        w: impl Write,
    ) -> Result<SaveStats> {
        let images = self.save_list(inputs)?;
        archive::write_archive(w, format, self, &images).map_err(|source| StoreError::Archive {
            op: "write",
            source,
        })
    }

    /// [`Store::save_images`] into the file `path`, written beside it and renamed into
    /// place: `path` never holds half an archive.
    pub fn save_images_to_file(
        &self,
        inputs: &[String],
        format: ArchiveFormat,
        path: &Path,
    ) -> Result<SaveStats> {
        let images = self.save_list(inputs)?;
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let r = (|| {
            let f = File::create(&tmp).ctx("create", &tmp)?;
            let mut w = BufWriter::new(f);
            let stats =
                archive::write_archive(&mut w, format, self, &images).map_err(|source| {
                    StoreError::Archive {
                        op: "write",
                        source,
                    }
                })?;
            let f = w
                .into_inner()
                .map_err(|e| e.into_error())
                .ctx("write", &tmp)?;
            f.sync_all().ctx("sync", &tmp)?;
            std::fs::rename(&tmp, path).ctx("rename into place", path)?;
            Ok(stats)
        })();
        if r.is_err() {
            // The error is `r`; a temp file that cannot be removed is named as ours.
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// The images and names a save writes, resolved before any output is opened.
    fn save_list(&self, inputs: &[String]) -> Result<Vec<SaveImage>> {
        inputs
            .iter()
            .map(|input| {
                let img = self.resolve(input)?;
                let names = img
                    .names
                    .iter()
                    .filter(|n| names::matches(&n.ref_name, input))
                    .filter_map(|n| Reference::parse(&n.ref_name).ok())
                    .collect();
                Ok(SaveImage {
                    manifest: img.manifest_digest.clone(),
                    names,
                })
            })
            .collect()
    }

    /// Load every image of the archive `r` (docker-archive or oci-archive, detected,
    /// plain or compressed) and give it the names the archive has. Pins the store until
    /// the images are recorded.
    pub fn load_archive(&self, r: impl Read) -> Result<Vec<LoadedImage>> {
        let pin = self.pin()?;
        // The archive reader writes blobs through the sink; a handle of our own for it.
        let mut sink = self.clone();
        let loaded = archive::read_archive(r, &mut sink, &LoadOptions::default())
            .map_err(|source| StoreError::Archive { op: "read", source })?;
        let mut out = Vec::with_capacity(loaded.len());
        for l in &loaded {
            let bytes = self.read_blob(&l.digest)?;
            self.put_manifest(&bytes, &l.media_type)?;
            let img = self.resolve(&l.digest.to_string())?;
            let mut image = LoadedImage {
                id: img.id().clone(),
                names: vec![],
                refused: vec![],
            };
            for n in &l.names {
                match self.tag(n, &l.digest) {
                    Ok(t) => image.names.push(t),
                    Err(e) => image.refused.push((n.clone(), e)),
                }
            }
            out.push(image);
        }
        drop(pin);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::OCI_LAYER_GZIP;
    use imago_oci::BlobRef;

    fn store_with_image(dir: &Path) -> (Store, Digest) {
        let s = Store::open(dir).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(1);
        h.set_cksum();
        b.append_data(&mut h, "f", &b"x"[..]).unwrap();
        let (layer, diff): (BlobRef, Digest) =
            s.put_layer_tar(&b.into_inner().unwrap()[..]).unwrap();
        assert_eq!(layer.media_type, OCI_LAYER_GZIP);
        let cfg = serde_json::json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[diff]}});
        let bytes = serde_json::to_vec(&cfg).unwrap();
        let m = s.put_image_raw(&bytes, &[layer]).unwrap();
        s.tag("app:1", &m).unwrap();
        (s, Digest::of(&bytes))
    }

    #[test]
    fn save_then_load_keeps_id_and_name() {
        let d = tempfile::tempdir().unwrap();
        let (a, id) = store_with_image(&d.path().join("a"));
        for format in [ArchiveFormat::DockerArchive, ArchiveFormat::OciArchive] {
            let file = d.path().join(format!("{format:?}.tar"));
            a.save_images_to_file(&["app:1".into()], format, &file)
                .unwrap();
            let b = Store::open(d.path().join(format!("b-{format:?}"))).unwrap();
            let loaded = b.load_archive(File::open(&file).unwrap()).unwrap();
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0].id, id);
            let names: Vec<&str> = loaded[0]
                .names
                .iter()
                .map(|n| n.ref_name.as_str())
                .collect();
            assert_eq!(names, ["app:1"], "{format:?}");
            assert!(loaded[0].refused.is_empty());
            assert_eq!(b.resolve("app:1").unwrap().id(), &id);
        }
        // Only the archive is left beside it: no temp file.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // An unknown image fails before the file is made.
        let file = d.path().join("none.tar");
        let e = a
            .save_images_to_file(&["nope".into()], ArchiveFormat::DockerArchive, &file)
            .unwrap_err();
        assert!(matches!(e, StoreError::ImageNotFound { .. }), "{e:?}");
        assert!(!file.exists());
    }
}
