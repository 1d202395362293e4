//! WORKDIR as a step: the config change is [`crate::instr::meta::workdir`]; the
//! directory is made (owned by USER) in a layer when the parent state lacks it.

use imago_sandbox::run_in_mapping;

use super::commit::{commit_dir, unpack, Committed};
use super::error::{io_err, StepError};
use super::step::{KeyInput, StepCx};
use super::users::user_ids;
use crate::fsview::{Kind, LowerView};
use crate::instr::copy::{self, NewDirs};
use crate::instr::meta;
use crate::temp::TempPath;

/// WORKDIR: resolve, then create the dir in a layer when missing. True on a cache hit.
pub(super) fn apply(scx: &mut StepCx<'_, '_>, w: &str) -> Result<bool, StepError> {
    let (wd, text) = meta::workdir(&mut scx.state.config, w);
    let key = scx.key(KeyInput {
        instruction: &text,
        extra: &scx.state.config.config.user,
        ..Default::default()
    });
    if scx.cached(&key) {
        return Ok(true);
    }
    let created = scx.created_now();
    if wd == "/" {
        scx.commit(key, None, text, created);
        return Ok(false);
    }
    let (store, mode, layers, user) = (
        scx.cx.store,
        scx.cx.mode,
        scx.state.layers.clone(),
        scx.state.config.config.user.clone(),
    );
    let epoch = scx.cx.opts.source_date_epoch;
    let c = run_in_mapping(&scx.cx.map, move || -> Result<Committed, StepError> {
        let lowers = unpack(store, &layers, mode)?;
        let below = LowerView::from_bottom_first(lowers, mode);
        let comps = below.resolve(&wd, true);
        if below.lookup(&comps).is_some_and(|e| e.kind == Kind::Dir) {
            return Ok(Committed { layer: None });
        }
        let (uid, gid) = user_ids(&below, &user)?;
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
    scx.commit(key, c.layer, text, created);
    Ok(false)
}
