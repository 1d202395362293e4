//! The build engine: walks the stages the target needs, dispatches each instruction
//! (metadata ones on the config, COPY/ADD/WORKDIR into a new layer dir, RUN through the
//! sandbox on an overlay of the parent's layers), commits layers into the store, keeps a
//! cache entry per step, and writes + tags the final image only when everything worked.
//!
//! Rootless: every file operation on layer trees (unpack, COPY into a layer dir, packing
//! an upper dir, removing temp trees) runs inside the user's id mapping
//! ([`imago_sandbox::run_in_mapping`]); RUN starts a container with the same mapping.
//!
//! Never: draws progress (events go to a [`Sink`]), parses Dockerfile text itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use imago_dockerfile::{
    self as df, CommandLine, DockerIgnore, GlobalScope, InstructionKind, Predefined, ShellLex,
    Source as DfSource, StageScope,
};
use imago_oci::Digest;
use imago_sandbox::{run_in_mapping, IdMap, Ownership};
use imago_store::{Image, Store, OCI_LAYER_GZIP};
use serde::{Deserialize, Serialize};

use crate::cache::{self, CacheEntry, KeyParts, LayerRef};
use crate::config::{self, ImageConfig};
use crate::events::{Event, Sink};
use crate::fsview::{self, Kind, LowerView, OwnerMode};
use crate::mount_stubs;
use crate::instr::copy::{self, CopySpec, Item, NewDirs, Sources};
use crate::instr::meta::{self, CommandForm, Health, HealthOpts};
use crate::perms::{self, Chmod};
use crate::stage::{self, Source, StageInfo};
use crate::temp::{remove_tree, TempError, TempPath};

/// The network RUN steps get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The host's network (default: `RUN apt-get` works without a daemon).
    #[default]
    Host,
    /// No network.
    None,
    /// A private network namespace (outbound through pasta/slirp when available).
    Private,
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory, absolute (RUN bind mounts are made from another
    /// working directory).
    pub context_dir: PathBuf,
    /// The Dockerfile's text and its name (for messages).
    pub dockerfile: String,
    pub dockerfile_name: String,
    /// The .dockerignore in effect.
    pub ignore: Option<DockerIgnore>,
    /// `--target`.
    pub target: Option<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--label k=v` (added to the final image).
    pub labels: Vec<(String, String)>,
    /// `-t` names.
    pub tags: Vec<String>,
    /// `--network`.
    pub network: Network,
    /// SOURCE_DATE_EPOCH.
    pub source_date_epoch: Option<i64>,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `-q`: RUN output is discarded.
    pub quiet: bool,
    /// `--pull`: pull base images even when the store has them.
    pub pull: bool,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image id (config digest).
    pub id: Digest,
    /// The manifest digest.
    pub manifest: Digest,
    /// The names given.
    pub tags: Vec<String>,
}

/// A build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Parse(String),
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
        #[source]
        source: imago_registry::RegistryError,
    },
    #[error("store")]
    Store(#[from] imago_store::StoreError),
    #[error("the build context `{0}` must be an absolute path")]
    RelativeContext(PathBuf),
    /// index.json cannot be read: without this check every base image would look
    /// missing, and the build would blame the image's name.
    #[error("the store's index `{path}` is damaged or unreadable")]
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
            BuildError::Step { source, .. } => match source.as_ref() {
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
                _ => None,
            },
            BuildError::BaseStore { source, .. } | BuildError::Store(source) => source.hint(),
            BuildError::StoreIndex { source, .. } => match source {
                imago_store::StoreError::Io { source: io, .. }
                    if io.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    source.hint()
                }
                _ => Some(
                    "run `iimage fsck` to see what is damaged; restore index.json from a backup, or build into another store (--root)"
                        .into(),
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
    #[error("{0}")]
    Invalid(String),
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
    Context(#[from] crate::context::ContextError),
    #[error("image `{0}` not found in the store, and it is not a pullable reference")]
    NoImage(String),
    #[error("pull `{0}`")]
    Pull(String, #[source] imago_registry::RegistryError),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StepError + 'a {
    move |source| StepError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The state of a stage between steps.
#[derive(Debug, Clone)]
struct State {
    config: ImageConfig,
    layers: Vec<LayerRef>,
    /// The cache chain key of this state.
    key: String,
    scope: StageScope,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

/// What a child in the mapping sends back after committing a layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Committed {
    layer: Option<LayerRef>,
}

/// The engine's context for one build.
struct Ctx<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    map: IdMap,
    mode: OwnerMode,
    global: GlobalScope,
    escape: char,
    step: usize,
    total: usize,
    /// The context with .dockerignore applied, for RUN bind mounts; made by the first
    /// RUN that needs it and removed when the build ends.
    bind_context: Option<TempPath>,
}

impl Ctx<'_> {
    /// The directory a RUN `--mount=type=bind` of the context shows: the filtered copy
    /// when there is a .dockerignore, else the context itself.
    fn bind_root(&mut self) -> Result<PathBuf, StepError> {
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

/// Build the Dockerfile in `opts` into `store`.
pub fn build(store: &Store, opts: &BuildOptions, sink: &mut dyn Sink) -> Result<Built, BuildError> {
    if !opts.context_dir.is_absolute() {
        return Err(BuildError::RelativeContext(opts.context_dir.clone()));
    }
    let dfile = df::parse(&opts.dockerfile, &opts.dockerfile_name)
        .map_err(|e| BuildError::Parse(e.render()))?;
    let target_name = Predefined::target_stage_name(&dfile, opts.target.as_deref());
    let mut predef = Predefined::host();
    predef.target_stage = Some(target_name);
    let global = GlobalScope::new(&dfile, &opts.build_args, &predef).map_err(BuildError::Global)?;

    // The stage graph, with FROM expanded.
    let mut infos = Vec::new();
    for st in &dfile.stages {
        let (base, _platform) =
            global
                .expand_from(st, dfile.escape)
                .map_err(|source| BuildError::Expand {
                    line: st.span.start_line as usize,
                    source,
                })?;
        let mut from_refs = Vec::new();
        for ins in &st.instructions {
            let line = ins.span.start_line;
            match &ins.kind {
                InstructionKind::Copy(c) => {
                    if let Some(f) = &c.from {
                        from_refs.push((f.clone(), line));
                    }
                }
                InstructionKind::Run(r) => {
                    for m in &r.mounts {
                        if let Some(f) = m.split(',').find_map(|kv| kv.strip_prefix("from=")) {
                            from_refs.push((f.to_string(), line));
                        }
                    }
                }
                _ => {}
            }
        }
        infos.push(StageInfo {
            name: st.name.clone(),
            base,
            from_refs,
            line: st.span.start_line,
        });
    }
    let target = stage::target_index(&infos, opts.target.as_deref())?;
    let order = stage::needed(&infos, target)?;
    let total = order
        .iter()
        .map(|i| {
            1 + dfile.stages[*i]
                .instructions
                .iter()
                .filter(|x| shows_step(&x.kind))
                .count()
        })
        .sum();

    store
        .read_index()
        .map_err(|source| BuildError::StoreIndex {
            path: store.layout().index(),
            source,
        })?;
    let map = IdMap::detect();
    let mode = match map.ownership() {
        Ownership::Real => OwnerMode::Real,
        Ownership::Xattr => OwnerMode::Xattr,
    };
    let _pin = store.pin()?;
    let mut cx = Ctx {
        store,
        opts,
        map,
        mode,
        global,
        escape: dfile.escape,
        step: 0,
        total,
        bind_context: None,
    };
    let mut states: BTreeMap<usize, State> = BTreeMap::new();
    for &i in &order {
        let st = &dfile.stages[i];
        let s = build_stage(&mut cx, &dfile, &infos, i, &states, sink)?;
        let _ = st;
        states.insert(i, s);
    }
    let Some(mut fin) = states.remove(&target) else {
        return Err(BuildError::Stage(stage::StageError::NoStages));
    };
    // Build option labels (58), then timestamps.
    if !opts.labels.is_empty() {
        let l = fin.config.config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &opts.labels {
            l.insert(k.clone(), v.clone());
        }
    }
    fin.config.created = Some(match opts.source_date_epoch {
        Some(e) => config::format_time(e),
        None => fin
            .config
            .history
            .last()
            .and_then(|h| h.created.clone())
            .unwrap_or_else(config::now),
    });
    if let Some(e) = opts.source_date_epoch {
        fin.config.clamp_times(e);
    }
    fin.config.rootfs.diff_ids = fin.layers.iter().map(|l| l.diff_id.clone()).collect();
    let layers = store_layers(&fin.layers)?;
    let config_bytes = fin.config.to_json();
    let manifest = store.put_image_raw(&config_bytes, &layers)?;
    let id = Digest::of(&config_bytes);
    let mut tags = Vec::new();
    for t in &opts.tags {
        let n = store.tag(t, &manifest).map_err(|source| BuildError::Tag {
            name: t.clone(),
            source,
        })?;
        tags.push(format!("{}:{}", n.repository, n.tag));
    }
    sink.event(Event::Written {
        id: id.to_string(),
        tags: tags.clone(),
    });
    Ok(Built { id, manifest, tags })
}

fn store_layers(
    layers: &[LayerRef],
) -> Result<Vec<imago_store::LayerRef>, imago_store::StoreError> {
    layers
        .iter()
        .map(|l| {
            let digest: Digest = l
                .digest
                .parse()
                .map_err(|_| imago_store::StoreError::Other {
                    what: format!("bad digest {}", l.digest),
                })?;
            Ok(imago_store::LayerRef {
                media_type: l.media_type.clone(),
                digest,
                size: l.size,
            })
        })
        .collect()
}

/// The instructions that show as a numbered step (BuildKit shows FROM, RUN, COPY, ADD,
/// WORKDIR; the others only change the config).
fn shows_step(k: &InstructionKind) -> bool {
    matches!(
        k,
        InstructionKind::Run(_)
            | InstructionKind::Copy(_)
            | InstructionKind::Add(_)
            | InstructionKind::Workdir(_)
    )
}

fn build_stage(
    cx: &mut Ctx<'_>,
    dfile: &df::Dockerfile,
    infos: &[StageInfo],
    i: usize,
    states: &BTreeMap<usize, State>,
    sink: &mut dyn Sink,
) -> Result<State, BuildError> {
    let st = &dfile.stages[i];
    let line = st.span.start_line as usize;
    cx.step += 1;
    let n = cx.step;
    sink.event(Event::Step {
        n,
        total: cx.total,
        text: format!("FROM {}", infos[i].base),
    });
    let t0 = Instant::now();
    let mut state = match stage::resolve_base(infos, i)? {
        Source::Scratch => State {
            config: ImageConfig::scratch(),
            layers: Vec::new(),
            key: "scratch".into(),
            scope: StageScope::new(),
            cmd_set: false,
        },
        Source::Stage(j) => {
            let mut s = states.get(&j).cloned().ok_or(stage::StageError::NoStages)?;
            s.cmd_set = false;
            s
        }
        Source::Image(r) => {
            let img = resolve_or_pull(cx, &r, sink).map_err(|e| match e {
                Fetch::Store(source @ imago_store::StoreError::ImageNotFound { .. }) => {
                    BuildError::BaseNotFound {
                        reference: r.clone(),
                        line,
                        source,
                    }
                }
                Fetch::Store(source) => BuildError::BaseStore {
                    reference: r.clone(),
                    line,
                    source,
                },
                Fetch::Pull(source) => BuildError::Pull {
                    reference: r.clone(),
                    line,
                    source,
                },
            })?;
            state_of_image(&img)?
        }
    };
    state.config.ensure_path();
    sink.event(Event::Done {
        n,
        took: t0.elapsed(),
    });
    // ONBUILD triggers of the base run now, then are cleared (117, 118).
    if let Some(triggers) = state.config.config.on_build.take() {
        let mut parsed = Vec::new();
        for t in triggers {
            let text = format!("FROM scratch\n{t}\n");
            let df = df::parse(&text, "ONBUILD").map_err(|e| BuildError::Parse(e.render()))?;
            parsed.extend(df.stages.into_iter().flat_map(|s| s.instructions));
        }
        // The triggers' steps count in the total shown as `[n/total]`.
        cx.total += parsed.iter().filter(|x| shows_step(&x.kind)).count();
        for ins in &parsed {
            step(cx, infos, i, states, &mut state, ins, line, sink)?;
        }
    }
    for ins in &st.instructions {
        step(
            cx,
            infos,
            i,
            states,
            &mut state,
            ins,
            ins.span.start_line as usize,
            sink,
        )?;
    }
    Ok(state)
}

/// Why a base image could not be had.
enum Fetch {
    Store(imago_store::StoreError),
    Pull(imago_registry::RegistryError),
}

/// A base image from the store; pulled from its registry first when it is missing, or
/// always with `--pull` (issue 5 item 2).
fn resolve_or_pull(cx: &Ctx<'_>, r: &str, sink: &mut dyn Sink) -> Result<Image, Fetch> {
    if !cx.opts.pull {
        match cx.store.resolve(r) {
            Ok(img) => return Ok(img),
            Err(imago_store::StoreError::ImageNotFound { .. }) => {}
            Err(e) => return Err(Fetch::Store(e)),
        }
    }
    let reference = match imago_oci::Reference::parse(r) {
        Ok(x) => x,
        Err(_) => return cx.store.resolve(r).map_err(Fetch::Store),
    };
    sink.event(Event::Warning(format!("pulling {reference}")));
    match imago_registry::pull_image(cx.store, &reference, &imago_registry::NoEvents) {
        Ok(_) => cx.store.resolve(r).map_err(Fetch::Store),
        // With --pull, an image we already have is still usable when the registry is not.
        Err(e) if cx.opts.pull => cx.store.resolve(r).map_err(|_| Fetch::Pull(e)),
        Err(e) => Err(Fetch::Pull(e)),
    }
}

/// The state at a stored image.
fn state_of_image(img: &Image) -> Result<State, BuildError> {
    let config =
        ImageConfig::from_json(&img.config_bytes).map_err(|e| imago_store::StoreError::Other {
            what: format!("image {}: config: {e}", img.id().short()),
        })?;
    let diff_ids = img.diff_ids()?;
    let layers = img
        .layers()?
        .into_iter()
        .zip(diff_ids)
        .map(|(l, d)| LayerRef {
            digest: l.digest.to_string(),
            diff_id: d.to_string(),
            size: l.size,
            media_type: l.media_type,
        })
        .collect();
    let scope = StageScope::with_image_env(config.config.env.iter().map(String::as_str));
    Ok(State {
        config,
        layers,
        key: format!("image:{}", img.id()),
        scope,
        cmd_set: false,
    })
}

#[allow(clippy::too_many_arguments)]
fn step(
    cx: &mut Ctx<'_>,
    infos: &[StageInfo],
    i: usize,
    states: &BTreeMap<usize, State>,
    state: &mut State,
    ins: &df::Instruction,
    line: usize,
    sink: &mut dyn Sink,
) -> Result<(), BuildError> {
    let shown = shows_step(&ins.kind);
    let n = if shown {
        cx.step += 1;
        sink.event(Event::Step {
            n: cx.step,
            total: cx.total,
            text: ins.original.trim().to_string(),
        });
        cx.step
    } else {
        0
    };
    let t0 = Instant::now();
    let wrap = |e: StepError| BuildError::Step {
        n,
        line,
        text: ins.original.trim().to_string(),
        source: Box::new(e),
    };
    let lex = ShellLex::new(cx.escape);
    let ex = ins.expand(&lex, &state.scope).map_err(|e| wrap(e.into()))?;
    let r = dispatch(cx, infos, i, states, state, &ex.kind, sink, n);
    match r {
        Ok(cached) => {
            if shown {
                if cached {
                    sink.event(Event::Cached { n });
                } else {
                    sink.event(Event::Done {
                        n,
                        took: t0.elapsed(),
                    });
                }
            }
            Ok(())
        }
        Err(e) => Err(wrap(e)),
    }
}

fn created(cx: &Ctx<'_>) -> Option<String> {
    Some(match cx.opts.source_date_epoch {
        Some(e) => config::format_time(e),
        None => config::now(),
    })
}

fn form(c: &CommandLine) -> CommandForm {
    match c {
        CommandLine::Shell(s) => CommandForm::Shell(s.clone()),
        CommandLine::Exec(v) => CommandForm::Exec(v.clone()),
    }
}

fn kv(v: &[df::KeyValue]) -> Vec<(String, String)> {
    v.iter().map(|k| (k.key.clone(), k.value.clone())).collect()
}

/// Apply one expanded instruction. Returns true for a cache hit.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    cx: &mut Ctx<'_>,
    infos: &[StageInfo],
    i: usize,
    states: &BTreeMap<usize, State>,
    state: &mut State,
    kind: &InstructionKind,
    sink: &mut dyn Sink,
    n: usize,
) -> Result<bool, StepError> {
    // Metadata steps take the time of the state they change, so a cached chain gives
    // the same config (and image id) on every rebuild.
    let created = match cx.opts.source_date_epoch {
        Some(e) => Some(config::format_time(e)),
        None => state
            .config
            .history
            .last()
            .and_then(|h| h.created.clone())
            .or_else(|| state.config.created.clone())
            .or_else(|| created(cx)),
    };
    let meta_done = |state: &mut State, text: String| {
        state.key = cache::step_key(&KeyParts {
            parent: &state.key,
            instruction: &text,
            ..Default::default()
        });
        state.config.push_history(text, true, created.clone());
    };
    match kind {
        InstructionKind::Env(kvs) => {
            let pairs = kv(kvs);
            for (k, v) in &pairs {
                state.scope.set_env(k, v)?;
            }
            let t = meta::env(&mut state.config, &pairs);
            meta_done(state, t);
        }
        InstructionKind::Arg(decls) => {
            state.scope.apply(kind, &cx.global, &cx.opts.build_args)?;
            let args: Vec<(String, Option<String>)> = decls
                .iter()
                .map(|d| (d.name.clone(), d.default.clone()))
                .collect();
            let t = meta::arg(&args);
            // The value in effect is part of the key (a changed --build-arg misses).
            let vals: Vec<String> = decls
                .iter()
                .map(|d| {
                    let v = state
                        .scope
                        .args()
                        .iter()
                        .find(|(k, _)| *k == d.name)
                        .and_then(|(_, v)| v.clone());
                    format!("{}={:?}", d.name, v)
                })
                .collect();
            state.key = cache::step_key(&KeyParts {
                parent: &state.key,
                instruction: &t,
                extra: &vals.join("\0"),
                ..Default::default()
            });
            state.config.push_history(t, true, created);
        }
        InstructionKind::Label(kvs) => {
            let t = meta::label(&mut state.config, &kv(kvs));
            meta_done(state, t);
        }
        InstructionKind::Expose(words) => {
            let t = meta::expose(&mut state.config, words)?;
            meta_done(state, t);
        }
        InstructionKind::Volume(v) => {
            let t = meta::volume(&mut state.config, v);
            meta_done(state, t);
        }
        InstructionKind::User(u) => {
            let t = meta::user(&mut state.config, u);
            meta_done(state, t);
        }
        InstructionKind::StopSignal(s) => {
            let t = meta::stopsignal(&mut state.config, s);
            meta_done(state, t);
        }
        InstructionKind::Shell(v) => {
            let t = meta::shell(&mut state.config, v);
            meta_done(state, t);
        }
        InstructionKind::Maintainer(m) => {
            let t = meta::maintainer(&mut state.config, m);
            meta_done(state, t);
        }
        InstructionKind::Onbuild(o) => {
            let t = meta::onbuild(&mut state.config, &o.trigger);
            meta_done(state, t);
        }
        InstructionKind::Cmd(c) => {
            let t = meta::cmd(&mut state.config, &form(c));
            state.cmd_set = true;
            meta_done(state, t);
        }
        InstructionKind::Entrypoint(c) => {
            let cmd_set = state.cmd_set;
            let t = meta::entrypoint(&mut state.config, &form(c), cmd_set);
            meta_done(state, t);
        }
        InstructionKind::Healthcheck(h) => {
            let hh = match h {
                df::Healthcheck::None => Health::None,
                df::Healthcheck::Check {
                    command,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => {
                    let d =
                        |x: &Option<std::time::Duration>| x.map(|d| format!("{}ns", d.as_nanos()));
                    Health::Cmd(
                        form(command),
                        HealthOpts {
                            interval: d(interval),
                            timeout: d(timeout),
                            start_period: d(start_period),
                            start_interval: d(start_interval),
                            retries: retries.map(|r| r.to_string()),
                        },
                    )
                }
            };
            let t = meta::healthcheck(&mut state.config, &hh)?;
            meta_done(state, t);
        }
        InstructionKind::Workdir(w) => return workdir(cx, state, w),
        InstructionKind::Copy(c) => {
            let spec = CopySpec {
                add: false,
                sources: paths(&c.sources),
                dest: c.dest.clone(),
                workdir: state.config.config.working_dir.clone(),
                chown: None,
                chmod: c.chmod.as_deref().map(Chmod::parse).transpose()?,
                excludes: c.exclude.clone(),
                parents: c.parents,
                unpack: None,
                checksum: None,
                inline: heredocs(&c.sources),
            };
            let from = match &c.from {
                Some(f) => Some(stage::resolve_from(infos, i, f, 0)?),
                None => None,
            };
            return copy_step(
                cx,
                states,
                state,
                spec,
                c.chown.clone(),
                from,
                &history_sources(&c.sources),
                n,
                sink,
            );
        }
        InstructionKind::Add(a) => {
            let spec = CopySpec {
                add: true,
                sources: paths(&a.sources),
                dest: a.dest.clone(),
                workdir: state.config.config.working_dir.clone(),
                chown: None,
                chmod: a.chmod.as_deref().map(Chmod::parse).transpose()?,
                excludes: a.exclude.clone(),
                parents: false,
                unpack: a.unpack,
                checksum: a.checksum.clone(),
                inline: heredocs(&a.sources),
            };
            return copy_step(
                cx,
                states,
                state,
                spec,
                a.chown.clone(),
                None,
                &history_sources(&a.sources),
                n,
                sink,
            );
        }
        InstructionKind::Run(r) => return run_step(cx, infos, i, states, state, r, n, sink),
    }
    Ok(false)
}

fn paths(s: &[DfSource]) -> Vec<String> {
    s.iter()
        .filter_map(|x| match x {
            DfSource::Path(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn heredocs(s: &[DfSource]) -> Vec<(String, Vec<u8>)> {
    s.iter()
        .filter_map(|x| match x {
            DfSource::Heredoc { name, content, .. } => {
                Some((name.clone(), content.clone().into_bytes()))
            }
            _ => None,
        })
        .collect()
}

fn history_sources(s: &[DfSource]) -> Vec<String> {
    s.iter()
        .map(|x| match x {
            DfSource::Path(p) => p.clone(),
            DfSource::Heredoc { name, .. } => format!("<<{name}"),
        })
        .collect()
}

/// Look a cache entry up (the store's build cache); a hit needs every layer blob still
/// in the store.
fn cache_get(cx: &Ctx<'_>, key: &str) -> Option<CacheEntry> {
    if cx.opts.no_cache {
        return None;
    }
    let bytes = cx.store.cache_get(key).ok()??;
    let e: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    let all = e.layers.iter().all(|l| {
        l.digest
            .parse::<Digest>()
            .map(|d| cx.store.has_blob(&d))
            .unwrap_or(false)
    });
    all.then_some(e)
}

/// Record a cache entry; its layer blobs stay alive as long as the entry (store gc).
/// A failure only costs a future cache miss.
fn cache_put(cx: &Ctx<'_>, key: &str, e: &CacheEntry) {
    let refs: Vec<Digest> = e
        .layers
        .iter()
        .filter_map(|l| l.digest.parse().ok())
        .collect();
    if let Ok(bytes) = serde_json::to_vec(e) {
        if let Err(err) = cx.store.cache_put(key, &bytes, &refs) {
            tracing::warn!("build cache entry {key} not recorded: {err}");
        }
    }
}

/// A fake [`Image`] over a build state's layers, so the store unpacks them.
fn image_of(state_layers: &[LayerRef]) -> Result<Image, StepError> {
    let cfg = serde_json::json!({
        "architecture": config::host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": state_layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    });
    let config_bytes = serde_json::to_vec(&cfg).unwrap_or_default();
    let config_digest = Digest::of(&config_bytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": imago_store::OCI_MANIFEST,
        "config": {"mediaType": imago_store::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": state_layers.iter().map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let bad = |e: serde_json::Error| StepError::Invalid(format!("build state: {e}"));
    Ok(Image {
        index_digest: Digest::of(&manifest_bytes),
        manifest_digest: Digest::of(&manifest_bytes),
        manifest_media_type: imago_store::OCI_MANIFEST.into(),
        manifest: serde_json::from_slice(&manifest_bytes).map_err(bad)?,
        manifest_bytes,
        config_digest,
        config: serde_json::from_slice(&config_bytes).map_err(bad)?,
        config_bytes,
        names: Vec::new(),
    })
}

fn store_mode(m: OwnerMode) -> imago_store::OwnerMode {
    match m {
        OwnerMode::Real => imago_store::OwnerMode::Real,
        OwnerMode::Xattr => imago_store::OwnerMode::Xattr,
    }
}

/// Inside the mapping: the unpacked layer dirs of a state, bottom first.
fn unpack(store: &Store, layers: &[LayerRef], mode: OwnerMode) -> Result<Vec<PathBuf>, StepError> {
    if layers.is_empty() {
        return Ok(Vec::new());
    }
    let img = image_of(layers)?;
    Ok(store.unpack_layers(
        &img,
        store_mode(mode),
        &imago_store::UnpackLimits::default(),
    )?)
}

/// Inside the mapping: pack `dir` as a gzip layer into the store. None when the dir is
/// empty (no layer, like BuildKit drops empty layers).
fn commit_dir(
    store: &Store,
    dir: &Path,
    mode: OwnerMode,
    epoch: Option<i64>,
) -> Result<Option<LayerRef>, StepError> {
    let empty = std::fs::read_dir(dir)
        .map_err(io_err("read", dir))?
        .next()
        .is_none();
    if empty {
        return Ok(None);
    }
    // Removed on every way out, e.g. ENOSPC while packing (the store copies it into a blob).
    let guard = TempPath::new(store.temp_path("layer.tar.gz"));
    let tmp = guard.path();
    let f = std::fs::File::create(tmp).map_err(io_err("create", tmp))?;
    let gz = imago_oci::Compressor::new(
        std::io::BufWriter::new(f),
        imago_oci::Compression::Gzip,
        imago_oci::Level::Fast,
    )
    .map_err(io_err("compress", tmp))?;
    let mut hw = HashWriter {
        inner: gz,
        hasher: imago_oci::Hasher::new(),
    };
    let opts = imago_oci::layer::PackOptions {
        owner: match mode {
            OwnerMode::Real => imago_oci::layer::OwnerMode::Real,
            OwnerMode::Xattr => imago_oci::layer::OwnerMode::Xattr,
        },
        default_owner: Some((0, 0)),
        mtime_clamp: epoch,
        ..Default::default()
    };
    imago_oci::layer::pack(dir, &mut hw, &opts)?;
    let diff_id = hw.hasher.finish();
    let mut w = hw.inner.finish().map_err(io_err("compress", tmp))?;
    w.flush().map_err(io_err("write", tmp))?;
    drop(w);
    let f = std::fs::File::open(tmp).map_err(io_err("open", tmp))?;
    let l = store.put_layer(f, OCI_LAYER_GZIP)?;
    guard.remove()?;
    Ok(Some(LayerRef {
        digest: l.digest.to_string(),
        diff_id: diff_id.to_string(),
        size: l.size,
        media_type: l.media_type,
    }))
}

struct HashWriter<W: Write> {
    inner: W,
    hasher: imago_oci::Hasher,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.hasher.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn finish_layer(
    state: &mut State,
    key: String,
    layer: Option<LayerRef>,
    history: String,
    created: Option<String>,
) {
    let empty = layer.is_none();
    if let Some(l) = layer {
        state.layers.push(l);
    }
    state.config.push_history(history, empty, created);
    state.key = key;
}

fn cached(cx: &Ctx<'_>, state: &mut State, key: &str) -> bool {
    match cache_get(cx, key) {
        Some(e) => {
            state.config = e.config;
            state.layers = e.layers;
            state.key = key.to_string();
            true
        }
        None => false,
    }
}

fn record(cx: &Ctx<'_>, state: &State) {
    cache_put(
        cx,
        &state.key,
        &CacheEntry {
            config: state.config.clone(),
            layers: state.layers.clone(),
        },
    );
}

/// WORKDIR: resolve, then create the dir (owned by USER) in a layer when missing.
fn workdir(cx: &mut Ctx<'_>, state: &mut State, w: &str) -> Result<bool, StepError> {
    let (wd, text) = meta::workdir(&mut state.config, w);
    let key = cache::step_key(&KeyParts {
        parent: &state.key,
        instruction: &text,
        extra: &state.config.config.user,
        ..Default::default()
    });
    if cached(cx, state, &key) {
        return Ok(true);
    }
    let created = created(cx);
    if wd == "/" {
        finish_layer(state, key, None, text, created);
        record(cx, state);
        return Ok(false);
    }
    let (store, mode, layers, user) = (
        cx.store,
        cx.mode,
        state.layers.clone(),
        state.config.config.user.clone(),
    );
    let epoch = cx.opts.source_date_epoch;
    let c = run_in_mapping(&cx.map, move || -> Result<Committed, StepError> {
        let lowers = unpack(store, &layers, mode)?;
        let below = LowerView::from_bottom_first(lowers, mode);
        let comps = below.resolve(&wd, true);
        if below.lookup(&comps).is_some_and(|e| e.kind == Kind::Dir) {
            return Ok(Committed { layer: None });
        }
        let (uid, gid) = ids_of(&below, &user)?;
        let out = TempPath::new(store.temp_path("workdir"));
        std::fs::create_dir_all(out.path()).map_err(io_err("create", out.path()))?;
        let nd = NewDirs {
            uid,
            gid,
            mode: 0o755,
        };
        copy::ensure_parents(out.path(), &below, &comps, nd, mode)?;
        let layer = commit_dir(store, out.path(), mode, epoch)?;
        out.remove()?;
        Ok(Committed { layer })
    })?;
    finish_layer(state, key, c.layer, text, created);
    record(cx, state);
    Ok(false)
}

/// uid/gid of a USER string in the view's /etc/passwd and /etc/group.
fn ids_of(view: &LowerView, user: &str) -> Result<(u32, u32), StepError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let read = |p: &str| {
        let c = view.resolve(p, true);
        view.lookup(&c)
            .and_then(|e| std::fs::read_to_string(e.host).ok())
            .unwrap_or_default()
    };
    let ids = perms::resolve_user(user, &read("/etc/passwd"), &read("/etc/group"))?;
    Ok((ids.uid, ids.gid))
}

#[allow(clippy::too_many_arguments)]
fn copy_step(
    cx: &mut Ctx<'_>,
    states: &BTreeMap<usize, State>,
    state: &mut State,
    mut spec: CopySpec,
    chown: Option<String>,
    from: Option<Source>,
    hist_sources: &[String],
    _n: usize,
    sink: &mut dyn Sink,
) -> Result<bool, StepError> {
    let history = meta::copy_history(spec.add, hist_sources, &spec.dest);
    // ADD of URLs: download them into a temp dir that then serves as the context.
    let mut url_dir: Option<TempPath> = None;
    if spec.add && spec.sources.iter().any(|s| is_url(s)) {
        if !spec.sources.iter().all(|s| is_url(s)) || from.is_some() {
            return Err(StepError::Invalid(
                "ADD cannot mix URL and local sources (yet): use one ADD per URL".into(),
            ));
        }
        let dir = TempPath::new(cx.store.temp_path("add-url"));
        std::fs::create_dir_all(dir.path()).map_err(io_err("create", dir.path()))?;
        let mut names = Vec::new();
        for u in &spec.sources {
            names.push(fetch_url(u, dir.path(), spec.checksum.as_deref())?);
        }
        spec.sources = names;
        spec.checksum = None;
        // A URL is not extracted unless --unpack=true (94).
        spec.unpack = Some(spec.unpack == Some(true));
        url_dir = Some(dir);
    }
    let ctx_dir = url_dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_else(|| cx.opts.context_dir.clone());
    let ignore = if url_dir.is_some() {
        None
    } else {
        cx.opts.ignore.clone()
    };
    // The source: the context, a stage's layers or an image's layers.
    let (src_layers, src_key): (Option<Vec<LayerRef>>, String) = match &from {
        None => (None, String::new()),
        Some(Source::Scratch) => (Some(Vec::new()), "scratch".into()),
        Some(Source::Stage(j)) => {
            let s = states
                .get(j)
                .ok_or_else(|| StepError::Invalid(format!("stage {j} was not built")))?;
            (Some(s.layers.clone()), s.key.clone())
        }
        Some(Source::Image(r)) => {
            let img = resolve_or_pull(cx, r, sink).map_err(|e| match e {
                Fetch::Store(imago_store::StoreError::ImageNotFound { .. }) => {
                    StepError::NoImage(r.clone())
                }
                Fetch::Store(e) => StepError::Store(e),
                Fetch::Pull(source) => StepError::Pull(r.clone(), source),
            })?;
            let s = state_of_image(&img).map_err(|e| StepError::Invalid(e.to_string()))?;
            (Some(s.layers), s.key)
        }
    };
    // Cache key: parent + the instruction (with its flags) + the sources' digest.
    let instr = format!(
        "{history} chown={chown:?} chmod={:?} exclude={:?} parents={} unpack={:?} wd={}",
        spec.chmod, spec.excludes, spec.parents, spec.unpack, spec.workdir
    );
    let sources_digest = if src_layers.is_none() {
        let view = LowerView {
            dirs: vec![ctx_dir.clone()],
            mode: OwnerMode::Real,
        };
        let ig = ignore.clone();
        let ignored = move |p: &str| ig.as_ref().is_some_and(|i| i.is_excluded(p));
        let src = Sources {
            view: &view,
            context: true,
            ignored: &ignored,
        };
        let mut key_spec = spec.clone();
        key_spec.chown = None;
        let items = copy::plan(&key_spec, &src, &|_| true)?;
        copy::items_digest(&items)?
    } else {
        format!("{src_key} {:?}", spec.sources)
    };
    let key = cache::step_key(&KeyParts {
        parent: &state.key,
        instruction: &instr,
        sources: &sources_digest,
        ..Default::default()
    });
    if cached(cx, state, &key) {
        return Ok(true);
    }
    let created = created(cx);
    let (store, mode, layers) = (cx.store, cx.mode, state.layers.clone());
    let epoch = cx.opts.source_date_epoch;
    spec.chown = None;
    let c = run_in_mapping(&cx.map, move || -> Result<Committed, StepError> {
        let lowers = unpack(store, &layers, mode)?;
        let below = LowerView::from_bottom_first(lowers, mode);
        // --chown names resolve in the destination stage (78).
        if let Some(ch) = &chown {
            let read = |p: &str| {
                let c = below.resolve(p, true);
                below
                    .lookup(&c)
                    .and_then(|e| std::fs::read_to_string(e.host).ok())
                    .unwrap_or_default()
            };
            spec.chown = Some(perms::resolve_chown(
                ch,
                &read("/etc/passwd"),
                &read("/etc/group"),
            )?);
        }
        let (view, context) = match &src_layers {
            None => (
                LowerView {
                    dirs: vec![ctx_dir.clone()],
                    mode: OwnerMode::Real,
                },
                true,
            ),
            Some(l) => (
                LowerView::from_bottom_first(unpack(store, l, mode)?, mode),
                false,
            ),
        };
        let ignored = move |p: &str| ignore.as_ref().is_some_and(|i| i.is_excluded(p));
        let src = Sources {
            view: &view,
            context,
            ignored: &ignored,
        };
        let is_dir = |c: &[String]| {
            let r = below.resolve(&c.join("/"), true);
            below.lookup(&r).is_some_and(|e| e.kind == Kind::Dir)
        };
        let items: Vec<Item> = copy::plan(&spec, &src, &is_dir)?;
        let (uid, gid) = spec.chown.unwrap_or((0, 0));
        let dmode = spec
            .chmod
            .as_ref()
            .map(|c| c.apply(0o755, true))
            .unwrap_or(0o755);
        let out = TempPath::new(store.temp_path("copy"));
        std::fs::create_dir_all(out.path()).map_err(io_err("create", out.path()))?;
        copy::apply(
            &items,
            out.path(),
            &below,
            NewDirs {
                uid,
                gid,
                mode: dmode,
            },
            mode,
        )?;
        let layer = commit_dir(store, out.path(), mode, epoch)?;
        out.remove()?;
        Ok(Committed { layer })
    })?;
    finish_layer(state, key, c.layer, history, created);
    record(cx, state);
    Ok(false)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Download `url` into `dir` (ADD, 94/96): the file is named after the URL path's last
/// segment, gets mode 0600 and the `Last-Modified` time; `--checksum` is verified.
fn fetch_url(url: &str, dir: &Path, checksum: Option<&str>) -> Result<String, StepError> {
    let want = match checksum {
        None => None,
        Some(c) => match c.split_once(':') {
            None => {
                return Err(StepError::Invalid(format!(
                    "invalid checksum digest format: {c}"
                )))
            }
            Some(("sha256", hex)) => Some(format!("sha256:{}", hex.to_ascii_lowercase())),
            Some((alg, _)) => {
                return Err(StepError::Invalid(format!(
                    "unsupported digest algorithm: {alg}"
                )))
            }
        },
    };
    let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    let name = path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && !path.ends_with('/') && path.contains('/'))
        .unwrap_or("download");
    let fail = |what: String| StepError::Invalid(format!("download {url}: {what}"));
    let agent = imago_registry::transport::agent_for(
        authority,
        &imago_registry::TransportOptions::default(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let resp = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let modified = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| jiff::fmt::rfc2822::parse(t).ok())
        .map(|z| z.timestamp().as_second());
    let file = dir.join(name);
    let mut out = std::fs::File::create(&file).map_err(io_err("create", &file))?;
    let mut hw = HashWriter {
        inner: &mut out,
        hasher: imago_oci::Hasher::new(),
    };
    std::io::copy(&mut resp.into_body().into_reader(), &mut hw)
        .map_err(io_err("download into", &file))?;
    let got = hw.hasher.finish().to_string();
    drop(out);
    if let Some(w) = want {
        if w != got {
            return Err(fail(format!("digest mismatch: expected {w}, got {got}")));
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err("chmod", &file))?;
    fsview::set_mtime(&file, modified.unwrap_or(0)).map_err(io_err("set mtime", &file))?;
    Ok(name.to_string())
}

/// The argv of a RUN, heredocs included (107).
fn run_argv(config: &ImageConfig, r: &df::Run) -> Vec<String> {
    match &r.command {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            if r.heredocs.is_empty() {
                return meta::argv(config, &CommandForm::Shell(s.clone()));
            }
            let only = r.heredocs.len() == 1 && {
                let t = s.trim();
                t == format!("<<{}", r.heredocs[0].name)
                    || t == format!("<<-{}", r.heredocs[0].name)
                    || t.starts_with("<<") && !t.contains(' ')
            };
            if only {
                let body = r.heredocs[0].body();
                if body.starts_with("#!") {
                    // Run the script with its interpreter: through the shell, as a file.
                    let script = format!("cat > /tmp/.imago-heredoc <<'IMAGO_EOF'\n{body}IMAGO_EOF\nchmod +x /tmp/.imago-heredoc && /tmp/.imago-heredoc; rc=$?; rm -f /tmp/.imago-heredoc; exit $rc");
                    return vec!["/bin/sh".into(), "-c".into(), script];
                }
                return meta::argv(config, &CommandForm::Shell(body));
            }
            let mut script = s.clone();
            for h in &r.heredocs {
                script.push('\n');
                script.push_str(&h.body());
                script.push_str(&h.name);
            }
            meta::argv(config, &CommandForm::Shell(script))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_step(
    cx: &mut Ctx<'_>,
    infos: &[StageInfo],
    i: usize,
    states: &BTreeMap<usize, State>,
    state: &mut State,
    r: &df::Run,
    _n: usize,
    sink: &mut dyn Sink,
) -> Result<bool, StepError> {
    let argv = run_argv(&state.config, r);
    // Declared ARGs with a value (proxy args stay out of history and key, 40).
    let used: Vec<(String, String)> = state
        .scope
        .args()
        .iter()
        .filter(|(k, _)| !df::scope::is_proxy_arg(k))
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect();
    let history = meta::run_history(&argv, &used);
    let network = match r.network.as_deref() {
        Some("none") => Network::None,
        Some("host") => Network::Host,
        _ => cx.opts.network,
    };
    let mounts: Vec<df::Mount> = r
        .mounts
        .iter()
        .map(|m| df::Mount::parse(m).map_err(StepError::Invalid))
        .collect::<Result<_, _>>()?;
    // `--mount=type=bind,from=<stage|image>`: that state's layers, flattened later.
    let mut from_layers: Vec<Option<Vec<LayerRef>>> = Vec::new();
    let mut from_keys = String::new();
    for m in &mounts {
        let Some(f) = m.from.as_deref().filter(|_| m.kind == df::MountType::Bind) else {
            from_layers.push(None);
            continue;
        };
        let (layers, key) = match stage::resolve_from(infos, i, f, 0)? {
            Source::Scratch => (Vec::new(), "scratch".to_string()),
            Source::Stage(j) => {
                let s = states
                    .get(&j)
                    .ok_or_else(|| StepError::Invalid(format!("stage {j} was not built")))?;
                (s.layers.clone(), s.key.clone())
            }
            Source::Image(r) => {
                let img = resolve_or_pull(cx, &r, sink).map_err(|e| match e {
                    Fetch::Store(imago_store::StoreError::ImageNotFound { .. }) => {
                        StepError::NoImage(r.clone())
                    }
                    Fetch::Store(e) => StepError::Store(e),
                    Fetch::Pull(source) => StepError::Pull(r.clone(), source),
                })?;
                let s = state_of_image(&img).map_err(|e| StepError::Invalid(e.to_string()))?;
                (s.layers, s.key)
            }
        };
        from_keys.push_str(&key);
        from_keys.push(' ');
        from_layers.push(Some(layers));
    }
    // Context bind mounts: what they show (.dockerignore applied) is part of the key.
    let mut bind_root = None;
    let mut context_keys = String::new();
    for m in &mounts {
        if m.kind == df::MountType::Bind && m.from.is_none() {
            let root = match &bind_root {
                Some(r) => r,
                None => bind_root.insert(cx.bind_root()?),
            };
            let src = crate::context::bind_source(root, m.source.as_deref());
            context_keys.push_str(&crate::context::tree_digest(&src)?);
            context_keys.push(' ');
        }
    }
    let key = cache::step_key(&KeyParts {
        parent: &state.key,
        instruction: &history,
        args: used.clone(),
        extra: &format!(
            "{network:?} {:?} user={} wd={} from={from_keys} context={context_keys}",
            r.mounts, state.config.config.user, state.config.config.working_dir
        ),
        ..Default::default()
    });
    if cached(cx, state, &key) {
        return Ok(true);
    }
    let created = created(cx);
    let mut env: Vec<String> = state
        .scope
        .run_env(&cx.opts.build_args)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, config::DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push("HOME=/root".into());
    }
    let cwd = if state.config.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        state.config.config.working_dir.clone()
    };
    let user = state.config.config.user.clone();
    let (store, mode, layers, map) = (cx.store, cx.mode, state.layers.clone(), cx.map.clone());
    let epoch = cx.opts.source_date_epoch;
    // Holds files of mapped ids (the upper dir): removed inside the mapping, on every
    // way out of this step.
    let run_dir = TempPath::in_mapping(store.temp_path("run"), &cx.map);
    let dir = run_dir.path().to_path_buf();
    // 1. In the mapping: unpack the parent's layers, make upper/work/rootfs dirs.
    let d2 = dir.clone();
    let fl = from_layers.clone();
    let lowers: Vec<PathBuf> =
        run_in_mapping(&cx.map, move || -> Result<Vec<PathBuf>, StepError> {
            let lowers = unpack(store, &layers, mode)?;
            for sub in ["upper", "work", "rootfs", "links", "empty"] {
                std::fs::create_dir_all(d2.join(sub)).map_err(io_err("create", &d2))?;
            }
            // Bind sources from other states: a flattened copy each (writes are dropped).
            for (n, l) in fl.iter().enumerate() {
                if let Some(l) = l {
                    let dirs = unpack(store, l, mode)?;
                    flatten_into(
                        &dirs,
                        &d2.join(format!("from-{n}")),
                        &d2.join(format!("from-{n}.tar")),
                        mode,
                    )?;
                }
            }
            Ok(lowers)
        })?;
    let result = (|| -> Result<i32, StepError> {
        let mut top_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
        if top_first.is_empty() {
            top_first.push(dir.join("empty"));
        }
        let layers = imago_overlay::Layers {
            lowers_top_first: top_first,
            upper: dir.join("upper"),
            work: dir.join("work"),
            links_dir: dir.join("links"),
        };
        let imago_overlay::RootfsPlan::Kernel(k) =
            imago_overlay::plan(imago_overlay::RootfsMethod::Kernel, &layers)?;
        let mut user_mounts = Vec::new();
        let mut penv = env.clone();
        for (n, m) in mounts.iter().enumerate() {
            // `type=secret,env=VAR`: the secret in the environment (and as a file only
            // when a target is given too). Never in a layer or in the history.
            if let (df::MountType::Secret, Some(var)) = (m.kind, &m.env) {
                let id = m.id.clone().unwrap_or_default();
                match cx.opts.secrets.get(&id) {
                    Some(src) => {
                        let v = std::fs::read_to_string(src).map_err(io_err("read secret", src))?;
                        penv.push(format!("{var}={v}"));
                    }
                    None if m.required => {
                        return Err(StepError::Invalid(format!(
                            "secret {id} not found (pass --secret id={id},src=FILE)"
                        )))
                    }
                    None => {}
                }
                if m.target.is_none() {
                    continue;
                }
            }
            user_mounts.push(mount_for(cx, m, &dir, n, bind_root.as_deref())?);
        }
        let spec = imago_sandbox::spec::ContainerSpec {
            id_map: map.clone(),
            root: imago_sandbox::spec::RootMount::Overlay {
                cwd: k.cwd.clone(),
                data: k.data.clone(),
                links: k.links.clone(),
            },
            rootfs: dir.join("rootfs"),
            hostname: "buildkitsandbox".into(),
            etc_files: etc_files(&dir)?,
            mounts: user_mounts,
            readonly_root: false,
            init: true,
            privileged: false,
            cleanup: vec![],
            process: imago_sandbox::spec::ProcessSpec {
                args: argv.clone(),
                env: penv,
                cwd: cwd.clone(),
                user: user.clone(),
                terminal: false,
                stdin: false,
                caps: imago_sandbox::spec::CapsPolicy::Bounded(
                    imago_sandbox::spec::DEFAULT_CAPS
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                ),
                seccomp: true,
                no_new_privs: false,
            },
        };
        let sandbox_net = match network {
            Network::None => imago_sandbox::Network::None,
            Network::Host => imago_sandbox::Network::Host,
            Network::Private => imago_sandbox::Network::Private,
        };
        let code = with_output_redirected(cx.opts.quiet, || {
            imago_sandbox::prepare_with(&spec.id_map, sandbox_net)?.start(&spec)
        })?;
        Ok(code)
    })();
    let code = result?;
    if code != 0 {
        return Err(StepError::Exit {
            cmd: argv.join(" "),
            code,
        });
    }
    // 2. In the mapping: pack the upper dir into a layer.
    let d3 = dir.clone();
    let mut targets: Vec<String> = vec![
        "/etc/hosts".into(),
        "/etc/hostname".into(),
        "/etc/resolv.conf".into(),
    ];
    targets.extend(mounts.iter().filter_map(|m| match (&m.target, m.kind) {
        (Some(t), _) => Some(t.clone()),
        (None, df::MountType::Secret) => m.id.as_ref().map(|id| format!("/run/secrets/{id}")),
        _ => None,
    }));
    let lowers2 = lowers.clone();
    let c = run_in_mapping(&cx.map, move || -> Result<Committed, StepError> {
        let below = LowerView::from_bottom_first(lowers2, mode);
        mount_stubs::drop_mount_points(&d3.join("upper"), &below, &targets);
        let layer = commit_dir(store, &d3.join("upper"), mode, epoch)?;
        // Removed here, where no extra child is needed; the guard then finds nothing.
        remove_tree(&d3)?;
        Ok(Committed { layer })
    })?;
    run_dir.remove()?;
    finish_layer(state, key, c.layer, history, created);
    record(cx, state);
    Ok(false)
}

/// Inside the mapping: merge layer dirs (bottom first) into a fresh dir `dest`, through a
/// flattened tar at `tar` (whiteouts applied, ownership kept).
fn flatten_into(
    dirs: &[PathBuf],
    dest: &Path,
    tar: &Path,
    mode: OwnerMode,
) -> Result<(), StepError> {
    std::fs::create_dir_all(dest).map_err(io_err("create", dest))?;
    if dirs.is_empty() {
        return Ok(());
    }
    let owner = match mode {
        OwnerMode::Real => imago_oci::layer::OwnerMode::Real,
        OwnerMode::Xattr => imago_oci::layer::OwnerMode::Xattr,
    };
    let tar_guard = TempPath::new(tar.to_path_buf());
    let f = std::fs::File::create(tar).map_err(io_err("create", tar))?;
    let mut w = std::io::BufWriter::new(f);
    let popts = imago_oci::layer::PackOptions {
        owner,
        default_owner: Some((0, 0)),
        ..Default::default()
    };
    imago_oci::layer::flatten(dirs, &mut w, &popts)?;
    w.flush().map_err(io_err("write", tar))?;
    drop(w);
    let r = std::io::BufReader::new(std::fs::File::open(tar).map_err(io_err("open", tar))?);
    let uopts = imago_oci::layer::UnpackOptions {
        owner,
        ..Default::default()
    };
    imago_oci::layer::unpack(r, dest, &uopts)?;
    tar_guard.remove()?;
    Ok(())
}

/// /etc/hosts, /etc/hostname, /etc/resolv.conf for a RUN container.
fn etc_files(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, StepError> {
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    )
    .map_err(io_err("write", &hosts))?;
    let hostname = dir.join("hostname");
    std::fs::write(&hostname, "buildkitsandbox\n").map_err(io_err("write", &hostname))?;
    let mut v = vec![
        (hosts, PathBuf::from("/etc/hosts")),
        (hostname, PathBuf::from("/etc/hostname")),
    ];
    let resolv = dir.join("resolv.conf");
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_else(|_| "nameserver 127.0.0.1\n".into());
    std::fs::write(&resolv, text).map_err(io_err("write", &resolv))?;
    v.push((resolv, PathBuf::from("/etc/resolv.conf")));
    Ok(v)
}

/// A RUN --mount as a container mount.
fn mount_for(
    cx: &Ctx<'_>,
    m: &df::Mount,
    dir: &Path,
    n: usize,
    bind_root: Option<&Path>,
) -> Result<imago_sandbox::spec::UserMount, StepError> {
    use imago_sandbox::spec::UserMount;
    let target = |d: &str| PathBuf::from(m.target.clone().unwrap_or_else(|| d.to_string()));
    match m.kind {
        df::MountType::Tmpfs => Ok(UserMount::Tmpfs {
            dst: target("/"),
            options: m.size.map(|s| format!("size={s}")).unwrap_or_default(),
        }),
        df::MountType::Bind => {
            if m.from.is_some() {
                // A private flattened copy of the stage/image (made in run_step).
                let src = fsview::components(m.source.as_deref().unwrap_or("/"));
                let host = fsview::host_path(&dir.join(format!("from-{n}")), &src);
                return Ok(UserMount::Bind {
                    src: host,
                    dst: target("/"),
                    ro: m.read_only,
                });
            }
            let root = bind_root.unwrap_or(&cx.opts.context_dir);
            Ok(UserMount::Bind {
                src: crate::context::bind_source(root, m.source.as_deref()),
                dst: target("/"),
                ro: true, // always: BuildKit discards writes to an `rw` bind; ours would reach the context
            })
        }
        df::MountType::Cache => {
            let id =
                m.id.clone()
                    .or_else(|| m.target.clone())
                    .unwrap_or_default();
            let safe: String = id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let host = cx
                .store
                .root()
                .join("imago")
                .join("build-cache-mounts")
                .join(format!("{safe}-{}", &Digest::of(id.as_bytes()).hex()[..12]));
            if !host.is_dir() {
                std::fs::create_dir_all(&host).map_err(io_err("create", &host))?;
                // uid/gid/mode of a new cache dir (108), set inside the mapping.
                if m.uid.is_some() || m.gid.is_some() || m.mode.is_some() {
                    let (h, uid, gid, perm, mode) = (
                        host.clone(),
                        m.uid.unwrap_or(0),
                        m.gid.unwrap_or(0),
                        m.mode.unwrap_or(0o755),
                        cx.mode,
                    );
                    run_in_mapping(&cx.map, move || -> Result<(), StepError> {
                        fsview::set_owner(&h, Kind::Dir, uid, gid, perm, mode)
                            .map_err(io_err("chown", &h))
                    })?;
                }
            }
            Ok(UserMount::Bind {
                src: host,
                dst: target("/"),
                ro: false,
            })
        }
        df::MountType::Secret => {
            let id = m.id.clone().unwrap_or_default();
            match cx.opts.secrets.get(&id) {
                Some(src) => {
                    let copy = dir.join(format!("secret-{}", Digest::of(id.as_bytes()).hex()));
                    std::fs::copy(src, &copy).map_err(io_err("read secret", src))?;
                    Ok(UserMount::Bind {
                        src: copy,
                        dst: target(&format!("/run/secrets/{id}")),
                        ro: true,
                    })
                }
                None if m.required => Err(StepError::Invalid(format!(
                    "secret {id} not found (pass --secret id={id},src=FILE)"
                ))),
                None => Ok(UserMount::Tmpfs {
                    dst: target(&format!("/run/secrets/{id}")),
                    options: String::new(),
                }),
            }
        }
        df::MountType::Ssh => Err(StepError::Invalid(
            "RUN --mount=type=ssh is not supported by ibuild".into(),
        )),
    }
}

/// Run `f` with fd 1 pointing at fd 2 (RUN output never reaches stdout, which carries
/// data such as `-q`'s image id), or both at /dev/null when quiet.
fn with_output_redirected<T>(quiet: bool, f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsFd;
    let saved_out = rustix::io::dup(std::io::stdout().as_fd()).ok();
    let saved_err = rustix::io::dup(std::io::stderr().as_fd()).ok();
    let _ = std::io::stdout().flush();
    if quiet {
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = rustix::stdio::dup2_stdout(&null);
            let _ = rustix::stdio::dup2_stderr(&null);
        }
    } else {
        let _ = rustix::stdio::dup2_stdout(std::io::stderr().as_fd());
    }
    let r = f();
    if let Some(fd) = saved_out {
        let _ = rustix::stdio::dup2_stdout(&fd);
    }
    if let Some(fd) = saved_err {
        let _ = rustix::stdio::dup2_stderr(&fd);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cmd: &str, heredocs: &[(&str, &str)]) -> df::Run {
        df::Run {
            command: CommandLine::Shell(cmd.into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: heredocs
                .iter()
                .map(|(n, c)| df::Heredoc {
                    name: n.to_string(),
                    expand: false,
                    chomp: false,
                    fd: 0,
                    content: c.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn j107_run_heredoc_argv() {
        let c = ImageConfig::scratch();
        assert_eq!(
            run_argv(&c, &run("<<EOF", &[("EOF", "echo a\n")])),
            ["/bin/sh", "-c", "echo a\n"]
        );
        let a = run_argv(&c, &run("cat <<A > /f", &[("A", "body\n")]));
        assert_eq!(a[2], "cat <<A > /f\nbody\nA");
        let s = run_argv(&c, &run("<<EOF", &[("EOF", "#!/bin/sh\necho x\n")]));
        assert!(
            s[2].contains("#!/bin/sh\necho x\n") && s[2].contains("chmod +x"),
            "{s:?}"
        );
        let mut c2 = ImageConfig::scratch();
        meta::shell(&mut c2, &["/bin/bash".into(), "-c".into()]);
        assert_eq!(run_argv(&c2, &run("echo hi", &[]))[0], "/bin/bash");
    }
}
