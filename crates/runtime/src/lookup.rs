//! Finding containers: every container of a store, newest first, docker's lookup of one
//! by full id, name or unique id prefix (an ambiguous prefix is an error of its own), and
//! where a container's own dir is ([`Containers::dir`], [`Containers::place`]).
//! Never: writes anything.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::record::{valid_name, ContainerId, ContainerRecord, Containers, RecordError};

/// The record dir's note of a node-local container dir.
pub(crate) const NODE_LOCAL: &str = "node-local.json";

/// Where a container's own dir is when it is node-local: which dir, on which machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeLocal {
    /// The node-local dir (its `containers/<id>` is the container's own dir).
    pub dir: PathBuf,
    /// The machine's name.
    pub node: String,
}

impl NodeLocal {
    /// `<dir>/containers/<id>`: made from the id, so a record names no other path.
    pub fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.dir.join("containers").join(id.as_str())
    }
}

/// Where a container's own dir (writable layer, rootfs, lock, log) is, seen from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Here: in the store's record dir, or node-local and present on this machine.
    Here(PathBuf),
    /// Node-local on this machine, but gone (the node-local dir was wiped).
    Gone(PathBuf),
    /// Node-local on another machine of a shared store.
    Elsewhere {
        /// That machine's name.
        node: String,
        /// The dir there.
        path: PathBuf,
    },
}

impl Place {
    /// The dir, wherever it is.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Place::Here(p) | Place::Gone(p) | Place::Elsewhere { path: p, .. } => p,
        }
    }

    /// Usable from this machine?
    pub fn here(&self) -> bool {
        matches!(self, Place::Here(_))
    }

    /// Why it cannot be used from here (None when it can), for messages.
    pub fn why_missing(&self) -> Option<String> {
        match self {
            Place::Here(_) => None,
            Place::Gone(p) => Some(format!(
                "its writable layer in the node-local dir {} is gone (that dir was wiped)",
                p.display()
            )),
            Place::Elsewhere { node, path } => Some(format!(
                "its writable layer is in the node-local dir {} on node {node}, not on this one",
                path.display()
            )),
        }
    }
}

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

    /// `node-local.json` of a container whose own dir is node-local.
    fn node_local(&self, id: &ContainerId) -> Option<NodeLocal> {
        let bytes = std::fs::read(self.record_dir(id).join(NODE_LOCAL)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The container's own dir: `<node-local dir>/containers/<id>` when its record dir
    /// says so (`node-local.json`), else the record dir (the store's layout).
    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        match self.node_local(id) {
            Some(n) => n.container_dir(id),
            None => self.record_dir(id),
        }
    }

    /// [`Containers::dir`], and whether this machine has it.
    pub fn place(&self, id: &ContainerId) -> Place {
        let Some(n) = self.node_local(id) else {
            return Place::Here(self.record_dir(id));
        };
        let path = n.container_dir(id);
        if path.is_dir() {
            Place::Here(path)
        } else if n.node == imago_store::local::node_name() {
            Place::Gone(path)
        } else {
            Place::Elsewhere { node: n.node, path }
        }
    }

    /// docker's lookup: a full id, else a name, else a unique id prefix.
    pub fn find(&self, input: &str) -> Result<ContainerId, RecordError> {
        let input = input.strip_prefix('/').unwrap_or(input);
        if let Some(id) = ContainerId::parse(input) {
            if self.record_dir(&id).is_dir() {
                return Ok(id);
            }
        }
        if valid_name(input) {
            let owner = std::fs::read_to_string(self.name_file(input)).unwrap_or_default();
            if let Some(id) = ContainerId::parse(owner.trim()) {
                if self.record_dir(&id).is_dir() {
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
        c.create_dir(&a, None).unwrap();
        c.create_dir(&b, None).unwrap();
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

    #[test]
    fn a_node_local_dir_is_found_through_the_record_dir() {
        let t =
            std::env::temp_dir().join(format!("imago-rt-place-{}-{}", std::process::id(), line!()));
        let c = Containers::new(&t.join("store"));
        let local = imago_store::local::LocalDir {
            path: t.join("local"),
            source: imago_store::local::Source::Env,
        };
        let a = ContainerId::random();
        let d = c.create_dir(&a, Some(&local)).unwrap();
        assert_eq!(d, local.containers().join(a.as_str()));
        assert!(d.join("upper").is_dir() && d.join("work").is_dir());
        assert!(!c.record_dir(&a).join("upper").exists());
        assert_eq!(c.dir(&a), d);
        assert_eq!(c.place(&a), Place::Here(d.clone()));
        std::fs::remove_dir_all(local.containers()).unwrap();
        assert_eq!(c.place(&a), Place::Gone(d.clone()));
        assert!(c.place(&a).why_missing().unwrap().contains("is gone"));
        assert_eq!(c.find(a.as_str()).unwrap(), a, "the record still counts");
        // another machine's: named as such
        let f = c.record_dir(&a).join("node-local.json");
        let other = serde_json::json!({"dir": local.path, "node": "elsewhere-9"});
        std::fs::write(&f, other.to_string()).unwrap();
        assert!(matches!(c.place(&a), Place::Elsewhere { node, .. } if node == "elsewhere-9"));
        // the store's layout: the record dir is the container's own dir
        let b = ContainerId::random();
        let d = c.create_dir(&b, None).unwrap();
        assert_eq!(d, c.record_dir(&b));
        assert_eq!(c.place(&b), Place::Here(d));
        std::fs::remove_dir_all(&t).unwrap();
    }
}
