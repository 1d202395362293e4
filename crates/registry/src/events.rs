//! Progress as data: pull and push report what happens to each blob; the bins draw it
//! (a bar per layer on a tty, plain lines otherwise, nothing with `-q`).
//!
//! Never: prints.

use imago_oci::Digest;

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already in the local store (pull) — nothing fetched.
    Present,
    /// Fetched and verified (pull).
    Downloaded,
    /// The registry already had it (push, HEAD hit).
    Exists,
    /// Mounted from another repository of the registry (push).
    Mounted { from: String },
    /// Uploaded (push).
    Uploaded,
}

/// Receives progress; every method has an empty default.
pub trait Events: Sync {
    /// A blob transfer starts (`kind`: "config", "layer", "manifest").
    fn blob_start(&self, _digest: &Digest, _size: u64, _kind: &str) {}
    /// Bytes transferred so far for this blob.
    fn blob_progress(&self, _digest: &Digest, _bytes: u64) {}
    /// A blob is done.
    fn blob_done(&self, _digest: &Digest, _outcome: &Outcome) {}
    /// A one-line note (retries, a failed mount, recompression).
    fn note(&self, _text: &str) {}
}

/// Ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl Events for NoEvents {}
