//! `ictr logs`: a detached container's output from its log (stdout entries on stdout,
//! stderr entries on stderr), `-f` following it until the container ends, `--tail N`,
//! `-t` timestamps, `--since` / `--until` (RFC 3339, Unix seconds, or a relative Go
//! duration like `10m` or `1h30m`).

use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use imago_cli::GlobalOpts;
use imago_runtime::logfile::{self, Entry, Reader, Stream};
use imago_runtime::{status, ContainerId, Containers};

use crate::common::{self, CtrError};

/// How often a followed log is read again.
const FOLLOW_EVERY: Duration = Duration::from_millis(50);

pub use crate::args::LogsArgs as Args;

/// A Go duration: `300ms`, `10m`, `1h30m`, `2.5s`.
fn go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// A `--since`/`--until` value as a time.
fn parse_time(s: &str) -> Result<jiff::Timestamp, CtrError> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if let Ok(t) = jiff::Timestamp::from_nanosecond((secs * 1e9) as i128) {
            return Ok(t);
        }
    }
    if let Some(d) = go_duration(s) {
        let d = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::ZERO);
        if let Ok(t) = jiff::Timestamp::now().checked_sub(d) {
            return Ok(t);
        }
    }
    Err(CtrError::Usage(format!(
        "invalid time `{s}`: use RFC 3339 (2024-05-01T10:00:00Z), Unix seconds, or a duration like 10m"
    )))
}

pub struct Printer {
    timestamps: bool,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
}

impl Printer {
    fn wanted(&self, e: &Entry) -> bool {
        let t = e.time.parse::<jiff::Timestamp>().ok();
        let after = self.since.is_none_or(|s| t.is_some_and(|t| t >= s));
        let before = self.until.is_none_or(|u| t.is_some_and(|t| t < u));
        after && before
    }

    fn print(&self, e: &Entry) -> std::io::Result<()> {
        let mut text = String::new();
        if self.timestamps {
            let t = e
                .time
                .parse::<jiff::Timestamp>()
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
                .unwrap_or_else(|_| e.time.clone());
            text.push_str(&t);
            text.push(' ');
        }
        text.push_str(&e.log);
        match e.stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(text.as_bytes())?;
                o.flush()
            }
            Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
        }
    }
}

/// Print what `reader` has now; with a `tail`, only the last that many.
fn print_available(r: &mut Reader, p: &Printer, tail: Option<usize>) -> std::io::Result<()> {
    match tail {
        Some(n) => {
            let mut last: VecDeque<Entry> = VecDeque::with_capacity(n.min(4096));
            while let Some(e) = r.next_entry() {
                if p.wanted(&e) {
                    if last.len() == n {
                        last.pop_front();
                    }
                    if n > 0 {
                        last.push_back(e);
                    }
                }
            }
            last.iter().try_for_each(|e| p.print(e))
        }
        None => {
            while let Some(e) = r.next_entry() {
                if p.wanted(&e) {
                    p.print(&e)?;
                }
            }
            Ok(())
        }
    }
}

/// Print new entries of `r` until container `id` is no longer running.
pub fn follow(
    c: &Containers,
    id: &ContainerId,
    r: &mut Reader,
    p: &Printer,
) -> std::io::Result<()> {
    loop {
        let running = c
            .read_record(id)
            .is_some_and(|rec| status::of(&rec).running());
        // Read after the check: what the container wrote before it ended is in the log
        // before its monitor records the end.
        print_available(r, p, None)?;
        if !running {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// A printer of every entry, without timestamps (attach and `start -a`).
pub fn plain() -> Printer {
    Printer {
        timestamps: false,
        since: None,
        until: None,
    }
}

fn run_logs(global: &GlobalOpts, a: &Args) -> Result<(), CtrError> {
    let c = common::containers(global)?;
    let (id, _) = common::find(&c, &a.container)?;
    // The log lives beside the writable layer: gone with a wiped node-local dir.
    common::need_here(
        &c,
        &id,
        format!("no log of container {}", a.container),
        String::new(),
    )?;
    let tail = match a.tail.as_deref() {
        None | Some("all") | Some("-1") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| CtrError::Usage(format!("invalid --tail `{n}`: a number or all")))?,
        ),
    };
    let p = Printer {
        timestamps: a.timestamps,
        since: a.since.as_deref().map(parse_time).transpose()?,
        until: a.until.as_deref().map(parse_time).transpose()?,
    };
    let mut r = Reader::open(&logfile::path(&c.dir(&id), id.as_str()));
    print_available(&mut r, &p, tail)?;
    if a.follow {
        follow(&c, &id, &mut r, &p)?;
    }
    Ok(())
}

/// Run `ictr logs`.
pub fn run(global: &GlobalOpts, args: &Args) -> ExitCode {
    common::finish(run_logs(global, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration("10x"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn since_forms() {
        let t = parse_time("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(t.as_second(), 1714557600);
        assert_eq!(parse_time("1714557600").unwrap(), t);
        let ago = parse_time("10m").unwrap();
        let d = jiff::Timestamp::now().as_second() - ago.as_second();
        assert!((599..=601).contains(&d), "{d}");
        assert!(parse_time("yesterday").is_err());
    }
}
