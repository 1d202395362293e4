//! From an image's config and the user's flags to what the container runs: docker's
//! ENTRYPOINT × CMD rules, the environment (image, `--env-file`, `-e K=V`, `-e K`),
//! WORKDIR, USER, and the parsing of `-v`, `--mount` and `--tmpfs`. Pure.
//! Never: touches the store, the file system or the kernel.

use std::path::PathBuf;

use imago_sandbox::UserMount;

/// What the image says (the `config` object of an OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    /// ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// CMD.
    pub cmd: Option<Vec<String>>,
    /// ENV (`K=V`).
    pub env: Vec<String>,
    /// WORKDIR.
    pub workdir: Option<String>,
    /// USER.
    pub user: Option<String>,
}

/// Errors in the user's flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Neither the image nor the user gave a command.
    #[error(
        "no command specified: the image has no ENTRYPOINT or CMD; give one after the image name"
    )]
    NoCommand,
    /// `-w` must be absolute.
    #[error("the working directory `{0}` is invalid, it needs to be an absolute path")]
    RelativeWorkdir(String),
    /// A bad `-v`.
    #[error("invalid volume `{spec}`: {why}")]
    Volume {
        /// The flag's value.
        spec: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A bad `--mount`.
    #[error("invalid --mount `{spec}`: {why}")]
    Mount {
        /// The flag's value.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// A bad `--tmpfs`.
    #[error("invalid --tmpfs `{0}`: the path must be absolute")]
    Tmpfs(String),
    /// A bad `-e` or env-file line.
    #[error("invalid environment variable `{0}`: the name is empty")]
    Env(String),
    /// keep-id runs as the caller: no other user can be asked for.
    #[error("--userns keep-id runs the container as your own uid and gid: drop -u/--user")]
    KeepIdUser,
}

/// docker's rules: `--entrypoint` replaces ENTRYPOINT and drops the image's CMD;
/// arguments after the image replace CMD; the result is ENTRYPOINT ++ CMD.
/// `Some("")` for `entrypoint` resets it to nothing (docker's `--entrypoint ""`).
pub fn command(
    image: &ImageDefaults,
    entrypoint: Option<&str>,
    args: &[String],
) -> Result<Vec<String>, ConfigError> {
    let (ep, image_cmd): (Vec<String>, Option<Vec<String>>) = match entrypoint {
        Some("") => (vec![], None),
        Some(e) => (vec![e.to_string()], None),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone(),
        ),
    };
    let cmd = if args.is_empty() {
        image_cmd.unwrap_or_default()
    } else {
        args.to_vec()
    };
    let all: Vec<String> = ep.into_iter().chain(cmd).collect();
    if all.is_empty() {
        return Err(ConfigError::NoCommand);
    }
    Ok(all)
}

/// The environment: image ENV, then env-file lines, then `-e` (later wins, order of
/// first appearance kept). `-e K` takes K from `lookup` (irun's own environment) and is
/// dropped when unset, as docker does. PATH defaults to docker's; HOSTNAME is set; TERM
/// is `xterm` with a tty unless given.
pub fn environment(
    image: &ImageDefaults,
    env_files: &[String],
    flags: &[String],
    hostname: &str,
    tty: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    environment_with_host(image, &[], env_files, flags, hostname, tty, lookup)
}

/// [`environment`] with variables passed from the host (`--env-host`, a launcher's:
/// `crate::hpc::passed`) between the image's ENV and the env files: they override the
/// image, and `--env-file` and `-e` override them (podman's order for `--env-host`).
pub fn environment_with_host(
    image: &ImageDefaults,
    host: &[(String, String)],
    env_files: &[String],
    flags: &[String],
    hostname: &str,
    tty: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: String, out: &mut Vec<(String, String)>| match out
        .iter_mut()
        .find(|(n, _)| n == k)
    {
        Some(e) => e.1 = v,
        None => out.push((k.to_string(), v)),
    };
    set("PATH", imago_sandbox::DEFAULT_PATH.to_string(), &mut out);
    set("HOSTNAME", hostname.to_string(), &mut out);
    for e in &image.env {
        if let Some((k, v)) = e.split_once('=') {
            set(k, v.to_string(), &mut out);
        }
    }
    for (k, v) in host {
        set(k, v.clone(), &mut out);
    }
    let file_lines = env_files
        .iter()
        .flat_map(|t| t.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for e in file_lines.chain(flags.iter().map(String::as_str)) {
        match e.split_once('=') {
            Some(("", _)) => return Err(ConfigError::Env(e.to_string())),
            Some((k, v)) => set(k, v.to_string(), &mut out),
            None if e.is_empty() => return Err(ConfigError::Env(e.to_string())),
            None => {
                if let Some(v) = lookup(e) {
                    set(e, v, &mut out);
                }
            }
        }
    }
    if tty && !out.iter().any(|(k, _)| k == "TERM") {
        out.push(("TERM".into(), "xterm".into()));
    }
    Ok(out.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// `-w` > WORKDIR > `/`; must be absolute.
pub fn workdir(image: &ImageDefaults, flag: Option<&str>) -> Result<String, ConfigError> {
    let w = flag
        .map(str::to_string)
        .or_else(|| image.workdir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !w.starts_with('/') {
        return Err(ConfigError::RelativeWorkdir(w));
    }
    Ok(w)
}

/// `-v HOST:CTR[:ro|rw]` (absolute paths only; named volumes are not supported).
pub fn volume(spec: &str) -> Result<UserMount, ConfigError> {
    let err = |why| ConfigError::Volume {
        spec: spec.to_string(),
        why,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, ro) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, o] => {
            let mut ro = false;
            for opt in o.split(',') {
                match opt {
                    "ro" | "readonly" => ro = true,
                    "rw" | "z" | "Z" | "" => {}
                    _ => return Err(err("unknown option (use ro or rw)")),
                }
            }
            (*s, *d, ro)
        }
        _ => return Err(err("expected HOST:CONTAINER[:ro]")),
    };
    if !src.starts_with('/') {
        return Err(err(
            "the host path must be absolute (named volumes are not supported)",
        ));
    }
    if !dst.starts_with('/') {
        return Err(err("the container path must be absolute"));
    }
    Ok(UserMount::Bind {
        src: PathBuf::from(src),
        dst: PathBuf::from(dst),
        ro,
    })
}

/// `--mount type=bind,source=…,target=…[,readonly]` or `type=tmpfs,target=…[,tmpfs-size=…][,tmpfs-mode=…]`.
pub fn mount(spec: &str) -> Result<UserMount, ConfigError> {
    let err = |why: &str| ConfigError::Mount {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let (mut kind, mut src, mut dst, mut ro, mut opts) = ("volume", None, None, false, Vec::new());
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => src = Some(v),
            "target" | "destination" | "dst" => dst = Some(v),
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => opts.push(format!("size={v}")),
            "tmpfs-mode" => opts.push(format!("mode={v}")),
            _ => return Err(err(&format!("unknown field `{k}`"))),
        }
    }
    let dst = dst
        .filter(|d| d.starts_with('/'))
        .ok_or_else(|| err("an absolute target is required"))?;
    match kind {
        "bind" => {
            let src = src
                .filter(|s| s.starts_with('/'))
                .ok_or_else(|| err("an absolute source is required"))?;
            Ok(UserMount::Bind {
                src: src.into(),
                dst: dst.into(),
                ro,
            })
        }
        "tmpfs" => Ok(UserMount::Tmpfs {
            dst: dst.into(),
            options: opts.join(","),
        }),
        other => Err(err(&format!(
            "type `{other}` is not supported (bind, tmpfs)"
        ))),
    }
}

/// `--tmpfs /path[:opts]`.
pub fn tmpfs(spec: &str) -> Result<UserMount, ConfigError> {
    let (p, o) = spec.split_once(':').unwrap_or((spec, ""));
    if !p.starts_with('/') {
        return Err(ConfigError::Tmpfs(spec.into()));
    }
    Ok(UserMount::Tmpfs {
        dst: p.into(),
        options: o.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn img(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageDefaults {
        ImageDefaults {
            entrypoint: ep.map(v),
            cmd: cmd.map(v),
            ..Default::default()
        }
    }

    // docker's "Understand how CMD and ENTRYPOINT interact" table, row by row.
    #[test]
    fn entrypoint_cmd_table() {
        // No ENTRYPOINT, no CMD: error
        assert_eq!(
            command(&img(None, None), None, &[]),
            Err(ConfigError::NoCommand)
        );
        // No ENTRYPOINT, CMD exec
        assert_eq!(
            command(&img(None, Some(&["p1", "a"])), None, &[]).unwrap(),
            v(&["p1", "a"])
        );
        // ENTRYPOINT exec, no CMD
        assert_eq!(
            command(&img(Some(&["e1", "x"]), None), None, &[]).unwrap(),
            v(&["e1", "x"])
        );
        // ENTRYPOINT exec + CMD exec: concatenated
        assert_eq!(
            command(&img(Some(&["e1"]), Some(&["p1"])), None, &[]).unwrap(),
            v(&["e1", "p1"])
        );
        // ENTRYPOINT shell form (/bin/sh -c) + CMD: CMD appended (and ignored by sh)
        assert_eq!(
            command(
                &img(Some(&["/bin/sh", "-c", "e1"]), Some(&["p1"])),
                None,
                &[]
            )
            .unwrap(),
            v(&["/bin/sh", "-c", "e1", "p1"])
        );
        // CMD shell form
        assert_eq!(
            command(&img(None, Some(&["/bin/sh", "-c", "p1"])), None, &[]).unwrap(),
            v(&["/bin/sh", "-c", "p1"])
        );
    }

    #[test]
    fn run_args_and_entrypoint_flag() {
        let i = img(Some(&["e1"]), Some(&["p1"]));
        assert_eq!(
            command(&i, None, &v(&["x", "y"])).unwrap(),
            v(&["e1", "x", "y"])
        );
        assert_eq!(
            command(&i, Some("ls"), &[]).unwrap(),
            v(&["ls"]),
            "--entrypoint drops CMD"
        );
        assert_eq!(
            command(&i, Some("ls"), &v(&["-l"])).unwrap(),
            v(&["ls", "-l"])
        );
        assert_eq!(command(&i, Some(""), &v(&["id"])).unwrap(), v(&["id"]));
        assert_eq!(command(&i, Some(""), &[]), Err(ConfigError::NoCommand));
    }

    #[test]
    fn env_precedence_and_inherit() {
        let i = ImageDefaults {
            env: v(&["A=1", "PATH=/img", "B=2"]),
            ..Default::default()
        };
        let look = |k: &str| (k == "FROM_HOST").then(|| "h".to_string());
        let e = environment(
            &i,
            &["B=file\n# c\n\nC=3".into()],
            &v(&["A=flag", "FROM_HOST", "UNSET"]),
            "hn",
            true,
            &look,
        )
        .unwrap();
        assert_eq!(
            e,
            v(&[
                "PATH=/img",
                "HOSTNAME=hn",
                "A=flag",
                "B=file",
                "C=3",
                "FROM_HOST=h",
                "TERM=xterm"
            ])
        );
        assert!(environment(&i, &[], &v(&["=x"]), "h", false, &look).is_err());
    }

    #[test]
    fn host_variables_override_the_image_and_lose_to_files_and_flags() {
        let i = ImageDefaults {
            env: v(&["A=img", "B=img", "C=img"]),
            ..Default::default()
        };
        let host = [("A", "host"), ("B", "host"), ("SLURM_PROCID", "2")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let e = environment_with_host(
            &i,
            &host,
            &["B=file".into()],
            &v(&["SLURM_PROCID=9"]),
            "hn",
            false,
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            e,
            v(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=hn",
                "A=host",
                "B=file",
                "C=img",
                "SLURM_PROCID=9"
            ])
        );
    }

    #[test]
    fn workdir_rules() {
        let i = ImageDefaults {
            workdir: Some("/app".into()),
            ..Default::default()
        };
        assert_eq!(workdir(&i, None).unwrap(), "/app");
        assert_eq!(workdir(&i, Some("/x")).unwrap(), "/x");
        assert_eq!(workdir(&ImageDefaults::default(), None).unwrap(), "/");
        assert!(workdir(&i, Some("rel")).is_err());
    }

    #[test]
    fn volumes_mounts_tmpfs() {
        assert_eq!(
            volume("/a:/b:ro").unwrap(),
            UserMount::Bind {
                src: "/a".into(),
                dst: "/b".into(),
                ro: true
            }
        );
        assert_eq!(
            volume("/a:/b").unwrap(),
            UserMount::Bind {
                src: "/a".into(),
                dst: "/b".into(),
                ro: false
            }
        );
        assert!(volume("named:/b").is_err());
        assert!(volume("/a").is_err());
        assert_eq!(
            mount("type=bind,source=/a,target=/b,readonly").unwrap(),
            UserMount::Bind {
                src: "/a".into(),
                dst: "/b".into(),
                ro: true
            }
        );
        assert_eq!(
            mount("type=tmpfs,target=/t,tmpfs-size=1m").unwrap(),
            UserMount::Tmpfs {
                dst: "/t".into(),
                options: "size=1m".into()
            }
        );
        assert!(mount("type=volume,target=/t").is_err());
        assert_eq!(
            tmpfs("/run:size=1m").unwrap(),
            UserMount::Tmpfs {
                dst: "/run".into(),
                options: "size=1m".into()
            }
        );
        assert!(tmpfs("run").is_err());
    }
}
