//! When and how a container's pid 1 is cloned: early, while the image is resolved, when
//! its mapping does not depend on the image ([`prepare_early`]), else once the spec is
//! made ([`prepare_late`]); with keep-id's mapping; and for `--hpc`, into the user
//! namespace its other containers on the node share (userns.rs).
//! Never: resolves images or makes container dirs (launch.rs, create.rs), starts the
//! container.

use imago_sandbox::{ContainerSpec, IdMap, MapKind, Network, Pending, Sharing};

use crate::launch::Launch;
use crate::run::{RunError, RunOptions};
use crate::userns::Found;

/// What the clone of a container's pid 1 depends on besides its user's ids: known from
/// the flags before the image is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneAs {
    /// The network.
    pub network: Network,
    /// The host's namespaces it shares (`pid`, `ipc`).
    pub sharing: Sharing,
    /// keep-id's mapping instead of the plain one.
    pub keep_id: bool,
}

impl CloneAs {
    /// Enters a shared user namespace (userns.rs): keep-id, the host's pids and network.
    pub fn joins(&self) -> bool {
        self.keep_id && self.sharing.pid && self.network == Network::Host
    }

    /// For a new container with `opts`.
    pub fn of_options(opts: &RunOptions) -> Self {
        CloneAs {
            network: opts.network,
            sharing: Sharing {
                pid: opts.pid_host,
                ipc: opts.ipc_host,
                ..Sharing::default()
            },
            keep_id: opts.keep_id,
        }
    }

    /// For starting `launch` (again).
    pub fn of_launch(launch: &Launch) -> Self {
        CloneAs {
            network: launch.network,
            sharing: launch.sharing.clone(),
            keep_id: launch.keep_id,
        }
    }
}

/// The container's base mapping: `map`, or with keep-id the caller's ids mapped at
/// themselves ([`IdMap::keep_id`]). `map` itself stays the store's (unpacking, removal).
pub(crate) fn container_map(map: &IdMap, keep_id: bool) -> IdMap {
    match keep_id {
        true => map.keep_id(),
        false => map.clone(),
    }
}

/// A container's pid 1 as [`prepare_early`] left it: cloned, or not yet (single
/// mapping); and for one that asked for the shared user namespace but has one of its
/// own, why ([`prepare_late`] then turns Open MPI's single copy off).
#[must_use = "dropping an Early kills the waiting container"]
pub struct Early {
    pending: Option<Pending>,
    alone: Option<crate::userns::Alone>,
}

impl Early {
    fn cloned(pending: Pending) -> Early {
        Early {
            pending: Some(pending),
            alone: None,
        }
    }
}

/// The container's pid 1, cloned before the image is looked at when its mapping does not
/// depend on the image (root, subordinate ids): newuidmap/newgidmap (a few ms of setuid
/// execs) then write its maps while the caller resolves the image and makes the
/// container's dir. Not yet under the single mapping: its one id is placed at the
/// container's user, known only from the image ([`spec`]), and its maps are two plain
/// writes, nothing to overlap; [`prepare_late`] clones it then.
/// With keep-id, the host's pids and network (`--hpc`) the container enters the user
/// namespace of a running one of the same mapping, or makes the namespace the next ones
/// enter (userns.rs): ranks in one namespace may use CMA. Under the single mapping too,
/// as keep-id's map does not depend on the image.
pub fn prepare_early(map: &IdMap, clone: &CloneAs) -> Result<Early, RunError> {
    let ctr = container_map(map, clone.keep_id);
    if clone.joins() {
        return prepare_rendezvous(&ctr, clone);
    }
    if map.kind == MapKind::Single {
        return Ok(Early {
            pending: None,
            alone: None,
        });
    }
    Ok(Early::cloned(imago_sandbox::prepare_shared(
        &ctr,
        clone.network,
        &clone.sharing,
    )?))
}

/// Join the user namespace of a member of the caller's rendezvous, or make it and
/// become its first member (maps written before the rendezvous is unlocked); without a
/// rendezvous, a namespace of its own that nobody joins.
fn prepare_rendezvous(ctr: &IdMap, clone: &CloneAs) -> Result<Early, RunError> {
    let host = crate::hpc::Host::current();
    let rv = match crate::userns::Rendezvous::lock(host.uid, host.gid) {
        Ok(rv) => rv,
        Err(alone) => {
            let pending = imago_sandbox::prepare_shared(ctr, clone.network, &clone.sharing)?;
            return Ok(Early {
                pending: Some(pending),
                alone: Some(alone),
            });
        }
    };
    match rv.find(ctr) {
        Found::Same(ns) => {
            let pending = imago_sandbox::prepare_joining(ns, clone.network, &clone.sharing)?;
            rv.register(pending.pid());
            return Ok(Early::cloned(pending));
        }
        // Not alone: the next containers of these maps (the other ranks of this job)
        // join the namespace this one makes; only the running ones are out of reach.
        Found::OtherMaps => tracing::warn!(
            "your running --hpc containers on this node have other id maps than this one: \
             it starts another shared user namespace, and MPI ranks split between the two \
             cannot use CMA"
        ),
        Found::Nobody => {}
    }
    let mut pending = imago_sandbox::prepare_shared(ctr, clone.network, &clone.sharing)?;
    pending.finish_maps()?;
    rv.register(pending.pid());
    Ok(Early::cloned(pending))
}

/// The container's pid 1 for `spec`: the one of [`prepare_early`], else cloned now with
/// `spec.id_map`. A container that could not share the user namespace it asked for gets
/// Open MPI's single copy turned off in `spec`'s environment, said in one warning line
/// ([`crate::hpc::single_copy_off`]).
pub fn prepare_late(
    early: Early,
    spec: &mut ContainerSpec,
    network: Network,
) -> Result<Pending, RunError> {
    if let Some(alone) = &early.alone {
        let line = crate::hpc::single_copy_off(&mut spec.process.env, &alone.to_string());
        tracing::warn!("{line}");
    }
    match early.pending {
        Some(p) => Ok(p),
        None => Ok(imago_sandbox::prepare_shared(
            &spec.id_map,
            network,
            &spec.sharing,
        )?),
    }
}
