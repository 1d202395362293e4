//! imago's on-disk store: an OCI image layout at the root (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) that skopeo and umoci read as it is, tags as
//! `org.opencontainers.image.ref.name` annotations, unpacked layers keyed by chain id
//! beside it (`imago/layers/`), garbage collection and fsck. docs/store.md describes
//! the layout and the crash/lock contract.
//!
//! Never: enters namespaces (callers run [`Store::unpack_layers`] and [`Store::gc`]
//! inside the user's id mapping when rootless), talks to registries, prints.
//!
//! # Public API (stable; changes are additive)
//!
//! - [`Store::open(root)`](Store::open): creates the layout when missing, adopts an
//!   existing one (e.g. made by skopeo). `root()`, `layout()` (every path: [`Layout`]),
//!   `temp_path(what)` (a temp path on the store's file system, cleaned by gc once the
//!   process is gone).
//! - Blobs ([`blobs`]): `put_blob(reader, Option<(&Digest, size)>) -> BlobInfo`
//!   (temp + hash while writing + fsync + rename + dir fsync; expected digest/size
//!   enforced; idempotent), `put_blob_bytes`, `open_blob(&Digest) -> BlobReader`
//!   (verifies the digest at EOF), `read_blob` (whole, verified), `verify_blob`,
//!   `blob_path`, `has_blob`, `blob_size`.
//! - Partial downloads ([`partial`]): `open_partial_blob(&Digest, size) ->
//!   Option<PartialBlob>` (None while another process holds it), `append(reader)`,
//!   `len()`, `restart()`, `commit(&Store)` (digest and size verified first),
//!   `partial_blob_path`; a killed download resumes from what its file holds.
//! - [`Store::pin`] → [`Pin`]: hold from your first `put_blob` until your image is in
//!   index.json (`put_manifest`/`put_image`/`tag`), so a concurrent gc cannot take your
//!   blobs; gc waits for pins, and pins taken while a gc is pending wait for it (one
//!   pin per process: lock.rs).
//! - Images ([`images`]): `put_manifest(bytes, media_type) -> manifest Digest` (config
//!   and layers must be stored; records it unnamed), `put_image(&ImageConfiguration,
//!   &[BlobRef])` / `put_image_raw(config_bytes, &[BlobRef])` (writes config + OCI
//!   manifest; [`imago_oci::BlobRef`]), `put_layer(reader, media_type) -> BlobRef`,
//!   `tag(name, &manifest_digest) -> ImageName`, `untag(name)`, `remove_image(input,
//!   force) -> Removed` (docker rmi semantics), `resolve(input) -> Image` (name[:tag],
//!   name@digest, full id, unique id prefix else [`StoreError::Ambiguous`], manifest
//!   digest), `list_images()`.
//!   [`Image`]: `id()` (= config digest), `manifest_digest`, `manifest`/`config` (oci_spec
//!   types) and their raw bytes, `names`, `layers()`, `diff_ids()`, `chain_ids()`,
//!   `size()`, `created()`. [`chain_ids`] for diff ids.
//! - Names ([`names`]): a name is stored as docker's short form without `:latest`
//!   (`busybox`, `busybox:1.36`, `localhost:5000/app:1`), so `skopeo copy
//!   oci:$ROOT:busybox` works; input matches by raw ref.name or normalised reference.
//! - Layers ([`layers`]): `unpack_layers(&Image, OwnerMode, &UnpackLimits) ->
//!   Vec<PathBuf>` (diff dirs bottom → top; diff ids verified; rootless Real: call it
//!   inside the user namespace), `layer_dir(&chain_id) -> Option<PathBuf>`,
//!   `layer_meta`, `unpacked_layers()`, `owner_mode()`. [`OwnerMode`] {Real, Xattr} is
//!   imago_oci's (`imago_oci::layer::OwnerMode`), re-exported.
//!   `hold_layers(&[chain_id]) -> LayerHold`: a running container's layers stay through
//!   gc while the hold lives (shared flock on each layer dir; gc skips busy ones).
//! - Import ([`import`]): `put_layer_tar(uncompressed tar) -> (BlobRef, diff_id)`
//!   (gzip fast level, both digests in one pass), `import_layer(tar, parent_chain,
//!   OwnerMode, &UnpackLimits) -> ImportedLayer` (store + unpack in one pass; refused
//!   entries fail it, nothing kept). `Store` implements imago_oci's archive
//!   `BlobSource` and `BlobSink`.
//! - Whole images ([`transfer`]): `import_rootfs(RootfsSource, &ImportOptions, OwnerMode)
//!   -> ImportedImage` (a tar or directory as a one-layer image, named; `docker import`),
//!   `export_rootfs(&Image, OwnerMode, writer)` (the merged tree as one tar),
//!   `save_images(inputs, ArchiveFormat, writer)` / `save_images_to_file(…, path)`
//!   (temp beside it, then renamed), `load_archive(reader) -> Vec<LoadedImage>` (names
//!   as the archive gives them; refused names are reported, not fatal).
//! - Build cache ([`cache`]): `cache_put(key, value, refs)`, `cache_get(key)`,
//!   `cache_entries()`, `cache_remove(key)`; an entry keeps its `refs` blobs through gc
//!   (dropped when a ref is gone, or all with `GcOptions::build_cache`).
//! - [`Store::gc(&GcOptions)`](Store::gc) → [`GcReport`] (refuses a damaged store
//!   unless `force`; gives up after `wait` with [`StoreError::StoreBusy`]);
//!   [`Store::fsck`] → [`FsckReport`] (`is_clean()`, `problems`); [`Store::repair`] →
//!   [`RepairReport`] (damaged blobs deleted, incomplete images dropped, broken
//!   unpacked layers removed, then gc).
//! - Index ([`index`]): `read_index()`, `update_index(f)` (read-modify-write under the
//!   index lock; for callers with needs the methods above do not cover).
//! - Node-local dir ([`local`]): [`local::placement(store_root)`](local::placement)
//!   (Some(dir) when the store is on a shared file system or `IMAGO_LOCAL_DIR` names
//!   one: containers' layers and RUN scratch go there), [`local::node_local_dir`],
//!   [`local::shared_fs`] (statfs magic → name), the pure rules [`local::choose`] and
//!   [`local::check_private`].
//! - Shared read-only stores ([`shared`]): [`Store::open`] reads the ones
//!   `$IMAGO_ADDITIONAL_STORES` or the config key `additional_stores` names
//!   ([`shared::configured`]; [`Store::open_with_shared`], [`Store::open_alone`]);
//!   `resolve` and `list_images` look there after the own index ([`Image::origin`] says
//!   where an image was found), `unpack_layers`/`unpacked_lowers` use their unpacked
//!   layers in place when this user unpacked them in this mode, blobs are read from
//!   them, and `tag`/`put_manifest` copy the blobs they need into this store. Nothing is
//!   ever written there; `remove_image` of a shared image is
//!   [`StoreError::SharedReadOnly`].
//! - One job per key ([`jobs`]): [`Store::pull_lock`] (a pull of one manifest; the
//!   registry crate takes it) and the unpack lock inside `unpack_layers`, so concurrent
//!   processes download and unpack an image once; waits bounded by [`job_wait`]
//!   (`$IMAGO_PULL_WAIT`), then [`StoreError::JobWait`].
//! - Errors: [`StoreError`] with `hint()`. Damage has its own variants, distinct from
//!   "not found": `IndexDamaged` (index.json missing while blobs exist, unreadable or
//!   invalid), `ImageDamaged` (a name or digest the index has, whose manifest or config
//!   cannot be read), `BlobDamaged` (a stored blob that no longer hashes to its name),
//!   `StoreDamaged` (gc refused). `BlobCorrupt` is incoming content that does not match
//!   the digest it was announced with.

pub mod atomic;
pub mod blobs;
pub mod cache;
pub mod error;
pub mod fsck;
pub mod gc;
mod hashed_copy;
pub mod images;
pub mod import;
pub mod index;
pub mod jobs;
pub mod layers;
pub mod layout;
pub mod local;
pub mod lock;
pub mod names;
pub mod partial;
pub mod repair;
pub mod shared;
pub mod store;
pub mod transfer;

pub use blobs::{BlobInfo, BlobReader};
pub use error::{Result, StoreError};
pub use fsck::{FsckReport, Problem};
pub use gc::{GcOptions, GcReport};
pub use images::{chain_ids, Image, Removed, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
pub use import::ImportedLayer;
pub use index::{IndexEntry, IndexFile, REF_NAME};
pub use jobs::{job_wait, JobLock};
pub use layers::{LayerHold, LayerMeta, OwnerMode, UnpackLimits};
pub use layout::Layout;
pub use names::ImageName;
pub use partial::PartialBlob;
pub use repair::RepairReport;
pub use store::{Pin, Store};
pub use transfer::{ImportOptions, ImportedImage, LoadedImage, RootfsSource};
