//! Instruction flags as BuildKit's `BFlags` parses them (unknown, duplicate, missing
//! value, bad boolean), the flags each instruction accepts, the checks of flag values
//! done at parse time (`--chmod`, HEALTHCHECK durations), and where a bad flag is on
//! its line.

use std::time::Duration;

use super::suggest::suggest;
use crate::error::ParseErrorKind as K;
use crate::values::{parse_go_duration, Chmod};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FlagKind {
    Bool,
    Str,
    List,
}

#[derive(Default)]
pub(super) struct Flags {
    values: Vec<(&'static str, FlagValue)>,
}

pub(super) enum FlagValue {
    Bool(bool),
    Str(String),
    List(Vec<String>),
}

impl Flags {
    pub fn str(&mut self, name: &str) -> Option<String> {
        self.values
            .iter_mut()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                FlagValue::Str(s) => Some(std::mem::take(s)),
                _ => None,
            })
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                FlagValue::Bool(b) => Some(*b),
                _ => None,
            })
    }
    pub fn list(&mut self, name: &str) -> Vec<String> {
        self.values
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| match v {
                FlagValue::List(l) => std::mem::take(l),
                _ => Vec::new(),
            })
            .unwrap_or_default()
    }
}

/// BuildKit's `BFlags.Parse` for the flags an instruction accepts.
pub(super) fn parse_flags(raw: &[String], spec: &[(&'static str, FlagKind)]) -> Result<Flags, K> {
    let mut flags = Flags::default();
    for arg in raw {
        let Some(body) = arg.strip_prefix("--") else {
            return Err(K::InvalidArgument(format!(
                "arg should start with -- : {arg}"
            )));
        };
        if body.is_empty() {
            return Ok(flags);
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(sname, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            return Err(K::UnknownFlag {
                flag: name.to_string(),
                suggestion: suggest(name, &names),
            });
        };
        let seen = flags.values.iter().position(|(n, _)| *n == sname);
        if seen.is_some() && kind != FlagKind::List {
            return Err(K::DuplicateFlag(name.to_string()));
        }
        match kind {
            FlagKind::Bool => {
                let b = match value.map(str::to_lowercase).as_deref() {
                    None => true,
                    Some("") => return Err(K::MissingFlagValue(name.to_string())),
                    Some("true") => true,
                    Some("false") => false,
                    Some(_) => {
                        return Err(K::InvalidFlagValue {
                            flag: name.to_string(),
                            value: value.unwrap_or_default().to_string(),
                            reason: "expecting a boolean (true or false)".into(),
                        })
                    }
                };
                flags.values.push((sname, FlagValue::Bool(b)));
            }
            FlagKind::Str => {
                let Some(v) = value else {
                    return Err(K::MissingFlagValue(name.to_string()));
                };
                flags.values.push((sname, FlagValue::Str(v.to_string())));
            }
            FlagKind::List => {
                let Some(v) = value else {
                    return Err(K::MissingFlagValue(name.to_string()));
                };
                match seen {
                    Some(i) => {
                        if let FlagValue::List(l) = &mut flags.values[i].1 {
                            l.push(v.to_string());
                        }
                    }
                    None => flags
                        .values
                        .push((sname, FlagValue::List(vec![v.to_string()]))),
                }
            }
        }
    }
    Ok(flags)
}

pub(super) const COPY_FLAGS: &[(&str, FlagKind)] = &[
    ("from", FlagKind::Str),
    ("chown", FlagKind::Str),
    ("chmod", FlagKind::Str),
    ("link", FlagKind::Bool),
    ("parents", FlagKind::Bool),
    ("exclude", FlagKind::List),
];
pub(super) const ADD_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", FlagKind::Str),
    ("chmod", FlagKind::Str),
    ("link", FlagKind::Bool),
    ("keep-git-dir", FlagKind::Bool),
    ("checksum", FlagKind::Str),
    ("exclude", FlagKind::List),
    ("unpack", FlagKind::Bool),
];
pub(super) const RUN_FLAGS: &[(&str, FlagKind)] = &[
    ("mount", FlagKind::List),
    ("network", FlagKind::Str),
    ("security", FlagKind::Str),
];
pub(super) const HEALTH_FLAGS: &[(&str, FlagKind)] = &[
    ("interval", FlagKind::Str),
    ("timeout", FlagKind::Str),
    ("start-period", FlagKind::Str),
    ("start-interval", FlagKind::Str),
    ("retries", FlagKind::Str),
];

pub(super) fn check_chmod(flag: &Option<String>) -> Result<(), K> {
    if let Some(c) = flag {
        if !c.contains('$') {
            Chmod::parse(c).map_err(K::InvalidArgument)?;
        }
    }
    Ok(())
}

pub(super) fn duration_flag(flags: &mut Flags, name: &str) -> Result<Option<Duration>, K> {
    let Some(v) = flags.str(name) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    let bad = |reason: String| K::InvalidFlagValue {
        flag: name.to_string(),
        value: v.clone(),
        reason,
    };
    let d = parse_go_duration(&v).map_err(bad)?;
    if d.is_zero() {
        return Ok(None);
    }
    if d < Duration::from_millis(1) {
        return Err(bad(format!("Interval {name:?} cannot be less than 1ms")));
    }
    Ok(Some(d))
}

/// For flag errors, the column of `--flag` on the instruction's first line.
pub(super) fn flag_column(line: &str, kind: &K) -> Option<u32> {
    let flag = match kind {
        K::UnknownFlag { flag, .. }
        | K::DuplicateFlag(flag)
        | K::MissingFlagValue(flag)
        | K::InvalidFlagValue { flag, .. } => flag,
        _ => return None,
    };
    let needle = format!("--{flag}");
    let at = match kind {
        K::DuplicateFlag(_) => line.rfind(&needle)?,
        _ => line.find(&needle)?,
    };
    Some(line[..at].chars().count() as u32 + 1)
}
