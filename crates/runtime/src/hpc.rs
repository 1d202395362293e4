//! The HPC run mode's host side: which of the caller's environment variables reach the
//! container (`--env-host` with its deny list; a Slurm or MPI launcher's variables
//! always), the binds `--bind-home`, `--bind-cwd` and `--hpc` add, keep-id's user, and
//! Open MPI's single copy turned off for a rank that could not share the user namespace.
//! Pure functions over what the caller passes in, plus [`Host::current`] that reads the
//! real environment once.
//! Never: mounts, maps ids, starts anything (the sandbox does), parses argv.

use std::path::{Path, PathBuf};

use imago_sandbox::UserMount;

/// Variables `--env-host` never passes: they describe the host's file system, shell or
/// loader, and would break the container or lie about it. PATH is the image's (a host
/// PATH names host dirs), HOME comes from the image's passwd or keep-id, HOSTNAME is the
/// container's, PWD/OLDPWD/SHLVL/`_` are the calling shell's state, XDG_RUNTIME_DIR is a
/// host dir the container does not have. Apptainer keeps PATH, HOME and
/// LD_LIBRARY_PATH out in the same way.
pub const DENIED: &[&str] = &[
    "PATH",
    "HOME",
    "HOSTNAME",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "XDG_RUNTIME_DIR",
];

/// Prefixes `--env-host` never passes: the host's dynamic loader settings (LD_PRELOAD,
/// LD_LIBRARY_PATH, … name host libraries the image's loader would load) and imago's
/// own settings (meant for this irun, not for one run inside).
pub const DENIED_PREFIXES: &[&str] = &["LD_", "IMAGO_"];

/// Prefixes of the variables a workload manager or MPI launcher hands its tasks, passed
/// into the container with or without `--env-host`: Slurm (`srun`), PMI and PMIx (the
/// process-management interfaces every MPI uses to find its peers), Open MPI's
/// `mpirun`, MPICH's Hydra and Intel MPI.
pub const LAUNCHER_PREFIXES: &[&str] = &[
    "SLURM_", "SLURMD_", "PMI_", "PMIX_", "OMPI_", "HYDRA_", "I_MPI_",
];

/// Launcher variables without a common prefix (Hydra's local rank and size).
pub const LAUNCHER_NAMES: &[&str] = &["MPI_LOCALRANKID", "MPI_LOCALNRANKS"];

/// A launcher's variable (passed by default).
pub fn is_launcher_var(name: &str) -> bool {
    LAUNCHER_NAMES.contains(&name) || LAUNCHER_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A variable `--env-host` keeps out.
pub fn is_denied(name: &str) -> bool {
    DENIED.contains(&name) || DENIED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The caller's variables that go into the container, in the caller's order: every one
/// but the denied with `env_host`, else only the launcher's. Names that are empty or
/// hold `=` are skipped (they cannot be written as `K=V`).
pub fn passed(vars: &[(String, String)], env_host: bool) -> Vec<(String, String)> {
    vars.iter()
        .filter(|(k, _)| !k.is_empty() && !k.contains('='))
        .filter(|(k, _)| match env_host {
            true => !is_denied(k),
            false => is_launcher_var(k),
        })
        .cloned()
        .collect()
}

/// Open MPI's choice of single copy for its shared-memory transport (vader): CMA by
/// default, which needs every rank on the node in one user namespace.
pub const SINGLE_COPY_VAR: &str = "OMPI_MCA_btl_vader_single_copy_mechanism";

/// For a container that asked for the shared user namespace and has one of its own
/// (`why`): Open MPI 4.1 notices ranks in different user namespaces and then hangs in
/// its CMA path, so set [`SINGLE_COPY_VAR`] to `none` in `env` (vader copies through its
/// `/dev/shm` segment instead) unless `env` names it already (`-e`, `--env-file`, the
/// launcher's `OMPI_*` as `mpirun --mca` passes them, `--env-host`, the image's ENV):
/// that value stays. Returns the one line to warn with.
pub fn single_copy_off(env: &mut Vec<String>, why: &str) -> String {
    let set = env
        .iter()
        .find_map(|e| e.strip_prefix(SINGLE_COPY_VAR)?.strip_prefix('='));
    let head = format!(
        "not in the shared user namespace of your --hpc containers ({why}): Open MPI's \
         single copy (CMA) between ranks cannot work"
    );
    match set {
        Some(v) => format!("{head}; {SINGLE_COPY_VAR}={v} is kept as set"),
        None => {
            env.push(format!("{SINGLE_COPY_VAR}=none"));
            format!(
                "{head}, and Open MPI 4.1 hangs trying: {SINGLE_COPY_VAR}=none is set \
                 (shared memory with two copies)"
            )
        }
    }
}

/// What the HPC mode reads of the caller, once: its environment, ids, HOME, working
/// dir, host name and temporary dir.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// The environment, in order (names and values that are not UTF-8 are left out).
    pub vars: Vec<(String, String)>,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// The working dir.
    pub cwd: Option<PathBuf>,
    /// The host name.
    pub hostname: Option<String>,
    /// `$TMPDIR`.
    pub tmpdir: Option<PathBuf>,
}

impl Host {
    /// The current process's, read at the first call of the process and kept: irun
    /// asks for it at several steps of one start (flags, the launch, the rendezvous),
    /// and none of them changes the environment, the ids or the working dir.
    pub fn current() -> Host {
        static HOST: std::sync::OnceLock<Host> = std::sync::OnceLock::new();
        HOST.get_or_init(Host::read).clone()
    }

    /// Read the current process's.
    fn read() -> Host {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Host {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            home: var("HOME").map(PathBuf::from),
            cwd: std::env::current_dir().ok(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty()),
            tmpdir: var("TMPDIR").map(PathBuf::from),
        }
    }

    /// keep-id's user: the caller's own `uid:gid` (`0:0` for root).
    pub fn keep_id_user(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }
}

/// Which host dirs to bind at their own paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Binds {
    /// `--bind-home`: `$HOME`.
    pub home: bool,
    /// `--bind-cwd`: the working dir (and it becomes the container's).
    pub cwd: bool,
    /// `--hpc`: /tmp and `$TMPDIR` (an MPI launcher's session dir and PMIx's rendezvous
    /// files are there).
    pub tmp: bool,
}

/// A bind asked for cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpcError {
    /// `--bind-home` without `$HOME`.
    #[error("--bind-home: $HOME is not set")]
    NoHome,
    /// `--bind-cwd` where the working dir is unknown (removed).
    #[error("--bind-cwd: the current directory cannot be read")]
    NoCwd,
    /// A bind of `/` would hide the whole image.
    #[error("{0}: refusing to bind `/` over the container's root")]
    Root(&'static str),
    /// Not absolute.
    #[error("{0}: `{1}` is not an absolute path")]
    Relative(&'static str, PathBuf),
}

fn bind(flag: &'static str, p: &Path) -> Result<UserMount, HpcError> {
    if !p.is_absolute() {
        return Err(HpcError::Relative(flag, p.to_path_buf()));
    }
    if p.parent().is_none() {
        return Err(HpcError::Root(flag));
    }
    Ok(UserMount::Bind {
        src: p.to_path_buf(),
        dst: p.to_path_buf(),
        ro: false,
    })
}

/// The mounts for `binds`, each host dir at its own path, read-write: /tmp and
/// `$TMPDIR` (when outside /tmp) first, then `$HOME`, then the working dir, so a working
/// dir below HOME shows through. The user's `-v` come after these and win.
pub fn mounts(binds: Binds, host: &Host) -> Result<Vec<UserMount>, HpcError> {
    let mut out = Vec::new();
    if binds.tmp {
        out.push(bind("--hpc", Path::new("/tmp"))?);
        if let Some(t) = host.tmpdir.as_deref().filter(|t| !t.starts_with("/tmp")) {
            out.push(bind("--hpc ($TMPDIR)", t)?);
        }
    }
    if binds.home {
        out.push(bind(
            "--bind-home",
            host.home.as_deref().ok_or(HpcError::NoHome)?,
        )?);
    }
    if binds.cwd {
        out.push(bind(
            "--bind-cwd",
            host.cwd.as_deref().ok_or(HpcError::NoCwd)?,
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_host_passes_all_but_the_denied_launchers_always() {
        let host = vars(&[
            ("FOO", "1"),
            ("PATH", "/host/bin"),
            ("HOME", "/home/u"),
            ("LD_PRELOAD", "/x.so"),
            ("LD_LIBRARY_PATH", "/opt/lib"),
            ("IMAGO_ROOT", "/s"),
            ("SLURM_PROCID", "3"),
            ("PMIX_RANK", "1"),
            ("OMPI_COMM_WORLD_RANK", "1"),
            ("MPI_LOCALRANKID", "0"),
            ("TERM", "xterm-256color"),
            ("", "x"),
        ]);
        let all = passed(&host, true);
        let names: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "FOO",
                "SLURM_PROCID",
                "PMIX_RANK",
                "OMPI_COMM_WORLD_RANK",
                "MPI_LOCALRANKID",
                "TERM"
            ]
        );
        let default = passed(&host, false);
        let names: Vec<&str> = default.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "SLURM_PROCID",
                "PMIX_RANK",
                "OMPI_COMM_WORLD_RANK",
                "MPI_LOCALRANKID"
            ]
        );
        assert!(!is_launcher_var("SLURMX") && is_launcher_var("SLURMD_NODENAME"));
    }

    #[test]
    fn binds_at_their_own_paths_tmp_first_cwd_last() {
        let host = Host {
            home: Some("/home/u".into()),
            cwd: Some("/home/u/run".into()),
            tmpdir: Some("/scratch/job".into()),
            ..Default::default()
        };
        let all = Binds {
            home: true,
            cwd: true,
            tmp: true,
        };
        let dsts: Vec<PathBuf> = mounts(all, &host)
            .unwrap()
            .into_iter()
            .map(|m| match m {
                UserMount::Bind { src, dst, ro } => {
                    assert_eq!((&src, ro), (&dst, false));
                    dst
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let want: Vec<PathBuf> = ["/tmp", "/scratch/job", "/home/u", "/home/u/run"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dsts, want);
        let in_tmp = Host {
            tmpdir: Some("/tmp/job".into()),
            ..host.clone()
        };
        let tmp_only = Binds {
            tmp: true,
            ..Default::default()
        };
        assert_eq!(mounts(tmp_only, &in_tmp).unwrap().len(), 1);
        assert!(mounts(Binds::default(), &host).unwrap().is_empty());
    }

    #[test]
    fn binds_refused_clearly() {
        let cwd = Binds {
            cwd: true,
            ..Default::default()
        };
        let at_root = Host {
            cwd: Some("/".into()),
            ..Default::default()
        };
        assert_eq!(
            mounts(cwd, &at_root).unwrap_err(),
            HpcError::Root("--bind-cwd")
        );
        assert_eq!(mounts(cwd, &Host::default()).unwrap_err(), HpcError::NoCwd);
        let home = Binds {
            home: true,
            ..Default::default()
        };
        assert_eq!(
            mounts(home, &Host::default()).unwrap_err(),
            HpcError::NoHome
        );
        let rel = Host {
            home: Some("rel".into()),
            ..Default::default()
        };
        assert!(matches!(
            mounts(home, &rel).unwrap_err(),
            HpcError::Relative(..)
        ));
        let me = Host {
            uid: 1001,
            gid: 1002,
            ..Default::default()
        };
        assert_eq!(me.keep_id_user(), "1001:1002");
    }

    #[test]
    fn single_copy_off_unless_named() {
        let mut env = vec!["PATH=/bin".to_string()];
        let said = single_copy_off(&mut env, "why");
        assert_eq!(
            env,
            ["PATH=/bin", "OMPI_MCA_btl_vader_single_copy_mechanism=none"]
        );
        assert!(
            said.contains("(why)") && said.contains("=none is set"),
            "{said}"
        );
        assert!(!said.contains('\n'), "one line: {said}");
        let mut env = vec!["OMPI_MCA_btl_vader_single_copy_mechanism=cma".to_string()];
        let said = single_copy_off(&mut env, "why");
        assert_eq!(env, ["OMPI_MCA_btl_vader_single_copy_mechanism=cma"]);
        assert!(said.contains("=cma is kept"), "{said}");
        // A longer name is another variable.
        let mut env = vec!["OMPI_MCA_btl_vader_single_copy_mechanismX=1".to_string()];
        single_copy_off(&mut env, "why");
        assert_eq!(env.len(), 2);
    }
}
