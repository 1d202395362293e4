//! COPY and ADD as steps: the sources (the context, a URL download, a stage or an
//! image), the cache key (the instruction with its flags + the sources' content digest),
//! and the layer written in the id mapping by [`crate::instr::copy`].

use std::path::PathBuf;

use imago_dockerfile::{self as df, DockerIgnore, Source as DfSource};
use imago_sandbox::run_in_mapping;
use imago_store::Store;

use super::add_url::{fetch_url, is_url};
use super::base::source_layers;
use super::commit::{commit_dir, unpack, Committed};
use super::error::{io_err, StepError};
use super::step::{KeyInput, StepCx};
use super::users::chown_ids;
use crate::cache::LayerRef;
use crate::fsview::{Kind, LowerView, OwnerMode};
use crate::instr::copy::{self, CopySpec, Item, NewDirs, Sources};
use crate::instr::meta;
use crate::perms;
use crate::stage::{self, Source};
use crate::temp::TempPath;

/// A COPY or ADD, expanded.
struct Request {
    spec: CopySpec,
    /// `--chown` as written: names resolve in the destination state.
    chown: Option<String>,
    from: Option<Source>,
    /// The sources as the history shows them (`<<EOF` for heredocs).
    history_sources: Vec<String>,
}

/// COPY. True on a cache hit.
pub(super) fn copy(scx: &mut StepCx<'_, '_>, c: &df::Copy) -> Result<bool, StepError> {
    let spec = CopySpec {
        add: false,
        sources: paths(&c.sources),
        dest: c.dest.clone(),
        workdir: scx.state.config.config.working_dir.clone(),
        chown: None,
        chmod: c.chmod.as_deref().map(perms::parse_chmod).transpose()?,
        excludes: c.exclude.clone(),
        parents: c.parents,
        unpack: None,
        checksum: None,
        inline: heredocs(&c.sources),
    };
    let from = match &c.from {
        Some(f) => Some(stage::resolve_from(scx.stage.infos, scx.stage.index, f, 0)?),
        None => None,
    };
    let req = Request {
        spec,
        chown: c.chown.clone(),
        from,
        history_sources: history_sources(&c.sources),
    };
    apply(scx, req)
}

/// ADD. True on a cache hit.
pub(super) fn add(scx: &mut StepCx<'_, '_>, a: &df::Add) -> Result<bool, StepError> {
    let spec = CopySpec {
        add: true,
        sources: paths(&a.sources),
        dest: a.dest.clone(),
        workdir: scx.state.config.config.working_dir.clone(),
        chown: None,
        chmod: a.chmod.as_deref().map(perms::parse_chmod).transpose()?,
        excludes: a.exclude.clone(),
        parents: false,
        unpack: a.unpack,
        checksum: a.checksum.clone(),
        inline: heredocs(&a.sources),
    };
    let req = Request {
        spec,
        chown: a.chown.clone(),
        from: None,
        history_sources: history_sources(&a.sources),
    };
    apply(scx, req)
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

/// Where the sources are read from: a context dir (the build's, or the downloads of
/// an ADD of URLs) with its ignore rules, or a state's layers.
#[derive(Clone)]
enum From {
    Dir {
        dir: PathBuf,
        ignore: Option<DockerIgnore>,
    },
    Layers(Vec<LayerRef>),
}

fn apply(scx: &mut StepCx<'_, '_>, mut req: Request) -> Result<bool, StepError> {
    let history = meta::copy_history(req.spec.add, &req.history_sources, &req.spec.dest);
    let url_dir = download_urls(scx, &mut req)?;
    let (from, src_key) = match (&req.from, &url_dir) {
        (None, Some(d)) => (from_dir(d.path().to_path_buf(), None), String::new()),
        (None, None) => {
            let opts = scx.cx.opts;
            (
                from_dir(opts.context_dir.clone(), opts.ignore.clone()),
                String::new(),
            )
        }
        (Some(f), _) => {
            let (layers, key) = source_layers(scx.cx, scx.stage.states, f, scx.sink)?;
            (From::Layers(layers), key)
        }
    };
    let sources = match &from {
        From::Dir { dir, ignore } => context_digest(&req.spec, dir, ignore)?,
        From::Layers(_) => format!("{src_key} {:?}", req.spec.sources),
    };
    let s = &req.spec;
    let instruction = format!(
        "{history} chown={:?} chmod={:?} exclude={:?} parents={} unpack={:?} wd={}",
        req.chown, s.chmod, s.excludes, s.parents, s.unpack, s.workdir
    );
    let key = scx.key(KeyInput {
        instruction: &instruction,
        sources: &sources,
        ..Default::default()
    });
    if scx.cached(&key) {
        return Ok(true);
    }
    let created = scx.created_now();
    let job = Job {
        store: scx.cx.store,
        mode: scx.cx.mode,
        epoch: scx.cx.opts.source_date_epoch,
        layers: scx.state.layers.clone(),
        spec: req.spec,
        chown: req.chown,
        from,
    };
    let c = run_in_mapping(&scx.cx.map, move || job.write())?;
    drop(url_dir);
    scx.commit(key, c.layer, history, created);
    Ok(false)
}

fn from_dir(dir: PathBuf, ignore: Option<DockerIgnore>) -> From {
    From::Dir { dir, ignore }
}

/// ADD of URLs: download them into a temp dir that then serves as the context.
fn download_urls(
    scx: &mut StepCx<'_, '_>,
    req: &mut Request,
) -> Result<Option<TempPath>, StepError> {
    let spec = &mut req.spec;
    if !spec.add || !spec.sources.iter().any(|s| is_url(s)) {
        return Ok(None);
    }
    if !spec.sources.iter().all(|s| is_url(s)) || req.from.is_some() {
        return Err(StepError::MixedAddSources);
    }
    let dir = TempPath::new(scx.cx.store.temp_path("add-url"));
    std::fs::create_dir_all(dir.path()).map_err(io_err("create", dir.path()))?;
    let mut names = Vec::new();
    for u in &spec.sources {
        names.push(fetch_url(u, dir.path(), spec.checksum.as_deref())?);
    }
    spec.sources = names;
    spec.checksum = None;
    // A URL is not extracted unless --unpack=true (docs/semantics.md item 94).
    spec.unpack = Some(spec.unpack == Some(true));
    Ok(Some(dir))
}

/// The content digest of the sources in a context dir (never their mtimes).
fn context_digest(
    spec: &CopySpec,
    dir: &std::path::Path,
    ignore: &Option<DockerIgnore>,
) -> Result<String, StepError> {
    let view = LowerView {
        dirs: vec![dir.to_path_buf()],
        mode: OwnerMode::Real,
    };
    let ignored = |p: &str| ignore.as_ref().is_some_and(|i| i.is_excluded(p));
    let src = Sources {
        view: &view,
        context: true,
        ignored: &ignored,
    };
    let mut key_spec = spec.clone();
    key_spec.chown = None;
    let items = copy::plan(&key_spec, &src, &|_| true)?;
    Ok(copy::items_digest(&items)?)
}

/// The layer write, sent into the id mapping.
struct Job<'a> {
    store: &'a Store,
    mode: OwnerMode,
    epoch: Option<i64>,
    /// The destination state's layers.
    layers: Vec<LayerRef>,
    spec: CopySpec,
    chown: Option<String>,
    from: From,
}

impl Job<'_> {
    /// Inside the mapping: plan the items over the destination state and write them
    /// into a new layer.
    fn write(mut self) -> Result<Committed, StepError> {
        let (store, mode) = (self.store, self.mode);
        let below = LowerView::from_bottom_first(unpack(store, &self.layers, mode)?, mode);
        if let Some(ch) = &self.chown {
            self.spec.chown = Some(chown_ids(&below, ch)?);
        }
        let (view, context, ignore) = match self.from {
            From::Dir { dir, ignore } => (
                LowerView {
                    dirs: vec![dir],
                    mode: OwnerMode::Real,
                },
                true,
                ignore,
            ),
            From::Layers(l) => (
                LowerView::from_bottom_first(unpack(store, &l, mode)?, mode),
                false,
                None,
            ),
        };
        let ignored = |p: &str| ignore.as_ref().is_some_and(|i| i.is_excluded(p));
        let src = Sources {
            view: &view,
            context,
            ignored: &ignored,
        };
        let is_dir = |c: &[String]| {
            let r = below.resolve(&c.join("/"), true);
            below.lookup(&r).is_some_and(|e| e.kind == Kind::Dir)
        };
        let items: Vec<Item> = copy::plan(&self.spec, &src, &is_dir)?;
        let (uid, gid) = self.spec.chown.unwrap_or((0, 0));
        let dmode = (self.spec.chmod.as_ref()).map_or(0o755, |c| c.apply(0o755, true));
        let new_dirs = NewDirs {
            uid,
            gid,
            mode: dmode,
        };
        let out = TempPath::new(store.temp_path("copy"));
        std::fs::create_dir_all(out.path()).map_err(io_err("create", out.path()))?;
        copy::apply(&items, out.path(), &below, new_dirs, mode)?;
        let layer = commit_dir(store, out.path(), mode, self.epoch)?;
        out.remove()?;
        Ok(Committed { layer })
    }
}
