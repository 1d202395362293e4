//! ls, rm, prune (inspect is inspect.rs).

use imago_cli::output::{print_lines, print_table, print_text};
use imago_cli::template::{default_title, Format};
use imago_cli::GlobalOpts;
use std::time::Duration;

use imago_store::{GcOptions, GcReport, Store, StoreError};
use serde_json::json;

use crate::common::{ago, human_size, in_mapping, open_store, parse_rfc3339, Res};
use crate::filter::Selection;

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

/// `iimage ls`'s options.
pub struct LsOpts {
    pub quiet: bool,
    pub no_trunc: bool,
    pub format: String,
    pub filters: Vec<String>,
    pub digests: bool,
    pub reference: Option<String>,
}

pub fn ls(g: &GlobalOpts, o: &LsOpts) -> Res<()> {
    let format = Format::parse(&o.format)?;
    let store = open_store(g)?;
    let created_of = |input: &str| -> Res<Option<i64>> {
        Ok(store.resolve(input)?.created().and_then(parse_rfc3339))
    };
    let selection = Selection::parse(&o.filters, o.reference.as_deref(), created_of)?;
    let mut images = store.list_images()?;
    images.retain(|i| selection.keeps_image(i));
    for i in &mut images {
        i.names.retain(|n| selection.keeps_name(n));
    }
    images.sort_by(|a, b| b.created().cmp(&a.created()).then(a.id().cmp(b.id())));
    let no_trunc = o.no_trunc;
    let id_of = |d: &imago_oci::Digest| {
        if no_trunc {
            d.to_string()
        } else {
            d.short().to_owned()
        }
    };
    if o.quiet {
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
    let mut columns = vec!["Repository", "Tag", "ID", "CreatedSince", "Size"];
    if o.digests {
        columns.insert(2, "Digest");
    }
    let cell = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|k| cell(r, k)).collect())
        .collect();
    let headers: Vec<String> = columns
        .iter()
        .map(|c| default_title(LS_TITLES, c))
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    print_table(&headers, &table)?;
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
        // A short name removes the stored name it means (registries.conf); one the
        // store lacks is removed as typed, so the store says what is wrong with it.
        let name = match imago_cli::shortnames::find_stored(&store, input) {
            Ok((name, _)) => name,
            Err(_) => input.clone(),
        };
        match store.remove_image(&name, force) {
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

/// Remove unnamed images; with `all`, every image no container (running or not) was
/// made from, as `docker image prune -a`.
pub fn prune(g: &GlobalOpts, all: bool) -> Res<()> {
    let store = open_store(g)?;
    let in_use: Vec<String> = match all {
        true => imago_runtime::Containers::new(store.root())
            .list()
            .into_iter()
            .filter_map(|c| c.image_id)
            .collect(),
        false => vec![],
    };
    let mut lines = vec![];
    // A shared read-only store's images are listed but never removed from here.
    for i in store
        .list_images()?
        .into_iter()
        .filter(|i| i.origin.is_none())
    {
        let unused = all && !in_use.contains(&i.id().to_string());
        if i.names.is_empty() || unused {
            // Every name goes with it: prune -a removes images, not just a tag.
            let r = store.remove_image(&i.manifest_digest.to_string(), true)?;
            lines.extend(r.untagged.iter().map(|n| format!("Untagged: {n}")));
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
