//! What a build carries: [`Ctx`], the build-wide context (store, options, id mapping,
//! step counter), and [`State`], one stage's image config, layers and cache key between
//! steps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use imago_dockerfile::{GlobalScope, StageScope};
use imago_sandbox::IdMap;
use imago_store::Store;

use super::error::StepError;
use super::options::BuildOptions;
use crate::cache::LayerRef;
use crate::config::ImageConfig;
use crate::fsview::OwnerMode;
use crate::temp::TempPath;

/// The state of a stage between steps.
#[derive(Debug, Clone)]
pub(super) struct State {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    /// The cache chain key of this state.
    pub key: String,
    pub scope: StageScope,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl State {
    /// An empty stage (`FROM scratch`).
    pub fn scratch() -> Self {
        State {
            config: ImageConfig::scratch(),
            layers: Vec::new(),
            key: "scratch".into(),
            scope: StageScope::new(),
            cmd_set: false,
        }
    }
}

/// The states of the stages built so far, by stage index.
pub(super) type States = BTreeMap<usize, State>;

/// The engine's context for one build.
pub(super) struct Ctx<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub map: IdMap,
    pub mode: OwnerMode,
    pub global: GlobalScope,
    pub escape: char,
    /// The platform of the stage being built (`FROM --platform`, else `--platform`):
    /// its base and `--from` images are pulled for it.
    pub platform: Option<imago_registry::Platform>,
    /// The last step number shown, and how many there are.
    pub step: usize,
    pub total: usize,
    /// The context with .dockerignore applied, for RUN bind mounts; made by the first
    /// RUN that needs it and removed when the build ends.
    pub bind_context: Option<TempPath>,
}

impl Ctx<'_> {
    /// The directory a RUN `--mount=type=bind` of the context shows: the filtered copy
    /// when there is a .dockerignore, else the context itself.
    pub fn bind_root(&mut self) -> Result<PathBuf, StepError> {
        let Some(ignore) = &self.opts.ignore else {
            return Ok(self.opts.context_dir.clone());
        };
        if let Some(t) = &self.bind_context {
            return Ok(t.path().to_path_buf());
        }
        let t = TempPath::new(self.store.temp_path("bind-context"));
        crate::context::filtered_copy(&self.opts.context_dir, t.path(), ignore)?;
        let root = t.path().to_path_buf();
        self.bind_context = Some(t);
        Ok(root)
    }
}
