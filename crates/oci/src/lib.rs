//! imago's image model on top of `oci-spec`: references (docker's normalisation),
//! digests, media types, layer tars (whiteouts, opaque dirs) and their compression,
//! and image archives (docker-archive, oci-archive).
//!
//! Never: knows where the store is, enters namespaces, or talks to a registry.
//!
//! # Public entry points (contracts other crates code against)
//!
//! - [`digest`]: [`Digest`] (`sha256:<hex>`, parse/Display/serde, `of`, `short`),
//!   [`Hasher`], [`HashingReader`], [`VerifyingReader`] (digest + size checked at EOF);
//!   `From<&Digest> for oci_spec::image::Digest` and `TryFrom<&oci_spec::image::Digest>
//!   for Digest` (refuses non-sha256 by name).
//! - [`blob_ref`]: [`BlobRef`] {media_type, digest, size}: a blob as a manifest names it,
//!   with imago's sha256 [`Digest`] and the manifest's field names in serde (`mediaType`);
//!   the one such type (registry pull/push, store manifests, build-cache entries).
//! - [`reference`](mod@reference): [`Reference::parse`] normalises exactly like docker
//!   (`busybox` → `docker.io/library/busybox:latest`; `:latest` only when neither tag nor
//!   digest);
//!   `parse_without_default_tag`; `Display` = full form; `familiar()` /
//!   `familiar_name()` = docker's short form; `registry()`, `registry_endpoint()`
//!   (`docker.io` → `registry-1.docker.io`), `repository()`, `name()`, `tag()`, `digest()`,
//!   `with_tag()`, `with_digest()`, `without_digest()`, `without_tag_or_digest()`,
//!   `is_docker_hub()`; serde as the full string. Errors ([`ReferenceError`]) name the input.
//! - [`media_type`]: constants for OCI and Docker schema 2 types, `is_manifest`,
//!   `is_index`, `is_config`, `is_layer`, `is_foreign_layer`, `is_schema1`,
//!   `layer_compression(mt) -> Option<Compression>`, [`ManifestFormat`] (`Oci`/`Docker`:
//!   `manifest()`, `index()`, `config()`, `layer(Compression)`), `convert_layer`.
//! - [`compress`]: [`Compression`] {None, Gzip, Zstd} (`detect(&[u8])`, FromStr/Display),
//!   `sniff`, `detect_buffered`, `decompress(r, c) -> Decompressor<R>`,
//!   `auto_decompress(r)` (detect by magic), [`Compressor`] (`new(w, c, Level)`,
//!   `finish() -> W`), [`Level`] (Fast = gzip 1 / zstd 1, Default = 6 / 3, Best = 9 / 19).
//! - [`platform`]: `host_arch()` (`x86_64` → `amd64`, `aarch64` → `arm64`, …),
//!   `host_variant()` (`v7` on 32-bit arm), `HOST_OS`: the one Rust-to-OCI platform
//!   mapping.
//! - [`spec`]: re-exports of the `oci_spec::image` model everybody uses (ImageManifest,
//!   ImageIndex, ImageConfiguration, Descriptor, MediaType, …): use these, not your own.
//! - [`layer`] (one layer tar ↔ one directory; docs/layers.md has the rules):
//!   - `unpack(reader, dest, &UnpackOptions) -> Result<UnpackStats, LayerError>`: `reader`
//!     is a layer tar, plain or gzip/zstd (detected by magic), `dest` an
//!     existing EMPTY dir; on error `dest` is partial (delete it). Options: `owner`
//!     ([`layer::OwnerMode`] `Real` = lchown, `Xattr` = record `uid:gid:0mode:type` in
//!     `user.containers.override_stat`), `whiteouts` (`Overlay`: 0:0 char devices +
//!     `user.overlay.opaque=y` (or `trusted.` via `overlay_xattrs`); `Files`: keep `.wh.`
//!     files), `allow_devices` (default false; else a device is refused, or with
//!     `skip_devices` left out and counted), `max_bytes` (apparent size cap),
//!     `max_entries`, `absolute_paths` (default Refuse), `resolver` (`Auto` = openat2 when
//!     available, `Walk` = O_NOFOLLOW walk), `xattrs`.
//!   - `pack(dir, writer, &PackOptions) -> Result<PackStats, LayerError>`: deterministic
//!     uncompressed tar of `dir` (sorted, dirs before contents, numeric owners, PAX for
//!     long names/ids/xattrs); overlay whiteouts/opaque → `.wh.` entries; hardlinks by
//!     (dev, ino); `owner: Xattr` reads owners from the override xattr (`default_owner`
//!     for files without one); `mtime_clamp` (SOURCE_DATE_EPOCH). Commits an overlay
//!     upper dir as a layer.
//!   - `flatten(&[lowest, …, highest], writer, &PackOptions)`: the merged rootfs as one
//!     tar (whiteouts/opaque applied), streamed (`iimage export`).
//!   - `remove_tree(path)`: remove a tree that may hold mode-000 or read-only dirs
//!     (layer dirs, overlay work dirs), fd-relative, never following a symlink; the one
//!     such remover for every crate.
//!   - [`layer::LayerError`]: `Refused { path, rule }` for hostile/unsupported entries
//!     (`rule()` gives the [`layer::Rule`]), `Chown`/`Whiteout` with the fix in the
//!     message, `ReadTar`, `Fs { op, path }`, `DestNotEmpty`, `WriteTar`.
//!   - feature `test-corpus`: `layer::hostile::{corpus, corpus_options, HostileTar}` (32
//!     hostile tars, each with its expected error substring).
//! - [`archive`] (docker-archive and oci-archive, streamed, never a layer in memory):
//!   - traits the store implements: [`archive::BlobSource`] (`open_blob(&Digest) ->
//!     (reader, size)`, NotFound when absent) and [`archive::BlobSink`] (`put_blob(&mut dyn
//!     Read, Option<&Digest>) -> (Digest, size)`, verified when a digest is given,
//!     idempotent). `archive::DirBlobs` implements both over a `blobs/` dir (tests, tools).
//!   - `write_archive(w, ArchiveFormat::{DockerArchive, OciArchive}, &src, &[SaveImage {
//!     manifest, names }]) -> SaveStats`: docker-archive = config json + uncompressed
//!     `<diffid>.tar` layers + manifest.json (RepoTags = full names, which podman keeps);
//!     oci-archive = oci-layout + index.json (ref.name = full normalised reference, one
//!     descriptor per name) + blobs as stored. Deterministic bytes; `podman load`,
//!     `skopeo copy` accept both (tested).
//!   - `read_archive(r, &mut store, &LoadOptions) -> Vec<LoadedImage { format, media_type,
//!     digest, size, names }>`: detects the format by content (any order, gz/zstd-wrapped
//!     archives too); every blob goes into the sink as it streams by; docker-archive layers
//!     are gzip-compressed on the way in (`compress_layers`, default gzip fast), diff ids
//!     checked, and an OCI manifest is synthesised (same config = same image id). `names`
//!     are raw: `RepoTags`, or `ref.name` (may be a bare tag such as `latest`), or
//!     containerd's `io.containerd.image.name` when present.

pub mod archive;
pub mod blob_ref;
pub mod compress;
pub mod digest;
pub mod layer;
pub mod media_type;
pub mod platform;
pub mod reference;

pub use blob_ref::BlobRef;
pub use compress::{Compression, Compressor, Level};
pub use digest::{Digest, DigestError, Hasher, HashingReader, VerifyingReader};
pub use media_type::ManifestFormat;
pub use reference::{Reference, ReferenceError};

/// The `oci_spec::image` model, re-exported so every crate uses one version of it.
pub mod spec {
    pub use oci_spec::image::Digest as SpecDigest;
    pub use oci_spec::image::{
        Arch, Config, Descriptor, DescriptorBuilder, History, HistoryBuilder, ImageConfiguration,
        ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifest,
        ImageManifestBuilder, MediaType, OciLayout, Os, Platform, PlatformBuilder, RootFs,
        RootFsBuilder,
    };
    pub use oci_spec::OciSpecError;
    /// The annotation that names an image in an OCI layout's index.json.
    pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
}
