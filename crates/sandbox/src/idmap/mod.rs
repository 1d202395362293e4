//! Which id mapping a container (or a run-in-mapping child) gets, decided at run time, and
//! how it is written. Owns: parsing /etc/subuid and /etc/subgid, finding newuidmap and
//! newgidmap, the choice between the three mapping kinds, and writing the maps of a child
//! that already sits in a new user namespace: the maps are decided here, written by
//! helper.rs, from what host.rs reads of /etc/passwd, /etc/subuid and /etc/subgid.
//! Never: forks, unshares or mounts itself (child.rs and setup.rs do, for
//! [`IdMap::for_container`]), reads the store.
//!
//! The three kinds (see docs/runtime.md):
//! - [`MapKind::SubIds`]: an unprivileged user with a subordinate range and the setuid
//!   helpers present: inside 0 → the user's uid, inside 1..=N → the range (N = size of
//!   the range, at most 65536 used). Files keep real ownership.
//! - [`MapKind::Single`]: an unprivileged user without a range (or without the helpers):
//!   one id each, the user's uid and gid, nothing else; `setgroups` is set to `deny`
//!   (required by the kernel before an unprivileged gid_map write). Files created by
//!   other ids cannot exist: the store keeps ownership in `user.containers.override_stat`.
//!   Inside, that one id is 0 (unpacking, building as root, run-in-mapping children) or
//!   a container's user U:G ([`IdMap::for_container`], as charliecloud's `ch-run --uid`):
//!   `U → uid`, `G → gid`, so the process is U:G and the user's files show as U:G.
//! - [`MapKind::Identity`]: real root. Inside 0..65536 → host 0..65536, in a *new* user
//!   namespace: the container's root owns the same files as the host's root, but its
//!   capabilities are namespaced (no module loading, no raw devices, no host hostname or
//!   clock, only userns-mountable file systems), which is what "no real root inside by
//!   default" means for imago.

use std::fmt;
use std::path::PathBuf;

use imago_oci::layer::OwnerMode;
use serde::{Deserialize, Serialize};

use crate::child::{ChildError, RemoteError};
use crate::container::ContainerError;
use crate::spec::ContainerSpec;

mod helper;
mod host;
#[cfg(test)]
mod tests;

pub use helper::MapWrite;
use helper::{finish_helper, spawn_helper, write_proc};
pub use host::{find_program, find_range, user_name_for};

/// The largest number of subordinate ids imago maps (docker's and podman's default).
pub const MAX_SUB_IDS: u32 = 65536;

/// One line of a uid_map/gid_map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapEntry {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id on the host (in the parent namespace).
    pub outside: u32,
    /// How many consecutive ids.
    pub count: u32,
}

impl fmt::Display for IdMapEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

/// A subordinate id range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// First host id of the range.
    pub start: u32,
    /// Number of ids.
    pub count: u32,
}

/// Who writes the maps of a child's user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdMapWriter {
    /// The parent writes /proc/PID/{setgroups,uid_map,gid_map} itself (single mapping,
    /// or real root).
    Direct,
    /// The setuid helpers from the `uidmap` package write them (subordinate ranges).
    Helper {
        /// Path of newuidmap.
        newuidmap: PathBuf,
        /// Path of newgidmap.
        newgidmap: PathBuf,
    },
}

/// The three mapping kinds; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapKind {
    /// Real root: identity map of 0..65536 in a new user namespace.
    Identity,
    /// Unprivileged with a subordinate range: root + range.
    SubIds,
    /// Unprivileged without a range: one uid and one gid, the user's, mapped at 0 or at
    /// the container's user ([`IdMap::for_container`]); nothing else is mapped.
    Single,
}

/// The id mapping for a container or a run-in-mapping child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// Which of the three kinds.
    pub kind: MapKind,
    /// uid_map lines.
    pub uid: Vec<IdMapEntry>,
    /// gid_map lines.
    pub gid: Vec<IdMapEntry>,
    /// Who writes them.
    pub writer: IdMapWriter,
    /// Write `deny` to /proc/PID/setgroups before gid_map (single mapping only).
    pub setgroups_deny: bool,
}

/// What the detection looked at; pure input of [`IdMap::plan`].
#[derive(Debug, Clone, Default)]
pub struct IdMapInput {
    /// Effective uid and gid of the caller.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// The caller's login name, when /etc/passwd knows it.
    pub user_name: Option<String>,
    /// The caller's range in /etc/subuid.
    pub subuid: Option<IdRange>,
    /// The caller's range in /etc/subgid.
    pub subgid: Option<IdRange>,
    /// newuidmap and newgidmap, when both were found.
    pub helpers: Option<(PathBuf, PathBuf)>,
}

/// Errors of detecting and writing id maps.
#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    /// A helper (newuidmap/newgidmap) could not be started.
    #[error("start `{bin}` for pid {pid}")]
    Spawn {
        /// The helper.
        bin: PathBuf,
        /// The child whose maps were being written.
        pid: i32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A helper ran and failed.
    #[error("`{bin} {args}` failed ({status}): {stderr}")]
    Helper {
        /// The helper.
        bin: PathBuf,
        /// Its arguments.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its stderr, trimmed.
        stderr: String,
    },
    /// Writing a /proc file of the child failed.
    #[error("write `{what}` to `{path}`")]
    Write {
        /// The /proc file.
        path: PathBuf,
        /// What was written.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl IdMapError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            IdMapError::Helper { .. } | IdMapError::Spawn { .. } => Some(
                "check that newuidmap/newgidmap are setuid root (uidmap package) and that \
                 /etc/subuid and /etc/subgid give your user a range; IMAGO_IDMAP=single \
                 forces the single mapping"
                    .into(),
            ),
            IdMapError::Write { .. } => {
                Some("unprivileged user namespaces may be disabled: see `iimage info`".into())
            }
        }
    }
}

impl IdMap {
    /// Detect the mapping for the current process: reads the effective ids, /etc/passwd,
    /// /etc/subuid, /etc/subgid and looks for newuidmap/newgidmap in PATH and /usr/bin.
    /// `IMAGO_IDMAP=single` forces the single mapping (any user), `IMAGO_IDMAP=identity`
    /// is only honoured for root. Cheap: no fork, no namespace.
    pub fn detect() -> IdMap {
        let forced = std::env::var("IMAGO_IDMAP").ok();
        let mut input = IdMapInput::current();
        if forced.as_deref() == Some("single") {
            input.subuid = None;
            input.subgid = None;
            if input.uid == 0 {
                return IdMap::single(0, 0);
            }
        }
        IdMap::plan(&input)
    }

    /// The pure decision behind [`IdMap::detect`].
    pub fn plan(input: &IdMapInput) -> IdMap {
        if input.uid == 0 {
            let identity = vec![IdMapEntry {
                inside: 0,
                outside: 0,
                count: MAX_SUB_IDS,
            }];
            return IdMap {
                kind: MapKind::Identity,
                uid: identity.clone(),
                gid: identity,
                writer: IdMapWriter::Direct,
                setgroups_deny: false,
            };
        }
        if let (Some(su), Some(sg), Some((nu, ng))) = (input.subuid, input.subgid, &input.helpers) {
            if su.count > 0 && sg.count > 0 {
                let uc = su.count.min(MAX_SUB_IDS);
                let gc = sg.count.min(MAX_SUB_IDS);
                return IdMap {
                    kind: MapKind::SubIds,
                    uid: vec![
                        IdMapEntry {
                            inside: 0,
                            outside: input.uid,
                            count: 1,
                        },
                        IdMapEntry {
                            inside: 1,
                            outside: su.start,
                            count: uc,
                        },
                    ],
                    gid: vec![
                        IdMapEntry {
                            inside: 0,
                            outside: input.gid,
                            count: 1,
                        },
                        IdMapEntry {
                            inside: 1,
                            outside: sg.start,
                            count: gc,
                        },
                    ],
                    writer: IdMapWriter::Helper {
                        newuidmap: nu.clone(),
                        newgidmap: ng.clone(),
                    },
                    setgroups_deny: false,
                };
            }
        }
        IdMap::single(input.uid, input.gid)
    }

    /// The single mapping: inside 0 → `uid`/`gid`, setgroups denied.
    pub fn single(uid: u32, gid: u32) -> IdMap {
        IdMap {
            kind: MapKind::Single,
            uid: vec![IdMapEntry {
                inside: 0,
                outside: uid,
                count: 1,
            }],
            gid: vec![IdMapEntry {
                inside: 0,
                outside: gid,
                count: 1,
            }],
            writer: IdMapWriter::Direct,
            setgroups_deny: true,
        }
    }

    /// This single mapping with its one id placed at `uid`/`gid` inside (`uid →` the
    /// caller's uid, `gid →` the caller's gid). Other kinds map every id a container may
    /// use already and come back unchanged; `at_user(0, 0)` is the mapping itself.
    pub fn at_user(&self, uid: u32, gid: u32) -> IdMap {
        let mut m = self.clone();
        if m.kind == MapKind::Single {
            for (lines, inside) in [(&mut m.uid, uid), (&mut m.gid, gid)] {
                if let [line] = lines.as_mut_slice() {
                    line.inside = inside;
                }
            }
        }
        m
    }

    /// `--userns keep-id`: the caller's uid and gid (the host ids of inside 0) mapped at
    /// themselves inside, so a process run as them is the caller, and inside 0 takes the
    /// host id that the caller's inside id had (none when unmapped). Every other id keeps
    /// its place, so an image's files keep their owners, but those of its root (the
    /// caller's on the host under subordinate ids) show as the caller's. Single mapping:
    /// its one id at the caller's ([`IdMap::at_user`]); identity (root): unchanged.
    pub fn keep_id(&self) -> IdMap {
        let mut m = self.clone();
        for lines in [&mut m.uid, &mut m.gid] {
            if let Some(me) = lookup(lines, 0) {
                swap_inside(lines, 0, me);
            }
        }
        m
    }

    /// The mapping for the container of `spec`: under the single mapping, placed at the
    /// container's user ([`IdMap::at_user`]), resolved as the container's setup will
    /// resolve it (`-u` or the image's USER in the image's /etc/passwd and /etc/group).
    /// Root (an empty user) and `uid:gid` in numbers need no lookup; any other user is
    /// looked up in a run-in-mapping child that mounts the root (a few ms), as the map
    /// must be known before the container's pid 1 gets it. Other kinds: unchanged, no
    /// lookup. A failed lookup (an unknown user) is the container's setup failure it
    /// stands in for, with the same chain (`resolve the user …`).
    pub fn for_container(&self, spec: &ContainerSpec) -> Result<IdMap, ContainerError> {
        if self.kind != MapKind::Single {
            return Ok(self.clone());
        }
        let (uid, gid) = match crate::user::numeric(&spec.process.user) {
            Some(ids) => ids,
            None => {
                let ids = crate::setup::resolve_in_image(spec, self).map_err(|e| {
                    ContainerError::Setup(match e {
                        ChildError::Remote(r) => r,
                        other => RemoteError::from_chain(&other),
                    })
                })?;
                (ids.uid, ids.gid)
            }
        };
        Ok(self.at_user(uid, gid))
    }

    /// How layer files keep ownership under this mapping: Real for Identity and SubIds
    /// (every id a layer uses is mapped), Xattr for Single (only the user's own ids exist,
    /// so owners go into `user.containers.override_stat`).
    pub fn ownership(&self) -> OwnerMode {
        match self.kind {
            MapKind::Single => OwnerMode::Xattr,
            MapKind::Identity | MapKind::SubIds => OwnerMode::Real,
        }
    }

    /// The host uid that a uid inside maps to, if mapped.
    pub fn host_uid(&self, inside: u32) -> Option<u32> {
        lookup(&self.uid, inside)
    }

    /// The host gid that a gid inside maps to, if mapped.
    pub fn host_gid(&self, inside: u32) -> Option<u32> {
        lookup(&self.gid, inside)
    }

    /// Write the maps of `pid`, a child that has just entered a new user namespace and
    /// waits. Helper status and stderr are checked (their messages are what users need).
    pub fn write(&self, pid: i32) -> Result<(), IdMapError> {
        self.start_write(pid)?.finish()
    }

    /// Start writing the maps of `pid`: the direct writes happen now; the helpers
    /// (newuidmap and newgidmap, both at once: each is a setuid exec of a few ms, the
    /// largest part of a container's start) are spawned and waited for by
    /// [`MapWrite::finish`], so the caller can work meanwhile.
    pub fn start_write(&self, pid: i32) -> Result<MapWrite, IdMapError> {
        match &self.writer {
            IdMapWriter::Helper {
                newuidmap,
                newgidmap,
            } => {
                let u = spawn_helper(newuidmap, pid, &self.uid)?;
                match spawn_helper(newgidmap, pid, &self.gid) {
                    Ok(g) => Ok(MapWrite {
                        helpers: vec![u, g],
                    }),
                    Err(e) => {
                        // Only to reap it: the spawn error is the news.
                        let _ = finish_helper(u);
                        Err(e)
                    }
                }
            }
            IdMapWriter::Direct => {
                let proc = PathBuf::from(format!("/proc/{pid}"));
                // setgroups must read "deny" before an unprivileged gid_map write (kernel
                // >= 3.19), else the child could drop groups the host uses as deny rules
                // (CVE-2014-8989). See user_namespaces(7), "The /proc/[pid]/setgroups file".
                if self.setgroups_deny {
                    write_proc(&proc.join("setgroups"), "deny")?;
                }
                write_proc(&proc.join("uid_map"), &render(&self.uid))?;
                write_proc(&proc.join("gid_map"), &render(&self.gid))?;
                Ok(MapWrite { helpers: vec![] })
            }
        }
    }
}

/// Exchange the host ids of inside ids `a` and `b` in `lines` (an unmapped one stays
/// unmapped at its new place); lines stay sorted by inside id.
fn swap_inside(lines: &mut Vec<IdMapEntry>, a: u32, b: u32) {
    if a == b {
        return;
    }
    let (ha, hb) = (carve(lines, a), carve(lines, b));
    for (inside, host) in [(b, ha), (a, hb)] {
        if let Some(outside) = host {
            lines.push(IdMapEntry {
                inside,
                outside,
                count: 1,
            });
        }
    }
    lines.sort_by_key(|e| e.inside);
}

/// Take inside id `x` out of `lines` (splitting its line); its host id, if mapped.
fn carve(lines: &mut Vec<IdMapEntry>, x: u32) -> Option<u32> {
    let i = lines
        .iter()
        .position(|e| x >= e.inside && x - e.inside < e.count)?;
    let e = lines.remove(i);
    let off = x - e.inside;
    let parts = [
        (e.inside, e.outside, off),
        (x + 1, e.outside + off + 1, e.count - off - 1),
    ];
    for (inside, outside, count) in parts {
        if count > 0 {
            lines.push(IdMapEntry {
                inside,
                outside,
                count,
            });
        }
    }
    Some(e.outside + off)
}

fn lookup(map: &[IdMapEntry], inside: u32) -> Option<u32> {
    map.iter().find_map(|e| {
        (inside >= e.inside && inside - e.inside < e.count).then(|| e.outside + (inside - e.inside))
    })
}

/// The text of a uid_map/gid_map write.
pub fn render(map: &[IdMapEntry]) -> String {
    map.iter().map(|e| format!("{e}\n")).collect()
}
