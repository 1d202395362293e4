//! COPY and ADD: resolving sources (wildcards, dir contents vs dir, trailing-slash rules,
//! `--parents`, `--exclude`, .dockerignore, symlinks on the source path), the digest of
//! their content/mode/ownership for the cache key (never mtimes), and writing them into a
//! new layer dir on top of the parent state (parents copied up with their metadata,
//! `--chown`/`--chmod`; ADD's local archives extracted).
//!
//! Files, in the order a step uses them:
//! - [`plan()`] (`plan`): the destination and how each source lands there (trailing
//!   slash, several sources, heredocs, `--parents`, ADD's archive decision).
//! - `sources`: what a source names in the source view (wildcards, .dockerignore, a
//!   symlink leading out of the context) and a directory source's tree (`--exclude`).
//! - `item`: one thing to write, and how a source entry becomes one (`--chown`,
//!   `--chmod`, symlink targets).
//! - [`items_digest`] (`digest`): the cache key's content digest.
//! - [`apply()`] (`apply`): writing the items into the layer dir.
//! - `add_tar`: ADD of a local archive (recognised by content, then extracted).
//!
//! Never: mounts, runs processes, talks to the store. The caller runs [`apply()`] inside
//! the id mapping when ownership other than the caller's must be written.
//!
//! Numbers in parentheses, e.g. (76), are items of docs/semantics.md.

mod add_tar;
mod apply;
mod digest;
#[cfg(test)]
mod fixture;
mod item;
mod plan;
mod sources;

use std::path::PathBuf;

use crate::fsview::LowerView;
use crate::glob;
use imago_dockerfile::Chmod;

pub use add_tar::is_archive;
pub use apply::{apply, ensure_parents};
pub use digest::items_digest;
pub use item::{Data, Item};
pub use plan::{dest_path, plan};

/// COPY/ADD failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("\"/{0}\": not found")]
    NotFound(String),
    #[error("\"/{path}\": not found: the symlink `{link}` points outside the build context (to `{target}`)")]
    LinkOutside {
        path: String,
        link: String,
        target: String,
    },
    #[error("source can't be a URL for COPY")]
    UrlForCopy,
    #[error("ADD of a URL (`{0}`) is not supported yet by ibuild; download it in a RUN step or into the context")]
    UrlUnsupported(String),
    #[error("checksum requires HTTP(S) or Git sources")]
    ChecksumLocal,
    #[error("When using {0} with more than one source file, the destination must be a directory and end with a /")]
    NeedDirDest(&'static str),
    #[error(transparent)]
    Pattern(#[from] glob::BadPattern),
    #[error("read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
    #[error("write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
    #[error("refusing to write through the symlink `{0}` made by this same instruction")]
    ThroughSymlink(String),
    #[error("extract archive `{path}`")]
    Extract {
        path: PathBuf,
        #[source]
        err: crate::archive::ArchiveError,
    },
    #[error(transparent)]
    Temp(#[from] crate::temp::TempError),
}

/// A COPY/ADD, expanded.
#[derive(Debug, Clone, Default)]
pub struct CopySpec {
    /// ADD (archives extracted, URLs allowed) rather than COPY.
    pub add: bool,
    pub sources: Vec<String>,
    pub dest: String,
    /// The stage's WORKDIR (absolute).
    pub workdir: String,
    /// Resolved `--chown` ids.
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<Chmod>,
    pub excludes: Vec<String>,
    pub parents: bool,
    /// ADD `--unpack` (None: default, extract local archives).
    pub unpack: Option<bool>,
    pub checksum: Option<String>,
    /// Heredoc sources: (name, body).
    pub inline: Vec<(String, Vec<u8>)>,
}

/// Where sources are read from.
pub struct Sources<'a> {
    pub view: &'a LowerView,
    /// Sources come from the build context (owned by 0:0 unless --chown) rather than a
    /// stage or image (ownership kept).
    pub context: bool,
    /// .dockerignore: true when a context path (relative, `/`-separated) is excluded.
    pub ignored: &'a dyn Fn(&str) -> bool,
}

/// How new parent dirs are made.
#[derive(Debug, Clone, Copy)]
pub struct NewDirs {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// `a` followed by `b`: container paths are component lists.
fn join(a: &[String], b: &[String]) -> Vec<String> {
    let mut v = a.to_vec();
    v.extend(b.iter().cloned());
    v
}
