//! imago's image model on top of `oci-spec`: references (docker's normalisation),
//! digests, media types, layer tars (whiteouts, opaque dirs) and their compression.
//!
//! Never: knows where the store is, enters namespaces, or talks to a registry.

pub mod digest;

pub use digest::{Digest, DigestError, Hasher, HashingReader};
