//! The platform of each stage: `FROM --platform=P` (expanded), else the platform of the
//! earlier stage it starts from, else the build's target (`--platform`, else none: this
//! host's, with no check); whether this host can run a RUN step of it; and the config
//! of `FROM --platform=P scratch`.
//!
//! A stage of another platform than the host's is built without running anything of
//! it: COPY, ENV, … work (`FROM --platform=$BUILDPLATFORM` cross builds), a RUN fails
//! naming the platform, unless binfmt_misc has an enabled interpreter for it.
//!
//! Never: picks a manifest from an index (imago-registry's pull does), or emulates.

use std::path::Path;

use imago_registry::Platform;

use crate::config::ImageConfig;

/// A stage platform that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("--platform `{value}`: {reason}")]
    Invalid { value: String, reason: String },
    #[error(
        "this stage is for {platform} and this host ({host}) cannot run its programs: \
         no emulator (binfmt_misc) is registered for it"
    )]
    CannotRun { platform: String, host: String },
}

impl PlatformError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PlatformError::CannotRun { .. } => Some(
                "build the RUN steps in a stage `FROM --platform=$BUILDPLATFORM …` and COPY \
                 their results into this one, or build on a host of that platform"
                    .into(),
            ),
            PlatformError::Invalid { .. } => None,
        }
    }
}

/// The platform a stage's FROM names with `--platform=written` (expanded); none when
/// it names none.
pub(super) fn of_from(written: Option<&str>) -> Result<Option<Platform>, PlatformError> {
    match written {
        None | Some("") => Ok(None),
        Some(w) => w
            .parse::<Platform>()
            .map(Some)
            .map_err(|reason| PlatformError::Invalid {
                value: w.to_owned(),
                reason,
            }),
    }
}

/// Fails when `platform` (a stage's, when it has one) is not the host's and the host
/// has no emulator registered for it.
pub(super) fn check_runnable(platform: Option<&Platform>) -> Result<(), PlatformError> {
    let Some(p) = platform else { return Ok(()) };
    let host = Platform::host();
    if p.matches(&host) || emulated(&p.arch, Path::new(BINFMT_MISC)) {
        return Ok(());
    }
    Err(PlatformError::CannotRun {
        platform: p.to_string(),
        host: host.to_string(),
    })
}

/// Where the kernel lists binfmt_misc interpreters.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// An enabled `qemu-ARCH` interpreter in `dir` (qemu-user-static's and
/// qemu-user-binfmt's names) for the OCI architecture `arch`.
fn emulated(arch: &str, dir: &Path) -> bool {
    let qemu = match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        "loong64" => "loongarch64",
        "mips64le" => "mips64el",
        other => other,
    };
    // An unreadable entry (no binfmt_misc mounted) is no emulator.
    std::fs::read_to_string(dir.join(format!("qemu-{qemu}")))
        .is_ok_and(|s| s.lines().next() == Some("enabled"))
}

/// The config of `FROM scratch` in a stage of `platform`.
pub(super) fn scratch_config(platform: Option<&Platform>) -> ImageConfig {
    let mut c = ImageConfig::scratch();
    if let Some(p) = platform {
        c.os = p.os.clone();
        c.architecture = p.arch.clone();
        c.variant = p.variant.clone();
    }
    c
}

/// The cache key of `FROM scratch` in a stage of `platform`: the host's is `scratch`,
/// as it always was; another's differs, since its steps' cached configs name it.
pub(super) fn scratch_key(platform: Option<&Platform>) -> String {
    match platform {
        Some(p) if !p.matches(&Platform::host()) => format!("scratch:{p}"),
        _ => "scratch".into(),
    }
}

/// The automatic build args' form of a platform.
pub(super) fn for_args(p: &Platform) -> imago_dockerfile::Platform {
    imago_dockerfile::Platform {
        os: p.os.clone(),
        arch: p.arch.clone(),
        variant: p.variant.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_platforms() {
        assert_eq!(of_from(None).unwrap(), None);
        assert_eq!(of_from(Some("")).unwrap(), None);
        let s390 = of_from(Some("linux/s390x")).unwrap().unwrap();
        assert_eq!(s390.arch, "s390x");
        let e = of_from(Some("linux")).unwrap_err().to_string();
        assert!(e.contains("--platform `linux`"), "{e}");
    }

    #[test]
    fn the_host_runs_its_own_platform_only_without_an_emulator() {
        assert!(check_runnable(None).is_ok());
        assert!(check_runnable(Some(&Platform::host())).is_ok());
        let other: Platform = "linux/riscv64".parse().unwrap();
        if Platform::host().arch != "riscv64" && !emulated("riscv64", Path::new(BINFMT_MISC)) {
            let e = check_runnable(Some(&other)).unwrap_err().to_string();
            assert!(e.contains("linux/riscv64"), "{e}");
        }
    }

    #[test]
    fn binfmt_entries_are_read() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("qemu-aarch64"), "enabled\ninterpreter /x\n").unwrap();
        std::fs::write(d.path().join("qemu-s390x"), "disabled\n").unwrap();
        assert!(emulated("arm64", d.path()));
        assert!(!emulated("s390x", d.path()));
        assert!(!emulated("ppc64le", d.path()));
    }

    #[test]
    fn scratch_of_another_platform() {
        let arm: Platform = "linux/arm/v7".parse().unwrap();
        let c = scratch_config(Some(&arm));
        assert_eq!(
            (c.architecture.as_str(), c.variant.as_deref()),
            ("arm", Some("v7"))
        );
        assert_eq!(scratch_key(None), "scratch");
        assert_eq!(scratch_key(Some(&Platform::host())), "scratch");
        assert_eq!(scratch_key(Some(&arm)), "scratch:linux/arm/v7");
    }
}
