//! Test fixture of the COPY/ADD tests: a context dir, an (empty) parent state and a
//! layer dir in a temp dir; [`run`] plans and applies a spec as the current user and
//! returns what the layer dir holds.
//!
//! Never: used outside tests; writes outside its temp dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{apply, plan, CopyError, CopySpec, Item, NewDirs, Sources};
use crate::fsview::{Kind, LowerView, OwnerMode};

pub(super) struct Fx {
    _t: tempfile::TempDir,
    pub ctx: PathBuf,
    pub below: PathBuf,
    pub out: PathBuf,
}

/// A context holding `files` (each containing `data of <name>`).
pub(super) fn fx(files: &[&str]) -> Fx {
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

/// Plan `spec` over the context and apply it: the layer's paths (dirs end in `/`) and
/// file contents.
pub(super) fn run(
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

/// A COPY of `src` to `dest` with WORKDIR `/`.
pub(super) fn spec(src: &[&str], dest: &str) -> CopySpec {
    CopySpec {
        sources: src.iter().map(|s| s.to_string()).collect(),
        dest: dest.into(),
        workdir: "/".into(),
        ..Default::default()
    }
}

/// No .dockerignore.
pub(super) fn none(_: &str) -> bool {
    false
}
