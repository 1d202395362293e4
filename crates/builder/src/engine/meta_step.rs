//! The metadata instructions as steps (ENV ARG LABEL EXPOSE VOLUME USER STOPSIGNAL SHELL
//! MAINTAINER ONBUILD CMD ENTRYPOINT HEALTHCHECK): the config change is
//! [`crate::instr::meta`]'s; here the stage's scope follows ENV and ARG, and each step
//! extends the cache chain without a layer.

use imago_dockerfile::InstructionKind;

use super::error::StepError;
use super::step::StepCx;
use crate::instr::meta;

/// Apply a metadata instruction to the state.
pub(super) fn apply(scx: &mut StepCx<'_, '_>, kind: &InstructionKind) -> Result<(), StepError> {
    let config = &mut scx.state.config;
    let text = match kind {
        InstructionKind::Env(kvs) => {
            for kv in kvs {
                scx.state.scope.set_env(&kv.key, &kv.value)?;
            }
            meta::env(config, kvs)
        }
        InstructionKind::Arg(decls) => return arg(scx, kind, decls),
        InstructionKind::Label(kvs) => meta::label(config, kvs),
        InstructionKind::Expose(words) => meta::expose(config, words)?,
        InstructionKind::Volume(v) => meta::volume(config, v),
        InstructionKind::User(u) => meta::user(config, u),
        InstructionKind::StopSignal(s) => meta::stopsignal(config, s),
        InstructionKind::Shell(v) => meta::shell(config, v),
        InstructionKind::Maintainer(m) => meta::maintainer(config, m),
        InstructionKind::Onbuild(o) => meta::onbuild(config, &o.trigger),
        InstructionKind::Cmd(c) => {
            scx.state.cmd_set = true;
            meta::cmd(config, c)
        }
        InstructionKind::Entrypoint(c) => meta::entrypoint(config, c, scx.state.cmd_set),
        InstructionKind::Healthcheck(h) => meta::healthcheck(config, h),
        // Layer steps are dispatched before this.
        InstructionKind::Run(_)
        | InstructionKind::Copy(_)
        | InstructionKind::Add(_)
        | InstructionKind::Workdir(_) => return Ok(()),
    };
    scx.meta_done(text, "");
    Ok(())
}

/// ARG: the value in effect is part of the key (a changed `--build-arg` misses).
fn arg(
    scx: &mut StepCx<'_, '_>,
    kind: &InstructionKind,
    decls: &[imago_dockerfile::ArgDecl],
) -> Result<(), StepError> {
    let (global, build_args) = (&scx.cx.global, &scx.cx.opts.build_args);
    scx.state.scope.apply(kind, global, build_args)?;
    let args: Vec<(String, Option<String>)> = decls
        .iter()
        .map(|d| (d.name.clone(), d.default.clone()))
        .collect();
    let text = meta::arg(&args);
    let vals: Vec<String> = decls
        .iter()
        .map(|d| {
            let v = (scx.state.scope.args().iter())
                .find(|(k, _)| *k == d.name)
                .and_then(|(_, v)| v.clone());
            format!("{}={:?}", d.name, v)
        })
        .collect();
    scx.meta_done(text, &vals.join("\0"));
    Ok(())
}
