//! Owners and modes: `--chown` and `USER` resolved against the stage's `/etc/passwd`
//! and `/etc/group` text (docs/semantics.md items 65–67, 78), and `--chmod` parsing
//! errors as the engine reports them (the parser is [`imago_dockerfile::Chmod`], items
//! 79–81).
//!
//! Never: reads files itself (the engine passes the text of passwd/group).
//!
//! Numbers in parentheses, e.g. (76), are items of docs/semantics.md.

use imago_dockerfile::Chmod;

/// A `--chmod`, `--chown` or `USER` value that cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PermError {
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    Chmod(String),
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// Parse a `--chmod` value (the one parser lives in imago_dockerfile).
pub fn parse_chmod(s: &str) -> Result<Chmod, PermError> {
    Chmod::parse(s).map_err(|_| PermError::Chmod(s.to_string()))
}

/// A user as RUN sees it: uid, primary gid, supplementary gids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

fn passwd_find<'a>(passwd: &'a str, name: &str) -> Option<Vec<&'a str>> {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == name)
}

fn passwd_by_uid(passwd: &str, uid: u32) -> Option<Vec<&str>> {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[2].parse() == Ok(uid))
}

fn group_gid(group: &str, name: &str) -> Option<u32> {
    group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == name)?[2]
        .parse()
        .ok()
}

fn supplementary(group: &str, user: &str) -> Vec<u32> {
    group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == user))
        .filter_map(|f| f[2].parse().ok())
        .collect()
}

/// Resolve `USER user[:group]` (65–67): names from passwd/group; numbers accepted as is;
/// with `:group`, no supplementary groups.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<Ids, PermError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "root" } else { u };
    let (uid, pgid, uname) = match u.parse::<u32>() {
        Ok(uid) => match passwd_by_uid(passwd, uid) {
            Some(f) => (uid, f[3].parse().unwrap_or(0), Some(f[0].to_string())),
            None => (uid, 0, None),
        },
        Err(_) => {
            let f = passwd_find(passwd, u).ok_or_else(|| PermError::NoUser(u.to_string()))?;
            (
                f[2].parse().map_err(|_| PermError::NoUser(u.to_string()))?,
                f[3].parse().unwrap_or(0),
                Some(u.to_string()),
            )
        }
    };
    match g {
        Some(g) => {
            let gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_gid(group, g).ok_or_else(|| PermError::NoGroup(g.to_string()))?,
            };
            Ok(Ids {
                uid,
                gid,
                groups: vec![gid],
            })
        }
        None => {
            let mut groups = vec![pgid];
            if let Some(n) = uname {
                for s in supplementary(group, &n) {
                    if !groups.contains(&s) {
                        groups.push(s);
                    }
                }
            }
            Ok(Ids {
                uid,
                gid: pgid,
                groups,
            })
        }
    }
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
        Err(_) => {
            let f = passwd_find(passwd, u).ok_or_else(|| PermError::NoUser(u.to_string()))?;
            let uid = f[2].parse().map_err(|_| PermError::NoUser(u.to_string()))?;
            (uid, f[3].parse().unwrap_or(uid))
        }
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_gid(group, g).ok_or_else(|| PermError::NoGroup(g.to_string()))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            resolve_user("", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 0,
                gid: 0,
                groups: vec![0, 10]
            }
        );
    }

    #[test]
    fn f65_user_name_with_groups() {
        assert_eq!(
            resolve_user("dockerio", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 1001,
                gid: 1001,
                groups: vec![1001, 1002]
            }
        );
    }

    #[test]
    fn f66_user_and_group_no_supplementary() {
        assert_eq!(
            resolve_user("dockerio:1002", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 1001,
                gid: 1002,
                groups: vec![1002]
            }
        );
        assert_eq!(
            resolve_user("1001:supplementary", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 1001,
                gid: 1002,
                groups: vec![1002]
            }
        );
    }

    #[test]
    fn f67_unknown_numeric_ids() {
        assert_eq!(
            resolve_user("1042:1043", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 1042,
                gid: 1043,
                groups: vec![1043]
            }
        );
        assert_eq!(
            resolve_user("1234", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 1234,
                gid: 0,
                groups: vec![0]
            }
        );
        assert!(resolve_user("ghost", PASSWD, GROUP).is_err());
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
            Err(PermError::NoUser(_))
        ));
        assert!(matches!(
            resolve_chown("1:ghost", PASSWD, GROUP),
            Err(PermError::NoGroup(_))
        ));
    }
}
