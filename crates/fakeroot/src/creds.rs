//! Fake credentials of one process: real/effective/saved uid and gid and the
//! supplementary groups, changed by the set*id family under the kernel's rules (an
//! effective uid of 0 may set anything; otherwise each new id must be one the process
//! already holds), so a program that drops privileges and checks that it cannot get them
//! back (apt's `_apt` sandbox) sees what it would see with real ids.
//! Owns: those rules (pure). Never: reads processes or memory (table.rs, supervisor.rs).

use nix::errno::Errno;

/// The "leave unchanged" id (-1 as u32).
pub const KEEP: u32 = u32::MAX;

/// One process's fake ids. `groups: None` = the real supplementary groups (never set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: [u32; 3],
    pub gid: [u32; 3],
    pub groups: Option<Vec<u32>>,
}

/// Largest group list accepted by setgroups (the kernel's NGROUPS_MAX).
pub const NGROUPS_MAX: usize = 65536;

impl Default for Creds {
    /// What every process of the container really is: root, groups untouched.
    fn default() -> Self {
        Self {
            uid: [0; 3],
            gid: [0; 3],
            groups: None,
        }
    }
}

/// Which id set a call changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Uid,
    Gid,
}

impl Creds {
    /// Privileged as the kernel sees it here: CAP_SETUID/CAP_SETGID follow euid 0.
    fn privileged(&self) -> bool {
        self.uid[1] == 0
    }

    fn ids(&mut self, w: Which) -> &mut [u32; 3] {
        match w {
            Which::Uid => &mut self.uid,
            Which::Gid => &mut self.gid,
        }
    }

    /// setuid/setgid(id).
    pub fn set_one(&mut self, w: Which, id: u32) -> Result<(), Errno> {
        if id == KEEP {
            return Err(Errno::EINVAL);
        }
        let privileged = self.privileged();
        let ids = self.ids(w);
        if privileged {
            *ids = [id; 3];
        } else if id == ids[0] || id == ids[2] {
            ids[1] = id;
        } else {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// setreuid/setregid(r, e).
    pub fn set_re(&mut self, w: Which, r: u32, e: u32) -> Result<(), Errno> {
        let privileged = self.privileged();
        let ids = self.ids(w);
        let old = *ids;
        if !privileged {
            if r != KEEP && r != old[0] && r != old[1] {
                return Err(Errno::EPERM);
            }
            if e != KEEP && e != old[0] && e != old[1] && e != old[2] {
                return Err(Errno::EPERM);
            }
        }
        if r != KEEP {
            ids[0] = r;
        }
        if e != KEEP {
            ids[1] = e;
        }
        if r != KEEP || (e != KEEP && e != old[0]) {
            ids[2] = ids[1];
        }
        Ok(())
    }

    /// setresuid/setresgid(r, e, s).
    pub fn set_res(&mut self, w: Which, new: [u32; 3]) -> Result<(), Errno> {
        let privileged = self.privileged();
        let ids = self.ids(w);
        let old = *ids;
        if !privileged && new.iter().any(|&v| v != KEEP && !old.contains(&v)) {
            return Err(Errno::EPERM);
        }
        for (slot, v) in ids.iter_mut().zip(new) {
            if v != KEEP {
                *slot = v;
            }
        }
        Ok(())
    }

    /// setgroups(list).
    pub fn set_groups(&mut self, list: Vec<u32>) -> Result<(), Errno> {
        if !self.privileged() {
            return Err(Errno::EPERM);
        }
        self.groups = Some(list);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_process_cannot_get_root_back() {
        // apt's DropPrivileges: setgroups, setresgid, setresuid to _apt, then checks.
        let mut c = Creds::default();
        c.set_groups(vec![65534]).unwrap();
        c.set_res(Which::Gid, [65534; 3]).unwrap();
        c.set_res(Which::Uid, [42; 3]).unwrap();
        assert_eq!((c.uid, c.gid), ([42; 3], [65534; 3]));
        assert_eq!(c.set_one(Which::Uid, 0), Err(Errno::EPERM));
        assert_eq!(c.set_res(Which::Uid, [KEEP, 0, KEEP]), Err(Errno::EPERM));
        assert_eq!(c.set_one(Which::Gid, 0), Err(Errno::EPERM));
        assert_eq!(c.set_groups(vec![0]), Err(Errno::EPERM));
        c.set_one(Which::Uid, 42).unwrap();
    }

    #[test]
    fn seteuid_and_back_keeps_the_saved_root() {
        // apt's check of the download dirs: seteuid(_apt), access(), seteuid(0).
        let mut c = Creds::default();
        c.set_res(Which::Gid, [KEEP, 65534, KEEP]).unwrap();
        c.set_res(Which::Uid, [KEEP, 42, KEEP]).unwrap();
        assert_eq!(c.uid, [0, 42, 0]);
        assert_eq!(c.set_groups(vec![1]), Err(Errno::EPERM));
        c.set_res(Which::Uid, [KEEP, 0, KEEP]).unwrap();
        c.set_res(Which::Gid, [KEEP, 0, KEEP]).unwrap();
        assert_eq!(c, Creds::default());
    }

    #[test]
    fn setreuid_follows_the_saved_id_rule() {
        let mut c = Creds::default();
        c.set_re(Which::Uid, 5, 6).unwrap();
        assert_eq!(c.uid, [5, 6, 6]);
        assert_eq!(c.set_re(Which::Uid, 7, KEEP), Err(Errno::EPERM));
        c.set_re(Which::Uid, 6, 5).unwrap();
        assert_eq!(c.uid, [6, 5, 5]);
        assert_eq!(c.set_one(Which::Uid, KEEP), Err(Errno::EINVAL));
    }
}
