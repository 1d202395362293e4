//! ls, inspect, rm, prune.

use imago_cli::output::{print_lines, print_table};
use imago_cli::{GlobalOpts, OutputFormat};
use std::time::Duration;

use imago_store::{GcOptions, GcReport, Store, StoreError};
use serde_json::json;

use crate::common::{ago, human_size, in_mapping, open_store, print_json, Res};

pub fn ls(g: &GlobalOpts, quiet: bool, no_trunc: bool, format: OutputFormat) -> Res<()> {
    let store = open_store(g)?;
    let mut images = store.list_images()?;
    images.sort_by(|a, b| b.created().cmp(&a.created()).then(a.id().cmp(b.id())));
    let id_of = |d: &imago_oci::Digest| {
        if no_trunc {
            d.to_string()
        } else {
            d.short().to_owned()
        }
    };
    if quiet {
        let mut ids: Vec<String> = vec![];
        for i in &images {
            let id = id_of(i.id());
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        print_lines(ids)?;
        return Ok(());
    }
    match format {
        OutputFormat::Json => {
            let v: Vec<serde_json::Value> = images
                .iter()
                .map(|i| {
                    json!({
                        "Id": i.id().to_string(),
                        "Names": i.names.iter().map(|n| n.full.clone().unwrap_or_else(|| n.ref_name.clone())).collect::<Vec<_>>(),
                        "RefNames": i.names.iter().map(|n| n.ref_name.clone()).collect::<Vec<_>>(),
                        "Repositories": i.names.iter().map(|n| json!({"Repository": n.repository, "Tag": n.tag})).collect::<Vec<_>>(),
                        "Digest": i.manifest_digest.to_string(),
                        "Created": i.created(),
                        "Size": i.size(),
                    })
                })
                .collect();
            print_json(&v)?;
        }
        OutputFormat::Table => {
            let mut rows = vec![];
            for i in &images {
                let created = ago(i.created());
                let size = human_size(i.size());
                if i.names.is_empty() {
                    rows.push(vec![
                        "<none>".into(),
                        "<none>".into(),
                        id_of(i.id()),
                        created.clone(),
                        size.clone(),
                    ]);
                }
                for n in &i.names {
                    rows.push(vec![
                        n.repository.clone(),
                        n.tag.clone(),
                        id_of(i.id()),
                        created.clone(),
                        size.clone(),
                    ]);
                }
            }
            print_table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows)?;
        }
    }
    Ok(())
}

pub fn inspect(g: &GlobalOpts, inputs: &[String]) -> Res<()> {
    let store = open_store(g)?;
    let mut out = vec![];
    for input in inputs {
        let i = store.resolve(input)?;
        let manifest: serde_json::Value = serde_json::from_slice(&i.manifest_bytes)?;
        let config: serde_json::Value = serde_json::from_slice(&i.config_bytes)?;
        out.push(json!({
            "Id": i.id().to_string(),
            "Names": i.names.iter().map(|n| n.full.clone().unwrap_or_else(|| n.ref_name.clone())).collect::<Vec<_>>(),
            "Digest": i.manifest_digest.to_string(),
            "IndexDigest": i.index_digest.to_string(),
            "MediaType": i.manifest_media_type,
            "Created": i.created(),
            "Size": i.size(),
            "Architecture": config.get("architecture"),
            "Os": config.get("os"),
            "Config": config,
            "Manifest": manifest,
        }));
    }
    print_json(&out)?;
    Ok(())
}

pub fn rm(g: &GlobalOpts, inputs: &[String], force: bool) -> Res<()> {
    let store = open_store(g)?;
    let mut lines = vec![];
    let mut deleted_any = false;
    let mut last_err = None;
    for input in inputs {
        match store.remove_image(input, force) {
            Ok(r) => {
                lines.extend(r.untagged.iter().map(|n| format!("Untagged: {n}")));
                lines.extend(r.deleted.iter().map(|d| format!("Deleted: {d}")));
                deleted_any |= !r.deleted.is_empty();
            }
            Err(e) => {
                // Every failure but the last is printed here; the last is the exit report.
                if let Some(prev) = last_err.replace(e) {
                    eprintln!("error: {prev}");
                }
            }
        }
    }
    print_lines(lines)?;
    if deleted_any {
        collect(&store)?;
    }
    match last_err {
        Some(e) => Err(Box::new(e)),
        None => Ok(()),
    }
}

/// How long the gc after rm/prune waits for running writers before it is skipped.
const RM_GC_WAIT: Duration = Duration::from_secs(10);

/// The gc after rm/prune: done, or skipped (and why).
#[derive(serde::Serialize, serde::Deserialize)]
enum Collected {
    Done(GcReport),
    Skipped(String),
}

/// gc inside the mapping (unpacked layers may hold files of other ids). A damaged or
/// busy store skips it with a warning rather than failing: the names are removed
/// either way, and a later `iimage gc` collects.
fn collect(store: &Store) -> Res<GcReport> {
    let root = store.root().to_path_buf();
    let opts = GcOptions {
        wait: RM_GC_WAIT,
        ..GcOptions::default()
    };
    let r = in_mapping(move |_| match Store::open(&root)?.gc(&opts) {
        Ok(r) => Ok(Collected::Done(r)),
        Err(
            e @ (StoreError::StoreDamaged { .. }
            | StoreError::StoreBusy { .. }
            | StoreError::IndexDamaged { .. }),
        ) => Ok(Collected::Skipped(e.to_string())),
        Err(e) => Err(e),
    })?;
    match r {
        Collected::Done(r) => Ok(r),
        Collected::Skipped(why) => {
            eprintln!("warning: garbage not collected: {why}");
            Ok(GcReport::default())
        }
    }
}

pub fn prune(g: &GlobalOpts) -> Res<()> {
    let store = open_store(g)?;
    let mut lines = vec![];
    for i in store.list_images()? {
        if i.names.is_empty() {
            let r = store.remove_image(&i.manifest_digest.to_string(), false)?;
            lines.extend(r.deleted.iter().map(|d| format!("Deleted: {d}")));
        }
    }
    let report = collect(&store)?;
    lines.push(format!(
        "Total reclaimed space: {}",
        human_size(report.bytes_freed)
    ));
    print_lines(lines)?;
    Ok(())
}
