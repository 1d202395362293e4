//! What the subcommands share: the error type, opening the store, running store work
//! inside the user's id mapping, human sizes and times (RFC 3339 through jiff).

use std::error::Error;

use imago_cli::CarriedError;
use imago_sandbox::{run_in_mapping, IdMap};
use imago_store::{OwnerMode, Store, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Any failure of a subcommand; the chain is printed by `imago_cli::report`.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;
pub type Res<T> = Result<T, BoxError>;

/// A one-line error of our own.
#[derive(Debug)]
pub struct Msg(pub String);

impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl Error for Msg {}

pub fn msg(s: impl Into<String>) -> BoxError {
    Box::new(Msg(s.into()))
}

pub fn open_store(global: &imago_cli::GlobalOpts) -> Res<Store> {
    let root = global.store_root()?;
    Ok(Store::open(root)?)
}

/// Run `f` in a child inside the user's id mapping (root: identity; with a subuid
/// range: the range; else a single mapping with Xattr ownership). Store work that
/// creates or removes files owned by other ids goes through here.
pub fn in_mapping<T, F>(f: F) -> Res<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(OwnerMode) -> Result<T, StoreError>,
{
    let map = IdMap::detect();
    let mode = map.ownership();
    // The store error travels as a value (with its hints), not as the child's failure.
    let run = || Ok::<_, StoreError>(f(mode).map_err(|e| CarriedError::from_chain(&e)));
    match run_in_mapping(&map, run) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Box::new(e)),
        // The closure's own error: report it as ours, not as "in the mapping child".
        Err(imago_sandbox::ChildError::Remote(r)) => Err(Box::new(r)),
        Err(e) => Err(Box::new(e)),
    }
}

/// docker's human size: 3 significant digits, decimal units (`4.26MB`).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.123Z`, `+01:00`);
/// one without an offset is taken as UTC.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_second());
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    let t = jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()?;
    Some(t.as_second())
}

/// `3 days ago`, like docker.
pub fn ago(created: Option<&str>) -> String {
    let Some(t) = created.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    let d = jiff::Timestamp::now().as_second() - t;
    let (n, unit) = match d {
        i64::MIN..=0 => return "Less than a second ago".into(),
        1..=59 => (d, "second"),
        60..=3599 => (d / 60, "minute"),
        3600..=86_399 => (d / 3600, "hour"),
        86_400..=1_209_599 => (d / 86_400, "day"),
        1_209_600..=5_183_999 => (d / 604_800, "week"),
        5_184_000..=63_071_999 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// Pretty JSON on stdout. (imago_cli::output::print_json turns a closed pipe into an
/// `Other` io error, which then is reported; this keeps the BrokenPipe kind.)
pub fn print_json<T: Serialize>(v: &T) -> Res<()> {
    let s = serde_json::to_string_pretty(v)?;
    imago_cli::output::print_lines([s])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(12_300), "12.3kB");
        assert_eq!(human_size(1_000_000), "1MB");
    }

    #[test]
    fn rfc3339_parses() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.5Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("2023-11-14 22:13:20z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("junk"), None);
        assert_eq!(parse_rfc3339("2023-13-14T22:13:20Z"), None);
    }
}
