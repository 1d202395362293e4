//! The one table of exit codes, docker's and podman's convention.

/// Exit statuses shared by all programs.
pub struct ExitCodes;

impl ExitCodes {
    /// The program ran and succeeded.
    pub const OK: u8 = 0;
    /// imago itself failed (bad flag, store error, kernel refusal).
    pub const IMAGO_FAILED: u8 = 125;
    /// The container command exists but could not be executed.
    pub const CANNOT_EXECUTE: u8 = 126;
    /// The container command was not found.
    pub const NOT_FOUND: u8 = 127;
    /// Added to the signal number when a container process was killed by one.
    pub const SIGNAL_BASE: u8 = 128;
}
