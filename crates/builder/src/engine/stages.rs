//! The stage loop: the stage graph of the Dockerfile (FROM expanded, `--from`
//! references collected, each stage's platform), the stages the target needs in order,
//! and each stage from its base through its ONBUILD triggers and its own instructions.

use std::time::Instant;

use imago_dockerfile::{self as df, GlobalScope, InstructionKind, Predefined};
use imago_registry::Platform;

use super::base::{resolve_or_pull, state_of_image, Fetch};
use super::error::BuildError;
use super::options::BuildOptions;
use super::platform;
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
    /// Each stage's platform (see [`stage_platforms`]).
    pub platforms: Vec<Option<Platform>>,
}

/// Parse the Dockerfile and plan the stages the target needs.
pub(super) fn plan(opts: &BuildOptions) -> Result<Plan, BuildError> {
    let dfile = df::parse(&opts.dockerfile, &opts.dockerfile_name)
        .map_err(|e| BuildError::Parse(Box::new(e)))?;
    let target_name = Predefined::target_stage_name(&dfile, opts.target.as_deref());
    // BuildKit's automatic args: BUILD* is this host, TARGET* is `--platform` (this
    // host without it), whatever a stage's own `FROM --platform` says.
    let host = Platform::host();
    let mut predef = Predefined::for_host(platform::for_args(&host));
    if let Some(t) = &opts.platform {
        predef.target = platform::for_args(t);
    }
    predef.target_stage = Some(target_name);
    let global = GlobalScope::new(&dfile, &opts.build_args, &predef).map_err(BuildError::Global)?;
    let (infos, written) = (dfile.stages.iter())
        .map(|st| stage_info(&global, st, dfile.escape))
        .collect::<Result<(Vec<_>, Vec<_>), _>>()?;
    let platforms = stage_platforms(&infos, written, opts.platform.as_ref());
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
        platforms,
    })
}

/// Each stage's platform: its FROM's `--platform`, else that of the earlier stage it
/// starts from (whose files it runs), else `target`.
fn stage_platforms(
    infos: &[StageInfo],
    written: Vec<Option<Platform>>,
    target: Option<&Platform>,
) -> Vec<Option<Platform>> {
    let mut out: Vec<Option<Platform>> = Vec::with_capacity(written.len());
    for (i, own) in written.into_iter().enumerate() {
        let p = match (own, stage::resolve_base(infos, i)) {
            (Some(p), _) => Some(p),
            // An earlier stage's platform is known by now; a bad base fails in the build.
            (None, Ok(Source::Stage(j))) if j < i => out[j].clone(),
            (None, _) => target.cloned(),
        };
        out.push(p);
    }
    out
}

/// A stage's node in the graph (its expanded base and the stages it copies or mounts
/// from), and the platform its FROM names.
fn stage_info(
    global: &GlobalScope,
    st: &df::Stage,
    escape: char,
) -> Result<(StageInfo, Option<Platform>), BuildError> {
    let line = st.span.start_line as usize;
    let (base, written) = global
        .expand_from(st, escape)
        .map_err(|source| BuildError::Expand { line, source })?;
    let platform = platform::of_from(written.as_deref())
        .map_err(|source| BuildError::Platform { line, source })?;
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
    let info = StageInfo {
        name: st.name.clone(),
        base,
        from_refs,
        line: st.span.start_line,
    };
    Ok((info, platform))
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
    cx.platform = plan.platforms[i].clone();
    let mut state = base_state(cx, &plan.infos, i, states, line, sink)?;
    state.config.ensure_path();
    sink.event(Event::Done {
        n,
        took: t0.elapsed(),
    });
    let triggers = onbuild_triggers(cx, &mut state)?;
    // A RUN this host cannot run fails before any step of the stage does work.
    let runs = (triggers.iter().map(|t| (t, line)))
        .chain(
            st.instructions
                .iter()
                .map(|x| (x, x.span.start_line as usize)),
        )
        .find(|(x, _)| matches!(x.kind, InstructionKind::Run(_)));
    if let Some((run, run_line)) = runs {
        platform::check_runnable(cx.platform.as_ref()).map_err(|e| BuildError::Step {
            n: 0,
            line: run_line,
            text: run.original.trim().to_string(),
            source: Box::new(e.into()),
        })?;
    }
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
        Source::Scratch => Ok(State {
            config: platform::scratch_config(cx.platform.as_ref()),
            key: platform::scratch_key(cx.platform.as_ref()),
            ..State::scratch()
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn platforms(dockerfile: &str, target: Option<&str>) -> Vec<Option<String>> {
        let opts = BuildOptions {
            dockerfile: dockerfile.into(),
            dockerfile_name: "Dockerfile".into(),
            platform: target.map(|t| t.parse().unwrap()),
            ..BuildOptions::default()
        };
        let p = plan(&opts).unwrap();
        (p.platforms.iter())
            .map(|x| x.as_ref().map(|x| x.to_string()))
            .collect()
    }

    #[test]
    fn a_stage_is_of_its_from_platform_else_its_base_stage_else_the_target() {
        let df = "FROM --platform=$BUILDPLATFORM a AS build\nFROM build AS more\n\
                  FROM b\nFROM --platform=linux/s390x c AS z\nFROM z\n";
        let host = Platform::host().to_string();
        let got = platforms(df, Some("linux/riscv64"));
        let want = [&host, &host, "linux/riscv64", "linux/s390x", "linux/s390x"];
        assert_eq!(got, want.map(|s| Some(s.to_string())));
        let none = platforms(df, None);
        assert_eq!(none[2], None, "no --platform: no check");
        assert_eq!(none[4].as_deref(), Some("linux/s390x"));
    }

    #[test]
    fn target_args_are_the_build_platform_and_build_args_the_host() {
        let opts = BuildOptions {
            dockerfile: "ARG T=$TARGETPLATFORM\nARG B=$BUILDARCH\nFROM scratch\n".into(),
            dockerfile_name: "Dockerfile".into(),
            platform: Some("linux/arm/v7".parse().unwrap()),
            ..BuildOptions::default()
        };
        let p = plan(&opts).unwrap();
        assert_eq!(p.global.value("T"), Some("linux/arm/v7"));
        assert_eq!(p.global.value("B"), Some(imago_oci::platform::host_arch()));
        let bad = BuildOptions {
            dockerfile: "FROM --platform=linux x\n".into(),
            ..opts
        };
        let e = plan(&bad).err().unwrap().to_string();
        assert_eq!(e, "FROM (line 1)");
    }
}
