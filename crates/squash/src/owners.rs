//! How the FUSE server shows owners: an id the reading user namespace maps passes
//! through; any other (under the single mapping: every id but the container user's own)
//! shows as the server's own uid and gid there, i.e. the container's user, so the
//! container can read and copy up every file (as the store's single-mapping layers do).
//! Never: changes what the archive stores.

/// The ids a user namespace maps, and the fallback owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owners {
    uids: Vec<(u32, u32)>,
    gids: Vec<(u32, u32)>,
    fallback: (u32, u32),
}

/// The inside ranges (start, count) of a `/proc/PID/uid_map` text.
fn ranges(map: &str) -> Vec<(u32, u32)> {
    map.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let inside = f.next()?.parse().ok()?;
            let _outside: u32 = f.next()?.parse().ok()?;
            Some((inside, f.next()?.parse().ok()?))
        })
        .collect()
}

fn mapped(r: &[(u32, u32)], id: u32) -> bool {
    r.iter()
        .any(|(s, n)| id >= *s && u64::from(id) < u64::from(*s) + u64::from(*n))
}

impl Owners {
    /// Every id as stored (a process that sees all of them, e.g. tests).
    pub fn as_stored() -> Owners {
        Owners {
            uids: vec![(0, u32::MAX)],
            gids: vec![(0, u32::MAX)],
            fallback: (0, 0),
        }
    }

    /// From maps' text and this process's ids in that namespace.
    pub fn from_maps(uid_map: &str, gid_map: &str, own: (u32, u32)) -> Owners {
        Owners {
            uids: ranges(uid_map),
            gids: ranges(gid_map),
            fallback: own,
        }
    }

    /// For the user namespace this process is in.
    pub fn of_this_process() -> std::io::Result<Owners> {
        let u = std::fs::read_to_string("/proc/self/uid_map")?;
        let g = std::fs::read_to_string("/proc/self/gid_map")?;
        // status shows the ids as this process's own namespace sees them.
        let status = std::fs::read_to_string("/proc/self/status")?;
        let effective = |key: &str| -> Option<u32> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(2)?.parse().ok()
        };
        let own = match (effective("Uid:"), effective("Gid:")) {
            (Some(u), Some(g)) => (u, g),
            _ => return Err(std::io::Error::other("no Uid/Gid in /proc/self/status")),
        };
        Ok(Owners::from_maps(&u, &g, own))
    }

    /// The uid shown for a stored one.
    pub fn uid(&self, id: u32) -> u32 {
        if mapped(&self.uids, id) {
            id
        } else {
            self.fallback.0
        }
    }

    /// The gid shown for a stored one.
    pub fn gid(&self, id: u32) -> u32 {
        if mapped(&self.gids, id) {
            id
        } else {
            self.fallback.1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_ids_show_as_the_servers_own() {
        let single = Owners::from_maps("1000 4242 1\n", "1000 4242 1\n", (1000, 1000));
        assert_eq!(
            (single.uid(0), single.uid(1000), single.gid(33)),
            (1000, 1000, 1000)
        );
        let sub = Owners::from_maps("0 1000 1\n1 100000 65536\n", "0 1000 65537\n", (0, 0));
        assert_eq!(
            (sub.uid(33), sub.uid(65536), sub.uid(70000)),
            (33, 65536, 0)
        );
        assert_eq!(Owners::as_stored().uid(70000), 70000);
    }
}
