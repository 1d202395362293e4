//! import, export, save, load: arguments in, one imago_store::transfer call (inside the
//! user's id mapping where layers are unpacked), lines out.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;

use imago_builder::change;
use imago_cli::output::print_lines;
use imago_cli::GlobalOpts;
use imago_oci::archive::ArchiveFormat;
use imago_store::transfer::DEFAULT_IMPORT_MAX_SIZE;
use imago_store::{ImportOptions, RootfsSource, StoreError, UnpackLimits};

use crate::common::{in_mapping, msg, open_store, Res};

pub fn import(
    g: &GlobalOpts,
    source: &str,
    name: Option<&str>,
    changes: &[String],
    message: Option<&str>,
    max_size: Option<u64>,
) -> Res<()> {
    // Validate everything cheap before touching the store.
    let mut config = serde_json::Map::new();
    for c in changes {
        change::apply(&mut config, c)?;
    }
    if let Some(n) = name {
        imago_store::names::ref_name_for(n)?;
    }
    let store = open_store(g)?;
    let src = match source {
        "-" => None,
        p => Some(RootfsSource::path(Path::new(p))?),
    };
    let opts = ImportOptions {
        name: name.map(str::to_owned),
        config,
        message: message.map(str::to_owned),
        limits: UnpackLimits {
            max_bytes: Some(max_size.unwrap_or(DEFAULT_IMPORT_MAX_SIZE)),
            allow_devices: false,
        },
    };
    let imported = in_mapping(move |mode| {
        // stdin is read in the mapping child, which inherits it.
        let src = src.unwrap_or_else(|| RootfsSource::Stream {
            reader: Box::new(io::stdin().lock()),
            name: "<stdin>".into(),
        });
        store.import_rootfs(src, &opts, mode)
    })?;
    print_lines([imported.id.to_string()])?;
    Ok(())
}

pub fn export(g: &GlobalOpts, image: &str, out: Option<&Path>) -> Res<()> {
    let store = open_store(g)?;
    let (_, img) = imago_cli::shortnames::find_stored(&store, image)?;
    let w = output(out, "a tar")?;
    let r = in_mapping(move |mode| store.export_rootfs(&img, mode, w));
    if r.is_err() {
        if let Some(p) = out {
            // The error is `r`; this only avoids leaving a partial tar under the name.
            let _ = std::fs::remove_file(p);
        }
    }
    r?;
    Ok(())
}

pub fn save(g: &GlobalOpts, inputs: &[String], out: Option<&Path>, format: &str) -> Res<()> {
    let format: ArchiveFormat = format.parse().map_err(msg)?;
    let store = open_store(g)?;
    match out {
        Some(p) => store.save_images_to_file(inputs, format, p)?,
        None => {
            refuse_terminal(io::stdout().is_terminal(), "an archive")?;
            let mut w = io::BufWriter::new(io::stdout().lock());
            let stats = store.save_images(inputs, format, &mut w)?;
            w.flush()?;
            stats
        }
    };
    Ok(())
}

pub fn load(g: &GlobalOpts, input: Option<&Path>, quiet: bool) -> Res<()> {
    let store = open_store(g)?;
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
    let loaded = store.load_archive(reader)?;
    let mut lines = vec![];
    for img in &loaded {
        for (n, e) in &img.refused {
            eprintln!("warning: image {} keeps no name `{n}`: {e}", img.id.short());
        }
        if quiet {
            lines.push(img.id.to_string());
            continue;
        }
        for t in &img.names {
            let shown = t.full.clone().unwrap_or_else(|| t.ref_name.clone());
            lines.push(format!("Loaded image: {shown}"));
        }
        if img.names.is_empty() {
            lines.push(format!("Loaded image ID: {}", img.id));
        }
    }
    print_lines(lines)?;
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
            refuse_terminal(io::stdout().is_terminal(), what)?;
            Ok(Box::new(io::BufWriter::new(io::stdout())))
        }
    }
}

fn refuse_terminal(is_terminal: bool, what: &str) -> Res<()> {
    if is_terminal {
        return Err(msg(format!(
            "refusing to write {what} to a terminal: use -o FILE or redirect stdout"
        )));
    }
    Ok(())
}
