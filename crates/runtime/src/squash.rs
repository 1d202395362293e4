//! Running a single-file image (`irun FILE.sqsh`): which arguments name one, its image
//! config (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal from the embedded config;
//! none for a squashfs made by another tool), and its container spec — the archive
//! served read-only by FUSE on the container dir's `sqsh/` (imago_sandbox::squash_root)
//! under kernel overlayfs with the writable upper in the container dir. No store image
//! is read or unpacked.
//! Never: writes the archive, mounts anything itself.

use std::path::{Path, PathBuf};

use imago_overlay::RootfsMethod;
use imago_sandbox::squash_root::SquashRoot;
use imago_sandbox::{ContainerSpec, IdMap, MapKind, RootMount};
use serde_json::Value;

use crate::config::ImageDefaults;
use crate::launch::Launch;
use crate::run::RunError;

/// Largest passwd or group file read from an archive.
const MAX_ETC: u64 = 4 << 20;

/// Failures of running a `.sqsh`.
#[derive(Debug, thiserror::Error)]
pub enum SquashError {
    /// The file is missing or no squashfs we can read.
    #[error("open single-file image `{0}`")]
    Open(PathBuf, #[source] imago_squash::ReadError),
    /// The embedded config is not JSON.
    #[error("the image config in `{0}` is not valid JSON")]
    Config(PathBuf, #[source] serde_json::Error),
    /// The root cannot be kernel overlayfs here.
    #[error("a single-file image needs kernel overlayfs in a user namespace (Linux 5.11+); this run uses the {0:?} storage driver")]
    Driver(RootfsMethod),
    /// The container's user is not in the image.
    #[error("resolve the container's user in `{0}`")]
    User(PathBuf, #[source] imago_sandbox::user::UserError),
    /// The lower dir could not be made.
    #[error("create `{0}`")]
    Dir(PathBuf, #[source] std::io::Error),
}

/// Whether irun's image argument names a single-file image: a path ending in `.sqsh`,
/// or an existing regular file that starts as a squashfs does (so a stray file named
/// like an image in the current dir never hides the store's image).
pub fn is_image_file(arg: &str) -> bool {
    use std::io::Read;
    if arg.ends_with(".sqsh") {
        return true;
    }
    let mut magic = [0u8; 4];
    match std::fs::File::open(arg) {
        Ok(mut f) if f.metadata().map(|m| m.is_file()).unwrap_or(false) => {
            f.read_exact(&mut magic).is_ok() && magic == *b"hsqs"
        }
        _ => false,
    }
}

/// The absolute path of `file` (the monitor and `ictr start` run from other dirs).
pub fn canonical(file: &Path) -> Result<PathBuf, RunError> {
    file.canonicalize().map_err(|e| {
        SquashError::Open(
            file.to_path_buf(),
            imago_squash::ReadError::Io {
                path: file.display().to_string(),
                source: e,
            },
        )
        .into()
    })
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The image defaults and stop signal of `file`.
pub fn defaults(file: &Path) -> Result<(ImageDefaults, Option<String>), RunError> {
    let a = imago_squash::Archive::open(file).map_err(|e| SquashError::Open(file.into(), e))?;
    let Some(raw) = a.config() else {
        return Ok((ImageDefaults::default(), None));
    };
    let v: Value = serde_json::from_slice(raw).map_err(|e| SquashError::Config(file.into(), e))?;
    let c = &v["config"];
    let text = |k: &str| c[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    Ok((
        ImageDefaults {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            env: strings(&c["Env"]).unwrap_or_default(),
            workdir: text("WorkingDir"),
            user: text("User"),
        },
        text("StopSignal"),
    ))
}

/// The container spec of `launch` (whose `sqsh` is `file`) in `dir`.
pub fn spec(
    launch: &Launch,
    file: &Path,
    dir: &Path,
    map: &IdMap,
    remove: bool,
) -> Result<ContainerSpec, RunError> {
    if launch.storage != RootfsMethod::Kernel {
        return Err(SquashError::Driver(launch.storage).into());
    }
    let lower = dir.join("sqsh");
    std::fs::create_dir_all(&lower).map_err(|e| SquashError::Dir(lower.clone(), e))?;
    let mut plain = launch.clone();
    plain.sqsh = None;
    // The single mapping places its one id at the container's user before the
    // container exists; the sandbox would look the name up in the mounted root, which
    // is not served yet: look it up in the archive instead.
    if map.kind == MapKind::Single && imago_sandbox::user::numeric(&launch.user).is_none() {
        let ids = user_ids(file, &launch.user)?;
        plain.user = format!("{}:{}", ids.uid, ids.gid);
    }
    let mut spec = crate::launch::spec(&plain, dir, map, std::slice::from_ref(&lower), remove)?;
    spec.process.user = launch.user.clone();
    spec.root = RootMount::Squash(SquashRoot {
        file: file.to_path_buf(),
        lower,
        over: Box::new(spec.root),
    });
    Ok(spec)
}

fn user_ids(file: &Path, user: &str) -> Result<imago_sandbox::user::Ids, RunError> {
    let a = imago_squash::Archive::open(file).map_err(|e| SquashError::Open(file.into(), e))?;
    let read = |p: &str| -> Result<String, RunError> {
        let b = imago_squash::read_small(&a, p, MAX_ETC)
            .map_err(|e| SquashError::Open(file.into(), e))?;
        Ok(String::from_utf8_lossy(&b.unwrap_or_default()).into_owned())
    };
    let (passwd, group) = (read("/etc/passwd")?, read("/etc/group")?);
    imago_sandbox::user::resolve(user, &passwd, &group)
        .map_err(|e| SquashError::User(file.into(), e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(dir: &Path, config: &str) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        let passwd = b"root:x:0:0::/root:/bin/sh\napp:x:1000:100::/home/app:/bin/sh\n";
        let mut h = tar::Header::new_gnu();
        h.set_path("etc/passwd").unwrap();
        h.set_size(passwd.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &passwd[..]).unwrap();
        let out = dir.join("i.sqsh");
        let tar = b.into_inner().unwrap();
        imago_squash::write_tar(&tar[..], config.as_bytes(), &out, &Default::default()).unwrap();
        out
    }

    #[test]
    fn the_embedded_config_gives_the_defaults() {
        let d = tempfile::tempdir().unwrap();
        let f = image(
            d.path(),
            r#"{"config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"Env":["A=1"],
               "WorkingDir":"/w","User":"app","StopSignal":"SIGINT"}}"#,
        );
        let (dflt, stop) = defaults(&f).unwrap();
        assert_eq!(dflt.entrypoint.unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(dflt.cmd.unwrap(), ["echo hi"]);
        assert_eq!(
            (dflt.env, dflt.workdir, dflt.user),
            (
                vec!["A=1".to_string()],
                Some("/w".into()),
                Some("app".into())
            )
        );
        assert_eq!(stop.as_deref(), Some("SIGINT"));
        let ids = user_ids(&f, "app").unwrap();
        assert_eq!((ids.uid, ids.gid), (1000, 100));
        assert!(user_ids(&f, "nobody-here").is_err());
        let bad = image(d.path(), "not json");
        assert!(defaults(&bad).is_err());
        assert!(is_image_file("x.sqsh") && is_image_file(f.to_str().unwrap()));
        assert!(!is_image_file("busybox:latest"));
        let renamed = d.path().join("myimage");
        std::fs::copy(&f, &renamed).unwrap();
        assert!(is_image_file(renamed.to_str().unwrap()));
        let stray = d.path().join("busybox");
        std::fs::write(&stray, "not an image").unwrap();
        assert!(!is_image_file(stray.to_str().unwrap()));
    }
}
