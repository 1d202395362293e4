//! Writing planned items into a new layer dir on top of the parent state: symlinks of
//! the parent state on the destination path followed (76), parent dirs copied up with
//! their metadata or made new (root, or `--chown`; `--chmod`'s mode), files, dirs and
//! symlinks with their owners, modes and mtimes; archives handed to `add_tar`.
//!
//! Never: writes through a symlink this same instruction made, or outside `out`; never
//! decides what to write (`plan`).

use std::path::Path;

use super::add_tar;
use super::{join, CopyError, Data, Item, NewDirs};
use crate::fsview::{self, host_path, Kind, LowerView, OwnerMode};

/// Write `items` into `out` (an empty layer dir) on top of `below` (the parent state).
/// Parent dirs that exist below are copied up with their metadata (owner and mode kept,
/// 77); missing ones are made with `new_dirs` (root, or --chown; --chmod's mode, 79).
pub fn apply(
    items: &[Item],
    out: &Path,
    below: &LowerView,
    new_dirs: NewDirs,
    mode: OwnerMode,
) -> Result<(), CopyError> {
    for it in items {
        let comps = resolve_dest(below, &it.dest);
        if comps.is_empty() {
            if let Some(Data::Archive(p)) = &it.data {
                add_tar::extract(p, out, below, it, mode, new_dirs)?;
            }
            continue;
        }
        ensure_parents(out, below, &comps[..comps.len() - 1], new_dirs, mode)?;
        let host = host_path(out, &comps);
        let werr = |err| CopyError::Write {
            path: host.clone(),
            err,
        };
        match it.kind {
            Kind::Dir => {
                if it.mode == u32::MAX {
                    ensure_parents(out, below, &comps, new_dirs, mode)?;
                } else {
                    if !std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                        // Ignoring a failure: a file left in the way makes create_dir fail.
                        let _ = std::fs::remove_file(&host);
                        std::fs::create_dir(&host).map_err(werr)?;
                    }
                    fsview::set_owner(&host, Kind::Dir, it.uid, it.gid, it.mode, mode)
                        .map_err(werr)?;
                    fsview::set_mtime(&host, it.mtime).map_err(werr)?;
                }
                if let Some(Data::Archive(p)) = &it.data {
                    add_tar::extract(p, out, below, it, mode, new_dirs)?;
                }
            }
            Kind::File => {
                remove_any(&host);
                match &it.data {
                    Some(Data::Host(p)) => {
                        std::fs::copy(p, &host).map_err(werr)?;
                    }
                    Some(Data::Inline(b)) => std::fs::write(&host, b).map_err(werr)?,
                    _ => std::fs::write(&host, b"").map_err(werr)?,
                }
                fsview::set_owner(&host, Kind::File, it.uid, it.gid, it.mode, mode)
                    .map_err(werr)?;
                fsview::set_mtime(&host, it.mtime).map_err(werr)?;
            }
            Kind::Symlink => {
                remove_any(&host);
                std::os::unix::fs::symlink(it.link.clone().unwrap_or_default(), &host)
                    .map_err(werr)?;
                fsview::set_owner(&host, Kind::Symlink, it.uid, it.gid, 0o777, mode)
                    .map_err(werr)?;
                fsview::set_mtime(&host, it.mtime).map_err(werr)?;
            }
            Kind::Other => {}
        }
    }
    // Dirs got their mtimes before their contents were written: set them again.
    for it in items
        .iter()
        .filter(|i| i.kind == Kind::Dir && i.mode != u32::MAX)
    {
        let host = host_path(out, &resolve_dest(below, &it.dest));
        // Ignoring a failure: the first pass set this mtime and reported its errors; a
        // later entry of this copy may have replaced the dir.
        let _ = fsview::set_mtime(&host, it.mtime);
    }
    Ok(())
}

/// Clear `p` (a file, a symlink or a whole tree) in the layer being written, so that an
/// entry can take its place. Ignoring a failure: the write that follows reports it.
pub(super) fn remove_any(p: &Path) {
    let _ = imago_oci::layer::remove_tree(p);
}

/// Resolve symlinks in the destination's parent path through the parent state (76): a
/// COPY to `/bin/x` with `/bin -> usr/bin` writes `/usr/bin/x`.
pub(super) fn resolve_dest(below: &LowerView, dest: &[String]) -> Vec<String> {
    if dest.is_empty() {
        return Vec::new();
    }
    let parent = below.resolve(&dest[..dest.len() - 1].join("/"), true);
    join(&parent, &[dest[dest.len() - 1].clone()])
}

/// Make the dirs of `comps` in `out`: copied up from `below` when they exist there,
/// else new with `new_dirs`.
pub fn ensure_parents(
    out: &Path,
    below: &LowerView,
    comps: &[String],
    new_dirs: NewDirs,
    mode: OwnerMode,
) -> Result<(), CopyError> {
    for n in 1..=comps.len() {
        let host = host_path(out, &comps[..n]);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => continue,
            // A symlink this COPY/ADD wrote (its target is a container path, meaningless
            // on the host): never write through it.
            Ok(m) if m.file_type().is_symlink() => {
                return Err(CopyError::ThroughSymlink(format!(
                    "/{}",
                    comps[..n].join("/")
                )));
            }
            Ok(_) => {
                // A file in the way of a directory: replaced, as a copy onto it would.
                // Ignoring a failure: create_dir below then fails and reports it.
                let _ = std::fs::remove_file(&host);
            }
            Err(_) => {}
        }
        let werr = |err| CopyError::Write {
            path: host.clone(),
            err,
        };
        std::fs::create_dir(&host).map_err(werr)?;
        match below.lookup(&comps[..n]).filter(|e| e.kind == Kind::Dir) {
            Some(e) => {
                fsview::set_owner(&host, Kind::Dir, e.uid, e.gid, e.mode, mode).map_err(werr)?;
                fsview::set_mtime(&host, e.mtime).map_err(werr)?;
            }
            None => {
                fsview::set_owner(
                    &host,
                    Kind::Dir,
                    new_dirs.uid,
                    new_dirs.gid,
                    new_dirs.mode,
                    mode,
                )
                .map_err(werr)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{fx, none, run, spec};

    #[test]
    fn dest_symlink_in_parent_state_followed() {
        let f = fx(&["f"]);
        std::fs::create_dir_all(f.below.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", f.below.join("bin")).unwrap();
        let m = run(&f, spec(&["f"], "/bin/"), &none).unwrap();
        assert!(m.contains_key("usr/bin/f"), "{m:?}");
    }
}
