//! Small file-system helpers: removing trees that contain mode-000 directories (an
//! overlay work dir, a hostile layer), without following symlinks.
//! Never: follows symlinks or works outside the trees its callers (gc, failed unpacks)
//! give it, which are always under the store root.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{IoCtx, Result};

/// Remove `path` and everything under it; directories we cannot enter are chmodded
/// u+rwx first. A missing path is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(crate::error::StoreError::io("stat", path, e)),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(path).ctx("remove", path);
    }
    if meta.permissions().mode() & 0o700 != 0o700 {
        let mut p = meta.permissions();
        p.set_mode(p.mode() | 0o700);
        std::fs::set_permissions(path, p).ctx("chmod", path)?;
    }
    for e in std::fs::read_dir(path).ctx("read directory", path)? {
        let e = e.ctx("read directory", path)?;
        remove_tree(&e.path())?;
    }
    std::fs::remove_dir(path).ctx("remove directory", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_mode_000_dirs() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t");
        std::fs::create_dir_all(t.join("a/b")).unwrap();
        std::fs::write(t.join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", t.join("link")).unwrap();
        std::fs::set_permissions(t.join("a"), std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&t).unwrap();
        assert!(!t.exists());
        assert!(Path::new("/etc").exists());
    }
}
