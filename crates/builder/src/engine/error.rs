//! How a build fails: [`BuildError`] names the stage or step (with its Dockerfile line)
//! and carries a [`StepError`] with the cause; `hint()` adds what the user can do.

use std::path::{Path, PathBuf};

use imago_dockerfile as df;

use crate::context::ContextError;
use crate::instr::{copy, meta};
use crate::perms;
use crate::stage;
use crate::temp::TempError;

/// A build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Shown with the offending line marked; boxed, as parse errors are large.
    #[error("{}", .0.render_body())]
    Parse(Box<df::ParseError>),
    #[error(transparent)]
    Stage(#[from] stage::StageError),
    #[error("the ARGs before the first FROM")]
    Global(#[source] df::ScopeError),
    #[error("FROM (line {line})")]
    Expand {
        line: usize,
        #[source]
        source: df::ExpandError,
    },
    #[error("FROM (line {line})")]
    Platform {
        line: usize,
        #[source]
        source: super::platform::PlatformError,
    },
    #[error("{}", step_title(*n, *line, text))]
    Step {
        n: usize,
        line: usize,
        text: String,
        #[source]
        source: Box<StepError>,
    },
    #[error("FROM {reference} (line {line}): image not found in the store, and `{reference}` is not a pullable reference")]
    BaseNotFound {
        reference: String,
        line: usize,
        #[source]
        source: imago_store::StoreError,
    },
    /// The store could not be read (not "the image is missing"): e.g. a damaged
    /// index.json.
    #[error("FROM {reference} (line {line}): the store could not be searched for it")]
    BaseStore {
        reference: String,
        line: usize,
        #[source]
        source: imago_store::StoreError,
    },
    #[error("FROM {reference} (line {line}): not in the store, and pulling it failed")]
    Pull {
        reference: String,
        line: usize,
        /// Boxed: registry errors are large, and the common result should not carry them.
        #[source]
        source: Box<imago_registry::RegistryError>,
    },
    #[error("store")]
    Store(#[from] imago_store::StoreError),
    #[error("the build context `{0}` must be an absolute path")]
    RelativeContext(PathBuf),
    /// index.json cannot be read: without this check every base image would look
    /// missing, and the build would blame the image's name.
    /// The store's own error says what is damaged and points at `iimage fsck`.
    #[error("cannot read the image store at `{}`", path.parent().unwrap_or(path).display())]
    StoreIndex {
        path: PathBuf,
        #[source]
        source: imago_store::StoreError,
    },
    #[error("tag `{name}`")]
    Tag {
        name: String,
        #[source]
        source: imago_store::StoreError,
    },
}

impl BuildError {
    /// A hint for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::Step { source, .. } => source.hint(),
            BuildError::Platform { source, .. } => source.hint(),
            BuildError::BaseStore { source, .. } | BuildError::Store(source) => source.hint(),
            BuildError::StoreIndex { source, .. } => match source {
                imago_store::StoreError::Io { source: io, .. }
                    if io.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    source.hint()
                }
                _ => Some(
                    "restore index.json from a backup, or build into another store (--root)".into(),
                ),
            },
            _ => None,
        }
    }
}

/// `step 3 (line 7) `RUN x``; metadata instructions have no step number.
fn step_title(n: usize, line: usize, text: &str) -> String {
    if n == 0 {
        format!("line {line} `{text}`")
    } else {
        format!("step {n} (line {line}) `{text}`")
    }
}

/// One step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("process \"{cmd}\" did not complete successfully: exit code: {code}")]
    Exit { cmd: String, code: i32 },
    #[error(transparent)]
    Copy(#[from] copy::CopyError),
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
    #[error(transparent)]
    Perm(#[from] perms::PermError),
    #[error(transparent)]
    Expand(#[from] df::ExpandError),
    #[error(transparent)]
    Scope(#[from] df::ScopeError),
    #[error(transparent)]
    Stage(#[from] stage::StageError),
    #[error("build state")]
    StateJson(#[source] serde_json::Error),
    #[error("stage {0} was not built")]
    StageNotBuilt(usize),
    #[error("ADD cannot mix URL and local sources (yet): use one ADD per URL")]
    MixedAddSources,
    #[error(transparent)]
    Download(#[from] super::add_url::DownloadError),
    #[error("invalid RUN --mount: {0}")]
    Mount(String),
    #[error("secret {0} not found (pass --secret id={0},src=FILE)")]
    NoSecret(String),
    #[error("RUN --mount=type=ssh is not supported by ibuild")]
    SshMount,
    #[error("in the build's id mapping")]
    Child(#[from] imago_sandbox::ChildError),
    #[error("run the build container")]
    Container(#[from] imago_sandbox::container::ContainerError),
    #[error("plan the overlay root")]
    Overlay(#[from] imago_overlay::OverlayError),
    #[error(transparent)]
    Store(#[from] imago_store::StoreError),
    #[error("{what} `{path}`")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pack layer")]
    Pack(#[from] imago_oci::layer::LayerError),
    #[error(transparent)]
    Temp(#[from] TempError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("image `{0}` not found in the store, and it is not a pullable reference")]
    NoImage(String),
    #[error("pull `{0}`")]
    Pull(String, #[source] Box<imago_registry::RegistryError>),
    #[error(transparent)]
    Platform(#[from] super::platform::PlatformError),
}

impl StepError {
    /// A hint for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            StepError::Exit { .. } => Some(
                "the command failed inside the build container; the steps before it are cached"
                    .into(),
            ),
            StepError::Copy(copy::CopyError::NotFound(_)) => {
                Some("is the file in the build context, or excluded by .dockerignore?".into())
            }
            StepError::Copy(copy::CopyError::LinkOutside { .. }) => Some(
                "COPY and ADD resolve symlinks inside the build context (as BuildKit does): copy the file it points to into the context"
                    .into(),
            ),
            StepError::Store(e) => e.hint(),
            StepError::Platform(e) => e.hint(),
            _ => None,
        }
    }
}

pub(super) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StepError + 'a {
    move |source| StepError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}
