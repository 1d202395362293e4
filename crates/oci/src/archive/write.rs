//! Writing docker-archive and oci-archive (see the module docs of `archive`).

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};

use super::*;
use crate::compress;
use crate::digest::HashingReader;
use crate::media_type as mt;

/// A tar writer with deterministic headers.
struct TarOut<W: Write> {
    w: W,
    dirs: HashSet<String>,
}

impl<W: Write> TarOut<W> {
    fn header(name: &str, kind: tar::EntryType, size: u64) -> io::Result<tar::Header> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)?;
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h.set_cksum();
        Ok(h)
    }

    fn dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        if self.dirs.insert(name.to_owned()) {
            let werr = |e| ArchiveError::Write {
                entry: name.to_owned(),
                source: e,
            };
            let h = Self::header(name, tar::EntryType::Directory, 0).map_err(werr)?;
            self.w.write_all(h.as_bytes()).map_err(werr)?;
        }
        Ok(())
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
        self.stream(name, data.len() as u64, &mut &data[..])
    }

    /// Write an entry of exactly `size` bytes from `r` (shorter or longer input is an
    /// error: the archive would be corrupt).
    fn stream(&mut self, name: &str, size: u64, r: &mut dyn Read) -> Result<(), ArchiveError> {
        let werr = |e| ArchiveError::Write {
            entry: name.to_owned(),
            source: e,
        };
        let h = Self::header(name, tar::EntryType::Regular, size).map_err(werr)?;
        self.w.write_all(h.as_bytes()).map_err(werr)?;
        let n = io::copy(&mut r.take(size), &mut self.w).map_err(werr)?;
        if n != size {
            return Err(werr(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("content ended after {n} of {size} bytes"),
            )));
        }
        let mut extra = [0u8; 1];
        if r.read(&mut extra).map_err(werr)? != 0 {
            return Err(werr(io::Error::other(format!(
                "content is longer than {size} bytes"
            ))));
        }
        let rem = (size % 512) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; 512][..512 - rem]).map_err(werr)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<W, ArchiveError> {
        let werr = |e| ArchiveError::Write {
            entry: "(end of archive)".into(),
            source: e,
        };
        self.w.write_all(&[0u8; 1024]).map_err(werr)?;
        self.w.flush().map_err(werr)?;
        Ok(self.w)
    }
}

/// Write `images` as an archive of `format` on `w`. On error the output is partial:
/// the caller removes it.
pub fn write_archive<W: Write>(
    w: W,
    format: ArchiveFormat,
    src: &dyn BlobSource,
    images: &[SaveImage],
) -> Result<SaveStats, ArchiveError> {
    let mut out = TarOut {
        w,
        dirs: HashSet::new(),
    };
    let stats = match format {
        ArchiveFormat::OciArchive => write_oci(&mut out, src, images)?,
        ArchiveFormat::DockerArchive => write_docker(&mut out, src, images)?,
    };
    out.finish()?;
    Ok(stats)
}

const JSON_LIMIT: u64 = 16 << 20;

fn write_oci<W: Write>(
    out: &mut TarOut<W>,
    src: &dyn BlobSource,
    images: &[SaveImage],
) -> Result<SaveStats, ArchiveError> {
    let mut stats = SaveStats::default();
    let mut written: HashSet<Digest> = HashSet::new();
    let mut index = Vec::new();
    out.bytes("oci-layout", OCI_LAYOUT)?;
    out.dir("blobs/")?;
    out.dir("blobs/sha256/")?;
    for img in images {
        let raw = read_small(src, &img.manifest, "manifest", JSON_LIMIT)?;
        let m: ManifestView = json(&raw, &format!("manifest {}", img.manifest))?;
        let mut blobs = Vec::new();
        if let Some(children) = &m.manifests {
            // A multi-platform index: its manifests and their blobs go in too.
            for c in children {
                let cd = parse_digest(&c.digest, "index")?;
                let craw = read_small(src, &cd, "manifest", JSON_LIMIT)?;
                let cm: ManifestView = json(&craw, &format!("manifest {cd}"))?;
                blobs.extend(cm.config.iter().chain(&cm.layers).map(|d| d.digest.clone()));
                blobs.push(c.digest.clone());
            }
        } else {
            let Some(config) = &m.config else {
                return Err(ArchiveError::Unsupported(format!(
                    "manifest {} has no config",
                    img.manifest
                )));
            };
            blobs.push(config.digest.clone());
            blobs.extend(m.layers.iter().map(|d| d.digest.clone()));
        }
        blobs.push(img.manifest.to_string());
        for b in blobs {
            let d = parse_digest(&b, &format!("manifest {}", img.manifest))?;
            if !written.insert(d.clone()) {
                continue;
            }
            let (mut r, size) = open_verified(src, &d, &format!("blob of image {}", img.manifest))?;
            out.stream(&format!("blobs/sha256/{}", d.hex()), size, &mut r)?;
            stats.blobs += 1;
            stats.bytes += size;
        }
        let media_type = if m.media_type.is_empty() {
            mt::OCI_MANIFEST.to_owned()
        } else {
            m.media_type.clone()
        };
        let desc = |name: Option<&Reference>| Desc {
            media_type: media_type.clone(),
            digest: img.manifest.to_string(),
            size: raw.len() as u64,
            annotations: name
                .map(|n| {
                    BTreeMap::from([(crate::spec::ANNOTATION_REF_NAME.to_owned(), n.to_string())])
                })
                .unwrap_or_default(),
        };
        if img.names.is_empty() {
            index.push(desc(None));
        }
        for n in &img.names {
            index.push(desc(Some(n)));
        }
        stats.images += 1;
    }
    let idx = OciIndexOut {
        schema_version: 2,
        media_type: mt::OCI_INDEX,
        manifests: index,
    };
    let bytes = serde_json::to_vec(&idx).map_err(|e| ArchiveError::Json {
        file: "index.json".into(),
        source: e,
    })?;
    out.bytes("index.json", &bytes)?;
    Ok(stats)
}

fn write_docker<W: Write>(
    out: &mut TarOut<W>,
    src: &dyn BlobSource,
    images: &[SaveImage],
) -> Result<SaveStats, ArchiveError> {
    let mut stats = SaveStats::default();
    let mut written: HashSet<String> = HashSet::new();
    let mut items = Vec::new();
    for img in images {
        let raw = read_small(src, &img.manifest, "manifest", JSON_LIMIT)?;
        let m: ManifestView = json(&raw, &format!("manifest {}", img.manifest))?;
        if m.manifests.is_some() || mt::is_index(&m.media_type) {
            return Err(ArchiveError::Unsupported(format!(
                "image {} is a multi-platform index: docker-archive holds one platform; save a \
                 platform's manifest or use oci-archive",
                img.manifest
            )));
        }
        let Some(config) = &m.config else {
            return Err(ArchiveError::Unsupported(format!(
                "manifest {} has no config",
                img.manifest
            )));
        };
        let cd = parse_digest(&config.digest, "manifest")?;
        let craw = read_small(src, &cd, "config", JSON_LIMIT)?;
        let cv: ConfigView = json(&craw, &format!("config {cd}"))?;
        if cv.rootfs.diff_ids.len() != m.layers.len() {
            return Err(ArchiveError::Unsupported(format!(
                "image {}: {} layers but {} diff ids in its config",
                img.manifest,
                m.layers.len(),
                cv.rootfs.diff_ids.len()
            )));
        }
        let config_name = format!("{}.json", cd.hex());
        if written.insert(config_name.clone()) {
            out.bytes(&config_name, &craw)?;
            stats.blobs += 1;
            stats.bytes += craw.len() as u64;
        }
        let mut layers = Vec::new();
        for (l, diff) in m.layers.iter().zip(&cv.rootfs.diff_ids) {
            let ld = parse_digest(&l.digest, "manifest")?;
            let diff_id = parse_digest(diff, "config")?;
            let name = format!("{}.tar", diff_id.hex());
            layers.push(name.clone());
            if !written.insert(name.clone()) {
                continue;
            }
            let compression = mt::layer_compression(&l.media_type).ok_or_else(|| {
                ArchiveError::Unsupported(format!(
                    "layer {ld} has media type `{}`, not a layer",
                    l.media_type
                ))
            })?;
            let what = format!("layer of image {}", img.manifest);
            let size = if compression == Compression::None {
                l.size
            } else {
                // First pass: the uncompressed size, and the diff id checked.
                let (r, _) = open_verified(src, &ld, &what)?;
                let mut h =
                    HashingReader::new(compress::decompress(r, compression).map_err(|e| {
                        ArchiveError::Blob {
                            digest: ld.clone(),
                            what: what.clone(),
                            source: e,
                        }
                    })?);
                io::copy(&mut h, &mut io::sink()).map_err(|e| ArchiveError::Blob {
                    digest: ld.clone(),
                    what: what.clone(),
                    source: e,
                })?;
                let (actual, size) = h.finish();
                if actual != diff_id {
                    return Err(ArchiveError::DiffId {
                        layer: ld.to_string(),
                        expected: diff_id.to_string(),
                        actual,
                    });
                }
                size
            };
            let (r, _) = open_verified(src, &ld, &what)?;
            let mut data =
                compress::decompress(r, compression).map_err(|e| ArchiveError::Blob {
                    digest: ld.clone(),
                    what: what.clone(),
                    source: e,
                })?;
            out.stream(&name, size, &mut data)?;
            stats.blobs += 1;
            stats.bytes += size;
        }
        let tags: Vec<String> = img
            .names
            .iter()
            .filter(|n| n.tag().is_some())
            .map(|n| n.without_digest().to_string())
            .collect();
        items.push(DockerManifestItem {
            config: config_name,
            repo_tags: (!tags.is_empty()).then_some(tags),
            layers,
        });
        stats.images += 1;
    }
    let bytes = serde_json::to_vec(&items).map_err(|e| ArchiveError::Json {
        file: "manifest.json".into(),
        source: e,
    })?;
    out.bytes("manifest.json", &bytes)?;
    Ok(stats)
}
