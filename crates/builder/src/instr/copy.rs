//! COPY and ADD: resolving sources (wildcards, dir contents vs dir, trailing-slash rules,
//! `--parents`, `--exclude`, .dockerignore, symlinks on the source path), the digest of
//! their content/mode/ownership for the cache key (never mtimes), and writing them into a
//! new layer dir on top of the parent state (parents copied up with their metadata,
//! `--chown`/`--chmod`; ADD's local archives are extracted by `instr::add_tar`).
//!
//! Never: mounts, runs processes, talks to the store. The caller runs [`apply`] inside
//! the id mapping when ownership other than the caller's must be written.
//!
//! Numbers in parentheses, e.g. (76), are items of docs/semantics.md.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::fsview::{self, components, host_path, Entry, Kind, LowerView, OwnerMode};
use crate::glob;
use crate::instr::add_tar;
use imago_dockerfile::Chmod;

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

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The destination as an absolute container path, and whether it names a directory.
pub fn dest_path(dest: &str, workdir: &str) -> (Vec<String>, bool) {
    let slash = dest.is_empty() || dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let wd = if workdir.is_empty() { "/" } else { workdir };
    let abs = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{wd}/{dest}")
    };
    (components(&abs), slash)
}

/// Where a COPY/ADD writes: the destination's components and how its sources land.
struct Target<'d> {
    dest: Vec<String>,
    /// The destination ends in `/` (or a wildcard matched several files).
    forced_dir: bool,
    /// How many sources (paths and heredocs) the instruction has.
    nsrc: usize,
    dest_is_dir: &'d dyn Fn(&[String]) -> bool,
}

impl Target<'_> {
    /// True when a file source goes into the destination rather than becoming it.
    fn goes_into_dir(&self) -> bool {
        self.forced_dir || self.nsrc > 1 || (self.dest_is_dir)(&self.dest)
    }
}

/// Resolve a COPY/ADD into the items to write. `dest_is_dir` tells whether the
/// destination already exists as a directory in the parent state.
pub fn plan(
    spec: &CopySpec,
    src: &Sources<'_>,
    dest_is_dir: &dyn Fn(&[String]) -> bool,
) -> Result<Vec<Item>, CopyError> {
    check_sources(spec)?;
    let (dest, slash) = dest_path(&spec.dest, &spec.workdir);
    let mut t = Target {
        dest,
        forced_dir: slash,
        nsrc: spec.sources.len() + spec.inline.len(),
        dest_is_dir,
    };
    if t.nsrc > 1 && !slash && !dest_is_dir(&t.dest) {
        return Err(CopyError::NeedDirDest(if spec.add {
            "ADD"
        } else {
            "COPY"
        }));
    }
    let mut items = inline_items(spec, &t);
    let mut matched_total = 0usize;
    for s in &spec.sources {
        let (base, prefix_len) = split_parents(s, spec.parents);
        let matches = source_matches(src, &base, &mut t)?;
        matched_total += matches.len();
        for m in matches {
            match_items(spec, src, &t, &m, prefix_len, &mut items)?;
        }
    }
    if matched_total == 0 && spec.inline.is_empty() {
        let first = (spec.sources.first())
            .map(|s| components(s).join("/"))
            .unwrap_or_default();
        return Err(CopyError::NotFound(first));
    }
    Ok(items)
}

/// URLs (COPY never, ADD downloads them before planning) and `--checksum` (URLs only).
fn check_sources(spec: &CopySpec) -> Result<(), CopyError> {
    if let Some(s) = spec.sources.iter().find(|s| is_url(s)) {
        return Err(match spec.add {
            true => CopyError::UrlUnsupported(s.clone()),
            false => CopyError::UrlForCopy,
        });
    }
    if spec.checksum.is_some() {
        return Err(CopyError::ChecksumLocal);
    }
    Ok(())
}

/// Heredocs: files named after their delimiter.
fn inline_items(spec: &CopySpec, t: &Target<'_>) -> Vec<Item> {
    let mode = (spec.chmod.as_ref()).map_or(0o644, |c| c.apply(0o644, false));
    let (uid, gid) = spec.chown.unwrap_or((0, 0));
    (spec.inline.iter())
        .map(|(n, body)| Item {
            dest: match t.goes_into_dir() {
                true => join(&t.dest, std::slice::from_ref(n)),
                false => t.dest.clone(),
            },
            kind: Kind::File,
            data: Some(Data::Inline(body.clone())),
            link: None,
            mode,
            uid,
            gid,
            mtime: 0,
        })
        .collect()
}

/// The source paths one source names: the wildcard's matches (several force a
/// directory destination), or the one path, which must exist and not be ignored.
fn source_matches(
    src: &Sources<'_>,
    base: &str,
    t: &mut Target<'_>,
) -> Result<Vec<Vec<String>>, CopyError> {
    let pattern = components(base).join("/");
    let mut matches: Vec<Vec<String>> = Vec::new();
    if glob::has_wildcard(&pattern) {
        walk_matches(src, &[], &pattern, &mut matches)?;
        if matches.len() > 1 {
            t.forced_dir = true;
        }
        return Ok(matches);
    }
    let real = src.view.resolve(&pattern, true);
    let visible = !src.context || !(src.ignored)(&real.join("/"));
    if visible && (real.is_empty() || src.view.lookup(&real).is_some()) {
        return Ok(vec![real]);
    }
    // Say why when a symlink leads out of the context (it was resolved inside).
    if let Some((link, target)) = src.view.escaping_link(&pattern) {
        if src.context {
            return Err(CopyError::LinkOutside {
                path: pattern,
                link,
                target,
            });
        }
    }
    Err(CopyError::NotFound(pattern))
}

/// The items of one matched source path `m`.
fn match_items(
    spec: &CopySpec,
    src: &Sources<'_>,
    t: &Target<'_>,
    m: &[String],
    prefix_len: usize,
    items: &mut Vec<Item>,
) -> Result<(), CopyError> {
    let entry = match m.is_empty() {
        true => src.view.lookup(&[]).map(|mut e| {
            e.kind = Kind::Dir;
            e
        }),
        false => src.view.lookup(m),
    };
    let Some(mut entry) = entry else {
        return Ok(());
    };
    if entry.kind == Kind::Symlink {
        // A wildcard match that is a symlink: copy the link itself.
        if let Some(e) = follow(src.view, m) {
            entry = e;
        }
    }
    // With --parents the matched path (after `/./`, or all of it) is kept.
    let keep: Vec<String> = match spec.parents {
        true => m[prefix_len.min(m.len())..].to_vec(),
        false => Vec::new(),
    };
    if entry.kind == Kind::Dir {
        return add_tree(spec, src, m, &join(&t.dest, &keep), items);
    }
    let fname = m.last().cloned().unwrap_or_default();
    let target = if spec.parents {
        join(&t.dest, &keep)
    } else if t.goes_into_dir() {
        join(&t.dest, &[fname])
    } else {
        t.dest.clone()
    };
    let last = m.last().map(String::as_str).unwrap_or("");
    if (spec.excludes.iter()).any(|x| glob::path_or_parent_match(x, last).unwrap_or(false)) {
        return Ok(());
    }
    let archive = spec.add
        && spec.unpack != Some(false)
        && entry.kind == Kind::File
        && is_archive(&entry.host);
    if !archive {
        items.push(item_for(spec, src, &entry, target)?);
        return Ok(());
    }
    let mut it = item_for(spec, src, &entry, join(&t.dest, &[]))?;
    it.kind = Kind::Dir;
    it.data = Some(Data::Archive(entry.host.clone()));
    // The destination is a directory made like COPY's parents (0755, or --chmod),
    // never given the archive file's own mode (0644 would leave it without the
    // search bit).
    it.mode = u32::MAX;
    items.push(it);
    Ok(())
}

/// `--parents`: `a/b/./c/d` → (`a/b/c/d`, 2): the first 2 components are dropped from
/// the kept path; without `/./` the whole path is kept (0).
fn split_parents(s: &str, parents: bool) -> (String, usize) {
    if !parents {
        return (s.to_string(), 0);
    }
    match s.find("/./") {
        Some(i) => (
            format!("{}/{}", &s[..i], &s[i + 3..]),
            components(&s[..i]).len(),
        ),
        None => (s.to_string(), 0),
    }
}

fn follow(view: &LowerView, m: &[String]) -> Option<Entry> {
    let r = view.resolve(&m.join("/"), true);
    view.lookup(&r)
}

fn join(a: &[String], b: &[String]) -> Vec<String> {
    let mut v = a.to_vec();
    v.extend(b.iter().cloned());
    v
}

fn walk_matches(
    src: &Sources<'_>,
    dir: &[String],
    pattern: &str,
    out: &mut Vec<Vec<String>>,
) -> Result<(), CopyError> {
    let depth = pattern.split('/').count();
    let double = pattern.contains("**");
    for name in src.view.read_dir(dir) {
        let p = join(dir, &[name]);
        let rel = p.join("/");
        if src.context && (src.ignored)(&rel) {
            continue;
        }
        if glob::path_match(pattern, &rel)? {
            out.push(p.clone());
            continue;
        }
        if (double || p.len() < depth) && src.view.lookup(&p).is_some_and(|e| e.kind == Kind::Dir) {
            walk_matches(src, &p, pattern, out)?;
        }
    }
    Ok(())
}

fn item_for(
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

/// A directory source: its contents (never the dir itself) go under `target` (71).
fn add_tree(
    spec: &CopySpec,
    src: &Sources<'_>,
    dir: &[String],
    target: &[String],
    items: &mut Vec<Item>,
) -> Result<(), CopyError> {
    let root_rel = dir.to_vec();
    let mut stack = vec![(root_rel.clone(), target.to_vec())];
    // The destination dir itself: created like COPY-created parents.
    while let Some((d, t)) = stack.pop() {
        for name in src.view.read_dir(&d) {
            let p = join(&d, std::slice::from_ref(&name));
            let rel_ctx = p.join("/");
            if src.context && (src.ignored)(&rel_ctx) {
                continue;
            }
            let rel_in_src = p[root_rel.len()..].join("/");
            if spec
                .excludes
                .iter()
                .any(|x| glob::path_or_parent_match(x, &rel_in_src).unwrap_or(false))
            {
                continue;
            }
            let Some(e) = src.view.lookup(&p) else {
                continue;
            };
            let dest = join(&t, &[name]);
            if e.kind == Kind::Dir {
                items.push(item_for(spec, src, &e, dest.clone())?);
                stack.push((p, dest));
            } else if e.kind != Kind::Other {
                items.push(item_for(spec, src, &e, dest)?);
            }
        }
    }
    // Make sure the target dir exists even for an empty source dir.
    items.push(Item {
        dest: target.to_vec(),
        kind: Kind::Dir,
        data: None,
        link: None,
        mode: u32::MAX, // marker: "a destination dir", created like a parent (see apply)
        uid: 0,
        gid: 0,
        mtime: 0,
    });
    Ok(())
}

/// True when the file is a tar archive (plain or gzip), recognised by content (92).
pub fn is_archive(p: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    head.truncate(n);
    if head.starts_with(&[0x1f, 0x8b]) {
        // gzip: look inside for a tar header.
        let Ok(f) = std::fs::File::open(p) else {
            return false;
        };
        let mut gz = flate2::read::GzDecoder::new(f);
        let mut h = vec![0u8; 512];
        return gz.read_exact(&mut h).is_ok() && is_tar_header(&h);
    }
    is_tar_header(&head)
}

fn is_tar_header(h: &[u8]) -> bool {
    h.len() >= 262 && &h[257..262] == b"ustar"
}

/// The digest of everything about the items that matters to the result: paths, kinds,
/// modes, owners, link targets and content (never mtimes).
pub fn items_digest(items: &[Item]) -> Result<String, CopyError> {
    let mut h = Sha256::new();
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by(|a, b| a.dest.cmp(&b.dest));
    for it in sorted {
        h.update(it.dest.join("/").as_bytes());
        h.update([0]);
        h.update(
            format!(
                "{:?} {:o} {} {} {:?}",
                it.kind, it.mode, it.uid, it.gid, it.link
            )
            .as_bytes(),
        );
        h.update([0]);
        match &it.data {
            Some(Data::Host(p)) | Some(Data::Archive(p)) => {
                let mut f = std::fs::File::open(p).map_err(|err| CopyError::Read {
                    path: p.clone(),
                    err,
                })?;
                let mut fh = Sha256::new();
                std::io::copy(&mut f, &mut HashWrite(&mut fh)).map_err(|err| CopyError::Read {
                    path: p.clone(),
                    err,
                })?;
                h.update(fh.finalize());
            }
            Some(Data::Inline(b)) => h.update(Sha256::digest(b)),
            None => {}
        }
    }
    Ok(hex::encode(h.finalize()))
}

struct HashWrite<'a>(&'a mut Sha256);
impl std::io::Write for HashWrite<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How new parent dirs are made.
#[derive(Debug, Clone, Copy)]
pub struct NewDirs {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Write `items` into `out` (an empty layer dir) on top of `below` (the parent state).
/// Parent dirs that exist below are copied up with their metadata (owner and mode kept,
/// 77); missing ones are made with `new_dirs` (root, or --chown; --chmod's mode, 79).
pub fn apply(
    items: &[Item],
    out: &Path,
    below: &LowerView,
    new_dirs: NewDirs,
    mode: OwnerMode,
) -> Result<(), CopyError> {
    for it in items {
        let comps = resolve_dest(below, &it.dest);
        if comps.is_empty() {
            if let Some(Data::Archive(p)) = &it.data {
                add_tar::extract(p, out, below, it, mode, new_dirs)?;
            }
            continue;
        }
        ensure_parents(out, below, &comps[..comps.len() - 1], new_dirs, mode)?;
        let host = host_path(out, &comps);
        let werr = |err| CopyError::Write {
            path: host.clone(),
            err,
        };
        match it.kind {
            Kind::Dir => {
                if it.mode == u32::MAX {
                    ensure_parents(out, below, &comps, new_dirs, mode)?;
                } else {
                    if !std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                        // Ignoring a failure: a file left in the way makes create_dir fail.
                        let _ = std::fs::remove_file(&host);
                        std::fs::create_dir(&host).map_err(werr)?;
                    }
                    fsview::set_owner(&host, Kind::Dir, it.uid, it.gid, it.mode, mode)
                        .map_err(werr)?;
                    fsview::set_mtime(&host, it.mtime).map_err(werr)?;
                }
                if let Some(Data::Archive(p)) = &it.data {
                    add_tar::extract(p, out, below, it, mode, new_dirs)?;
                }
            }
            Kind::File => {
                remove_any(&host);
                match &it.data {
                    Some(Data::Host(p)) => {
                        std::fs::copy(p, &host).map_err(werr)?;
                    }
                    Some(Data::Inline(b)) => std::fs::write(&host, b).map_err(werr)?,
                    _ => std::fs::write(&host, b"").map_err(werr)?,
                }
                fsview::set_owner(&host, Kind::File, it.uid, it.gid, it.mode, mode)
                    .map_err(werr)?;
                fsview::set_mtime(&host, it.mtime).map_err(werr)?;
            }
            Kind::Symlink => {
                remove_any(&host);
                std::os::unix::fs::symlink(it.link.clone().unwrap_or_default(), &host)
                    .map_err(werr)?;
                fsview::set_owner(&host, Kind::Symlink, it.uid, it.gid, 0o777, mode)
                    .map_err(werr)?;
                fsview::set_mtime(&host, it.mtime).map_err(werr)?;
            }
            Kind::Other => {}
        }
    }
    // Dirs got their mtimes before their contents were written: set them again.
    for it in items
        .iter()
        .filter(|i| i.kind == Kind::Dir && i.mode != u32::MAX)
    {
        let host = host_path(out, &resolve_dest(below, &it.dest));
        // Ignoring a failure: the first pass set this mtime and reported its errors; a
        // later entry of this copy may have replaced the dir.
        let _ = fsview::set_mtime(&host, it.mtime);
    }
    Ok(())
}

/// Clear `p` (a file, a symlink or a whole tree) in the layer being written, so that an
/// entry can take its place. Ignoring a failure: the write that follows reports it.
pub(crate) fn remove_any(p: &Path) {
    let _ = imago_oci::layer::remove_tree(p);
}

/// Resolve symlinks in the destination's parent path through the parent state (76): a
/// COPY to `/bin/x` with `/bin -> usr/bin` writes `/usr/bin/x`.
pub(crate) fn resolve_dest(below: &LowerView, dest: &[String]) -> Vec<String> {
    if dest.is_empty() {
        return Vec::new();
    }
    let parent = below.resolve(&dest[..dest.len() - 1].join("/"), true);
    join(&parent, &[dest[dest.len() - 1].clone()])
}

/// Make the dirs of `comps` in `out`: copied up from `below` when they exist there,
/// else new with `new_dirs`.
pub fn ensure_parents(
    out: &Path,
    below: &LowerView,
    comps: &[String],
    new_dirs: NewDirs,
    mode: OwnerMode,
) -> Result<(), CopyError> {
    for n in 1..=comps.len() {
        let host = host_path(out, &comps[..n]);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => continue,
            // A symlink this COPY/ADD wrote (its target is a container path, meaningless
            // on the host): never write through it.
            Ok(m) if m.file_type().is_symlink() => {
                return Err(CopyError::ThroughSymlink(format!(
                    "/{}",
                    comps[..n].join("/")
                )));
            }
            Ok(_) => {
                // A file in the way of a directory: replaced, as a copy onto it would.
                // Ignoring a failure: create_dir below then fails and reports it.
                let _ = std::fs::remove_file(&host);
            }
            Err(_) => {}
        }
        let werr = |err| CopyError::Write {
            path: host.clone(),
            err,
        };
        std::fs::create_dir(&host).map_err(werr)?;
        match below.lookup(&comps[..n]).filter(|e| e.kind == Kind::Dir) {
            Some(e) => {
                fsview::set_owner(&host, Kind::Dir, e.uid, e.gid, e.mode, mode).map_err(werr)?;
                fsview::set_mtime(&host, e.mtime).map_err(werr)?;
            }
            None => {
                fsview::set_owner(
                    &host,
                    Kind::Dir,
                    new_dirs.uid,
                    new_dirs.gid,
                    new_dirs.mode,
                    mode,
                )
                .map_err(werr)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Fx {
        _t: tempfile::TempDir,
        ctx: PathBuf,
        below: PathBuf,
        out: PathBuf,
    }

    fn fx(files: &[&str]) -> Fx {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        let below = t.path().join("below");
        let out = t.path().join("out");
        for d in [&ctx, &below, &out] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in files {
            let p = ctx.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("data of {f}")).unwrap();
        }
        Fx {
            _t: t,
            ctx,
            below,
            out,
        }
    }

    fn run(
        f: &Fx,
        spec: CopySpec,
        ignore: &dyn Fn(&str) -> bool,
    ) -> Result<BTreeMap<String, String>, CopyError> {
        let view = LowerView::from_bottom_first(vec![f.ctx.clone()], OwnerMode::Real);
        let below = LowerView::from_bottom_first(vec![f.below.clone()], OwnerMode::Real);
        let src = Sources {
            view: &view,
            context: true,
            ignored: ignore,
        };
        let isdir = |c: &[String]| below.lookup(c).is_some_and(|e| e.kind == Kind::Dir);
        let items = plan(&spec, &src, &isdir)?;
        let nd = NewDirs {
            uid: 0,
            gid: 0,
            mode: 0o755,
        };
        // Ownership: write as the current user (tests also run unprivileged).
        let me = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        let items: Vec<Item> = items
            .into_iter()
            .map(|mut i| {
                i.uid = me.0;
                i.gid = me.1;
                i
            })
            .collect();
        let nd = NewDirs {
            uid: me.0,
            gid: me.1,
            ..nd
        };
        // Unprivileged (outside any mapping) only our own ids exist: record ownership in
        // the override xattr, as a single-id mapping does.
        let mode = if me.0 == 0 {
            OwnerMode::Real
        } else {
            OwnerMode::Xattr
        };
        apply(&items, &f.out, &below, nd, mode)?;
        let mut m = BTreeMap::new();
        walk(&f.out, &f.out, &mut m);
        Ok(m)
    }

    fn walk(root: &Path, d: &Path, m: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if e.file_type().unwrap().is_dir() {
                m.insert(format!("{rel}/"), String::new());
                walk(root, &e.path(), m);
            } else {
                m.insert(rel, std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }

    fn spec(src: &[&str], dest: &str) -> CopySpec {
        CopySpec {
            sources: src.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            workdir: "/".into(),
            ..Default::default()
        }
    }

    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn g69_trailing_slash_means_dir() {
        let f = fx(&["f", "foo"]);
        let m = run(&f, spec(&["f"], "/sample/"), &none).unwrap();
        assert_eq!(m["sample/f"], "data of f");
        let f = fx(&["foo"]);
        let m = run(&f, spec(&["foo"], "/foo2"), &none).unwrap();
        assert_eq!(m["foo2"], "data of foo");
    }

    #[test]
    fn g70_empty_dest_is_workdir() {
        let f = fx(&["f"]);
        let mut s = spec(&["f"], "");
        s.workdir = "/app".into();
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["app/f"], "data of f");
    }

    #[test]
    fn g71_dir_source_copies_contents() {
        for (src, dst) in [
            ("sub/dir1", "d6"),
            ("sub/dir1/", "d4"),
            ("sub/dir1/.", "d5"),
        ] {
            let f = fx(&["sub/dir1/dir2/foo"]);
            let m = run(&f, spec(&[src], dst), &none).unwrap();
            assert_eq!(
                m[&format!("{dst}/dir2/foo")],
                "data of sub/dir1/dir2/foo",
                "{src}"
            );
            assert!(!m.contains_key(&format!("{dst}/dir1/")));
        }
    }

    #[test]
    fn g72_wildcards() {
        let f = fx(&["a.go", "b.go", "c.txt", "sub/dir1/dir2/foo"]);
        let m = run(&f, spec(&["*.go"], "/gofiles/"), &none).unwrap();
        assert!(
            m.contains_key("gofiles/a.go")
                && m.contains_key("gofiles/b.go")
                && !m.contains_key("gofiles/c.txt")
        );
        let f = fx(&["sub/dir1/dir2/foo"]);
        let m = run(&f, spec(&["sub/*/dir2/foo"], "/d2/"), &none).unwrap();
        assert!(m.contains_key("d2/foo"));
        let f = fx(&["sub/dir1/dir2/foo"]);
        let m = run(&f, spec(&["sub/*"], "/subdest/"), &none).unwrap();
        assert!(m.contains_key("subdest/dir2/foo"), "{m:?}");
        let f = fx(&["f1.go"]);
        let m = run(&f, spec(&["f*.go"], "foo2.go"), &none).unwrap();
        assert!(m.contains_key("foo2.go"));
        let f = fx(&["a", "b"]);
        assert!(matches!(
            run(&f, spec(&["a", "b"], "/x"), &none),
            Err(CopyError::NeedDirDest(_))
        ));
    }

    #[test]
    fn g73_nomatch_wildcard_ok_with_another_source() {
        let f = fx(&["foo"]);
        let m = run(&f, spec(&["foo", "nomatch*"], "/"), &none).unwrap();
        assert!(m.contains_key("foo"));
        let f = fx(&["foo"]);
        assert!(run(&f, spec(&["nomatch*"], "/"), &none).is_err());
    }

    #[test]
    fn g74_dot_copies_context_minus_ignored() {
        let f = fx(&["foo", "bar", "baz", "bay"]);
        let ig = |p: &str| p.starts_with("ba") && p != "bay";
        let m = run(&f, spec(&["."], "all/"), &ig).unwrap();
        let files: Vec<&String> = m.keys().filter(|k| !k.ends_with('/')).collect();
        assert_eq!(files, ["all/bay", "all/foo"]);
        let f = fx(&["bar"]);
        assert!(matches!(
            run(&f, spec(&["bar"], "/"), &ig),
            Err(CopyError::NotFound(_))
        ));
    }

    #[test]
    fn g83_g84_parents() {
        let f = fx(&["foo1/foo2/bar"]);
        let mut s = spec(&["foo1/foo2/bar"], "/");
        s.parents = true;
        let m = run(&f, s, &none).unwrap();
        assert!(m.contains_key("foo1/foo2/bar"), "{m:?}");
        let f = fx(&["test/a/b/c/d/e"]);
        let mut s = spec(&["test/a/b/./c/d"], "/out/");
        s.parents = true;
        let m = run(&f, s, &none).unwrap();
        assert!(m.contains_key("out/c/d/e"), "{m:?}");
    }

    #[test]
    fn g85_exclude() {
        let f = fx(&["d/a.txt", "d/b.md"]);
        let mut s = spec(&["d"], "/o/");
        s.excludes = vec!["*.txt".into()];
        let m = run(&f, s, &none).unwrap();
        assert!(m.contains_key("o/b.md") && !m.contains_key("o/a.txt"));
        let f = fx(&["d/a.txt"]);
        let mut s = spec(&["d"], "/o/");
        s.excludes = vec!["*".into()];
        let m = run(&f, s, &none).unwrap();
        assert!(!m.contains_key("o/a.txt"));
    }

    #[test]
    fn g86_url_for_copy() {
        let f = fx(&[]);
        let e = run(&f, spec(&["http://example.com/x"], "/"), &none).unwrap_err();
        assert_eq!(e.to_string(), "source can't be a URL for COPY");
    }

    #[test]
    fn g87_source_clamped_to_context() {
        let f = fx(&["x"]);
        let m = run(&f, spec(&["../x"], "/a"), &none).unwrap();
        assert!(m.contains_key("a"));
        let f = fx(&["x"]);
        let m = run(&f, spec(&["/x"], "/b"), &none).unwrap();
        assert!(m.contains_key("b"));
    }

    #[test]
    fn g88_odd_names() {
        let f = fx(&["test-äöü.txt", "test-%C3%A4.txt", "test+aou.txt"]);
        let m = run(&f, spec(&["."], "/"), &none).unwrap();
        for n in ["test-äöü.txt", "test-%C3%A4.txt", "test+aou.txt"] {
            assert!(m.contains_key(n), "{n}");
        }
    }

    #[test]
    fn g89_heredoc() {
        let f = fx(&[]);
        let mut s = spec(&[], "f");
        s.inline = vec![("EOF".into(), b"body\n".to_vec())];
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["f"], "body\n");
        let f = fx(&[]);
        let mut s = spec(&[], "double/");
        s.inline = vec![
            ("EOF".into(), b"1\n".to_vec()),
            ("EOF2".into(), b"2\n".to_vec()),
        ];
        let m = run(&f, s, &none).unwrap();
        assert_eq!(
            (m["double/EOF"].as_str(), m["double/EOF2"].as_str()),
            ("1\n", "2\n")
        );
    }

    #[test]
    fn g76_symlinked_dir_on_source_path_followed() {
        let f = fx(&["real/foo"]);
        std::os::unix::fs::symlink("real", f.ctx.join("link")).unwrap();
        let m = run(&f, spec(&["link/foo"], "/x"), &none).unwrap();
        assert_eq!(m["x"], "data of real/foo");
    }

    #[test]
    fn dest_symlink_in_parent_state_followed() {
        let f = fx(&["f"]);
        std::fs::create_dir_all(f.below.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", f.below.join("bin")).unwrap();
        let m = run(&f, spec(&["f"], "/bin/"), &none).unwrap();
        assert!(m.contains_key("usr/bin/f"), "{m:?}");
    }

    #[test]
    fn digest_ignores_mtime_but_not_content() {
        let f = fx(&["a"]);
        let view = LowerView::from_bottom_first(vec![f.ctx.clone()], OwnerMode::Real);
        let src = Sources {
            view: &view,
            context: true,
            ignored: &none,
        };
        let no = |_: &[String]| false;
        let d1 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        fsview::set_mtime(&f.ctx.join("a"), 12345).unwrap();
        let d2 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        assert_eq!(d1, d2);
        std::fs::write(f.ctx.join("a"), "changed").unwrap();
        let d3 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        assert_ne!(d1, d3);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f.ctx.join("a"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let d4 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        assert_ne!(d3, d4);
    }

    #[test]
    fn h92_add_extracts_local_tar() {
        let f = fx(&[]);
        let tarp = f.ctx.join("a.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&tarp).unwrap(),
                flate2::Compression::fast(),
            );
            let mut b = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "in/x", &b"abc"[..]).unwrap();
            b.into_inner().unwrap().finish().unwrap();
        }
        let mut s = spec(&["a.tar.gz"], "/dest");
        s.add = true;
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["dest/in/x"], "abc");
        let mut s = spec(&["a.tar.gz"], "/keep/");
        s.add = true;
        s.unpack = Some(false);
        let f2 = fx(&[]);
        std::fs::copy(&tarp, f2.ctx.join("a.tar.gz")).unwrap();
        let m = run(&f2, s, &none).unwrap();
        assert!(m.contains_key("keep/a.tar.gz"));
    }

    #[test]
    fn never_writes_through_a_symlink_it_made() {
        // A tar that makes `x -> /etc` (or any host path) then writes `x/evil`.
        let f = fx(&[]);
        let outside = f.out.parent().unwrap().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let tarp = f.ctx.join("evil.tar");
        {
            let mut b = tar::Builder::new(std::fs::File::create(&tarp).unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            h.set_cksum();
            b.append_link(&mut h, "x", &outside).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(4);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "x/evil", &b"evil"[..]).unwrap();
            b.finish().unwrap();
        }
        let mut s = spec(&["evil.tar"], "/d");
        s.add = true;
        let e = run(&f, s, &none).unwrap_err();
        assert!(matches!(e, CopyError::ThroughSymlink(_)), "{e}");
        assert!(
            !outside.join("evil").exists(),
            "wrote outside the layer dir"
        );
    }

    #[test]
    fn add_tar_keeps_climbing_entries_inside_and_dest_searchable() {
        let f = fx(&[]);
        let tarp = f.ctx.join("up.tar");
        {
            use std::os::unix::fs::PermissionsExt;
            let mut b = tar::Builder::new(std::fs::File::create(&tarp).unwrap());
            let mut h = tar::Header::new_ustar();
            // Raw name: the tar crate's set_path refuses `..`, other tar writers do not.
            h.as_ustar_mut().expect("ustar header").name[..7].copy_from_slice(b"../../f");
            h.set_size(2);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"up"[..]).unwrap();
            b.finish().unwrap();
            std::fs::set_permissions(&tarp, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut s = spec(&["up.tar"], "/dst/");
        s.add = true;
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["dst/f"], "up");
        let owner = if rustix::process::getuid().is_root() {
            OwnerMode::Real
        } else {
            OwnerMode::Xattr
        };
        let e = fsview::stat(&f.out.join("dst"), owner).unwrap();
        assert_eq!(e.mode, 0o755, "destination mode {:o}", e.mode);
    }

    #[test]
    fn add_tar_keeps_links_modes_and_whiteout_names_and_skips_devices() {
        use std::os::unix::fs::MetadataExt;
        let f = fx(&[]);
        std::fs::create_dir_all(f.below.join("keep")).unwrap();
        let tarp = f.ctx.join("t.tar");
        {
            let mut b = tar::Builder::new(std::fs::File::create(&tarp).unwrap());
            let mut put = |kind: tar::EntryType, name: &str, mode: u32, link: &str, data: &[u8]| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(kind);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                if !link.is_empty() {
                    h.set_link_name(link).unwrap();
                }
                h.set_cksum();
                b.append_data(&mut h, name, data).unwrap();
            };
            put(tar::EntryType::Directory, "d/", 0o750, "", b"");
            put(tar::EntryType::Regular, "d/f", 0o644, "", b"x");
            put(tar::EntryType::Link, "d/h", 0o644, "d/f", b"");
            put(tar::EntryType::Symlink, "s", 0o777, "d/f", b"");
            put(tar::EntryType::Regular, "d/.wh.gone", 0o644, "", b"");
            put(tar::EntryType::Regular, "i/j/k", 0o644, "", b"k");
            put(tar::EntryType::Char, "dev", 0o600, "", b"");
            b.finish().unwrap();
        }
        let mut s = spec(&["t.tar"], "/keep/");
        s.add = true;
        let m = run(&f, s, &none).unwrap();
        let out = f.out.join("keep");
        assert_eq!(m["keep/d/f"], "x");
        assert_eq!(m["keep/i/j/k"], "k");
        let ino = |p: &str| std::fs::symlink_metadata(out.join(p)).unwrap().ino();
        assert_eq!(ino("d/f"), ino("d/h"), "a hardlink stays a hardlink");
        assert_eq!(std::fs::read_link(out.join("s")).unwrap(), Path::new("d/f"));
        assert!(
            out.join("d/.wh.gone").is_file(),
            "a .wh. name is a plain file"
        );
        assert!(
            std::fs::symlink_metadata(out.join("dev")).is_err(),
            "devices are skipped"
        );
        let owner = if rustix::process::getuid().is_root() {
            OwnerMode::Real
        } else {
            OwnerMode::Xattr
        };
        assert_eq!(fsview::stat(&out.join("d"), owner).unwrap().mode, 0o750);
        assert_eq!(fsview::stat(&out.join("i/j"), owner).unwrap().mode, 0o755);
    }

    #[test]
    fn copy_of_a_link_out_of_the_context_says_so() {
        let f = fx(&["a"]);
        std::os::unix::fs::symlink("/etc/hostname", f.ctx.join("link")).unwrap();
        let e = run(&f, spec(&["link"], "/x"), &none).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"/link\": not found: the symlink `link` points outside the build context (to `/etc/hostname`)"
        );
        // A link that stays inside is followed as before.
        std::os::unix::fs::symlink("a", f.ctx.join("ok")).unwrap();
        assert_eq!(
            run(&f, spec(&["ok"], "/x"), &none).unwrap()["x"],
            "data of a"
        );
    }

    #[test]
    fn h96_checksum_needs_remote() {
        let f = fx(&["a"]);
        let mut s = spec(&["a"], "/");
        s.add = true;
        s.checksum = Some("sha256:00".into());
        assert_eq!(
            run(&f, s, &none).unwrap_err().to_string(),
            "checksum requires HTTP(S) or Git sources"
        );
    }
}
