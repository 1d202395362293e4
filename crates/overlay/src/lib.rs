//! Turning a stack of read-only layer trees into a writable container root.
//!
//! Three storage drivers, [`RootfsMethod`] being the seam: kernel overlayfs mounted
//! inside the user namespace (`userxattr`, Linux 5.11+); the FUSE overlay ([`fuse`],
//! mounted and served by `imago_sandbox::fuse_root`); the copy driver (a private merged
//! copy of the layers, bind-mounted as the root). A caller picks the driver
//! ([`select`]), asks [`plan`] for a [`RootfsPlan`] and hands it to whoever mounts (the
//! sandbox, inside the namespace). This crate computes and copies files; it never forks
//! or enters namespaces itself (the caller runs [`copy::make`] inside the container's
//! mapping), and mounts nothing outside [`fuse`].
//!
//! # Public entry points
//! - [`plan(method, &Layers) -> Result<RootfsPlan, OverlayError>`](plan): pure.
//! - [`kernel::KernelOverlay`]: the mount request (`cwd`, `data`) for kernel overlayfs,
//!   with the short-path scheme for many layers (see [`kernel`]).
//! - [`Layers`]: lower dirs **top first** (overlay's order), the container's upper and
//!   work dirs, and a scratch dir for short links.
//! - [`select`]: which driver (flag > env > config > probe), pure; the probe cache format.
//! - [`copy`]: the copy driver's merged copy ([`copy::make`]) and, for a RUN's commit,
//!   the diff of the copy as an upper-dir-shaped tree ([`copy::to_upper`]).
//! - [`fuse`]: the FUSE overlay file system itself ([`fuse::FuseOverlay`]): it serves a
//!   session on a `/dev/fuse` fd the caller mounted ([`fuse::serve_on`]), or mounts one
//!   ([`fuse::mount`], CAP_SYS_ADMIN) — the one place this crate mounts.

pub mod copy;
pub mod fuse;
pub mod kernel;
pub mod select;

use std::path::{Path, PathBuf};

pub use kernel::KernelOverlay;

/// How the writable root is made (the storage driver; users name them `overlay`,
/// `fuse`, `copy`: [`select::name`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsMethod {
    /// Kernel overlayfs inside the user namespace (the default: records written before
    /// the driver was recorded used it).
    #[default]
    Kernel,
    /// The FUSE overlay ([`fuse`]), served by a process of the caller's.
    Fuse,
    /// A private copy of the layers, bind-mounted as the root.
    Copy,
}

/// The inputs: lower dirs top first, the container's upper and work dirs, and a dir
/// where short links may be created when the mount options would be too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// Lower dirs, topmost first (overlay's `lowerdir=` order).
    pub lowers_top_first: Vec<PathBuf>,
    /// The container's upper dir (must exist, empty on first use).
    pub upper: PathBuf,
    /// The container's work dir (same file system as upper).
    pub work: PathBuf,
    /// A dir of the container where `l/<n>` short links may be made.
    pub links_dir: PathBuf,
}

/// What to mount, decided by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsPlan {
    /// Mount kernel overlayfs with these options.
    Kernel(KernelOverlay),
    /// Make the private copy (inside the mapping: [`copy::make`]) and bind-mount it.
    Copy(CopyPlan),
    /// Serve the FUSE overlay of these layers (lowers top first, upper, work).
    Fuse(Layers),
}

/// The copy driver's plan: the lowers to merge and where the copy lives (beside the
/// upper dir, in the container's dir: `<dir of upper>/copy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    /// Lower dirs, bottom first (the copy's order).
    pub lowers_bottom_first: Vec<PathBuf>,
    /// The copy, bind-mounted as the root.
    pub dir: PathBuf,
}

/// Errors of planning a root.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The image has no layers at all.
    #[error("no layers to stack: the image has an empty root file system")]
    NoLayers,
    /// The copy driver's copy (or, after a RUN, its diff) failed; the source is the
    /// mapping child's error.
    #[error("the copy storage driver: {what}")]
    Copy {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// Even with short links the options exceed the kernel's page-size limit.
    #[error("{layers} layers do not fit overlayfs mount options ({len} bytes > {max})")]
    TooManyLayers {
        /// Number of lower dirs.
        layers: usize,
        /// Length of the options.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A path contains a character overlay options cannot carry (`,` or `:`).
    #[error("layer path `{0}` contains `,` or `:`, which overlayfs options cannot carry")]
    BadPath(PathBuf),
    /// Creating the short links failed.
    #[error("create short link `{link}` → `{target}`")]
    Link {
        /// The link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Plan the root for `method`.
pub fn plan(method: RootfsMethod, layers: &Layers) -> Result<RootfsPlan, OverlayError> {
    match method {
        RootfsMethod::Kernel => kernel::plan(layers).map(RootfsPlan::Kernel),
        RootfsMethod::Copy => Ok(RootfsPlan::Copy(CopyPlan {
            lowers_bottom_first: layers.lowers_top_first.iter().rev().cloned().collect(),
            dir: layers.upper.parent().unwrap_or(Path::new(".")).join("copy"),
        })),
        RootfsMethod::Fuse if layers.lowers_top_first.is_empty() => Err(OverlayError::NoLayers),
        RootfsMethod::Fuse => Ok(RootfsPlan::Fuse(layers.clone())),
    }
}
