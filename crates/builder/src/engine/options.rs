//! What a build is asked to do ([`BuildOptions`]) and what it gives back ([`Built`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use imago_dockerfile::DockerIgnore;
use imago_oci::Digest;

/// The network RUN steps get: the sandbox's type (default `Host`, so `RUN apt-get` works
/// without a daemon). Its `Debug` text (`Host`, `None`, `Private`) is part of RUN's cache
/// key.
pub use imago_sandbox::Network;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory, absolute (RUN bind mounts are made from another
    /// working directory).
    pub context_dir: PathBuf,
    /// The Dockerfile's text and its name (for messages).
    pub dockerfile: String,
    pub dockerfile_name: String,
    /// The .dockerignore in effect.
    pub ignore: Option<DockerIgnore>,
    /// `--target`.
    pub target: Option<String>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--label k=v` (added to the final image).
    pub labels: Vec<(String, String)>,
    /// `-t` names.
    pub tags: Vec<String>,
    /// `--network`.
    pub network: Network,
    /// SOURCE_DATE_EPOCH.
    pub source_date_epoch: Option<i64>,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `-q`: RUN output is discarded.
    pub quiet: bool,
    /// `--pull`: pull base images even when the store has them.
    pub pull: bool,
    /// `--platform`: the target platform (TARGETPLATFORM, and the platform of every
    /// stage without its own `FROM --platform`). None: this host's, and a stored base
    /// image of any platform is used as it is.
    pub platform: Option<imago_registry::Platform>,
    /// The storage driver RUN steps use (`--storage-driver`, chosen by the caller).
    pub storage: imago_overlay::RootfsMethod,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image id (config digest).
    pub id: Digest,
    /// The manifest digest.
    pub manifest: Digest,
    /// The names given.
    pub tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::Network;

    #[test]
    fn network_debug_text_stays_as_cache_keys_hold_it() {
        let text = [Network::Host, Network::None, Network::Private].map(|n| format!("{n:?}"));
        assert_eq!(text, ["Host", "None", "Private"]);
        assert_eq!(Network::default(), Network::Host);
    }
}
