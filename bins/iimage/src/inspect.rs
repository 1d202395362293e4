//! `iimage inspect`: images as a JSON array in docker's shape (Id, RepoTags,
//! RepoDigests, Created, Architecture, Os, Config, RootFS, Size, plus podman's Digest),
//! or each through a `--format` template (`json`: the array); `--raw` prints imago's stored view instead
//! (the OCI manifest and config as stored, with the index and manifest digests).
//!
//! Never: changes the store.

use imago_cli::output::print_text;
use imago_cli::template::Template;
use imago_cli::GlobalOpts;
use imago_store::Image;
use serde_json::{json, Value};

use crate::common::{open_store, print_json, Res};

/// The keys of the OCI config's `config` that docker's `Config` shows.
const CONFIG_KEYS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "ExposedPorts",
    "Labels",
    "StopSignal",
    "User",
    "Volumes",
    "WorkingDir",
];

/// One image as `docker image inspect` shows it.
pub fn docker_shape(i: &Image) -> Res<Value> {
    let config: Value = serde_json::from_slice(&i.config_bytes)?;
    let inner = config.get("config");
    let mut shown = serde_json::Map::new();
    for k in CONFIG_KEYS {
        let v = inner
            .and_then(|c| c.get(*k))
            .cloned()
            .unwrap_or(Value::Null);
        // docker prints empty strings, not null, for its string fields.
        let v = match (*k, v) {
            ("User" | "WorkingDir" | "StopSignal", Value::Null) => Value::String(String::new()),
            (_, v) => v,
        };
        shown.insert((*k).to_owned(), v);
    }
    let mut repos: Vec<String> = vec![];
    for n in &i.names {
        let d = format!("{}@{}", n.repository, i.manifest_digest);
        if n.full.is_some() && !repos.contains(&d) {
            repos.push(d);
        }
    }
    let layers: Vec<String> = i.diff_ids()?.iter().map(ToString::to_string).collect();
    let text = |k: &str| {
        config
            .get(k)
            .cloned()
            .unwrap_or(Value::String(String::new()))
    };
    let mut v = json!({
        "Id": i.id().to_string(),
        "RepoTags": i.names.iter().filter(|n| n.full.is_some()).map(|n| format!("{}:{}", n.repository, n.tag)).collect::<Vec<_>>(),
        "RepoDigests": repos,
        "Parent": "",
        "Comment": "",
        "Created": i.created().unwrap_or_default(),
        "Author": text("author"),
        "Config": shown,
        "Architecture": text("architecture"),
        "Os": text("os"),
        "Size": i.size(),
        "RootFS": {"Type": "layers", "Layers": layers},
        "Digest": i.manifest_digest.to_string(),
    });
    // docker leaves Variant out when the image has none.
    if let (Some(o), Some(variant)) = (v.as_object_mut(), config.get("variant")) {
        o.insert("Variant".into(), variant.clone());
    }
    Ok(v)
}

/// imago's stored view of one image (`--raw`).
fn raw_shape(i: &Image) -> Res<Value> {
    let manifest: Value = serde_json::from_slice(&i.manifest_bytes)?;
    let config: Value = serde_json::from_slice(&i.config_bytes)?;
    Ok(json!({
        "Id": i.id().to_string(),
        "Names": i.names.iter().map(|n| n.full.clone().unwrap_or_else(|| n.ref_name.clone())).collect::<Vec<_>>(),
        "Digest": i.manifest_digest.to_string(),
        "IndexDigest": i.index_digest.to_string(),
        "MediaType": i.manifest_media_type,
        "Created": i.created(),
        "Size": i.size(),
        "Config": config,
        "Manifest": manifest,
    }))
}

pub fn inspect(g: &GlobalOpts, inputs: &[String], format: Option<&str>, raw: bool) -> Res<()> {
    // A bad template fails before any image is read.
    let template = match format {
        None | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let store = open_store(g)?;
    let mut out = vec![];
    for input in inputs {
        let (_, i) = imago_cli::shortnames::find_stored(&store, input)?;
        out.push(if raw {
            raw_shape(&i)?
        } else {
            docker_shape(&i)?
        });
    }
    match template {
        None => print_json(&out),
        Some(t) => Ok(print_text(&t.render_each(&out)?)?),
    }
}
