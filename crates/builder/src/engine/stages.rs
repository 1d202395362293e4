//! The stage loop: the stage graph of the Dockerfile (FROM expanded, `--from`
//! references collected), the stages the target needs in order, and each stage from its
//! base through its ONBUILD triggers and its own instructions.

use std::time::Instant;

use imago_dockerfile::{self as df, GlobalScope, InstructionKind, Predefined};

use super::base::{resolve_or_pull, state_of_image, Fetch};
use super::error::BuildError;
use super::options::BuildOptions;
use super::state::{Ctx, State, States};
use super::step::{shows_step, step, Stage, StepCx};
use crate::events::{Event, Sink};
use crate::stage::{self, Source, StageInfo};

/// The parsed Dockerfile and what to build of it.
pub(super) struct Plan {
    pub dfile: df::Dockerfile,
    pub global: GlobalScope,
    pub infos: Vec<StageInfo>,
    pub target: usize,
    /// The stages the target needs, in build order.
    pub order: Vec<usize>,
    /// The numbered steps of those stages (FROM included).
    pub total: usize,
}

/// Parse the Dockerfile and plan the stages the target needs.
pub(super) fn plan(opts: &BuildOptions) -> Result<Plan, BuildError> {
    let dfile = df::parse(&opts.dockerfile, &opts.dockerfile_name)
        .map_err(|e| BuildError::Parse(Box::new(e)))?;
    let target_name = Predefined::target_stage_name(&dfile, opts.target.as_deref());
    let mut predef = Predefined::for_host(df::Platform {
        os: imago_oci::platform::HOST_OS.to_string(),
        arch: imago_oci::platform::host_arch().to_string(),
        variant: None,
    });
    predef.target_stage = Some(target_name);
    let global = GlobalScope::new(&dfile, &opts.build_args, &predef).map_err(BuildError::Global)?;
    let infos = dfile
        .stages
        .iter()
        .map(|st| stage_info(&global, st, dfile.escape))
        .collect::<Result<Vec<_>, _>>()?;
    let target = stage::target_index(&infos, opts.target.as_deref())?;
    let order = stage::needed(&infos, target)?;
    let total = (order.iter())
        .map(|i| {
            1 + dfile.stages[*i]
                .instructions
                .iter()
                .filter(|x| shows_step(&x.kind))
                .count()
        })
        .sum();
    Ok(Plan {
        dfile,
        global,
        infos,
        target,
        order,
        total,
    })
}

/// A stage's node in the graph: its expanded base and the stages it copies or mounts from.
fn stage_info(global: &GlobalScope, st: &df::Stage, escape: char) -> Result<StageInfo, BuildError> {
    let (base, _platform) =
        global
            .expand_from(st, escape)
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
    Ok(StageInfo {
        name: st.name.clone(),
        base,
        from_refs,
        line: st.span.start_line,
    })
}

/// Build every stage of the plan; returns their states.
pub(super) fn build_all(
    cx: &mut Ctx<'_>,
    plan: &Plan,
    sink: &mut dyn Sink,
) -> Result<States, BuildError> {
    let mut states = States::new();
    for &i in &plan.order {
        let s = build_stage(cx, plan, i, &states, sink)?;
        states.insert(i, s);
    }
    Ok(states)
}

fn build_stage(
    cx: &mut Ctx<'_>,
    plan: &Plan,
    i: usize,
    states: &States,
    sink: &mut dyn Sink,
) -> Result<State, BuildError> {
    let st = &plan.dfile.stages[i];
    let line = st.span.start_line as usize;
    cx.step += 1;
    let n = cx.step;
    sink.event(Event::Step {
        n,
        total: cx.total,
        text: format!("FROM {}", plan.infos[i].base),
    });
    let t0 = Instant::now();
    let mut state = base_state(cx, &plan.infos, i, states, line, sink)?;
    state.config.ensure_path();
    sink.event(Event::Done {
        n,
        took: t0.elapsed(),
    });
    let triggers = onbuild_triggers(cx, &mut state)?;
    let stage = Stage {
        infos: &plan.infos,
        index: i,
        states,
    };
    let mut scx = StepCx {
        cx,
        stage,
        state: &mut state,
        sink,
    };
    // The triggers' steps are reported at the stage's FROM line.
    for ins in &triggers {
        step(&mut scx, ins, line)?;
    }
    for ins in &st.instructions {
        step(&mut scx, ins, ins.span.start_line as usize)?;
    }
    Ok(state)
}

/// The state a stage starts from: scratch, an earlier stage, or an image.
fn base_state(
    cx: &Ctx<'_>,
    infos: &[StageInfo],
    i: usize,
    states: &States,
    line: usize,
    sink: &mut dyn Sink,
) -> Result<State, BuildError> {
    match stage::resolve_base(infos, i)? {
        Source::Scratch => Ok(State::scratch()),
        Source::Stage(j) => {
            let mut s = states.get(&j).cloned().ok_or(stage::StageError::NoStages)?;
            s.cmd_set = false;
            Ok(s)
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
                    source: Box::new(source),
                },
            })?;
            Ok(state_of_image(&img)?)
        }
    }
}

/// The base's ONBUILD triggers, parsed: they run now and are cleared
/// (docs/semantics.md items 117, 118); their steps count in the total shown.
fn onbuild_triggers(
    cx: &mut Ctx<'_>,
    state: &mut State,
) -> Result<Vec<df::Instruction>, BuildError> {
    let Some(triggers) = state.config.config.on_build.take() else {
        return Ok(Vec::new());
    };
    let mut parsed = Vec::new();
    for t in triggers {
        let text = format!("FROM scratch\n{t}\n");
        let df = df::parse(&text, "ONBUILD").map_err(|e| BuildError::Parse(Box::new(e)))?;
        parsed.extend(df.stages.into_iter().flat_map(|s| s.instructions));
    }
    cx.total += parsed.iter().filter(|x| shows_step(&x.kind)).count();
    Ok(parsed)
}
