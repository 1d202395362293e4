//! Turning a stack of read-only layer trees into a writable container root.
//!
//! Today: kernel overlayfs mounted inside the user namespace (`userxattr`, Linux 5.11+).
//! The FUSE overlay and the copy fallback come later; [`RootfsMethod`] is the seam: a
//! caller asks [`plan`] for a [`RootfsPlan`] and hands it to whoever mounts (the sandbox
//! child, inside the namespace). This crate computes; it never mounts, forks or enters
//! namespaces itself.
//!
//! # Public entry points
//! - [`plan(method, &Layers) -> Result<RootfsPlan, OverlayError>`](plan): pure.
//! - [`kernel::KernelOverlay`]: the mount request (`cwd`, `data`) for kernel overlayfs,
//!   with the short-path scheme for many layers (see [`kernel`]).
//! - [`Layers`]: lower dirs **top first** (overlay's order), the container's upper and
//!   work dirs, and a scratch dir for short links.

pub mod kernel;

use std::path::PathBuf;

pub use kernel::KernelOverlay;

/// How the writable root is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsMethod {
    /// Kernel overlayfs inside the user namespace.
    Kernel,
    /// FUSE overlay (not implemented yet).
    Fuse,
    /// A private copy of the layers (not implemented yet).
    Copy,
}

/// The inputs: lower dirs top first, the container's upper and work dirs, and a dir
/// where short links may be created when the mount options would be too long.
#[derive(Debug, Clone)]
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
}

/// Errors of planning a root.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The image has no layers at all.
    #[error("no layers to stack: the image has an empty root file system")]
    NoLayers,
    /// Asked for a method not built yet.
    #[error("root file system method `{0:?}` is not implemented yet (only kernel overlayfs)")]
    Unsupported(RootfsMethod),
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

/// Plan the root for `method`. Kernel only today; the others return
/// [`OverlayError::Unsupported`] until the fallbacks land.
pub fn plan(method: RootfsMethod, layers: &Layers) -> Result<RootfsPlan, OverlayError> {
    match method {
        RootfsMethod::Kernel => kernel::plan(layers).map(RootfsPlan::Kernel),
        m => Err(OverlayError::Unsupported(m)),
    }
}
