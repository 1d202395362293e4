//! Finding containers: every container of a store, newest first, and docker's lookup of
//! one by full id, name or unique id prefix (an ambiguous prefix is an error of its own).
//! Never: writes anything.

use crate::record::{valid_name, ContainerId, ContainerRecord, Containers, RecordError};

impl Containers {
    /// The ids of every container dir (a dir without a readable record is skipped by
    /// [`Containers::list`], not here).
    pub fn ids(&self) -> Vec<ContainerId> {
        let Ok(entries) = std::fs::read_dir(self.base()) else {
            return vec![];
        };
        entries
            .flatten()
            .filter_map(|e| ContainerId::parse(e.file_name().to_str()?))
            .collect()
    }

    /// Every container's record, newest first.
    pub fn list(&self) -> Vec<ContainerRecord> {
        let mut v: Vec<ContainerRecord> = self
            .ids()
            .iter()
            .filter_map(|i| self.read_record(i))
            .collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        v
    }

    /// docker's lookup: a full id, else a name, else a unique id prefix.
    pub fn find(&self, input: &str) -> Result<ContainerId, RecordError> {
        let input = input.strip_prefix('/').unwrap_or(input);
        if let Some(id) = ContainerId::parse(input) {
            if self.dir(&id).is_dir() {
                return Ok(id);
            }
        }
        if valid_name(input) {
            let owner = std::fs::read_to_string(self.name_file(input)).unwrap_or_default();
            if let Some(id) = ContainerId::parse(owner.trim()) {
                if self.dir(&id).is_dir() {
                    return Ok(id);
                }
            }
        }
        let hex = !input.is_empty()
            && input
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex {
            let mut found = self
                .ids()
                .into_iter()
                .filter(|i| i.as_str().starts_with(input));
            if let Some(first) = found.next() {
                if found.next().is_some() {
                    return Err(RecordError::Ambiguous(input.into()));
                }
                return Ok(first);
            }
        }
        Err(RecordError::NotFound(input.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_by_id_name_and_prefix() {
        let t =
            std::env::temp_dir().join(format!("imago-rt-find-{}-{}", std::process::id(), line!()));
        let c = Containers::new(&t);
        let a = ContainerId::parse(&format!("ab{}", "0".repeat(62))).unwrap();
        let b = ContainerId::parse(&format!("ac{}", "0".repeat(62))).unwrap();
        c.create_dir(&a).unwrap();
        c.create_dir(&b).unwrap();
        c.claim_name("web", &b).unwrap();
        assert_eq!(c.find(a.as_str()).unwrap(), a);
        assert_eq!(c.find("web").unwrap(), b);
        assert_eq!(c.find("/web").unwrap(), b);
        assert_eq!(c.find("ab").unwrap(), a);
        assert!(matches!(c.find("a"), Err(RecordError::Ambiguous(_))));
        let e = c.find("nope").unwrap_err();
        assert_eq!(e.to_string(), "No such container: nope");
        assert!(matches!(c.find("ff"), Err(RecordError::NotFound(_))));
        std::fs::remove_dir_all(&t).unwrap();
    }
}
