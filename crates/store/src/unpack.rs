//! The bridge to imago_oci's layer unpacker (which owns the tar semantics and every
//! escape check).
//! Never: interprets tar entries itself.

use std::io::Read;
use std::path::Path;

use imago_oci::layer::{self, UnpackOptions};

use crate::layers::{OwnerMode, UnpackLimits};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The oci crate's owner mode for ours.
pub(crate) fn oci_mode(mode: OwnerMode) -> layer::OwnerMode {
    match mode {
        OwnerMode::Real => layer::OwnerMode::Real,
        OwnerMode::Xattr => layer::OwnerMode::Xattr,
    }
}

/// Unpack one uncompressed layer tar into the empty directory `dest`.
pub(crate) fn unpack_tar(
    r: &mut dyn Read,
    dest: &Path,
    mode: OwnerMode,
    limits: &UnpackLimits,
) -> Result<(), BoxError> {
    let opts = UnpackOptions {
        owner: oci_mode(mode),
        allow_devices: limits.allow_devices,
        max_bytes: limits.max_bytes,
        ..UnpackOptions::default()
    };
    layer::unpack(r, dest, &opts)?;
    Ok(())
}
