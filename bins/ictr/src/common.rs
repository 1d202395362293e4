//! What the verbs share: the store's containers, finding a container by name, id or
//! unique id prefix, verbs over several containers (each error reported, the others
//! still done), and docker's human durations.

use std::process::ExitCode;

use imago_cli::GlobalOpts;
use imago_runtime::control::ControlError;
use imago_runtime::record::RecordError;
use imago_runtime::{ContainerId, ContainerRecord, Containers};

/// Failures the verbs share.
#[derive(Debug, thiserror::Error)]
pub enum CtrError {
    /// No store root.
    #[error(transparent)]
    NoRoot(#[from] imago_cli::global::NoStoreRoot),
    /// Lookup and records.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Signals, stop, removal.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// Starting again.
    #[error(transparent)]
    Detach(#[from] imago_runtime::detach::DetachError),
    /// The attach socket.
    #[error(transparent)]
    Attach(#[from] imago_runtime::attach::AttachError),
    /// Printing.
    #[error("write the output")]
    Output(#[from] std::io::Error),
    /// A flag value.
    #[error("{0}")]
    Usage(String),
    /// A `--format` template that does not parse or fails on a row.
    #[error(transparent)]
    Template(#[from] imago_cli::template::TemplateError),
    /// The container's own dir (writable layer, log) is not on this machine: its
    /// node-local dir was wiped, or it is another node's.
    #[error("{what}: {why}{hint}")]
    NotHere {
        /// What could not be done.
        what: String,
        /// [`imago_runtime::Place::why_missing`].
        why: String,
        /// What to do, with its leading `; `.
        hint: String,
    },
}

/// Fail with [`CtrError::NotHere`] unless the container's own dir is on this machine.
pub fn need_here(
    c: &Containers,
    id: &ContainerId,
    what: String,
    hint: String,
) -> Result<(), CtrError> {
    match c.place(id).why_missing() {
        None => Ok(()),
        Some(why) => Err(CtrError::NotHere { what, why, hint }),
    }
}

/// The containers of the store `--root`/`IMAGO_ROOT` names.
pub fn containers(global: &GlobalOpts) -> Result<Containers, CtrError> {
    Ok(Containers::new(&global.store_root()?))
}

/// The container `input` names (full id, name, unique id prefix) and its record.
pub fn find(c: &Containers, input: &str) -> Result<(ContainerId, ContainerRecord), CtrError> {
    let id = c.find(input)?;
    let rec = c
        .read_record(&id)
        .ok_or_else(|| RecordError::NotFound(input.into()))?;
    Ok((id, rec))
}

/// Exit 0, or report `e` and exit 125.
pub fn finish(r: Result<(), CtrError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => imago_cli::fail(&e),
    }
}

/// Run `f` for each of `names`: failures are reported as they happen and the others
/// still run; exit 125 when any failed, as docker goes on past a failed container.
pub fn each(
    global: &GlobalOpts,
    names: &[String],
    mut f: impl FnMut(&Containers, &str) -> Result<(), CtrError>,
) -> ExitCode {
    let c = match containers(global) {
        Ok(c) => c,
        Err(e) => return imago_cli::fail(&e),
    };
    let mut failed = false;
    for n in names {
        if let Err(e) = f(&c, n) {
            // The returned code is the same 125 for every failure: decided below.
            let _ = imago_cli::fail(&e);
            failed = true;
        }
    }
    if failed {
        ExitCode::from(imago_cli::ExitCodes::IMAGO_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// The ports a container publishes now: none unless it runs (docker shows none for a
/// stopped container, whatever its record kept).
pub fn live_ports(rec: &ContainerRecord) -> &[String] {
    if imago_runtime::status::of(rec).running() {
        &rec.ports
    } else {
        &[]
    }
}

/// docker's `units.HumanDuration`: "Less than a second", "3 seconds", "About a
/// minute", "5 minutes", "About an hour", "3 hours", "2 days", "3 weeks", "4 months",
/// "2 years".
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let minutes = s / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (s as f64 / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn epoch_secs(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Now, seconds since the epoch.
pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_human_durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(150), "2 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(21 * 86400), "3 weeks");
        assert_eq!(human_duration(120 * 86400), "4 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }
}
