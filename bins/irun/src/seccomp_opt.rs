//! `--security-opt seccomp=FILE`: reading a docker/OCI seccomp profile and checking it
//! before anything starts, so that a bad profile is an error naming the file and the
//! field, not a container that fails at exec.
//! Owns: the bounded read and the check. Never: compiles the filter that runs (the
//! sandbox does, in the container, for its capability set).

use std::io::Read;

use imago_sandbox::seccomp::{self, Caps, Context, Filter, Profile, MAX_PROFILE_BYTES};

/// Why the profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeccompOptError {
    /// The file could not be read.
    #[error("read seccomp profile `{0}`")]
    Read(String, #[source] std::io::Error),
    /// Larger than the sandbox accepts.
    #[error("seccomp profile `{0}` is larger than {MAX_PROFILE_BYTES} bytes")]
    TooLarge(String),
    /// Not a usable profile (the source names the field).
    #[error("seccomp profile `{0}`")]
    Bad(String, #[source] seccomp::SeccompError),
}

/// The profile's text, checked (parsed and compiled once for this architecture).
pub fn read(file: &str) -> Result<String, SeccompOptError> {
    let f = std::fs::File::open(file).map_err(|e| SeccompOptError::Read(file.into(), e))?;
    let mut text = String::new();
    f.take(MAX_PROFILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| SeccompOptError::Read(file.into(), e))?;
    if text.len() > MAX_PROFILE_BYTES {
        return Err(SeccompOptError::TooLarge(file.into()));
    }
    let bad = |e: seccomp::SeccompError| SeccompOptError::Bad(file.into(), e);
    let profile = Profile::parse(&text).map_err(|e| bad(e.into()))?;
    // Compiled once (every capability's rules in) for the kernel's length limit.
    seccomp::program(Filter::Fakeroot, &profile, &Context::native(Caps::All)).map_err(bad)?;
    Ok(text)
}
