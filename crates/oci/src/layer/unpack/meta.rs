//! An entry's metadata as the unpacker applies it: mode, owner and times from the
//! header, overridden by PAX records (`uid`, `gid`, `mtime`, `atime`), and the
//! `SCHILY.xattr.*` records.
//!
//! Owns: reading and bounding those values (32-bit ids, PAX sparse maps refused). Never:
//! touches the file system.

use std::io::{self, Read};

use rustix::fs::Timespec;

use super::Unpacker;
use crate::layer::{LayerError, Rule};

/// Metadata of one entry, from its header and PAX records.
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: Timespec,
    pub(super) atime: Timespec,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn ts(secs: i64, nsecs: i64) -> Timespec {
    Timespec {
        tv_sec: secs,
        tv_nsec: nsecs as _,
    }
}

/// Parse a PAX time (`1700000000.123456789`).
fn pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        nsec = format!("{digits:0<9}").parse().ok()?;
        if sec < 0 && nsec > 0 {
            return Some(ts(sec - 1, 1_000_000_000 - nsec));
        }
    }
    Some(ts(sec, nsec))
}

impl Unpacker<'_> {
    pub(super) fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<Meta, LayerError> {
        let h = entry.header();
        let bad = |what: &str, e: io::Error| LayerError::ReadTar {
            after: shown.to_owned(),
            source: io::Error::new(e.kind(), format!("bad {what} in header of `{shown}`: {e}")),
        };
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mut uid = h.uid().map_err(|e| bad("uid", e))?;
        let mut gid = h.gid().map_err(|e| bad("gid", e))?;
        let mtime_secs = h.mtime().map_err(|e| bad("mtime", e))?;
        let mut mtime = ts(i64::try_from(mtime_secs).unwrap_or(i64::MAX), 0);
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(|e| bad("pax records", e))? {
            for ext in exts {
                let ext = ext.map_err(|e| bad("pax record", e))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((name.to_vec(), value.to_vec()));
                } else {
                    match key {
                        b"uid" => {
                            uid = std::str::from_utf8(value)
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(uid)
                        }
                        b"gid" => {
                            gid = std::str::from_utf8(value)
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(gid)
                        }
                        b"mtime" => mtime = pax_time(value).unwrap_or(mtime),
                        b"atime" => atime = pax_time(value),
                        // PAX sparse files (GNU tar --sparse --format=posix) keep their map
                        // in the data; the tar crate would hand that out as content.
                        k if k.starts_with(b"GNU.sparse.") => {
                            return Err(LayerError::refused(shown, Rule::PaxSparse))
                        }
                        _ => {}
                    }
                }
            }
        }
        let id =
            |v: u64| u32::try_from(v).map_err(|_| LayerError::refused(shown, Rule::IdTooLarge(v)));
        Ok(Meta {
            mode,
            uid: id(uid)?,
            gid: id(gid)?,
            mtime,
            atime: atime.unwrap_or(mtime),
            xattrs,
        })
    }
}
