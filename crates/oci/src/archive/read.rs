//! Reading docker-archive and oci-archive (see the module docs of `archive`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};

use super::*;
use crate::compress;
use crate::digest::HashingReader;
use crate::media_type::{self as mt, ManifestFormat};

/// What the read pass learned about one regular file of the archive.
#[derive(Debug, Clone)]
struct Stored {
    digest: Digest,
    size: u64,
    compression: Compression,
    /// Known when the file was an uncompressed tar (its digest before compression).
    diff_id: Option<Digest>,
}

/// Clean an archive path lexically (`./a//b` → `a/b`; `..` pops, never above the root:
/// these are keys, never file system paths).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

const SMALL_FILES: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];

/// Read an archive from `r` (either format, any entry order), putting every blob into
/// `sink`. Returns the images found, in archive order. A `.tar.gz`/zstd-compressed
/// archive is accepted too.
pub fn read_archive<R: Read, S: BlobSink + BlobSource>(
    r: R,
    sink: &mut S,
    opts: &LoadOptions,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let (_, r) = compress::auto_decompress(r).map_err(|e| ArchiveError::Read {
        at: "(start)".into(),
        source: e,
    })?;
    let mut archive = tar::Archive::new(crate::layer::guard::TarGuard::new(r));
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut stored: HashMap<String, Stored> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut blobs_seen: HashSet<Digest> = HashSet::new();
    let mut at = String::from("(start)");
    let entries = archive.entries().map_err(|e| ArchiveError::Read {
        at: at.clone(),
        source: e,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Read {
            at: at.clone(),
            source: e,
        })?;
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        at.clone_from(&path);
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    clean(&format!("{dir}/{target}"))
                } else {
                    clean(&target)
                };
                links.insert(path, resolved);
                continue;
            }
            t if t.is_file() => {}
            _ => continue,
        }
        if SMALL_FILES.contains(&path.as_str()) {
            if entry.size() > opts.max_json {
                return Err(ArchiveError::TooLarge {
                    file: path,
                    limit: opts.max_json,
                });
            }
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| ArchiveError::Read {
                    at: path.clone(),
                    source: e,
                })?;
            small.insert(path, buf);
            continue;
        }
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let expected = Digest::from_hex(hex).map_err(|_| {
                ArchiveError::Unsupported(format!(
                    "`{path}`: a blob name must be 64 lowercase hex digits"
                ))
            })?;
            let (d, size) =
                sink.put_blob(&mut entry, Some(&expected))
                    .map_err(|e| ArchiveError::Put {
                        file: path.clone(),
                        source: e,
                    })?;
            blobs_seen.insert(d.clone());
            stored.insert(
                path,
                Stored {
                    digest: d,
                    size,
                    compression: Compression::None,
                    diff_id: None,
                },
            );
            continue;
        }
        if path.starts_with("blobs/") {
            return Err(ArchiveError::Unsupported(format!(
                "`{path}`: only sha256 blobs are supported"
            )));
        }
        // Legacy (pre-1.10) per-layer metadata of docker-archives: not needed, not stored.
        if path.ends_with("/json") || path.ends_with("/VERSION") || path == "VERSION" {
            continue;
        }
        // A docker-archive file: a config or a layer.
        let s = put_docker_file(&mut entry, &path, sink, opts)?;
        stored.insert(path, s);
    }
    if let Some(index) = small.get("index.json") {
        load_oci(index, sink, &blobs_seen, opts)
    } else if let Some(manifest) = small.get("manifest.json") {
        load_docker(manifest, sink, &stored, &links, opts)
    } else {
        Err(ArchiveError::NotAnArchive)
    }
}

fn put_docker_file<R: Read, S: BlobSink>(
    r: &mut R,
    path: &str,
    sink: &mut S,
    opts: &LoadOptions,
) -> Result<Stored, ArchiveError> {
    let perr = |e| ArchiveError::Put {
        file: path.to_owned(),
        source: e,
    };
    // Peek 512 bytes: compression magic, or the ustar magic of an uncompressed tar.
    let mut head = Vec::with_capacity(512);
    r.by_ref()
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| ArchiveError::Read {
            at: path.to_owned(),
            source: e,
        })?;
    let compression = Compression::detect(&head);
    let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
    let mut chained = io::Cursor::new(head).chain(r);
    match (compression, is_tar, opts.compress_layers) {
        (Compression::None, true, Some((c, level))) if c != Compression::None => {
            let mut hashing = HashingReader::new(&mut chained);
            let (digest, size) = {
                let mut enc: Box<dyn Read> = match c {
                    Compression::Gzip => {
                        Box::new(flate2::GzBuilder::new().read(&mut hashing, level.gzip()))
                    }
                    _ => Box::new(
                        zstd::stream::read::Encoder::new(&mut hashing, level.zstd())
                            .map_err(perr)?,
                    ),
                };
                sink.put_blob(&mut enc, None).map_err(perr)?
            };
            let (diff_id, _) = hashing.finish();
            Ok(Stored {
                digest,
                size,
                compression: c,
                diff_id: Some(diff_id),
            })
        }
        _ => {
            let (digest, size) = sink.put_blob(&mut chained, None).map_err(perr)?;
            let diff_id = (compression == Compression::None && is_tar).then(|| digest.clone());
            Ok(Stored {
                digest,
                size,
                compression,
                diff_id,
            })
        }
    }
}

/// The blob must be in the sink: from this archive, or already stored before.
fn require_blob<S: BlobSource>(
    sink: &S,
    seen: &HashSet<Digest>,
    d: &Digest,
    needed_by: &str,
) -> Result<(), ArchiveError> {
    if seen.contains(d) || sink.open_blob(d).is_ok() {
        Ok(())
    } else {
        Err(ArchiveError::Missing {
            file: format!("blobs/sha256/{}", d.hex()),
            needed_by: needed_by.to_owned(),
        })
    }
}

fn check_manifest<S: BlobSource>(
    sink: &S,
    seen: &HashSet<Digest>,
    d: &Digest,
    opts: &LoadOptions,
    depth: u32,
) -> Result<String, ArchiveError> {
    let raw = read_small(sink, d, "manifest", opts.max_json)?;
    let m: ManifestView = json(&raw, &format!("blobs/sha256/{}", d.hex()))?;
    if mt::is_schema1(&m.media_type) {
        return Err(ArchiveError::Unsupported(format!(
            "manifest {d} is Docker schema 1, which imago does not support"
        )));
    }
    if let Some(children) = m.manifests {
        if depth > 3 {
            return Err(ArchiveError::Unsupported(format!(
                "index {d} nests indexes too deeply"
            )));
        }
        // A saved multi-platform index may carry only some platforms' content (docker >= 25
        // exports the local one): accept it when at least one child is complete.
        let mut first_err = None;
        let mut complete = 0;
        for c in children {
            let cd = parse_digest(&c.digest, "index")?;
            let r = require_blob(sink, seen, &cd, &format!("index {d}"))
                .and_then(|()| check_manifest(sink, seen, &cd, opts, depth + 1));
            match r {
                Ok(_) => complete += 1,
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        if complete == 0 {
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        return Ok(if m.media_type.is_empty() {
            mt::OCI_INDEX.into()
        } else {
            m.media_type
        });
    }
    let Some(config) = m.config else {
        return Err(ArchiveError::Unsupported(format!(
            "manifest {d} has no config"
        )));
    };
    for b in std::iter::once(&config).chain(&m.layers) {
        if mt::is_foreign_layer(&b.media_type) {
            continue;
        }
        let bd = parse_digest(&b.digest, "manifest")?;
        require_blob(sink, seen, &bd, &format!("manifest {d}"))?;
    }
    Ok(if m.media_type.is_empty() {
        mt::OCI_MANIFEST.into()
    } else {
        m.media_type
    })
}

fn load_oci<S: BlobSink + BlobSource>(
    index: &[u8],
    sink: &mut S,
    seen: &HashSet<Digest>,
    opts: &LoadOptions,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let idx: IndexView = json(index, "index.json")?;
    let mut out: Vec<LoadedImage> = Vec::new();
    for desc in idx.manifests {
        let d = parse_digest(&desc.digest, "index.json")?;
        require_blob(sink, seen, &d, "index.json")?;
        let media_type = check_manifest(sink, seen, &d, opts, 0)?;
        // containerd's annotation holds the full name (docker >= 25 writes it beside a
        // bare-tag ref.name); prefer it.
        let names: Vec<String> = ["io.containerd.image.name", crate::spec::ANNOTATION_REF_NAME]
            .iter()
            .filter_map(|k| desc.annotations.get(*k).cloned())
            .take(1)
            .collect();
        // One image per manifest; several descriptors of it add names.
        if let Some(prev) = out.iter_mut().find(|i| i.digest == d) {
            for n in names {
                if !prev.names.contains(&n) {
                    prev.names.push(n);
                }
            }
        } else {
            out.push(LoadedImage {
                format: ArchiveFormat::OciArchive,
                media_type,
                digest: d,
                size: desc.size,
                names,
            });
        }
    }
    Ok(out)
}

fn load_docker<S: BlobSink + BlobSource>(
    manifest: &[u8],
    sink: &mut S,
    stored: &HashMap<String, Stored>,
    links: &HashMap<String, String>,
    opts: &LoadOptions,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let items: Vec<DockerManifestItem> = json(manifest, "manifest.json")?;
    let find = |p: &str| -> Result<&Stored, ArchiveError> {
        let mut p = clean(p);
        for _ in 0..16 {
            if let Some(s) = stored.get(&p) {
                return Ok(s);
            }
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(ArchiveError::Missing {
            file: p,
            needed_by: "manifest.json".into(),
        })
    };
    let mut out = Vec::new();
    for item in items {
        let config = find(&item.config)?;
        let craw = read_small(sink, &config.digest, "config", opts.max_json)?;
        let cv: ConfigView = json(&craw, &item.config)?;
        if cv.rootfs.diff_ids.len() != item.layers.len() {
            return Err(ArchiveError::Unsupported(format!(
                "`{}` lists {} layers but its config has {} diff ids",
                item.config,
                item.layers.len(),
                cv.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (path, diff) in item.layers.iter().zip(&cv.rootfs.diff_ids) {
            let s = find(path)?;
            if let Some(actual) = &s.diff_id {
                if actual.to_string() != *diff {
                    return Err(ArchiveError::DiffId {
                        layer: path.clone(),
                        expected: diff.clone(),
                        actual: actual.clone(),
                    });
                }
            }
            let media_type = ManifestFormat::Oci
                .layer(s.compression)
                .unwrap_or(mt::OCI_LAYER_TAR);
            layers.push(Desc {
                media_type: media_type.into(),
                digest: s.digest.to_string(),
                size: s.size,
                annotations: BTreeMap::new(),
            });
        }
        let m = OciManifestOut {
            schema_version: 2,
            media_type: mt::OCI_MANIFEST,
            config: Desc {
                media_type: mt::OCI_CONFIG.into(),
                digest: config.digest.to_string(),
                size: config.size,
                annotations: BTreeMap::new(),
            },
            layers,
        };
        let bytes = serde_json::to_vec(&m).map_err(|e| ArchiveError::Json {
            file: "manifest".into(),
            source: e,
        })?;
        let (digest, size) = sink
            .put_blob(&mut &bytes[..], Some(&Digest::of(&bytes)))
            .map_err(|e| ArchiveError::Put {
                file: format!("manifest of `{}`", item.config),
                source: e,
            })?;
        out.push(LoadedImage {
            format: ArchiveFormat::DockerArchive,
            media_type: mt::OCI_MANIFEST.into(),
            digest,
            size,
            names: item.repo_tags.unwrap_or_default(),
        });
    }
    Ok(out)
}
