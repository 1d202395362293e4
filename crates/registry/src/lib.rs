//! imago's OCI distribution client: pull, push (with cross-repository mount and chunked
//! uploads), login, auth (anonymous, Basic, Bearer tokens with Docker Hub's flow,
//! credential files and helpers), retries, parallel transfers.
//!
//! # Public entry points (what `ipull`, `ipush`, `ilogin`, `ibuild` and `irun` call)
//!
//! - [`connect(&Reference, &ConnectOptions)`](connect) → [`Client`]: looks up the
//!   credentials (podman's file order, see [`auth::creds`]), probes `/v2/` (HTTPS, or plain
//!   HTTP for loopback hosts / `tls_verify: Some(false)`), keeps the challenge.
//! - [`pull::pull(&Client, &Store, &Reference, &PullOptions, &dyn Events)`](pull::pull)
//!   → [`Pulled`]: index → platform, blobs verified (digest + size) before commit, present
//!   blobs skipped, tag last.
//! - [`shortnames`]: what a short name means (registries.conf's aliases, search list and
//!   `short-name-mode`), for a pull ([`shortnames::pull_candidates`],
//!   [`shortnames::pull_first`]: `ibuild`'s FROM, `irun`, `ipull`) and in a store
//!   ([`shortnames::find_stored`]: every program that takes an image name).
//! - [`push::push(&Client, &Store, source_name, &Reference, &PushOptions, &dyn Events)`](push::push)
//!   → [`Pushed`]: HEAD / mount / upload per blob in parallel, `--format`, `--compression`.
//! - [`pull_into_root`] and [`push_from_store`]: the one call `ipull` and `ipush` make —
//!   open the store at a root (a pull pins it against a concurrent gc; `ipush` opens it
//!   itself, to find the image by its short name first), connect, transfer.
//! - [`login(&Reference-or-registry, Credentials, &ConnectOptions)`](login): checks the
//!   credentials against the registry, then stores them (0600); [`logout`] (an error when
//!   nothing was stored).
//! - Pull and push work on imago's store ([`imago_store::Store`]) directly: blobs go in
//!   through its verified, atomic `put_blob`, pulled manifests are named with
//!   `put_manifest` + `tag`; the blob-source and recompression caches live in
//!   `ROOT/imago/registry/` ([`blobinfo::state_dir`]).
//! - [`Events`]: progress as data ([`NoEvents`] to ignore). [`RegistryError::hint`].
//! - Credentials: [`AuthFiles::from_env`] (podman's order), `lookup`, `store`, `remove`.
//!
//! # HTTP stack, and why
//!
//! `oci-client` (the well-kept Rust distribution client) was looked at first and not
//! taken: it is async (tokio + reqwest, a large build on CI's 2 cores), `push_blob` takes
//! the whole blob in memory (`Vec<u8>`/`Bytes`), authentication is caller-supplied (no
//! config.json / auth.json / credential helpers), and it has no retries or `Retry-After`.
//! We use **`ureq` 3** (blocking, small) with **rustls** on the `ring` provider (gcc
//! builds it; no OpenSSL to link or load, so the static build keeps HTTPS): the roots are
//! the system trust store as OpenSSL finds it, honouring `SSL_CERT_FILE`/`SSL_CERT_DIR`
//! (`rustls-native-certs`); `certs.d` CA files are added per host (transport.rs).
//! Parallelism is `std::thread::scope` with a work queue (4 blobs at a time by default). Bodies stream from and to disk.
//!
//! Never: prints, exits, unpacks layers, or enters namespaces.

pub mod auth;
pub mod blobinfo;
pub mod client;
mod download;
pub mod error;
pub mod events;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod registries_conf;
pub mod resume;
pub mod shortnames;
pub mod stall;
mod tls;
pub mod transfer;
pub mod transport;
pub mod upload_session;

use std::path::PathBuf;

use imago_oci::reference::{DEFAULT_REGISTRY, DOCKER_HUB_ENDPOINT};

pub use auth::creds::{AuthFiles, Credentials};
pub use client::{Client, RetryPolicy};
pub use error::RegistryError;
pub use events::{Events, NoEvents, Outcome};
pub use imago_oci::Reference;
pub use imago_store::Store;
pub use manifest::Platform;
pub use pull::{pull_into_root, PullOptions, Pulled};
pub use push::{push_from_store, PushOptions, Pushed};
pub use registries_conf::{ConfError as RegistriesConfError, RegistriesConf};
pub use shortnames::ShortNameError;
pub use stall::{LimitsError, TransferLimits};
pub use transport::TransportOptions;

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub transport: TransportOptions,
    /// Where stored credentials are read (and written by `login`).
    pub auth_files: AuthFiles,
    /// Credentials to use instead of the stored ones (`--creds`).
    pub credentials: Option<Credentials>,
    pub retry: RetryPolicy,
    /// Mirrors, locations, insecure and blocked registries (registries.conf).
    pub registries: RegistriesConf,
}

impl ConnectOptions {
    /// Defaults from the environment (credential files in podman's order, the
    /// `IMAGO_REGISTRY_*` transfer limits).
    pub fn from_env() -> Result<Self, RegistryError> {
        Ok(Self {
            auth_files: AuthFiles::from_env(),
            registries: RegistriesConf::load()?,
            transport: TransportOptions {
                limits: TransferLimits::from_env()?,
                ..TransportOptions::default()
            },
            ..Self::default()
        })
    }
}

/// Connect to the registry of `reference` (Docker Hub: `registry-1.docker.io`), or the
/// location registries.conf gives it, with the credentials scoped most closely to its
/// repository. For pushes: mirrors are never written to.
pub fn connect(reference: &Reference, opts: &ConnectOptions) -> Result<Client, RegistryError> {
    let endpoints = opts.registries.endpoints(reference)?;
    let own = endpoints.iter().find(|e| !e.mirror);
    let own = own.ok_or_else(|| RegistriesConfError::Blocked(reference.registry().into()))?;
    connect_endpoint(reference, own, opts)
}

/// As [`connect`], for pulls: the registry's mirrors first (registries.conf), each used
/// when it answers and has the manifest, then the registry itself.
pub fn connect_pull(reference: &Reference, opts: &ConnectOptions) -> Result<Client, RegistryError> {
    for ep in opts.registries.endpoints(reference)? {
        if !ep.mirror {
            return connect_endpoint(reference, &ep, opts);
        }
        let probe = connect_endpoint(reference, &ep, opts).and_then(|c| {
            pull::fetch_manifest(
                &c,
                reference.repository(),
                &manifest::manifest_ref(reference),
            )?;
            Ok(c)
        });
        match probe {
            Ok(c) => return Ok(c),
            Err(e) => tracing::warn!(mirror = %ep.host, %e, "mirror skipped"),
        }
    }
    Err(RegistriesConfError::Blocked(reference.registry().into()).into())
}

/// One endpoint of `reference`'s registry; credentials are looked up under the
/// endpoint's own name when it is a mirror.
fn connect_endpoint(
    reference: &Reference,
    ep: &registries_conf::Endpoint,
    opts: &ConnectOptions,
) -> Result<Client, RegistryError> {
    let name = match ep.mirror {
        true => ep.host.as_str(),
        false => reference.registry(),
    };
    let creds = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => (opts.auth_files).lookup_scoped(name, Some(reference.repository()))?,
    };
    let mut transport = opts.transport.clone();
    if ep.insecure && transport.tls_verify.is_none() {
        transport.tls_verify = Some(false);
    }
    Client::connect(name, &ep.host, transport, creds, opts.retry)
}

/// Connect to `registry` served at `endpoint`.
pub fn connect_registry(
    registry: &str,
    endpoint: &str,
    opts: &ConnectOptions,
) -> Result<Client, RegistryError> {
    let creds = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => opts.auth_files.lookup(registry)?,
    };
    Client::connect(
        registry,
        endpoint,
        opts.transport.clone(),
        creds,
        opts.retry,
    )
}

/// The registry name and API endpoint a user's `REGISTRY` argument means
/// (`docker.io`, `index.docker.io`, `https://index.docker.io/v1/` → Docker Hub).
pub fn registry_of(arg: &str) -> (String, String) {
    let name = auth::creds::normalize_key(arg);
    let endpoint = if name == DEFAULT_REGISTRY {
        DOCKER_HUB_ENDPOINT.to_owned()
    } else {
        name.clone()
    };
    (name, endpoint)
}

/// Check `creds` against the registry (`GET /v2/`, through the token flow when the
/// registry uses one), then store them. Returns the file written.
pub fn login(
    registry_arg: &str,
    creds: Credentials,
    opts: &ConnectOptions,
) -> Result<PathBuf, RegistryError> {
    let (name, endpoint) = registry_of(registry_arg);
    let client = Client::connect(
        &name,
        &endpoint,
        opts.transport.clone(),
        Some(creds.clone()),
        opts.retry,
    )?;
    client.check_login()?;
    // `ilogin quay.io/org` keeps the scope: the credentials are that namespace's.
    Ok(opts
        .auth_files
        .store(&auth::keys::scoped_key(registry_arg), &creds)?)
}

/// Remove stored credentials of a registry; returns the files changed (at least one:
/// nothing to remove is [`RegistryError::NotLoggedIn`]).
pub fn logout(registry_arg: &str, opts: &ConnectOptions) -> Result<Vec<PathBuf>, RegistryError> {
    let changed = (opts.auth_files).remove(&auth::keys::scoped_key(registry_arg))?;
    if changed.is_empty() {
        return Err(RegistryError::NotLoggedIn(registry_arg.to_owned()));
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_arguments_map_docker_hub_to_its_endpoint() {
        for a in [
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
        ] {
            assert_eq!(
                registry_of(a),
                ("docker.io".into(), "registry-1.docker.io".into()),
                "{a}"
            );
        }
        assert_eq!(
            registry_of("127.0.0.1:5000"),
            ("127.0.0.1:5000".into(), "127.0.0.1:5000".into())
        );
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            (r.registry(), r.registry_endpoint(), r.repository()),
            ("docker.io", "registry-1.docker.io", "library/busybox")
        );
    }
}
