//! Single-file images: an image's flattened root as one squashfs file (`.sqsh`, zstd)
//! with its config embedded, and what runs it without a store.
//! Owns: the writer ([`write_tar`]: a flattened root as a tar stream → `.sqsh`,
//! atomically), the bounded reader of untrusted archives ([`Archive`]), the read-only
//! FUSE server over it ([`SquashFs`], [`serve_on`]) and how it shows owners
//! ([`Owners`]), small reads of files inside an archive ([`read_small`]).
//! Never: reads the store, forks, enters namespaces or mounts (imago-sandbox does, in
//! the container's namespaces), follows a symlink.
//!
//! The format is squashfs 4.0 (readable by the kernel, unsquashfs, squashfuse and
//! Charliecloud's ch-run); the image config is a trailer after it ([`trailer`]).

mod codec;
pub mod format;
mod fs;
mod owners;
mod read;
mod small;
pub mod trailer;
mod write;

pub use codec::CodecError;
pub use fs::{serve_on, SquashFs};
pub use owners::Owners;
pub use read::{Archive, Entry, Inode, InodeKind, ReadError};
pub use small::read_small;
pub use write::{write_from, write_tar, SourceError, WriteError, WriteOptions, Written};

#[cfg(test)]
mod tests;
