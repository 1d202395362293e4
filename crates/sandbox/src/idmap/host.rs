//! What the host says about the caller's ids: its login name (/etc/passwd), its
//! subordinate ranges (/etc/subuid, /etc/subgid) and where newuidmap and newgidmap are.
//!
//! Never: writes anything.

use std::path::{Path, PathBuf};

use super::{IdMapInput, IdRange};

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
