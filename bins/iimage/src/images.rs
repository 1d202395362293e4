//! ls, rm, prune (inspect is inspect.rs).

use imago_cli::output::{print_lines, print_table, print_text};
use imago_cli::template::{default_title, Format};
use imago_cli::GlobalOpts;
use std::time::Duration;

use imago_store::{GcOptions, GcReport, Store, StoreError};
use serde_json::json;

use crate::common::{ago, human_size, in_mapping, open_store, parse_rfc3339, Res};

/// docker's column titles for `--format 'table ...'`.
const LS_TITLES: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
];

pub fn ls(g: &GlobalOpts, quiet: bool, no_trunc: bool, format: &str) -> Res<()> {
    let format = Format::parse(format)?;
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
    let rows: Vec<serde_json::Value> = images
        .iter()
        .flat_map(|i| ls_rows(i, &id_of(i.id())))
        .collect();
    let titles = |f: &str| default_title(LS_TITLES, f);
    if let Some(text) = format.render(&rows, &titles)? {
        print_text(&text)?;
        return Ok(());
    }
    let cell = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            ["Repository", "Tag", "ID", "CreatedSince", "Size"]
                .map(|k| cell(r, k))
                .to_vec()
        })
        .collect();
    print_table(
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        &table,
    )?;
    Ok(())
}

/// One row per name (one `<none>` row for an unnamed image), with docker's `images
/// --format json` keys, and `Name`: the name as stored (index.json's ref.name).
fn ls_rows(i: &imago_store::Image, id: &str) -> Vec<serde_json::Value> {
    let created_at = i
        .created()
        .and_then(parse_rfc3339)
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    let row = |repo: &str, tag: &str, name: &str| {
        json!({
            "Containers": "N/A",
            "CreatedAt": created_at,
            "CreatedSince": ago(i.created()),
            "Digest": i.manifest_digest.to_string(),
            "ID": id,
            "Name": name,
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": human_size(i.size()),
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(i.size()),
        })
    };
    if i.names.is_empty() {
        return vec![row("<none>", "<none>", "")];
    }
    i.names
        .iter()
        .map(|n| row(&n.repository, &n.tag, &n.ref_name))
        .collect()
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
