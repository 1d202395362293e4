//! import, export, save, load.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;

use imago_cli::output::print_lines;
use imago_cli::GlobalOpts;
use imago_oci::archive::{self, ArchiveFormat, LoadOptions, SaveImage};
use imago_oci::layer::{self, PackOptions};
use imago_oci::Reference;
use imago_store::{Store, StoreError, UnpackLimits};
use serde_json::{json, Map, Value};

use crate::change;
use crate::common::{in_mapping, msg, open_store, Res};

/// Default size cap of an imported layer: 64 GiB apparent.
const DEFAULT_MAX_SIZE: u64 = 64 << 30;

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn other(what: impl std::fmt::Display) -> StoreError {
    StoreError::Other {
        what: what.to_string(),
    }
}

pub fn import(
    g: &GlobalOpts,
    source: &str,
    name: Option<&str>,
    changes: &[String],
    message: Option<&str>,
    max_size: Option<u64>,
) -> Res<()> {
    // Validate everything cheap before touching the store.
    let mut cfg = Map::new();
    for c in changes {
        change::apply(&mut cfg, c).map_err(msg)?;
    }
    if let Some(n) = name {
        imago_store::names::ref_name_for(n)?;
    }
    let store = open_store(g)?;
    let src_path = (source != "-").then(|| Path::new(source).to_path_buf());
    if let Some(p) = &src_path {
        std::fs::metadata(p).map_err(|e| StoreError::Io {
            op: "open import source",
            path: p.clone(),
            source: e,
        })?;
    }
    let root = store.root().to_path_buf();
    let limits = UnpackLimits {
        max_bytes: Some(max_size.unwrap_or(DEFAULT_MAX_SIZE)),
        allow_devices: false,
    };
    let message = message.map(str::to_owned);
    let name = name.map(str::to_owned);
    let (id, _manifest) = in_mapping(move |mode| {
        let store = Store::open(&root)?;
        let _pin = store.pin()?;
        let imported = match &src_path {
            Some(p) if p.is_dir() => {
                // Pack the directory into a temp tar in the store, then import that.
                let tmp = store.temp_path("import.tar");
                let r = (|| {
                    let f = File::create(&tmp).map_err(|e| StoreError::Io {
                        op: "create",
                        path: tmp.clone(),
                        source: e,
                    })?;
                    let opts = PackOptions {
                        owner: mode,
                        default_owner: Some((0, 0)),
                        ..PackOptions::default()
                    };
                    layer::pack(p, io::BufWriter::new(f), &opts)
                        .map_err(|e| other(format!("pack directory {}: {e}", p.display())))?;
                    let f = File::open(&tmp).map_err(|e| StoreError::Io {
                        op: "open",
                        path: tmp.clone(),
                        source: e,
                    })?;
                    store.import_layer(io::BufReader::new(f), None, mode, &limits)
                })();
                let _ = std::fs::remove_file(&tmp);
                r?
            }
            Some(p) => {
                let f = File::open(p).map_err(|e| StoreError::Io {
                    op: "open",
                    path: p.clone(),
                    source: e,
                })?;
                let (_, plain) = imago_oci::compress::auto_decompress(io::BufReader::new(f))
                    .map_err(|e| StoreError::Io {
                        op: "read",
                        path: p.clone(),
                        source: e,
                    })?;
                store.import_layer(plain, None, mode, &limits)?
            }
            None => {
                let (_, plain) =
                    imago_oci::compress::auto_decompress(io::BufReader::new(io::stdin().lock()))
                        .map_err(|e| StoreError::Io {
                            op: "read",
                            path: "<stdin>".into(),
                            source: e,
                        })?;
                store.import_layer(plain, None, mode, &limits)?
            }
        };
        let created =
            imago_store::images::rfc3339(u64::try_from(imported.newest_mtime).unwrap_or(0));
        let mut history = json!({ "created": created, "created_by": "iimage import" });
        if let Some(m) = &message {
            history["comment"] = Value::from(m.clone());
        }
        let config = json!({
            "created": created,
            "architecture": host_arch(),
            "os": "linux",
            "config": Value::Object(cfg),
            "rootfs": { "type": "layers", "diff_ids": [imported.diff_id] },
            "history": [history],
        });
        let bytes = serde_json::to_vec(&config).map_err(other)?;
        let manifest = store.put_image_raw(&bytes, &[imported.layer_ref()])?;
        if let Some(n) = &name {
            store.tag(n, &manifest)?;
        }
        let id = imago_oci::Digest::of(&bytes);
        Ok((id.to_string(), manifest.to_string()))
    })?;
    print_lines([id])?;
    Ok(())
}

/// Open the output: FILE (created by this process) or stdout (refused on a terminal).
fn output(path: Option<&Path>, what: &str) -> Res<Box<dyn Write + Send>> {
    match path {
        Some(p) => Ok(Box::new(io::BufWriter::new(File::create(p).map_err(
            |e| StoreError::Io {
                op: "create",
                path: p.into(),
                source: e,
            },
        )?))),
        None => {
            if io::stdout().is_terminal() {
                return Err(msg(format!(
                    "refusing to write {what} to a terminal: use -o FILE or redirect stdout"
                )));
            }
            Ok(Box::new(io::BufWriter::new(io::stdout())))
        }
    }
}

pub fn export(g: &GlobalOpts, image: &str, out: Option<&Path>) -> Res<()> {
    let store = open_store(g)?;
    let img = store.resolve(image)?;
    let w = output(out, "a tar")?;
    let root = store.root().to_path_buf();
    let manifest = img.index_digest.to_string();
    let r = in_mapping(move |mode| {
        let store = Store::open(&root)?;
        let img = store.resolve(&manifest)?;
        let dirs = store.unpack_layers(
            &img,
            mode,
            &UnpackLimits {
                max_bytes: None,
                allow_devices: false,
            },
        )?;
        let opts = PackOptions {
            owner: mode,
            default_owner: Some((0, 0)),
            ..PackOptions::default()
        };
        let mut w = w;
        let stats = layer::flatten(&dirs, &mut w, &opts)
            .map_err(|e| other(format!("export {}: {e}", img.id().short())))?;
        w.flush().map_err(|e| StoreError::Io {
            op: "write",
            path: "<output>".into(),
            source: e,
        })?;
        Ok(stats.entries)
    });
    if r.is_err() {
        if let Some(p) = out {
            let _ = std::fs::remove_file(p);
        }
    }
    r?;
    Ok(())
}

pub fn save(g: &GlobalOpts, inputs: &[String], out: Option<&Path>, format: &str) -> Res<()> {
    let format: ArchiveFormat = format.parse().map_err(msg)?;
    let store = open_store(g)?;
    let mut images = vec![];
    for input in inputs {
        let img = store.resolve(input)?;
        let names = img
            .names
            .iter()
            .filter(|n| imago_store::names::matches(&n.ref_name, input))
            .filter_map(|n| Reference::parse(&n.ref_name).ok())
            .collect();
        images.push(SaveImage {
            manifest: img.manifest_digest.clone(),
            names,
        });
    }
    match out {
        Some(p) => {
            // Write beside the target, then rename: no half archive under the name.
            let tmp = p.with_file_name(format!(
                ".{}.tmp-{}",
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let r = (|| -> Res<()> {
                let f = File::create(&tmp).map_err(|e| StoreError::Io {
                    op: "create",
                    path: tmp.clone(),
                    source: e,
                })?;
                let mut w = io::BufWriter::new(f);
                archive::write_archive(&mut w, format, &store, &images)?;
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                std::fs::rename(&tmp, p)?;
                Ok(())
            })();
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r
        }
        None => {
            if io::stdout().is_terminal() {
                return Err(msg(
                    "refusing to write an archive to a terminal: use -o FILE or redirect stdout",
                ));
            }
            let mut w = io::BufWriter::new(io::stdout().lock());
            archive::write_archive(&mut w, format, &store, &images)?;
            w.flush()?;
            Ok(())
        }
    }
}

pub fn load(g: &GlobalOpts, input: Option<&Path>, quiet: bool) -> Res<()> {
    let mut store = open_store(g)?;
    let reader: Box<dyn Read> = match input {
        Some(p) => Box::new(io::BufReader::new(File::open(p).map_err(|e| {
            StoreError::Io {
                op: "open",
                path: p.into(),
                source: e,
            }
        })?)),
        None => {
            if io::stdin().is_terminal() {
                return Err(msg(
                    "no archive on stdin: pass -i FILE or pipe one in (iimage load < bb.tar)",
                ));
            }
            Box::new(io::BufReader::new(io::stdin().lock()))
        }
    };
    let pin = store.pin()?;
    let loaded = archive::read_archive(reader, &mut store, &LoadOptions::default())?;
    let mut lines = vec![];
    for l in &loaded {
        let bytes = store.read_blob(&l.digest)?;
        store.put_manifest(&bytes, &l.media_type)?;
        let img = store.resolve(&l.digest.to_string())?;
        let mut named = false;
        for n in &l.names {
            match store.tag(n, &l.digest) {
                Ok(t) => {
                    named = true;
                    if !quiet {
                        lines.push(format!(
                            "Loaded image: {}",
                            t.full.clone().unwrap_or(t.ref_name)
                        ));
                    }
                }
                Err(e) => eprintln!(
                    "warning: image {} keeps no name `{n}`: {e}",
                    img.id().short()
                ),
            }
        }
        if quiet {
            lines.push(img.id().to_string());
        } else if !named {
            lines.push(format!("Loaded image ID: {}", img.id()));
        }
    }
    drop(pin);
    print_lines(lines)?;
    Ok(())
}
