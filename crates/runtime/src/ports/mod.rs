//! Published ports (`-p`, `-P`), built in and rootless, and the choice of the default
//! network.
//!
//! - [`PortSpec::parse`] reads docker's `-p [IP:][HOST:]CTR[/tcp|/udp]` (ranges too);
//!   [`PortSpec::publish_all`] makes `-P`'s list from the image's EXPOSE entries
//!   ([`exposed_ports`]); `Display` is docker's `0.0.0.0:8080->80/tcp`.
//! - [`Forwarder::start(pid1, &specs)`](Forwarder::start) binds the host ports and
//!   forks the forwarder into the container's user and network namespaces;
//!   [`Forwarder::published`] has the real host ports; [`Forwarder::stop`] (or drop)
//!   kills and reaps it. Single-threaded callers only.
//! - [`choose_network`]: `host` for a foreground run, `private` for a detached one or
//!   one that publishes ports, unless the user named one.
//! - [`to_publish`]: what a run publishes (`-p` plus `-P`'s EXPOSEd ports; nothing with
//!   the host's network).
//!
//! Never: prints (the bins say what was published), touches the container's files.

mod bind;
mod forwarder;
mod spec;
mod tcp;
mod udp;

use std::path::Path;

use imago_sandbox::Network;
use imago_store::{Store, StoreError};

pub use bind::BindError;
pub use forwarder::{ForwardError, Forwarder};
pub use imago_sandbox::net::helper as private_network_helper;
pub use spec::{PortSpec, PortSpecError, Proto, MAX_PORTS};

use crate::run::RunOptions;

/// Failures of publishing ports.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    /// A port spec or EXPOSE entry was wrong.
    #[error(transparent)]
    Spec(#[from] PortSpecError),
    /// The image's config could not be read for `-P`.
    #[error("read the ports the image exposes (-P)")]
    Store(#[source] StoreError),
    /// The forwarder could not start.
    #[error(transparent)]
    Forward(#[from] ForwardError),
}

/// The network of a container: the user's choice when given; else `private` for a
/// detached container or one that publishes ports (docker's isolation for services, a
/// published port works without naming a network), else `host` (a foreground run
/// starts fastest and sees what shell pipelines and HPC jobs expect).
pub fn choose_network(explicit: Option<Network>, detach: bool, publishing: bool) -> Network {
    match explicit {
        Some(n) => n,
        None if detach || publishing => Network::Private,
        None => Network::Host,
    }
}

/// The ports a run publishes: `opts.ports`, then with `opts.publish_all` every port the
/// image (`image_id`) EXPOSEs that `-p` does not already publish. None with the host's
/// network, where the container's ports are the host's already.
pub fn to_publish(opts: &RunOptions, image_id: Option<&str>) -> Result<Vec<PortSpec>, PortsError> {
    if opts.network == Network::Host {
        return Ok(Vec::new());
    }
    let mut all = opts.ports.clone();
    if opts.publish_all {
        if let Some(id) = image_id {
            let exposed = exposed_ports(&opts.store_root, id).map_err(PortsError::Store)?;
            all.extend(PortSpec::publish_all(&exposed, &opts.ports)?);
        }
    }
    if all.len() > MAX_PORTS {
        return Err(PortSpecError::TooMany {
            count: all.len(),
            max: MAX_PORTS,
        }
        .into());
    }
    Ok(all)
}

/// The EXPOSE entries (`80/tcp`, `53/udp`) of the image with this id.
pub fn exposed_ports(store_root: &Path, image_id: &str) -> Result<Vec<String>, StoreError> {
    let image = Store::open(store_root)?.resolve(image_id)?;
    Ok(image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_network_follows_detach_and_ports_and_an_explicit_one_wins() {
        assert_eq!(choose_network(None, false, false), Network::Host);
        assert_eq!(choose_network(None, true, false), Network::Private);
        assert_eq!(choose_network(None, false, true), Network::Private);
        assert_eq!(
            choose_network(Some(Network::Host), true, true),
            Network::Host
        );
        assert_eq!(
            choose_network(Some(Network::None), false, false),
            Network::None
        );
    }
}
