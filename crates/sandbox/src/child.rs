//! The run-in-mapping primitive: run a closure in a forked child that sits in a new user
//! (and mount) namespace with the caller's id mapping, and get its result back.
//! Owns: the fork, the two-pipe handshake, the JSON reply, the error chain across the
//! process boundary.
//! Never: decides the mapping (idmap.rs), mounts anything for the closure, reads the store.
//!
//! Handshake (one unidirectional pipe each way):
//! 1. parent `fork()`s; the child `unshare(CLONE_NEWUSER | CLONE_NEWNS)` and writes one
//!    byte `R` (ready) — or `E` + errno on failure;
//! 2. the parent writes the maps (/proc/PID/*_map or newuidmap/newgidmap), then one byte
//!    `G` (go); on failure it closes the pipe, the child sees EOF and exits 1;
//! 3. the child makes its mounts private (nothing it mounts reaches the host), runs the
//!    closure (panics caught), writes one JSON [`Reply`] and `_exit`s;
//! 4. the parent reads to EOF, reaps the child, decodes.
//!
//! Threads: `fork()` (not a raw clone) runs glibc's atfork handlers, so the child may
//! allocate even if the caller has other threads; still, prefer calling this while
//! single-threaded, and the closure must not take locks other threads may have held at
//! fork time (a logging mutex, a connection pool).
//! Root: real root gets the identity map (idmap.rs), so its closure sees the host's
//! ownership unchanged and keeps namespaced capabilities only.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::panic::AssertUnwindSafe;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::idmap::{IdMap, IdMapError};
use crate::sys;

/// An error of the closure, carried across the process boundary with its whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{msg}")]
pub struct RemoteError {
    /// The `Display` of this level.
    pub msg: String,
    /// The next level of the chain.
    #[source]
    pub cause: Option<Box<RemoteError>>,
}

impl RemoteError {
    /// Flatten an error and its `source()` chain.
    pub fn from_chain(err: &(dyn std::error::Error + 'static)) -> RemoteError {
        let mut msgs = vec![err.to_string()];
        let mut cur = err.source();
        while let Some(e) = cur {
            msgs.push(e.to_string());
            cur = e.source();
        }
        let mut out: Option<Box<RemoteError>> = None;
        for msg in msgs.into_iter().rev() {
            out = Some(Box::new(RemoteError { msg, cause: out }));
        }
        // msgs has at least one element, so `out` is Some.
        out.map(|b| *b).unwrap_or(RemoteError {
            msg: String::new(),
            cause: None,
        })
    }

    /// Every message of the chain, outermost first.
    pub fn chain(&self) -> Vec<&str> {
        let mut v = vec![self.msg.as_str()];
        let mut cur = self.cause.as_deref();
        while let Some(c) = cur {
            v.push(c.msg.as_str());
            cur = c.cause.as_deref();
        }
        v
    }
}

/// What the child sends back.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply<T> {
    /// The closure returned Ok.
    Ok(T),
    /// The closure returned Err (chain kept).
    Err(RemoteError),
    /// The closure panicked (the payload's text).
    Panic(String),
}

/// Failures of [`run_in_mapping`].
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// A pipe could not be made.
    #[error("create a pipe for the mapping child")]
    Pipe(#[source] Errno),
    /// fork failed.
    #[error("fork the mapping child")]
    Fork(#[source] Errno),
    /// The child could not enter new user+mount namespaces.
    #[error("enter a new user namespace (unshare CLONE_NEWUSER|CLONE_NEWNS)")]
    Unshare(#[source] Errno),
    /// The maps could not be written.
    #[error("write the id maps of the mapping child (pid {pid})")]
    IdMap {
        /// The child.
        pid: i32,
        /// Why.
        #[source]
        source: IdMapError,
    },
    /// The closure failed; its chain is the source.
    #[error("in the mapping child")]
    Remote(#[source] RemoteError),
    /// The closure panicked.
    #[error("the mapping child panicked: {0}")]
    Panic(String),
    /// The child ended without a reply (killed, or exited early).
    #[error("the mapping child ended without a reply ({0})")]
    Died(String),
    /// The reply was not valid JSON for the expected type.
    #[error("decode the mapping child's reply")]
    Decode(#[source] serde_json::Error),
    /// Reading the reply or waiting failed.
    #[error("talk to the mapping child")]
    Io(#[source] std::io::Error),
}

impl ChildError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ChildError::Unshare(_) => Some(
                "unprivileged user namespaces seem disabled (sysctl user.max_user_namespaces, \
                 kernel.unprivileged_userns_clone, AppArmor); `iimage info` tells which"
                    .into(),
            ),
            ChildError::IdMap { source, .. } => source.hint(),
            _ => None,
        }
    }
}

/// Run `f` in a forked child inside a new user and mount namespace with `map`, and return
/// its result. `f`'s error comes back as [`ChildError::Remote`] with its whole chain.
/// Mounts made by `f` are private to the child and vanish with it. See the module doc for
/// the handshake and the threading contract.
pub fn run_in_mapping<T, E, F>(map: &IdMap, f: F) -> Result<T, ChildError>
where
    T: Serialize + DeserializeOwned,
    E: std::error::Error + 'static,
    F: FnOnce() -> Result<T, E>,
{
    let (ready_r, ready_w) = sys::pipe().map_err(ChildError::Pipe)?;
    let (go_r, go_w) = sys::pipe().map_err(ChildError::Pipe)?;
    let (reply_r, reply_w) = sys::pipe().map_err(ChildError::Pipe)?;
    match sys::fork().map_err(ChildError::Fork)? {
        ForkResult::Child => {
            drop((ready_r, go_w, reply_r));
            let code = child_main(ready_w, go_r, reply_w, f);
            sys::exit_now(code)
        }
        ForkResult::Parent { child } => {
            drop((ready_w, go_r, reply_w));
            parent_main(map, child, ready_r, go_w, reply_r)
        }
    }
}

fn child_main<T, E, F>(ready_w: OwnedFd, go_r: OwnedFd, reply_w: OwnedFd, f: F) -> i32
where
    T: Serialize,
    E: std::error::Error + 'static,
    F: FnOnce() -> Result<T, E>,
{
    let mut ready = std::fs::File::from(ready_w);
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
        // Ignoring a write error: the parent then sees EOF and reports Died.
        let _ = ready.write_all(&[b'E', (e as i32).clamp(0, 255) as u8]);
        return 1;
    }
    if ready.write_all(b"R").is_err() {
        return 1;
    }
    drop(ready);
    let mut go = [0u8; 1];
    let mut go_r = std::fs::File::from(go_r);
    if go_r.read_exact(&mut go).is_err() || go[0] != b'G' {
        return 1; // the parent could not write the maps and said so itself
    }
    // Everything the closure mounts stays in this namespace (the host's / may be shared).
    // Best effort: a failure only risks propagation.
    let _ = sys::make_mounts_private(&sys::RealSys);
    let reply = match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Reply::Ok(v),
        Ok(Err(e)) => Reply::Err(RemoteError::from_chain(&e)),
        Err(p) => Reply::Panic(panic_text(&p)),
    };
    let mut out = std::fs::File::from(reply_w);
    let bytes = match serde_json::to_vec(&reply) {
        Ok(b) => b,
        Err(e) => match serde_json::to_vec(&Reply::<()>::Err(RemoteError::from_chain(&e))) {
            Ok(b) => b,
            Err(_) => return 3,
        },
    };
    if out.write_all(&bytes).is_err() {
        return 2;
    }
    0
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".into())
}

fn parent_main<T: DeserializeOwned>(
    map: &IdMap,
    child: Pid,
    ready_r: OwnedFd,
    go_w: OwnedFd,
    reply_r: OwnedFd,
) -> Result<T, ChildError> {
    let reap = |child: Pid| wait_text(child);
    let mut buf = [0u8; 2];
    let n = sys::read_some(ready_r.as_fd(), &mut buf).map_err(|e| ChildError::Io(e.into()))?;
    if n == 0 {
        return Err(ChildError::Died(reap(child)));
    }
    if buf[0] == b'E' {
        let errno = if n > 1 { buf[1] as i32 } else { 0 };
        reap(child);
        return Err(ChildError::Unshare(Errno::from_raw(errno)));
    }
    if let Err(source) = map.write(child.as_raw()) {
        drop(go_w); // EOF: the child exits 1
        reap(child);
        return Err(ChildError::IdMap {
            pid: child.as_raw(),
            source,
        });
    }
    let mut go = std::fs::File::from(go_w);
    go.write_all(b"G").map_err(ChildError::Io)?;
    drop(go);
    let mut bytes = Vec::new();
    std::fs::File::from(reply_r)
        .read_to_end(&mut bytes)
        .map_err(ChildError::Io)?;
    let status = reap(child);
    if bytes.is_empty() {
        return Err(ChildError::Died(status));
    }
    match serde_json::from_slice::<Reply<T>>(&bytes).map_err(ChildError::Decode)? {
        Reply::Ok(v) => Ok(v),
        Reply::Err(e) => Err(ChildError::Remote(e)),
        Reply::Panic(p) => Err(ChildError::Panic(p)),
    }
}

/// Reap `child`, describing how it ended.
fn wait_text(child: Pid) -> String {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => return format!("exit status {c}"),
            Ok(WaitStatus::Signaled(_, s, _)) => return format!("killed by {s}"),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => return format!("wait failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer step")]
    struct Outer(#[source] std::io::Error);

    fn map() -> IdMap {
        IdMap::detect()
    }

    fn userns_usable() -> bool {
        let ok = crate::probe::probe_userns();
        if !ok {
            eprintln!("SKIP: unprivileged user namespaces not usable here");
        }
        ok
    }

    #[test]
    fn returns_value_and_runs_as_root_inside() {
        if !userns_usable() {
            return;
        }
        let (uid, ns) = run_in_mapping(&map(), || {
            let uid = nix::unistd::geteuid().as_raw();
            let ns = std::fs::read_link("/proc/self/ns/user")?
                .to_string_lossy()
                .into_owned();
            Ok::<_, std::io::Error>((uid, ns))
        })
        .unwrap();
        assert_eq!(uid, 0);
        let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(
            ns,
            mine.to_string_lossy(),
            "the closure ran in a new user namespace"
        );
    }

    #[test]
    fn error_chain_is_kept() {
        if !userns_usable() {
            return;
        }
        let err = run_in_mapping(&map(), || {
            Err::<(), _>(Outer(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "inner cause",
            )))
        })
        .unwrap_err();
        match err {
            ChildError::Remote(r) => assert_eq!(r.chain(), vec!["outer step", "inner cause"]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn panic_is_reported() {
        if !userns_usable() {
            return;
        }
        let err = run_in_mapping::<(), std::io::Error, _>(&map(), || panic!("boom")).unwrap_err();
        assert!(
            matches!(err, ChildError::Panic(ref p) if p == "boom"),
            "{err:?}"
        );
    }

    #[test]
    fn bad_map_is_an_idmap_error() {
        if !userns_usable() {
            return;
        }
        // Two overlapping lines: the kernel refuses the write, even for root.
        let mut m = IdMap::single(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        m.uid.push(m.uid[0]);
        let err = run_in_mapping(&m, || Ok::<_, std::io::Error>(())).unwrap_err();
        assert!(matches!(err, ChildError::IdMap { .. }), "{err:?}");
    }

    #[test]
    fn remote_error_round_trip() {
        let e = RemoteError::from_chain(&Outer(std::io::Error::other("x")));
        let back: RemoteError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            std::error::Error::source(&back)
                .map(|s| s.to_string())
                .as_deref(),
            Some("x")
        );
    }
}
