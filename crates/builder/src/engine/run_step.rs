//! RUN as a step: the command line (heredocs included), the cache key (command, the
//! build args it sees, network, mounts and what they show, user, workdir), then the
//! container ([`super::run_container`]) over the parent state, and its upper dir
//! committed as the layer.

use std::path::{Path, PathBuf};

use imago_dockerfile::{self as df, CommandLine};
use imago_sandbox::run_in_mapping;

use super::base::source_layers;
use super::commit::{commit_dir_with, flatten_into, unpack, Committed};
use super::error::{io_err, StepError};
use super::options::Network;
use super::run_container::{self, Process};
use super::step::{KeyInput, StepCx};
use crate::cache::LayerRef;
use crate::config::{self, ImageConfig};
use crate::fsview::{self, Kind, LowerView, OwnerMode};
use crate::instr::meta;
use crate::mount_stubs;
use crate::stage;
use crate::temp::{remove_tree, run_scratch};

/// The layers of a mount's `from=` state; None for other mounts.
pub(super) type FromLayers = Option<Vec<LayerRef>>;

/// A RUN, resolved: what it runs and everything its cache key depends on.
pub(super) struct RunPlan {
    pub argv: Vec<String>,
    /// Declared ARGs with a value (proxy args stay out of history and key,
    /// docs/semantics.md item 40).
    pub used: Vec<(String, String)>,
    pub history: String,
    pub network: Network,
    pub mounts: Vec<df::Mount>,
    /// Per mount: the layers of its `from=` state (bind mounts only).
    pub from_layers: Vec<FromLayers>,
    /// The context a `type=bind` without `from=` shows (filtered by .dockerignore).
    pub bind_root: Option<PathBuf>,
    /// The cache key's `extra`.
    key_extra: String,
}

/// RUN. True on a cache hit.
pub(super) fn apply(scx: &mut StepCx<'_, '_>, r: &df::Run) -> Result<bool, StepError> {
    let plan = plan(scx, r)?;
    let key = scx.key(KeyInput {
        instruction: &plan.history,
        args: plan.used.clone(),
        extra: &plan.key_extra,
        ..Default::default()
    });
    if scx.cached(&key) {
        return Ok(true);
    }
    let created = scx.created_now();
    let process = process(scx, &plan);
    // Holds files of mapped ids (the upper dir): removed inside the mapping, on every
    // way out of this step. Node-local on a shared store (temp.rs).
    let run_dir = run_scratch(scx.cx.store, &scx.cx.map)?;
    let dir = run_dir.path().to_path_buf();
    let lowers = prepare(scx, &plan, &dir)?;
    let ran = run_container::start(scx.cx, &plan, &dir, &lowers, process)?;
    if ran.code != 0 {
        return Err(StepError::Exit {
            cmd: plan.argv.join(" "),
            code: ran.code,
        });
    }
    let layer = commit_upper(scx, &plan, &dir, lowers, &ran)?;
    run_dir.remove()?;
    scx.commit(key, layer, plan.history, created);
    Ok(false)
}

fn plan(scx: &mut StepCx<'_, '_>, r: &df::Run) -> Result<RunPlan, StepError> {
    let state = &scx.state;
    let argv = run_argv(&state.config, r);
    let used: Vec<(String, String)> = (state.scope.args().iter())
        .filter(|(k, _)| !df::scope::is_proxy_arg(k))
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect();
    let history = meta::run_history(&argv, &used);
    let network = match r.network.as_deref() {
        Some("none") => Network::None,
        Some("host") => Network::Host,
        _ => scx.cx.opts.network,
    };
    let mounts: Vec<df::Mount> = (r.mounts.iter())
        .map(|m| df::Mount::parse(m).map_err(StepError::Mount))
        .collect::<Result<_, _>>()?;
    let (from_layers, from_keys) = from_mounts(scx, &mounts)?;
    let (bind_root, context_keys) = context_mounts(scx, &mounts)?;
    let c = &scx.state.config.config;
    let key_extra = format!(
        "{network:?} {:?} user={} wd={} from={from_keys} context={context_keys}",
        r.mounts, c.user, c.working_dir
    );
    Ok(RunPlan {
        argv,
        used,
        history,
        network,
        mounts,
        from_layers,
        bind_root,
        key_extra,
    })
}

/// `--mount=type=bind,from=<stage|image>`: that state's layers (flattened later) and
/// the keys of those states.
fn from_mounts(
    scx: &mut StepCx<'_, '_>,
    mounts: &[df::Mount],
) -> Result<(Vec<FromLayers>, String), StepError> {
    let mut layers = Vec::new();
    let mut keys = String::new();
    for m in mounts {
        let Some(f) = m.from.as_deref().filter(|_| m.kind == df::MountType::Bind) else {
            layers.push(None);
            continue;
        };
        let from = stage::resolve_from(scx.stage.infos, scx.stage.index, f, 0)?;
        let (l, key) = source_layers(scx.cx, scx.stage.states, &from, scx.sink)?;
        keys.push_str(&key);
        keys.push(' ');
        layers.push(Some(l));
    }
    Ok((layers, keys))
}

/// Context bind mounts: what they show (.dockerignore applied) is part of the key.
fn context_mounts(
    scx: &mut StepCx<'_, '_>,
    mounts: &[df::Mount],
) -> Result<(Option<PathBuf>, String), StepError> {
    let mut bind_root: Option<PathBuf> = None;
    let mut keys = String::new();
    for m in mounts {
        if m.kind == df::MountType::Bind && m.from.is_none() {
            let root = match &bind_root {
                Some(r) => r,
                None => bind_root.insert(scx.cx.bind_root()?),
            };
            let src = crate::context::bind_source(root, m.source.as_deref());
            keys.push_str(&crate::context::tree_digest(&src)?);
            keys.push(' ');
        }
    }
    Ok((bind_root, keys))
}

/// The process a RUN starts: environment (PATH and HOME defaulted), workdir, user.
fn process(scx: &StepCx<'_, '_>, plan: &RunPlan) -> Process {
    let mut env: Vec<String> = (scx.state.scope.run_env(&scx.cx.opts.build_args))
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, config::DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push("HOME=/root".into());
    }
    let c = &scx.state.config.config;
    let cwd = match c.working_dir.is_empty() {
        true => "/".to_string(),
        false => c.working_dir.clone(),
    };
    Process {
        argv: plan.argv.clone(),
        env,
        cwd,
        user: c.user.clone(),
    }
}

/// In the mapping: unpack the parent's layers, make the upper/work/rootfs dirs and a
/// flattened copy of each `from=` bind source (writes to it are dropped).
fn prepare(scx: &StepCx<'_, '_>, plan: &RunPlan, dir: &Path) -> Result<Vec<PathBuf>, StepError> {
    let (store, mode, layers) = (scx.cx.store, scx.cx.mode, scx.state.layers.clone());
    let (d, fl) = (dir.to_path_buf(), plan.from_layers.clone());
    let lowers = run_in_mapping(&scx.cx.map, move || -> Result<Vec<PathBuf>, StepError> {
        let lowers = unpack(store, &layers, mode)?;
        for sub in ["upper", "work", "rootfs", "links", "empty"] {
            std::fs::create_dir_all(d.join(sub)).map_err(io_err("create", &d))?;
        }
        for (n, l) in fl.iter().enumerate() {
            if let Some(l) = l {
                let dirs = unpack(store, l, mode)?;
                let (dest, tar) = (d.join(format!("from-{n}")), d.join(format!("from-{n}.tar")));
                flatten_into(&dirs, &dest, &tar, mode)?;
            }
        }
        Ok(lowers)
    })?;
    Ok(lowers)
}

/// In the mapping: pack the upper dir into a layer, without the stubs of the sandbox's
/// own mount points (/etc files, mount targets, secrets). `ran.owner`: the RUN's user
/// under the single mapping, given to its new files ([`claim_new_files`]);
/// `ran.side_owners`: the fakeroot's owners of symlinks and fifos.
fn commit_upper(
    scx: &StepCx<'_, '_>,
    plan: &RunPlan,
    dir: &Path,
    lowers: Vec<PathBuf>,
    ran: &run_container::Ran,
) -> Result<Option<LayerRef>, StepError> {
    let (owner, side) = (ran.owner, ran.side_owners.clone());
    let mut targets: Vec<String> = vec![
        "/etc/hosts".into(),
        "/etc/hostname".into(),
        "/etc/resolv.conf".into(),
    ];
    targets.extend(
        plan.mounts
            .iter()
            .filter_map(|m| match (&m.target, m.kind) {
                (Some(t), _) => Some(t.clone()),
                (None, df::MountType::Secret) => {
                    m.id.as_ref().map(|id| format!("/run/secrets/{id}"))
                }
                _ => None,
            }),
    );
    let (store, mode, epoch) = (scx.cx.store, scx.cx.mode, scx.cx.opts.source_date_epoch);
    let d = dir.to_path_buf();
    let c = run_in_mapping(&scx.cx.map, move || -> Result<Committed, StepError> {
        let below = LowerView::from_bottom_first(lowers, mode);
        mount_stubs::drop_mount_points(&d.join("upper"), &below, &targets);
        if let Some(owner) = owner {
            claim_new_files(&d.join("upper"), owner)?;
        }
        let layer = commit_dir_with(store, &d.join("upper"), mode, epoch, Vec::new(), side)?;
        // Removed here, where no extra child is needed; the guard then finds nothing.
        remove_tree(&d)?;
        Ok(Committed { layer })
    })?;
    Ok(c.layer)
}

/// Under the single mapping a RUN as USER U:G writes its files as the caller (U inside)
/// with no `user.containers.override_stat` record, which the layer would read as 0:0:
/// give every regular file and dir of `upper` that has none the record U:G with its own
/// mode, as docker's layer would own them. Files copied up from below keep the record
/// they came with; symlinks cannot carry one (root's, as for every single-mapped layer);
/// whiteouts and other special files are left alone. Nothing is followed.
fn claim_new_files(upper: &Path, (uid, gid): (u32, u32)) -> Result<(), StepError> {
    use std::os::unix::fs::MetadataExt;
    let mut dirs = vec![upper.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).map_err(io_err("read", &d))? {
            let path = e.map_err(io_err("read", &d))?.path();
            let md = std::fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
            let kind = if md.is_dir() {
                dirs.push(path.clone());
                Kind::Dir
            } else if md.is_file() {
                Kind::File
            } else {
                continue;
            };
            if fsview::read_override(&path).is_none() {
                fsview::set_owner(&path, kind, uid, gid, md.mode() & 0o7777, OwnerMode::Xattr)
                    .map_err(io_err("record the owner of", &path))?;
            }
        }
    }
    Ok(())
}

/// The argv of a RUN, heredocs included (docs/semantics.md item 107).
fn run_argv(config: &ImageConfig, r: &df::Run) -> Vec<String> {
    let s = match &r.command {
        CommandLine::Exec(v) => return v.clone(),
        CommandLine::Shell(s) => s,
    };
    if r.heredocs.is_empty() {
        return meta::argv(config, &CommandLine::Shell(s.clone()));
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
        return meta::argv(config, &CommandLine::Shell(body));
    }
    let mut script = s.clone();
    for h in &r.heredocs {
        script.push('\n');
        script.push_str(&h.body());
        script.push_str(&h.name);
    }
    meta::argv(config, &CommandLine::Shell(script))
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
