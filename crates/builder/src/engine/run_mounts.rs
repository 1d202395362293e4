//! A RUN's `--mount`s as container mounts: `bind` (the filtered context, read-only, or a
//! private flattened copy of a `from=` state), `cache` (a dir of the store kept between
//! builds), `tmpfs`, and `secret` (a copy of the `--secret` file, or its text in an
//! environment variable; never in a layer or the history).

use std::path::{Path, PathBuf};

use imago_dockerfile as df;
use imago_oci::Digest;
use imago_sandbox::run_in_mapping;
use imago_sandbox::spec::UserMount;

use super::error::{io_err, StepError};
use super::run_step::RunPlan;
use super::state::Ctx;
use crate::fsview::{self, Kind};

/// The container mounts of the plan's `--mount`s; `type=secret,env=VAR` adds to `env`.
pub(super) fn user_mounts(
    cx: &Ctx<'_>,
    plan: &RunPlan,
    dir: &Path,
    env: &mut Vec<String>,
) -> Result<Vec<UserMount>, StepError> {
    let mut out = Vec::new();
    for (n, m) in plan.mounts.iter().enumerate() {
        // `type=secret,env=VAR`: the secret in the environment (and as a file only
        // when a target is given too).
        if let (df::MountType::Secret, Some(var)) = (m.kind, &m.env) {
            if let Some(v) = secret_text(cx, m)? {
                env.push(format!("{var}={v}"));
            }
            if m.target.is_none() {
                continue;
            }
        }
        let target = |d: &str| PathBuf::from(m.target.clone().unwrap_or_else(|| d.to_string()));
        out.push(match m.kind {
            df::MountType::Tmpfs => UserMount::Tmpfs {
                dst: target("/"),
                options: m.size.map(|s| format!("size={s}")).unwrap_or_default(),
            },
            df::MountType::Bind => bind(cx, m, plan, dir, n, target("/")),
            df::MountType::Cache => cache(cx, m, target("/"))?,
            df::MountType::Secret => secret(cx, m, dir, &target)?,
            df::MountType::Ssh => return Err(StepError::SshMount),
        });
    }
    Ok(out)
}

/// The secret's text for `env=`; None when it is optional and not given.
fn secret_text(cx: &Ctx<'_>, m: &df::Mount) -> Result<Option<String>, StepError> {
    let id = m.id.clone().unwrap_or_default();
    match cx.opts.secrets.get(&id) {
        Some(src) => Ok(Some(
            std::fs::read_to_string(src).map_err(io_err("read secret", src))?,
        )),
        None if m.required => Err(StepError::NoSecret(id)),
        None => Ok(None),
    }
}

fn bind(
    cx: &Ctx<'_>,
    m: &df::Mount,
    plan: &RunPlan,
    dir: &Path,
    n: usize,
    dst: PathBuf,
) -> UserMount {
    if m.from.is_some() {
        // A private flattened copy of the stage/image (made by run_step's prepare).
        let src = fsview::components(m.source.as_deref().unwrap_or("/"));
        let host = fsview::host_path(&dir.join(format!("from-{n}")), &src);
        return UserMount::Bind {
            src: host,
            dst,
            ro: m.read_only,
        };
    }
    let root = plan.bind_root.as_deref().unwrap_or(&cx.opts.context_dir);
    UserMount::Bind {
        src: crate::context::bind_source(root, m.source.as_deref()),
        dst,
        // Always: BuildKit discards writes to an `rw` bind; ours would reach the context.
        ro: true,
    }
}

/// A cache mount: a dir of the store named after the cache id, made (with the mount's
/// uid/gid/mode, docs/semantics.md item 108) by the first build that uses it.
fn cache(cx: &Ctx<'_>, m: &df::Mount, dst: PathBuf) -> Result<UserMount, StepError> {
    let id = (m.id.clone())
        .or_else(|| m.target.clone())
        .unwrap_or_default();
    let safe: String = id
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect();
    let host = (cx.store.root().join("imago").join("build-cache-mounts"))
        .join(format!("{safe}-{}", &Digest::of(id.as_bytes()).hex()[..12]));
    if !host.is_dir() {
        std::fs::create_dir_all(&host).map_err(io_err("create", &host))?;
        if m.uid.is_some() || m.gid.is_some() || m.mode.is_some() {
            let (h, mode) = (host.clone(), cx.mode);
            let (uid, gid, perm) = (
                m.uid.unwrap_or(0),
                m.gid.unwrap_or(0),
                m.mode.unwrap_or(0o755),
            );
            run_in_mapping(&cx.map, move || -> Result<(), StepError> {
                fsview::set_owner(&h, Kind::Dir, uid, gid, perm, mode).map_err(io_err("chown", &h))
            })?;
        }
    }
    Ok(UserMount::Bind {
        src: host,
        dst,
        ro: false,
    })
}

/// A secret file: a copy in the step's dir, bound read-only (an empty tmpfs when an
/// optional secret is not given).
fn secret(
    cx: &Ctx<'_>,
    m: &df::Mount,
    dir: &Path,
    target: &dyn Fn(&str) -> PathBuf,
) -> Result<UserMount, StepError> {
    let id = m.id.clone().unwrap_or_default();
    let dst = target(&format!("/run/secrets/{id}"));
    match cx.opts.secrets.get(&id) {
        Some(src) => {
            let copy = dir.join(format!("secret-{}", Digest::of(id.as_bytes()).hex()));
            std::fs::copy(src, &copy).map_err(io_err("read secret", src))?;
            Ok(UserMount::Bind {
                src: copy,
                dst,
                ro: true,
            })
        }
        None if m.required => Err(StepError::NoSecret(id)),
        None => Ok(UserMount::Tmpfs {
            dst,
            options: String::new(),
        }),
    }
}
