//! Layer tars: [`unpack`] one layer into an empty directory of its own (overlay-style
//! whiteouts, safe against hostile tars), [`pack`] a directory (a layer dir or an overlay
//! upper dir) back into a deterministic tar, and [`flatten`] a stack of layer dirs into
//! one root-filesystem tar (whiteouts applied).
//!
//! Owns: tar entry semantics, whiteouts, the ownership model (real or recorded in
//! `user.containers.override_stat`), the safety rules (docs/layers.md). Never: knows the
//! store's layout, enters namespaces, or compresses (callers wrap readers/writers with
//! [`crate::compress`]).
//!
//! # Contracts
//!
//! - `unpack(reader, dest, &opts)`: `reader` yields a layer tar, uncompressed, gzip or
//!   zstd (detected by magic bytes); `dest` must exist and be empty.
//!   On error `dest` holds a partial layer: the caller deletes it (the store unpacks into a
//!   temp dir and renames on success). No entry ever writes outside `dest`, whatever the
//!   tar holds. Character and block devices are refused, created with `allow_devices`,
//!   or skipped and counted with `skip_devices` (what the store does for image layers: a
//!   rootless unpack cannot make them, and a container's /dev is made at run time).
//! - `pack(dir, writer, &opts)`: writes an uncompressed tar and finishes it (two zero
//!   blocks); returns the writer's stats. Same tree + same options → same bytes.
//! - `flatten(&[lowest..highest], writer, &opts)`: one merged tree as a tar, streamed.

mod fsops;
pub(crate) mod guard;
mod pack;
mod path;
mod unpack;
pub mod whiteout;

#[cfg(any(test, feature = "test-corpus"))]
pub mod hostile;

use std::fmt;
use std::io;

pub use fsops::{remove_tree, OverrideStat, Resolver, OVERRIDE_STAT_XATTR};
pub use pack::{flatten, pack, PackOptions, PackStats};
pub use path::AbsolutePaths;
pub use unpack::{unpack, UnpackOptions, UnpackStats};

/// How file ownership is kept on disk: the one owner-mode type of the workspace (the
/// store records it per layer and per store, a run-in-mapping child picks it from its id
/// mapping). Serialized as `real` / `xattr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerMode {
    /// Files get the tar's uid/gid (lchown). Needs root, or a user namespace whose
    /// mapping covers every id the layer uses (subuid range via newuidmap).
    #[default]
    Real,
    /// Single-id mapping: no chown; `uid:gid:mode:type` is recorded in the
    /// `user.containers.override_stat` xattr (containers/storage and fuse-overlayfs
    /// format) on regular files and directories, and the on-disk mode drops
    /// setuid/setgid/sticky and gains owner read/write(/search). Symlinks, fifos and
    /// devices cannot carry user xattrs: their owner is lost (packed as
    /// [`PackOptions::default_owner`]).
    Xattr,
}

impl OwnerMode {
    /// `real` or `xattr`, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Real => "real",
            Self::Xattr => "xattr",
        }
    }
}

impl fmt::Display for OwnerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not `real` or `xattr`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown owner mode `{0}` (expected `real` or `xattr`)")]
pub struct OwnerModeError(pub String);

impl std::str::FromStr for OwnerMode {
    type Err = OwnerModeError;

    /// `real` or `xattr`, surrounding white space ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "real" => Ok(Self::Real),
            "xattr" => Ok(Self::Xattr),
            other => Err(OwnerModeError(other.to_owned())),
        }
    }
}

/// How whiteouts are represented in an unpacked layer dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutFormat {
    /// Overlayfs: `.wh.NAME` → a 0:0 character device `NAME`; `.wh..wh..opq` → the
    /// opaque xattr on the directory (see [`OverlayXattrs`]).
    #[default]
    Overlay,
    /// Keep the `.wh.` marker files as plain empty files (for a copy or FUSE fallback,
    /// or where mknod is not allowed). Pack emits them unchanged.
    Files,
}

/// Which xattr namespace overlay metadata uses: `user.overlay.*` (overlay mounted with
/// `userxattr` in a user namespace, the default) or `trusted.overlay.*` (overlay mounted
/// by real root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlayXattrs {
    #[default]
    User,
    Trusted,
}

impl OverlayXattrs {
    pub fn opaque(self) -> &'static str {
        match self {
            Self::User => whiteout::USER_OPAQUE_XATTR,
            Self::Trusted => whiteout::TRUSTED_OPAQUE_XATTR,
        }
    }
}

/// Which safety rule refused an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A `..` component (the path would leave the layer root).
    ParentTraversal,
    /// An absolute path (`/etc/x`); tars must use relative names.
    AbsolutePath,
    /// A parent directory of the entry is a symlink (or not a directory).
    SymlinkInPath,
    /// A hardlink whose target is absolute, escapes, or was not extracted before it.
    HardlinkTarget(String),
    /// A device node while devices are neither allowed nor skipped.
    Device,
    /// The layer's apparent size would exceed the cap.
    SizeCap(u64),
    /// More entries than the limit.
    TooManyEntries(u64),
    /// A path longer than the limit.
    PathTooLong(usize),
    /// A NUL byte in a name.
    NulInName,
    /// An empty name or `.` where a name is needed (e.g. a whiteout of `.`).
    BadName,
    /// A tar entry type imago does not extract.
    UnsupportedType(u8),
    /// The entry would replace the layer root itself with a non-directory.
    ReplaceRoot,
    /// A uid or gid beyond 32 bits.
    IdTooLarge(u64),
    /// A PAX-format sparse file (`GNU.sparse.*` records), which we cannot read correctly.
    PaxSparse,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ParentTraversal => f.write_str("`..` would leave the layer root"),
            Self::AbsolutePath => f.write_str("absolute paths are not allowed in a layer"),
            Self::SymlinkInPath => f.write_str(
                "a parent of the path is a symlink or not a directory (it crosses a symlink)",
            ),
            Self::HardlinkTarget(why) => write!(f, "bad hardlink target: {why}"),
            Self::Device => f.write_str("device nodes are not allowed here (allow_devices is off)"),
            Self::SizeCap(cap) => write!(f, "the layer exceeds the size cap of {cap} bytes"),
            Self::TooManyEntries(n) => write!(f, "the layer has more than {n} entries"),
            Self::PathTooLong(n) => write!(f, "the path is longer than {n} bytes"),
            Self::NulInName => f.write_str("the name contains a NUL byte"),
            Self::BadName => f.write_str("empty, `.` or `..` name where a file name is needed"),
            Self::UnsupportedType(t) => write!(
                f,
                "unsupported tar entry type `{}`",
                char::from(*t).escape_default()
            ),
            Self::ReplaceRoot => {
                f.write_str("the entry would replace the layer root with a non-directory")
            }
            Self::IdTooLarge(v) => write!(f, "owner id {v} does not fit in 32 bits"),
            Self::PaxSparse => f.write_str(
                "PAX sparse files (GNU.sparse.* records) are not supported; repack the layer \
                 without --sparse",
            ),
        }
    }
}

/// A layer operation failed; every variant names the entry or path involved.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("refused layer entry `{path}`: {rule}")]
    Refused { path: String, rule: Rule },
    #[error("read layer tar (after entry `{after}`)")]
    ReadTar {
        after: String,
        #[source]
        source: io::Error,
    },
    #[error("{op} `{path}`")]
    Fs {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "set owner of `{path}` to {uid}:{gid}: not permitted here (run as root or inside a user \
         namespace with a subuid mapping, or use OwnerMode::Xattr)"
    )]
    Chown {
        path: String,
        uid: u32,
        gid: u32,
        #[source]
        source: io::Error,
    },
    #[error(
        "create whiteout `{path}` (a 0:0 character device): not permitted here (unprivileged \
         users may create it since Linux 5.8; on older kernels run as root or use \
         WhiteoutFormat::Files)"
    )]
    Whiteout {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("unpack destination `{path}` must be an existing empty directory")]
    DestNotEmpty { path: String },
    #[error("write layer tar (entry `{path}`)")]
    WriteTar {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    pub(crate) fn refused(path: impl Into<String>, rule: Rule) -> Self {
        Self::Refused {
            path: path.into(),
            rule,
        }
    }

    pub(crate) fn fs(
        op: &'static str,
        path: impl Into<String>,
        source: impl Into<io::Error>,
    ) -> Self {
        Self::Fs {
            op,
            path: path.into(),
            source: source.into(),
        }
    }

    /// The rule, when the error is a refusal of a hostile or unsupported entry.
    pub fn rule(&self) -> Option<&Rule> {
        match self {
            Self::Refused { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_mode_text_round_trips() {
        for m in [OwnerMode::Real, OwnerMode::Xattr] {
            assert_eq!(m.as_str().parse::<OwnerMode>(), Ok(m));
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
        }
        assert_eq!(" xattr\n".parse::<OwnerMode>(), Ok(OwnerMode::Xattr));
        assert!("Real".parse::<OwnerMode>().is_err());
    }
}
