//! `ictr ps`: docker's container list — CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS,
//! PORTS, NAMES; running containers only unless `-a`; `-q` ids; `--format json` one
//! JSON object per line (docker's keys), or a Go template over those objects.

use std::process::ExitCode;

use imago_cli::template::{default_title, Format};
use imago_cli::GlobalOpts;
use imago_runtime::status::{self, Status};
use imago_runtime::{ContainerRecord, Containers, Place, State};

use crate::common::{self, human_duration, now_secs, CtrError};

pub use crate::args::PsArgs as Args;

/// The time a container ended: recorded, else (its monitor died) the last write to its
/// log, else its start.
fn finished_secs(c: &Containers, rec: &ContainerRecord) -> Option<i64> {
    if let Some(t) = rec.finished.as_deref().and_then(common::epoch_secs) {
        return Some(t);
    }
    let started = rec.started.as_deref().and_then(common::epoch_secs);
    let dir = c.dir(&imago_runtime::ContainerId::parse(&rec.id)?);
    let log = std::fs::metadata(imago_runtime::logfile::path(&dir, &rec.id))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
    started.max(log)
}

/// docker's STATUS: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created"; with
/// " (layer gone)" or " (layer on NODE)" when the container's node-local dir is not on
/// this machine.
pub fn status_text(c: &Containers, rec: &ContainerRecord, st: &Status) -> String {
    let text = state_text(c, rec, st);
    let place = imago_runtime::ContainerId::parse(&rec.id).map(|id| c.place(&id));
    match place {
        Some(Place::Gone(_)) => format!("{text} (layer gone)"),
        Some(Place::Elsewhere { node, .. }) => format!("{text} (layer on {node})"),
        Some(Place::Here(_)) | None => text,
    }
}

fn state_text(c: &Containers, rec: &ContainerRecord, st: &Status) -> String {
    let now = now_secs();
    match st.state {
        State::Created => "Created".into(),
        State::Running => {
            let since = rec.started.as_deref().and_then(common::epoch_secs);
            format!("Up {}", human_duration(now - since.unwrap_or(now)))
        }
        State::Exited => {
            let code = st.exit_code.unwrap_or(status::LOST_EXIT_CODE);
            match finished_secs(c, rec) {
                Some(t) => format!("Exited ({code}) {} ago", human_duration(now - t)),
                None => format!("Exited ({code})"),
            }
        }
    }
}

/// docker's COMMAND cell: the command quoted, cut at 20 characters unless `full`.
fn command_text(cmd: &[String], full: bool) -> String {
    let joined = cmd.join(" ");
    let shown = if !full && joined.chars().count() > 20 {
        let cut: String = joined.chars().take(19).collect();
        format!("{cut}…")
    } else {
        joined
    };
    format!("\"{shown}\"")
}

fn run_ps(global: &GlobalOpts, a: &Args) -> Result<(), CtrError> {
    let format = Format::parse(&a.format)?;
    let c = common::containers(global)?;
    let mut rows: Vec<(ContainerRecord, Status)> = c
        .list()
        .into_iter()
        .map(|r| {
            let s = status::of(&r);
            (r, s)
        })
        .collect();
    let limit = if a.latest { Some(1) } else { a.last };
    match limit {
        Some(n) => rows.truncate(n),
        None if !a.all => rows.retain(|(_, s)| s.running()),
        None => {}
    }
    let id_of = |r: &ContainerRecord| {
        if a.no_trunc {
            r.id.clone()
        } else {
            r.id.chars().take(12).collect()
        }
    };
    if a.quiet {
        return Ok(imago_cli::output::print_lines(
            rows.iter().map(|(r, _)| id_of(r)),
        )?);
    }
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|(r, s)| json_row(&c, r, s, &id_of(r), a.no_trunc))
        .collect();
    let titles = |f: &str| default_title(PS_TITLES, f);
    if let Some(text) = format.render(&rows, &titles)? {
        return Ok(imago_cli::output::print_text(&text)?);
    }
    let cell = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    let keys = [
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| keys.map(|k| cell(r, k)).to_vec())
        .collect();
    Ok(imago_cli::output::print_table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &table,
    )?)
}

/// docker's column titles for `--format 'table ...'`.
const PS_TITLES: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("State", "STATE"),
    ("Labels", "LABELS"),
    ("Size", "SIZE"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// One container as `docker ps --format json` prints it.
fn json_row(
    c: &Containers,
    r: &ContainerRecord,
    s: &Status,
    id: &str,
    full: bool,
) -> serde_json::Value {
    let created = jiff::Timestamp::from_second(r.created as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    let network = r
        .launch
        .as_ref()
        .map(|l| serde_json::to_value(l.network).unwrap_or_default())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    serde_json::json!({
        "Command": command_text(&r.command, full),
        "CreatedAt": created,
        "ID": id,
        "Image": r.image,
        "Labels": "",
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": r.name.clone().unwrap_or_default(),
        "Networks": network,
        "Ports": common::live_ports(r).join(", "),
        "RunningFor": format!("{} ago", human_duration(now_secs() - r.created as i64)),
        "Size": "0B",
        "State": s.state.as_str(),
        "Status": status_text(c, r, s),
    })
}

/// Run `ictr ps`.
pub fn run(global: &GlobalOpts, args: &Args) -> ExitCode {
    common::finish(run_ps(global, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_and_cut_like_docker() {
        let c: Vec<String> = ["sh", "-c", "echo hello; sleep 1000"]
            .map(String::from)
            .to_vec();
        assert_eq!(command_text(&c, false), "\"sh -c echo hello; s…\"");
        assert_eq!(command_text(&c, true), "\"sh -c echo hello; sleep 1000\"");
        assert_eq!(command_text(&["sh".into()], false), "\"sh\"");
    }
}
