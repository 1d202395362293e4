//! Which id mapping a container (or a run-in-mapping child) gets, decided at run time, and
//! how it is written. Owns: parsing /etc/subuid and /etc/subgid, finding newuidmap and
//! newgidmap, the choice between the three mapping kinds, and writing the maps of a child
//! that already sits in a new user namespace.
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
use std::path::{Path, PathBuf};

use imago_oci::layer::OwnerMode;
use serde::{Deserialize, Serialize};

use crate::child::{ChildError, RemoteError};
use crate::container::ContainerError;
use crate::spec::ContainerSpec;

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

/// Id maps being written by the helpers; [`MapWrite::finish`] waits and checks them.
#[must_use = "finish() reaps the helpers and reports their failure"]
pub struct MapWrite {
    helpers: Vec<Helper>,
}

impl MapWrite {
    /// Wait for every helper; the first failure (status and stderr) is returned.
    pub fn finish(self) -> Result<(), IdMapError> {
        let mut first = Ok(());
        for h in self.helpers {
            let r = finish_helper(h);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl IdMapInput {
    /// Gather the input for the current process.
    pub fn current() -> IdMapInput {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let user_name = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|p| user_name_for(&p, uid));
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let subuid = find_range(&read("/etc/subuid"), user_name.as_deref(), uid);
        let subgid = find_range(&read("/etc/subgid"), user_name.as_deref(), uid);
        let helpers = match (find_program("newuidmap"), find_program("newgidmap")) {
            (Some(u), Some(g)) => Some((u, g)),
            _ => None,
        };
        IdMapInput {
            uid,
            gid,
            user_name,
            subuid,
            subgid,
            helpers,
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

fn write_proc(path: &Path, what: &str) -> Result<(), IdMapError> {
    std::fs::write(path, what).map_err(|source| IdMapError::Write {
        path: path.to_path_buf(),
        what: what.trim_end().replace('\n', "; "),
        source,
    })
}

/// A started helper: its path, arguments, process and the read end of its stderr.
struct Helper {
    bin: PathBuf,
    args: Vec<String>,
    pid: i32,
    child: nix::unistd::Pid,
    stderr: std::fs::File,
}

/// At most this much of a failing helper's stderr is kept for the error.
const MAX_HELPER_STDERR: u64 = 16 * 1024;

fn spawn_helper(bin: &Path, pid: i32, map: &[IdMapEntry]) -> Result<Helper, IdMapError> {
    let mut args = vec![pid.to_string()];
    for e in map {
        args.extend([
            e.inside.to_string(),
            e.outside.to_string(),
            e.count.to_string(),
        ]);
    }
    let spawn_err = |source: std::io::Error| IdMapError::Spawn {
        bin: bin.to_path_buf(),
        pid,
        source,
    };
    // std's Command (posix_spawn: a vfork, no page-table copy) measured faster than a
    // fork that does not wait for the exec: after a fork every page irun writes is
    // copied until the child has exec'd.
    let mut child = std::process::Command::new(bin)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let read = child
        .stderr
        .take()
        .ok_or_else(|| spawn_err(std::io::Error::other("no stderr pipe")))?;
    let child = nix::unistd::Pid::from_raw(child.id() as i32);
    Ok(Helper {
        bin: bin.to_path_buf(),
        args,
        pid,
        child,
        stderr: std::fs::File::from(std::os::fd::OwnedFd::from(read)),
    })
}

fn finish_helper(h: Helper) -> Result<(), IdMapError> {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let Helper {
        bin,
        args,
        pid,
        child,
        stderr,
    } = h;
    // Read to the end first (the helper may fill the pipe), bounded; then reap.
    let mut err = Vec::new();
    let read = stderr.take(MAX_HELPER_STDERR).read_to_end(&mut err);
    let status = loop {
        match nix::sys::wait::waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let status = match status {
        Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => return Ok(()),
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => {
            std::process::ExitStatus::from_raw(code << 8)
        }
        Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => {
            std::process::ExitStatus::from_raw(sig as i32)
        }
        Ok(_) => std::process::ExitStatus::from_raw(0xff << 8),
        Err(e) => {
            return Err(IdMapError::Spawn {
                bin,
                pid,
                source: e.into(),
            })
        }
    };
    if let Err(e) = read {
        return Err(IdMapError::Spawn {
            bin,
            pid,
            source: e,
        });
    }
    Err(IdMapError::Helper {
        bin,
        args: args.join(" "),
        status,
        stderr: String::from_utf8_lossy(&err).trim().to_string(),
    })
}

/// The login name of `uid` in an /etc/passwd text.
pub fn user_name_for(passwd: &str, uid: u32) -> Option<String> {
    crate::user::passwd_entries(passwd)
        .find(|p| p.uid == uid)
        .map(|p| p.name.to_string())
}

/// The first range of a user in an /etc/subuid or /etc/subgid text, matched by name or
/// by numeric uid (both forms are valid in those files; shadow-utils accepts either).
/// Comments, blank and malformed lines are skipped.
pub fn find_range(text: &str, name: Option<&str>, uid: u32) -> Option<IdRange> {
    let uid_s = uid.to_string();
    text.lines().find_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let mut f = l.split(':');
        let who = f.next()?;
        let start: u32 = f.next()?.trim().parse().ok()?;
        let count: u32 = f.next()?.trim().parse().ok()?;
        let matches = who == uid_s || name.is_some_and(|n| n == who);
        (matches && count > 0).then_some(IdRange { start, count })
    })
}

/// `name` in PATH, else in /usr/bin and /usr/sbin (login nodes with a bare PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/sbin"),
            PathBuf::from("/bin"),
        ])
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Vec<IdMapEntry> {
        vec![IdMapEntry {
            inside: 0,
            outside: 1000,
            count: 1,
        }]
    }

    #[test]
    fn a_helper_that_succeeds_is_reaped_without_error() {
        let h = spawn_helper(Path::new("/bin/true"), 42, &one()).unwrap();
        finish_helper(h).unwrap();
    }

    #[test]
    fn a_failing_helper_reports_its_status_and_stderr() {
        // sh -c: the helper's arguments (pid, inside, outside, count) go to $0…
        let dir = std::env::temp_dir().join(format!("imago-helper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("fails");
        std::fs::write(
            &bin,
            "#!/bin/sh\necho \"map for $1: refused\" >&2\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let err = finish_helper(spawn_helper(&bin, 42, &one()).unwrap()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("map for 42: refused"), "{text}");
        assert!(text.contains("42 0 1000 1"), "{text}");
        assert!(matches!(err, IdMapError::Helper { status, .. } if status.code() == Some(3)));
        let missing = spawn_helper(&dir.join("none"), 42, &one())
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(missing, IdMapError::Spawn { .. }), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn helpers() -> Option<(PathBuf, PathBuf)> {
        Some((
            PathBuf::from("/usr/bin/newuidmap"),
            PathBuf::from("/usr/bin/newgidmap"),
        ))
    }

    #[test]
    fn subuid_matched_by_name_or_uid_comments_skipped() {
        let text = "# c\n\nalice:100000:65536\nbad line\n1001:300000:1000\n";
        assert_eq!(
            find_range(text, Some("alice"), 1000),
            Some(IdRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            find_range(text, Some("bob"), 1001),
            Some(IdRange {
                start: 300000,
                count: 1000
            })
        );
        assert_eq!(find_range(text, Some("carol"), 1002), None);
        assert_eq!(
            find_range("alice:1:0\n", Some("alice"), 5),
            None,
            "empty range ignored"
        );
    }

    #[test]
    fn root_gets_identity_direct() {
        let m = IdMap::plan(&IdMapInput {
            uid: 0,
            gid: 0,
            helpers: helpers(),
            ..Default::default()
        });
        assert_eq!(m.kind, MapKind::Identity);
        assert_eq!(m.writer, IdMapWriter::Direct);
        assert_eq!(render(&m.uid), "0 0 65536\n");
        assert_eq!(m.ownership(), OwnerMode::Real);
        assert!(!m.setgroups_deny);
    }

    #[test]
    fn range_and_helpers_give_subids() {
        let r = Some(IdRange {
            start: 200000,
            count: 100000,
        });
        let m = IdMap::plan(&IdMapInput {
            uid: 1000,
            gid: 1001,
            subuid: r,
            subgid: r,
            helpers: helpers(),
            ..Default::default()
        });
        assert_eq!(m.kind, MapKind::SubIds);
        assert_eq!(render(&m.uid), "0 1000 1\n1 200000 65536\n");
        assert_eq!(render(&m.gid), "0 1001 1\n1 200000 65536\n");
        assert!(matches!(m.writer, IdMapWriter::Helper { .. }));
        assert_eq!(m.host_uid(33), Some(200032));
        assert_eq!(m.host_uid(0), Some(1000));
        assert_eq!(m.host_uid(65537), None);
    }

    #[test]
    fn no_range_or_no_helper_gives_single() {
        let r = Some(IdRange {
            start: 200000,
            count: 65536,
        });
        let no_helper = IdMap::plan(&IdMapInput {
            uid: 1000,
            gid: 1000,
            subuid: r,
            subgid: r,
            ..Default::default()
        });
        assert_eq!(no_helper.kind, MapKind::Single);
        let no_range = IdMap::plan(&IdMapInput {
            uid: 1000,
            gid: 7,
            helpers: helpers(),
            ..Default::default()
        });
        assert_eq!(no_range.kind, MapKind::Single);
        assert_eq!(render(&no_range.gid), "0 7 1\n");
        assert!(no_range.setgroups_deny);
        assert_eq!(no_range.ownership(), OwnerMode::Xattr);
        assert_eq!(no_range.host_uid(1), None);
    }

    #[test]
    fn single_placed_at_the_user_other_kinds_unchanged() {
        let single = IdMap::single(1000, 1001);
        let at = single.at_user(33, 44);
        assert_eq!(render(&at.uid), "33 1000 1\n");
        assert_eq!(render(&at.gid), "44 1001 1\n");
        assert_eq!((at.kind, at.setgroups_deny), (MapKind::Single, true));
        assert_eq!(at.host_uid(33), Some(1000));
        assert_eq!(at.host_uid(0), None, "root is not mapped any more");
        assert_eq!(
            single.at_user(0, 0),
            single,
            "root keeps the mapping as it is"
        );
        let identity = IdMap::plan(&IdMapInput::default());
        assert_eq!(identity.at_user(33, 44), identity);
    }

    #[test]
    fn for_container_needs_no_lookup_for_root_or_number_pairs() {
        // The spec's root does not exist: a lookup would fail, so these did none.
        let mut spec = ContainerSpec::for_tests();
        let single = IdMap::single(1000, 1001);
        assert_eq!(single.for_container(&spec).unwrap(), single);
        spec.process.user = "33:44".into();
        let m = single.for_container(&spec).unwrap();
        assert_eq!((m.uid[0].inside, m.gid[0].inside), (33, 44));
        spec.process.user = "www-data".into();
        let identity = IdMap::plan(&IdMapInput::default());
        assert_eq!(identity.for_container(&spec).unwrap(), identity);
    }

    #[test]
    fn keep_id_maps_the_caller_at_itself() {
        let r = Some(IdRange {
            start: 200000,
            count: 65536,
        });
        let sub = IdMap::plan(&IdMapInput {
            uid: 1001,
            gid: 1002,
            subuid: r,
            subgid: r,
            helpers: helpers(),
            ..Default::default()
        });
        let k = sub.keep_id();
        assert_eq!(
            render(&k.uid),
            "0 201000 1\n1 200000 1000\n1001 1001 1\n1002 201001 64535\n"
        );
        assert_eq!(
            render(&k.gid),
            "0 201001 1\n1 200000 1001\n1002 1002 1\n1003 201002 64534\n"
        );
        assert_eq!(
            (k.host_uid(1001), k.host_uid(33)),
            (Some(1001), Some(200032))
        );
        assert_eq!(k.host_uid(1000), Some(200999));
        assert_eq!(
            k.host_uid(65536),
            Some(265535),
            "the range's end keeps its place"
        );
        assert_eq!(k.kind, MapKind::SubIds);
        // A uid beyond the range: root is left unmapped.
        let small = IdRange {
            start: 300000,
            count: 10,
        };
        let s = IdMap::plan(&IdMapInput {
            uid: 5000,
            gid: 5000,
            subuid: Some(small),
            subgid: Some(small),
            helpers: helpers(),
            ..Default::default()
        })
        .keep_id();
        assert_eq!(render(&s.uid), "1 300000 10\n5000 5000 1\n");
        assert_eq!(s.host_uid(0), None);
        // Single: the one id at the caller's; identity: unchanged.
        let single = IdMap::single(1000, 1001).keep_id();
        assert_eq!(single, IdMap::single(1000, 1001).at_user(1000, 1001));
        let identity = IdMap::plan(&IdMapInput::default());
        assert_eq!(identity.keep_id(), identity);
    }

    #[test]
    fn passwd_lookup() {
        let p = "root:x:0:0::/root:/bin/sh\nimago-sub:x:1001:1001::/home:/bin/sh\n";
        assert_eq!(user_name_for(p, 1001).as_deref(), Some("imago-sub"));
        assert_eq!(user_name_for(p, 5), None);
    }
}
