//! fsck, gc, info.

use imago_cli::output::print_lines;
use imago_cli::{GlobalOpts, OutputFormat};
use imago_sandbox::HostProbe;
use imago_store::{GcOptions, Store};
use serde_json::{json, Value};

use crate::common::{human_size, in_mapping, msg, open_store, print_json, Res};

pub fn fsck(g: &GlobalOpts, format: OutputFormat) -> Res<()> {
    let store = open_store(g)?;
    let r = store.fsck()?;
    match format {
        OutputFormat::Json => print_json(&r)?,
        OutputFormat::Table => {
            let mut lines: Vec<String> = r
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.object, p.what))
                .collect();
            lines.push(format!(
                "checked {} blobs, {} images, {} unpacked layers: {} problems{}",
                r.blobs_checked,
                r.images_checked,
                r.layers_checked,
                r.problems.len(),
                if r.temp_debris > 0 { format!(" ({} temp entries of other processes; `iimage gc` removes them when those are gone)", r.temp_debris) } else { String::new() }
            ));
            print_lines(lines)?;
        }
    }
    if r.is_clean() {
        Ok(())
    } else {
        Err(msg(format!(
            "the store at {} has {} problems; `iimage fsck --repair` takes the damage out (or remove the damaged images with `iimage rm` and `iimage gc`), then load or pull them again",
            store.root().display(),
            r.problems.len()
        )))
    }
}

/// `iimage fsck --repair`: what was taken out, then fsck's verdict on what is left.
pub fn repair(g: &GlobalOpts, format: OutputFormat, wait: std::time::Duration) -> Res<()> {
    let store = open_store(g)?;
    let root = store.root().to_path_buf();
    // Removing unpacked layers needs the mapping their files are owned under, as gc.
    let r = in_mapping(move |_| Store::open(&root)?.repair(wait))?;
    match format {
        OutputFormat::Json => print_json(&r)?,
        OutputFormat::Table => {
            let mut lines: Vec<String> = (r.blobs_deleted.iter())
                .map(|d| format!("deleted damaged blob {d}"))
                .collect();
            lines.extend(
                (r.images_dropped.iter()).map(|i| format!("dropped {i} — pull or load it again")),
            );
            lines.extend(
                (r.layers_removed.iter())
                    .map(|c| format!("removed unpacked layer {c} (unpacked again when needed)")),
            );
            if r.layers_in_use > 0 {
                lines.push(format!(
                    "kept {} broken unpacked layers a running container uses: stop it, then repair again",
                    r.layers_in_use
                ));
            }
            lines.push(format!(
                "gc removed {} blobs ({}), {} unpacked layers, {} temp entries",
                r.gc.blobs_removed.len(),
                human_size(r.gc.bytes_freed),
                r.gc.layers_removed.len(),
                r.gc.temp_removed
            ));
            lines.extend(
                r.after
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.object, p.what)),
            );
            lines.push(format!(
                "checked {} blobs, {} images, {} unpacked layers: {} problems",
                r.after.blobs_checked,
                r.after.images_checked,
                r.after.layers_checked,
                r.after.problems.len()
            ));
            print_lines(lines)?;
        }
    }
    if r.after.is_clean() {
        Ok(())
    } else {
        Err(msg(format!(
            "the store at {} still has {} problems after the repair",
            store.root().display(),
            r.after.problems.len()
        )))
    }
}

/// `iimage gc` flags.
#[derive(Debug, Clone, Copy)]
pub struct GcFlags {
    pub layers: bool,
    pub dry_run: bool,
    pub build_cache: bool,
    pub force: bool,
    pub wait: std::time::Duration,
}

pub fn gc(g: &GlobalOpts, f: GcFlags) -> Res<()> {
    let store = open_store(g)?;
    let root = store.root().to_path_buf();
    let r = in_mapping(move |_| {
        Store::open(&root)?.gc(&GcOptions {
            all_layers: f.layers,
            dry_run: f.dry_run,
            build_cache: f.build_cache,
            force: f.force,
            wait: f.wait,
        })
    })?;
    for d in &r.damaged {
        eprintln!("warning: damaged: {d}");
    }
    if !r.damaged.is_empty() && !f.force {
        eprintln!(
            "warning: the store is damaged: gc refuses to run without --force; run `iimage fsck`"
        );
    }
    let verb = if f.dry_run { "would remove" } else { "removed" };
    print_lines([format!(
        "{verb} {} blobs ({}), {} unpacked layers, {} build cache entries, {} temp entries",
        r.blobs_removed.len(),
        human_size(r.bytes_freed),
        r.layers_removed.len(),
        r.cache_removed,
        r.temp_removed
    )])?;
    Ok(())
}

pub fn info(g: &GlobalOpts, format: OutputFormat) -> Res<()> {
    let root = g.store_root()?;
    let probe = HostProbe::detect();
    let (images, mode) = match Store::open(&root) {
        Ok(s) => (
            s.list_images().map(|v| v.len()).ok(),
            s.owner_mode().ok().flatten(),
        ),
        Err(_) => (None, None),
    };
    let store = json!({
        "root": root,
        "images": images,
        "layer_ownership": mode.map(|m| m.as_str()),
    });
    let (driver, driver_line) = storage_driver(&root);
    match format {
        OutputFormat::Json => {
            print_json(&json!({ "store": store, "host": probe, "storage_driver": driver }))?
        }
        OutputFormat::Table => {
            let mut lines = vec![format!("store: {}", root.display())];
            lines.push(driver_line);
            if let Some(n) = images {
                lines.push(format!("images: {n}"));
            }
            if let Some(m) = mode {
                lines.push(format!("unpacked layer ownership: {}", m.as_str()));
            }
            let host = serde_json::to_value(&probe)?;
            if let Value::Object(m) = host {
                for (k, v) in m {
                    if k == "fixes" {
                        continue;
                    }
                    let shown = match &v {
                        Value::Object(o) if o.contains_key("release") => {
                            o["release"].as_str().unwrap_or("?").to_owned()
                        }
                        Value::Object(o) if o.contains_key("start") && o.contains_key("count") => {
                            format!("{}:{}", o["start"], o["count"])
                        }
                        Value::Null => "no".to_owned(),
                        Value::Bool(true) => "yes".to_owned(),
                        Value::Bool(false) => "no".to_owned(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    lines.push(format!("{k}: {shown}"));
                }
            }
            if probe.fixes.is_empty() {
                lines.push("missing: nothing".into());
            }
            for f in &probe.fixes {
                lines.push(format!("missing: {} — {}", f.item, f.text));
            }
            print_lines(lines)?;
        }
    }
    Ok(())
}

/// The storage driver irun and ibuild would use here (without `--storage-driver`) and
/// why: as JSON and as the table's line.
fn storage_driver(root: &std::path::Path) -> (Value, String) {
    use imago_overlay::select::{name, Source};
    let s = match imago_cli::storage::choose(None, root) {
        Ok(s) => s,
        Err(e) => {
            return (
                json!({ "error": e.to_string() }),
                format!("storage driver: none: {e}"),
            )
        }
    };
    let cache = imago_cli::storage::cache_file(root);
    let how = match &s.source {
        Source::Probe { cached: true } => format!(
            "probed, cached in {}: {}",
            cache
                .as_ref()
                .map_or("?".into(), |c| c.display().to_string()),
            s.reason
        ),
        Source::Probe { cached: false } => format!("probed: {}", s.reason),
        _ => s.reason.clone(),
    };
    (
        json!({
            "driver": name(s.method),
            "source": s.source,
            "reason": s.reason,
            "probe_cache": cache,
        }),
        format!("storage driver: {} ({how})", name(s.method)),
    )
}
