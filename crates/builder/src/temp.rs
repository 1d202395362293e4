//! Temp files and trees of a build (in the store's tmp dir, or the context extracted
//! from stdin): each is held by a [`TempPath`] guard that removes it on every way out of
//! the code that made it — success, error (ENOSPC while packing a layer) or unwinding —
//! so a failed build leaves nothing behind in the store. A RUN's scratch tree (overlay
//! upper and work dirs, rootfs mount point) goes where [`run_scratch`] says: the
//! node-local dir's `build/` on a shared store, else the store's tmp dir.
//!
//! Never: decides what is in them, or where other temp paths go (the store's
//! `temp_path`).

use std::path::{Path, PathBuf};

use imago_sandbox::{run_in_mapping, IdMap};
use imago_store::local::LocalError;
use imago_store::Store;

/// Removing a temp path failed (only from [`TempPath::remove`]; `Drop` logs instead).
#[derive(Debug, thiserror::Error)]
pub enum TempError {
    #[error("remove the temp path `{path}`")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("remove the temp path `{path}` in the build's id mapping")]
    Mapping {
        path: PathBuf,
        #[source]
        source: imago_sandbox::ChildError,
    },
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("create `{path}`")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A temp file or directory tree, removed when the guard is dropped (or by
/// [`TempPath::remove`], which reports failures). Nothing needs to exist at the path yet.
#[must_use = "dropping the guard removes the path at once"]
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    /// Remove inside this mapping: the tree holds files of mapped ids (a RUN's upper dir)
    /// that only the mapping's root may delete.
    map: Option<IdMap>,
    armed: bool,
}

impl TempPath {
    /// A path the current process may remove itself (inside the mapping already, or
    /// files of the building user).
    pub fn new(path: PathBuf) -> Self {
        TempPath {
            path,
            map: None,
            armed: true,
        }
    }

    /// A path removed from inside `map` (a child forked for it), for trees written in
    /// the build's id mapping.
    pub fn in_mapping(path: PathBuf, map: &IdMap) -> Self {
        TempPath {
            path,
            map: Some(map.clone()),
            armed: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove now and say whether it worked.
    pub fn remove(mut self) -> Result<(), TempError> {
        self.armed = false;
        remove(&self.path, self.map.as_ref())
    }

    /// Keep the path (it became something permanent); returns it.
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = remove(&self.path, self.map.as_ref()) {
                tracing::warn!("{e}");
            }
        }
    }
}

fn remove(path: &Path, map: Option<&IdMap>) -> Result<(), TempError> {
    // Nothing there (never made, or removed by the code that used it): no child to fork.
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match map {
        None => remove_tree(path),
        Some(map) => {
            let p = path.to_path_buf();
            run_in_mapping(map, move || remove_tree(&p)).map_err(|source| TempError::Mapping {
                path: path.to_path_buf(),
                source,
            })
        }
    }
}

/// The scratch tree of a RUN (not made yet), removed inside `map`: in the node-local
/// dir's `build/` when the store is shared or `IMAGO_LOCAL_DIR` names a dir (overlayfs
/// takes no upper dir on NFS or Lustre), else in the store's tmp dir as always. Trees
/// that killed builds of this machine left in `build/` are removed first (the store's
/// gc never sees that dir).
pub fn run_scratch(store: &Store, map: &IdMap) -> Result<TempPath, TempError> {
    let Some(local) = imago_store::local::placement(store.root())? else {
        return Ok(TempPath::in_mapping(store.temp_path("run"), map));
    };
    let build = local.build();
    std::fs::create_dir_all(&build).map_err(|source| TempError::Create {
        path: build.clone(),
        source,
    })?;
    sweep_dead(&build, map);
    Ok(TempPath::in_mapping(
        imago_store::atomic::temp_path(&build, "run"),
        map,
    ))
}

/// Remove the entries of `dir` whose maker is gone ([`dead_entries`]). Best effort:
/// what is left is tried again by the next RUN here.
fn sweep_dead(dir: &Path, map: &IdMap) {
    for p in dead_entries(dir) {
        if let Err(err) = remove(&p, Some(map)) {
            tracing::debug!("{err}");
        }
    }
}

/// The temp entries of `dir` made by a process of this host that no longer exists
/// (the pid and host tag in the name; other names are not ours and stay).
fn dead_entries(dir: &Path) -> Vec<PathBuf> {
    imago_store::atomic::dead_temps(dir)
}

/// Remove a file or a tree (layer trees have mode-000 and read-only dirs): the layer
/// crate's remover, with the path in the error.
pub fn remove_tree(p: &Path) -> Result<(), TempError> {
    imago_oci::layer::remove_tree(p).map_err(|source| TempError::Remove {
        path: p.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_guard_removes_read_only_trees_and_files() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("tree");
        std::fs::create_dir_all(tree.join("ro/sub")).unwrap();
        std::fs::write(tree.join("ro/sub/f"), "x").unwrap();
        std::fs::set_permissions(tree.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let file = t.path().join("layer.tar.gz");
        std::fs::write(&file, "x").unwrap();
        {
            let _a = TempPath::new(tree.clone());
            let _b = TempPath::new(file.clone());
            let _c = TempPath::new(t.path().join("never-made"));
        }
        assert!(!tree.exists() && !file.exists());
    }

    #[test]
    fn only_trees_of_dead_builds_of_this_host_are_swept() {
        let t = tempfile::tempdir().unwrap();
        let mine = imago_store::atomic::temp_path(t.path(), "run");
        let host = imago_store::atomic::host_tag();
        // pids stop at 4194304: this one never lived
        let dead = t.path().join(format!("999999999.{host}-1-0-run"));
        let elsewhere = t.path().join("999999999.00000000-1-0-run");
        let other = t.path().join("notes");
        for d in [&mine, &dead, &elsewhere, &other] {
            std::fs::create_dir(d).unwrap();
        }
        assert_eq!(dead_entries(t.path()), vec![dead]);
    }

    #[test]
    fn kept_paths_stay() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let kept = TempPath::new(f.clone()).keep();
        assert_eq!(kept, f);
        assert!(f.exists());
        TempPath::new(f.clone()).remove().unwrap();
        assert!(!f.exists());
    }
}
