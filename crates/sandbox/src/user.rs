//! docker's `--user` / image `User` resolution against the container's own /etc/passwd
//! and /etc/group (read by setup.rs inside the container's root, bounded, so they are
//! the image's), and the workspace's one parser of those two files (the builder resolves
//! `USER` and `--chown` with it, idmap.rs the host user's name). Pure functions.
//! Never: changes ids (exec.rs does), reads files.

use serde::{Deserialize, Serialize};

/// The ids a process runs with (serializable: the single mapping resolves them in a
/// run-in-mapping child, see setup.rs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership).
    pub groups: Vec<u32>,
    /// Home dir from passwd (`/` when unknown, as docker).
    pub home: String,
    /// The user has an entry in the image's passwd (`home` is its).
    #[serde(default)]
    pub in_passwd: bool,
    /// Keep the supplementary groups inherited from the caller: `groups` is not applied
    /// (keep-id).
    #[serde(default)]
    pub keep_groups: bool,
    /// Die with the parent (SIGKILL), set again after the id change clears it: without
    /// a pid namespace of its own nothing else ends the command when irun is killed.
    #[serde(default)]
    pub die_with_parent: bool,
}

/// `--user` could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A name with no passwd entry.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A group name with no group entry.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// One /etc/passwd line: `name:password:uid:gid:gecos:home[:shell]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    pub home: &'a str,
}

/// The entries of an /etc/passwd text, in file order; malformed lines (fewer than six
/// fields, ids that are not numbers) are skipped.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    // Fields taken as they come, no Vec a line: irun reads the host's passwd at each
    // start (for its subuid range) and the image's.
    text.lines().filter_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let uid = f.next()?;
        let gid = f.next()?;
        let _gecos = f.next()?;
        let home = f.next()?;
        Some(PasswdEntry {
            name,
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            home,
        })
    })
}

/// The gid of the group `name` in an /etc/group text.
pub fn group_id(group: &str, name: &str) -> Option<u32> {
    group_entries(group)
        .find(|(n, _, _)| *n == name)
        .map(|(_, id, _)| id)
}

fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then_some(())?;
        let members = f[3]
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// The uid and gid of `spec` when it needs no passwd or group file: `""` (root: 0:0) or
/// `uid:gid` in numbers. Anything else (a name, a uid alone, whose gid comes from
/// passwd) is `None`.
pub fn numeric(spec: &str) -> Option<(u32, u32)> {
    if spec.is_empty() {
        return Some((0, 0));
    }
    let (u, g) = spec.split_once(':')?;
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// Resolve `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) like docker.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Ids, UserError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|p| p.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|p| p.name == user)
                .ok_or_else(|| UserError::NoUser(user.into()))?,
        ),
    };
    let uid = match (&entry, user.parse::<u32>()) {
        (_, Ok(u)) => u,
        (Some(e), _) => e.uid,
        (None, Err(_)) => return Err(UserError::NoUser(user.into())),
    };
    let mut gid = entry.as_ref().map(|e| e.gid).unwrap_or(0);
    let home = entry
        .as_ref()
        .map(|e| e.home.to_string())
        .unwrap_or_else(|| "/".into());
    let name = entry.as_ref().map(|e| e.name);
    match grp {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_id(group, g).ok_or_else(|| UserError::NoGroup(g.into()))?,
            };
        }
        _ => {}
    }
    let mut groups: Vec<u32> = match (name, grp) {
        // docker: an explicit group replaces the supplementary list
        (Some(n), None) => group_entries(group)
            .filter(|(_, _, m)| m.contains(&n))
            .map(|(_, id, _)| id)
            .collect(),
        _ => vec![],
    };
    groups.retain(|g| *g != gid);
    groups.insert(0, gid);
    groups.dedup();
    Ok(Ids {
        uid,
        gid,
        groups,
        home,
        in_passwd: entry.is_some(),
        keep_groups: false,
        die_with_parent: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GR: &str = "root:x:0:\nwww-data:x:33:\nstaff:x:50:bob,alice\nbob:x:1000:\n";

    #[test]
    fn default_is_root() {
        let i = resolve("", PW, GR).unwrap();
        assert_eq!((i.uid, i.gid, i.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn names_and_numbers() {
        let i = resolve("www-data", PW, GR).unwrap();
        assert_eq!((i.uid, i.gid), (33, 33));
        let b = resolve("bob", PW, GR).unwrap();
        assert_eq!(b.groups, vec![1000, 50]);
        let n = resolve("1234", PW, GR).unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (1234, 0, "/"));
        assert!(!n.in_passwd && b.in_passwd);
        let ug = resolve("33:50", PW, GR).unwrap();
        assert_eq!((ug.uid, ug.gid), (33, 50));
        let ng = resolve("bob:www-data", PW, GR).unwrap();
        assert_eq!((ng.uid, ng.gid, ng.groups.clone()), (1000, 33, vec![33]));
    }

    #[test]
    fn entries_skip_malformed_lines() {
        let pw = "broken\nx:x:notanumber:1::/:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        let names: Vec<&str> = passwd_entries(pw).map(|p| p.name).collect();
        assert_eq!(names, ["bob"]);
        assert_eq!(group_id(GR, "staff"), Some(50));
        assert_eq!(group_id(GR, "ghost"), None);
    }

    #[test]
    fn numeric_only_for_root_and_number_pairs() {
        assert_eq!(numeric(""), Some((0, 0)));
        assert_eq!(numeric("33:44"), Some((33, 44)));
        assert_eq!(numeric("33"), None, "the gid comes from passwd");
        assert_eq!(numeric("www-data"), None);
        assert_eq!(numeric("33:staff"), None);
        assert_eq!(numeric("33:"), None);
    }

    #[test]
    fn unknown_names_fail_like_docker() {
        assert_eq!(
            resolve("nobody2", PW, GR),
            Err(UserError::NoUser("nobody2".into()))
        );
        assert_eq!(
            resolve("bob:nogroup", PW, GR),
            Err(UserError::NoGroup("nogroup".into()))
        );
    }
}
