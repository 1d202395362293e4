//! One thing a COPY/ADD writes ([`Item`], its bytes from [`Data`]) and how an entry of
//! the source view becomes one: `--chown` (else 0:0 from the context, the entry's own
//! owner from a stage or image), `--chmod` (never on symlinks), a symlink's target.
//!
//! Never: decides where an item lands (`plan`, `sources`) or writes it (`apply`).

use std::path::PathBuf;

use super::{CopyError, CopySpec, Sources};
use crate::fsview::{Entry, Kind};

/// Where an item's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A file on the host (in the context or a layer dir).
    Host(PathBuf),
    /// Inline bytes (a COPY heredoc).
    Inline(Vec<u8>),
    /// A local archive to extract (ADD).
    Archive(PathBuf),
}

/// One thing to create in the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Container path of the destination (clean components), before resolving
    /// symlinks of the parent state.
    pub dest: Vec<String>,
    pub kind: Kind,
    pub data: Option<Data>,
    /// Symlink target.
    pub link: Option<String>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// The item that writes the source entry `e` at `dest`.
pub(super) fn item_for(
    spec: &CopySpec,
    src: &Sources<'_>,
    e: &Entry,
    dest: Vec<String>,
) -> Result<Item, CopyError> {
    let (uid, gid) = match spec.chown {
        Some(ids) => ids,
        None if src.context => (0, 0),
        None => (e.uid, e.gid),
    };
    let mode = match &spec.chmod {
        Some(c) if e.kind != Kind::Symlink => c.apply(e.mode, e.kind == Kind::Dir),
        _ => e.mode,
    };
    let (data, link) = match e.kind {
        Kind::File => (Some(Data::Host(e.host.clone())), None),
        Kind::Symlink => {
            let t = std::fs::read_link(&e.host).map_err(|err| CopyError::Read {
                path: e.host.clone(),
                err,
            })?;
            (None, Some(t.to_string_lossy().into_owned()))
        }
        _ => (None, None),
    };
    Ok(Item {
        dest,
        kind: e.kind,
        data,
        link,
        mode,
        uid,
        gid,
        mtime: e.mtime,
    })
}
