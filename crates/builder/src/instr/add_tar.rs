//! ADD of a local archive: unpacked by [`crate::archive`] (the hardened unpacker) into a
//! scratch dir beside the layer dir, then moved into the layer dir at the destination.
//!
//! Semantics kept from BuildKit: names climb no higher than the destination, the
//! archive's owners are kept unless `--chown` says otherwise, `.wh.` names are plain
//! files, devices and fifos are skipped, and nothing is ever written through a symlink
//! this step made.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use imago_oci::layer::{LayerError, Rule};

use super::copy::{ensure_parents, remove_any, resolve_dest, CopyError, Item, NewDirs};
use crate::archive::{self, ArchiveError, Names, Rewrite};
use crate::fsview::{self, host_path, Kind, LowerView, OwnerMode};
use crate::temp::TempPath;

/// Where the unpacked tree goes and how missing dirs are made.
struct Merge<'a> {
    out: &'a Path,
    below: &'a LowerView,
    new_dirs: NewDirs,
    mode: OwnerMode,
    /// The dirs the archive names itself (relative to the destination).
    named: BTreeSet<Vec<String>>,
}

/// Extract `archive` (plain or compressed tar) into `out` at the item's destination.
pub(crate) fn extract(
    archive: &Path,
    out: &Path,
    below: &LowerView,
    it: &Item,
    mode: OwnerMode,
    new_dirs: NewDirs,
) -> Result<(), CopyError> {
    let dest = resolve_dest(below, &it.dest);
    ensure_parents(out, below, &dest, new_dirs, mode)?;
    let xerr = |err| CopyError::Extract {
        path: archive.to_path_buf(),
        err,
    };
    let scratch = TempPath::new(beside(out, "unpack"));
    let tar = TempPath::new(beside(out, "tar"));
    std::fs::create_dir(scratch.path()).map_err(|err| CopyError::Write {
        path: scratch.path().to_path_buf(),
        err,
    })?;
    let f = std::fs::File::open(archive).map_err(|err| CopyError::Read {
        path: archive.to_path_buf(),
        err,
    })?;
    // --chown gives every entry its owner; else the archive's are kept.
    let owner = (it.uid != 0 || it.gid != 0).then_some((it.uid, it.gid));
    let rw = Rewrite {
        names: Names::Clamp,
        owner,
    };
    let seen = archive::extract(f, tar.path(), scratch.path(), rw, mode).map_err(|e| match e {
        ArchiveError::Unpack(LayerError::Refused {
            path,
            rule: Rule::SymlinkInPath,
        }) => {
            // The refused entry's parent is the symlink.
            let link = path.rsplit_once('/').map_or(path.as_str(), |(p, _)| p);
            CopyError::ThroughSymlink(format!("/{}/{link}", dest.join("/")))
        }
        e => xerr(e),
    })?;
    tar.remove()?;
    let m = Merge {
        out,
        below,
        new_dirs,
        mode,
        named: seen.dirs,
    };
    m.dir(scratch.path(), &dest, &mut Vec::new())?;
    scratch.remove()?;
    Ok(())
}

/// A temp path next to the layer dir (same file system: the merge renames).
fn beside(out: &Path, what: &str) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}"));
    out.with_file_name(name)
}

impl Merge<'_> {
    /// Move the contents of the unpacked dir `from` into the layer at `dest` + `rel`.
    fn dir(&self, from: &Path, dest: &[String], rel: &mut Vec<String>) -> Result<(), CopyError> {
        let rerr = |err| CopyError::Read {
            path: from.to_path_buf(),
            err,
        };
        let mut names: Vec<_> = std::fs::read_dir(from)
            .map_err(rerr)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(rerr)?;
        names.sort();
        for name in names {
            let src = from.join(&name);
            rel.push(name.to_string_lossy().into_owned());
            let comps: Vec<String> = dest.iter().chain(rel.iter()).cloned().collect();
            let is_dir = std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_dir());
            if is_dir {
                self.subdir(&src, dest, rel, &comps)?;
            } else {
                let host = host_path(self.out, &comps);
                remove_any(&host);
                std::fs::rename(&src, &host).map_err(|err| CopyError::Write { path: host, err })?;
            }
            rel.pop();
        }
        Ok(())
    }

    /// A dir the archive names gets its owner, mode and mtime; one it only implies is
    /// copied up from the parent state, or made as the step's new dirs are.
    fn subdir(
        &self,
        src: &Path,
        dest: &[String],
        rel: &mut Vec<String>,
        comps: &[String],
    ) -> Result<(), CopyError> {
        if !self.named.contains(rel.as_slice()) {
            ensure_parents(self.out, self.below, comps, self.new_dirs, self.mode)?;
            return self.dir(src, dest, rel);
        }
        let host = host_path(self.out, comps);
        let werr = |err| CopyError::Write {
            path: host.clone(),
            err,
        };
        let e = fsview::stat(src, self.mode).map_err(|err| CopyError::Read {
            path: src.to_path_buf(),
            err,
        })?;
        if !std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
            remove_any(&host);
            std::fs::create_dir(&host).map_err(werr)?;
        }
        fsview::set_owner(&host, Kind::Dir, e.uid, e.gid, e.mode, self.mode).map_err(werr)?;
        self.dir(src, dest, rel)?;
        // After its contents, which change it.
        fsview::set_mtime(&host, e.mtime).map_err(werr)
    }
}
