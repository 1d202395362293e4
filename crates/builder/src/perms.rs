//! Owners and modes: `--chown` and `USER` resolved against the stage's `/etc/passwd`
//! and `/etc/group` text (docs/semantics.md items 65–67, 78), and `--chmod` parsing
//! errors as the engine reports them (the parser is [`imago_dockerfile::Chmod`], items
//! 79–81).
//!
//! Never: reads files itself (the engine passes the text of passwd/group), parses them
//! (`imago_sandbox::user` does, for build and run alike).
//!
//! Numbers in parentheses, e.g. (76), are items of docs/semantics.md.

use imago_dockerfile::Chmod;
use imago_sandbox::user::{self, UserError};

/// The ids `USER` resolves to (the sandbox's type: uid, gid, supplementary groups, home).
pub use imago_sandbox::user::Ids;

/// A `--chmod`, `--chown` or `USER` value that cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PermError {
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    Chmod(String),
    /// An unknown user or group name (the sandbox's error, docker's wording).
    #[error(transparent)]
    User(#[from] UserError),
}

/// Parse a `--chmod` value (the one parser lives in imago_dockerfile).
pub fn parse_chmod(s: &str) -> Result<Chmod, PermError> {
    Chmod::parse(s).map_err(|_| PermError::Chmod(s.to_string()))
}

/// Resolve `USER user[:group]` (65–67) as the container will run it (the sandbox's
/// resolver, so build and run agree): names from passwd/group; numbers accepted as is;
/// with `:group`, no supplementary groups.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<Ids, PermError> {
    Ok(user::resolve(spec, passwd, group)?)
}

/// Resolve `--chown=user[:group]` (78): a name without a group takes the user's primary
/// group *from the group given by name*... i.e. `daemon` → daemon:daemon's gid.
pub fn resolve_chown(spec: &str, passwd: &str, group: &str) -> Result<(u32, u32), PermError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => user::passwd_entries(passwd)
            .find(|p| p.name == u)
            .map(|p| (p.uid, p.gid))
            .ok_or_else(|| UserError::NoUser(u.to_string()))?,
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => user::group_id(group, g).ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(i: Ids) -> (u32, u32, Vec<u32>) {
        (i.uid, i.gid, i.groups)
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\ndockerio:x:1001:1001::/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root\ndaemon:x:1:\ndockerio:x:1001:\nsupplementary:x:1002:dockerio\nnobody:x:65534:\n";

    #[test]
    fn g80_invalid_chmod_names_the_value() {
        for bad in ["64a", "10000", ""] {
            let e = parse_chmod(bad).unwrap_err().to_string();
            assert_eq!(e, format!("invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"));
        }
        assert_eq!(parse_chmod("0644"), Ok(Chmod::Octal(0o644)));
    }

    #[test]
    fn f64_default_root() {
        assert_eq!(
            ids(resolve_user("", PASSWD, GROUP).unwrap()),
            (0, 0, vec![0, 10])
        );
    }

    #[test]
    fn f65_user_name_with_groups() {
        assert_eq!(
            ids(resolve_user("dockerio", PASSWD, GROUP).unwrap()),
            (1001, 1001, vec![1001, 1002])
        );
    }

    #[test]
    fn f66_user_and_group_no_supplementary() {
        assert_eq!(
            ids(resolve_user("dockerio:1002", PASSWD, GROUP).unwrap()),
            (1001, 1002, vec![1002])
        );
        assert_eq!(
            ids(resolve_user("1001:supplementary", PASSWD, GROUP).unwrap()),
            (1001, 1002, vec![1002])
        );
    }

    #[test]
    fn f67_unknown_numeric_ids() {
        assert_eq!(
            ids(resolve_user("1042:1043", PASSWD, GROUP).unwrap()),
            (1042, 1043, vec![1043])
        );
        assert_eq!(
            ids(resolve_user("1234", PASSWD, GROUP).unwrap()),
            (1234, 0, vec![0])
        );
        assert_eq!(
            resolve_user("ghost", PASSWD, GROUP)
                .unwrap_err()
                .to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            resolve_chown("1:ghost", PASSWD, GROUP)
                .unwrap_err()
                .to_string(),
            "unable to find group ghost: no matching entries in group file"
        );
    }

    #[test]
    fn g78_chown_names() {
        assert_eq!(resolve_chown("daemon", PASSWD, GROUP).unwrap(), (1, 1));
        assert_eq!(
            resolve_chown("1000:nobody", PASSWD, GROUP).unwrap(),
            (1000, 65534)
        );
        assert_eq!(resolve_chown("33", PASSWD, GROUP).unwrap(), (33, 33));
        assert!(matches!(
            resolve_chown("ghost", PASSWD, GROUP),
            Err(PermError::User(UserError::NoUser(_)))
        ));
        assert!(matches!(
            resolve_chown("1:ghost", PASSWD, GROUP),
            Err(PermError::User(UserError::NoGroup(_)))
        ));
    }
}
