//! One step: its number and progress events, the expansion of its instruction, the
//! dispatch to the instruction family, and the step context ([`StepCx`]) through which
//! every family makes its cache key (in [`StepCx::key`], the one place keys are
//! assembled), looks the cache up and records its result.

use std::time::Instant;

use imago_dockerfile::{self as df, InstructionKind, ShellLex};

use super::error::{BuildError, StepError};
use super::state::{Ctx, State, States};
use super::{copy_step, meta_step, run_step, workdir_step};
use crate::cache::{self, CacheEntry, KeyParts, LayerRef};
use crate::config;
use crate::events::{Event, Sink};
use crate::stage::StageInfo;

/// The stage a step belongs to, and the stages built before it.
#[derive(Clone, Copy)]
pub(super) struct Stage<'s> {
    pub infos: &'s [StageInfo],
    pub index: usize,
    pub states: &'s States,
}

/// Everything a step works with.
pub(super) struct StepCx<'s, 'a> {
    pub cx: &'s mut Ctx<'a>,
    pub stage: Stage<'s>,
    pub state: &'s mut State,
    pub sink: &'s mut dyn Sink,
}

/// What a step's cache key is made of besides the parent state's key.
#[derive(Debug, Default)]
pub(super) struct KeyInput<'k> {
    /// The instruction as expanded, with whatever flags change its result.
    pub instruction: &'k str,
    /// The build args the step sees (RUN).
    pub args: Vec<(String, String)>,
    /// The content digest of COPY/ADD sources.
    pub sources: &'k str,
    /// Anything else that changes the result (user, network, mounts, …).
    pub extra: &'k str,
}

impl StepCx<'_, '_> {
    /// The cache key of this step on top of the current state.
    pub fn key(&self, k: KeyInput<'_>) -> String {
        cache::step_key(&KeyParts {
            parent: &self.state.key,
            instruction: k.instruction,
            args: k.args,
            sources: k.sources,
            extra: k.extra,
        })
    }

    /// On a cache hit for `key`, take the cached state and return true.
    pub fn cached(&mut self, key: &str) -> bool {
        match cache_get(self.cx, key) {
            Some(e) => {
                self.state.config = e.config;
                self.state.layers = e.layers;
                self.state.key = key.to_string();
                true
            }
            None => false,
        }
    }

    /// The history time of a step that writes a layer: SOURCE_DATE_EPOCH, else now.
    pub fn created_now(&self) -> Option<String> {
        Some(match self.cx.opts.source_date_epoch {
            Some(e) => config::format_time(e),
            None => config::now(),
        })
    }

    /// Finish a step that may have written a layer: history, key, cache entry.
    pub fn commit(
        &mut self,
        key: String,
        layer: Option<LayerRef>,
        history: String,
        created: Option<String>,
    ) {
        let empty = layer.is_none();
        if let Some(l) = layer {
            self.state.layers.push(l);
        }
        self.state.config.push_history(history, empty, created);
        self.state.key = key;
        cache_put(
            self.cx,
            &self.state.key,
            &CacheEntry {
                config: self.state.config.clone(),
                layers: self.state.layers.clone(),
            },
        );
    }

    /// Finish a metadata step (no layer, no cache entry of its own): it takes the time
    /// of the state it changes, so a cached chain gives the same config (and image id)
    /// on every rebuild.
    pub fn meta_done(&mut self, text: String, extra: &str) {
        let created = match self.cx.opts.source_date_epoch {
            Some(e) => Some(config::format_time(e)),
            None => (self.state.config.history.last())
                .and_then(|h| h.created.clone())
                .or_else(|| self.state.config.created.clone())
                .or_else(|| self.created_now()),
        };
        self.state.key = self.key(KeyInput {
            instruction: &text,
            extra,
            ..Default::default()
        });
        self.state.config.push_history(text, true, created);
    }
}

/// The instructions that show as a numbered step (BuildKit shows FROM, RUN, COPY, ADD,
/// WORKDIR; the others only change the config).
pub(super) fn shows_step(k: &InstructionKind) -> bool {
    matches!(
        k,
        InstructionKind::Run(_)
            | InstructionKind::Copy(_)
            | InstructionKind::Add(_)
            | InstructionKind::Workdir(_)
    )
}

/// Expand and apply one instruction of a stage (`line` is where the user wrote it: an
/// ONBUILD trigger counts as its stage's FROM line).
pub(super) fn step(
    scx: &mut StepCx<'_, '_>,
    ins: &df::Instruction,
    line: usize,
) -> Result<(), BuildError> {
    let shown = shows_step(&ins.kind);
    let text = ins.original.trim().to_string();
    let n = if shown {
        scx.cx.step += 1;
        scx.sink.event(Event::Step {
            n: scx.cx.step,
            total: scx.cx.total,
            text: text.clone(),
        });
        scx.cx.step
    } else {
        0
    };
    let t0 = Instant::now();
    let r = ShellLex::new(scx.cx.escape);
    let applied = ins
        .expand(&r, &scx.state.scope)
        .map_err(StepError::from)
        .and_then(|ex| dispatch(scx, &ex.kind));
    let cached = applied.map_err(|e| BuildError::Step {
        n,
        line,
        text,
        source: Box::new(e),
    })?;
    if shown {
        let done = match cached {
            true => Event::Cached { n },
            false => Event::Done {
                n,
                took: t0.elapsed(),
            },
        };
        scx.sink.event(done);
    }
    Ok(())
}

/// Apply one expanded instruction. Returns true for a cache hit.
fn dispatch(scx: &mut StepCx<'_, '_>, kind: &InstructionKind) -> Result<bool, StepError> {
    match kind {
        InstructionKind::Workdir(w) => workdir_step::apply(scx, w),
        InstructionKind::Copy(c) => copy_step::copy(scx, c),
        InstructionKind::Add(a) => copy_step::add(scx, a),
        InstructionKind::Run(r) => run_step::apply(scx, r),
        other => meta_step::apply(scx, other).map(|()| false),
    }
}

/// Look a cache entry up (the store's build cache); a hit needs every layer blob still
/// in the store. An unreadable or unparsable entry is a miss: the step runs again and
/// its new entry replaces it.
fn cache_get(cx: &Ctx<'_>, key: &str) -> Option<CacheEntry> {
    if cx.opts.no_cache {
        return None;
    }
    let bytes = cx.store.cache_get(key).ok()??;
    let e = CacheEntry::parse(&bytes)?;
    let all = e.layers.iter().all(|l| cx.store.has_blob(&l.blob.digest));
    all.then_some(e)
}

/// Record a cache entry; its layer blobs stay alive as long as the entry (store gc).
/// A failure only costs a future cache miss.
fn cache_put(cx: &Ctx<'_>, key: &str, e: &CacheEntry) {
    if let Ok(bytes) = serde_json::to_vec(e) {
        if let Err(err) = cx.store.cache_put(key, &bytes, &e.refs()) {
            tracing::warn!("build cache entry {key} not recorded: {err}");
        }
    }
}
