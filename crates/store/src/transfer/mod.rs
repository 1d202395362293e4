//! Whole images between the store and files, the work behind `iimage import`, `export`,
//! `save` and `load`: [`rootfs`] (a root file system in as a one-layer image, an image's
//! merged root file system out as a tar) and [`archive`] (images out to and in from
//! docker-archive and oci-archive files).
//!
//! It lives in the store because each operation is store work around one imago_oci
//! primitive (`layer::pack`/`flatten`, `archive::write_archive`/`read_archive`): pins,
//! blobs, unpacked layers, index entries and names; imago_oci never knows the store.
//! Never: opens the process's stdin or stdout, prints, enters namespaces (import and
//! export unpack layers: rootless callers run them inside the user's id mapping).

pub mod archive;
pub mod rootfs;

pub use archive::LoadedImage;
pub use rootfs::{ImportOptions, ImportedImage, RootfsSource, DEFAULT_IMPORT_MAX_SIZE};
