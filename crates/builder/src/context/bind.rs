//! The build context as `RUN --mount=type=bind` (without `from=`) sees it: BuildKit
//! mounts the context it received, which `.dockerignore` has already filtered, so files
//! the user hid (`.env`, keys) must not show up there. With an ignore file, ibuild mounts
//! a copy of the context without the excluded paths (hard links where the file system
//! allows, else copies); without one, the context itself.
//!
//! Never: writes into the context; follows a symlink of the context (they are copied as
//! links, and a mount's `source=` is resolved inside the context root).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use imago_dockerfile::DockerIgnore;

use crate::fsview::{self, LowerView, OwnerMode};

/// Copying the filtered context failed.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("read the build context at `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write the filtered build context at `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Copy `context` into `dest` (which must not exist) without what `ignore` excludes.
/// Modes and mtimes are kept; special files (sockets, fifos, devices) are left out.
pub fn filtered_copy(
    context: &Path,
    dest: &Path,
    ignore: &DockerIgnore,
) -> Result<(), ContextError> {
    make_dir(dest)?;
    copy_dir(context, dest, "", ignore, true)?;
    // The root keeps the context's mode (a read-only bind shows it).
    finish_dir(context, dest)
}

/// Copies the entries of `src` (context path `rel`) into `dst`. `visible` is false under
/// an excluded directory walked only for `!` exceptions: `dst` may not exist yet then.
fn copy_dir(
    src: &Path,
    dst: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    visible: bool,
) -> Result<(), ContextError> {
    let rerr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContextError::Read { path, source }
    };
    let mut names: Vec<_> = std::fs::read_dir(src)
        .map_err(rerr(src))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(rerr(src))?;
    names.sort();
    for name in names {
        let (from, to) = (src.join(&name), dst.join(&name));
        let rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let md = std::fs::symlink_metadata(&from).map_err(rerr(&from))?;
        let excluded = ignore.is_excluded(&rel);
        if md.is_dir() {
            if !excluded {
                if !visible {
                    make_parents(&to)?;
                }
                make_dir(&to)?;
                copy_dir(&from, &to, &rel, ignore, true)?;
                finish_dir(&from, &to)?;
            } else if ignore.has_exclusions() {
                // Children may be re-included by a `!` pattern.
                copy_dir(&from, &to, &rel, ignore, false)?;
                if to.exists() {
                    finish_dir(&from, &to)?;
                }
            }
            continue;
        }
        if excluded {
            continue;
        }
        let ft = md.file_type();
        if !(ft.is_file() || ft.is_symlink()) {
            continue;
        }
        if !visible {
            make_parents(&to)?;
        }
        let werr = |source| ContextError::Write {
            path: to.clone(),
            source,
        };
        if ft.is_symlink() {
            let target = std::fs::read_link(&from).map_err(rerr(&from))?;
            std::os::unix::fs::symlink(target, &to).map_err(werr)?;
            fsview::set_mtime(&to, md.mtime()).map_err(werr)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            // Another file system, or a file protected_hardlinks keeps us from linking.
            std::fs::copy(&from, &to).map_err(werr)?;
            fsview::set_mtime(&to, md.mtime()).map_err(werr)?;
        }
    }
    Ok(())
}

fn make_dir(p: &Path) -> Result<(), ContextError> {
    std::fs::create_dir(p).map_err(|source| ContextError::Write {
        path: p.to_path_buf(),
        source,
    })
}

/// The parents of a path re-included under excluded directories.
fn make_parents(p: &Path) -> Result<(), ContextError> {
    match p.parent() {
        Some(parent) if !parent.exists() => {
            std::fs::create_dir_all(parent).map_err(|source| ContextError::Write {
                path: parent.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Give a copied directory its source's mode and mtime, once its entries are written.
fn finish_dir(src: &Path, dst: &Path) -> Result<(), ContextError> {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::symlink_metadata(src).map_err(|source| ContextError::Read {
        path: src.to_path_buf(),
        source,
    })?;
    let werr = |source| ContextError::Write {
        path: dst.to_path_buf(),
        source,
    };
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))
        .map_err(werr)?;
    fsview::set_mtime(dst, md.mtime()).map_err(werr)
}

/// The host path a context bind mount's `source=` names under `root` (the context or its
/// filtered copy): symlinks are resolved inside `root`, as BuildKit does, so a link in
/// the context never makes the mount show a host path outside it.
pub fn bind_source(root: &Path, source: Option<&str>) -> PathBuf {
    let view = LowerView {
        dirs: vec![root.to_path_buf()],
        mode: OwnerMode::Real,
    };
    let comps = view.resolve(source.unwrap_or("/"), true);
    fsview::host_path(root, &comps)
}

/// A digest of what a bind mount of `root` shows, for the RUN's cache key (BuildKit keys
/// a mounted context by its content): every path, kind, mode, symlink target and file
/// content, never mtimes or owners (the context is the user's). A missing root digests as
/// empty; the mount then fails on its own.
pub fn tree_digest(root: &Path) -> Result<String, ContextError> {
    use sha2::{Digest as _, Sha256};
    let rerr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContextError::Read { path, source }
    };
    let mut h = Sha256::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !md.is_dir() {
            // `source=` named a file.
            h.update(format!("f {:o}\0", md.mode() & 0o7777));
            let mut f = std::fs::File::open(&dir).map_err(rerr(&dir))?;
            std::io::copy(&mut f, &mut h).map_err(rerr(&dir))?;
            continue;
        }
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(rerr(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(rerr(&dir))?;
        names.sort();
        h.update(format!("d {rel} {:o}\0", md.mode() & 0o7777));
        for name in names.into_iter().rev() {
            let p = dir.join(&name);
            let r = format!("{rel}/{}", name.to_string_lossy());
            let md = std::fs::symlink_metadata(&p).map_err(rerr(&p))?;
            let ft = md.file_type();
            if ft.is_dir() {
                stack.push((p, r));
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).map_err(rerr(&p))?;
                h.update(format!("l {r} {}\0", t.display()));
            } else if ft.is_file() {
                h.update(format!("f {r} {:o} {}\0", md.mode() & 0o7777, md.len()));
                let mut f = std::fs::File::open(&p).map_err(rerr(&p))?;
                std::io::copy(&mut f, &mut h).map_err(rerr(&p))?;
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if e.file_type().unwrap().is_dir() {
                    stack.push(p);
                    out.push(format!("{rel}/"));
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_copy_leaves_out_what_dockerignore_excludes() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        for f in [
            "app.py",
            ".env",
            "keys/id_rsa",
            "keys/public.pem",
            "src/main.rs",
            "src/secret.txt",
        ] {
            let p = ctx.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f).unwrap();
        }
        std::os::unix::fs::symlink("../app.py", ctx.join("src/link")).unwrap();
        std::fs::set_permissions(ctx.join("src"), std::fs::Permissions::from_mode(0o750)).unwrap();
        let ig = DockerIgnore::parse(
            ".env\nkeys\n!keys/public.pem\n**/secret.txt\n",
            ".dockerignore",
        )
        .unwrap();
        let out = t.path().join("out");
        filtered_copy(&ctx, &out, &ig).unwrap();
        assert_eq!(
            files(&out),
            [
                "app.py",
                "keys/",
                "keys/public.pem",
                "src/",
                "src/link",
                "src/main.rs"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(out.join("src/main.rs")).unwrap(),
            "src/main.rs"
        );
        assert_eq!(
            std::fs::read_link(out.join("src/link")).unwrap(),
            Path::new("../app.py")
        );
        let mode = std::fs::metadata(out.join("src")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o750);
        // The context is untouched.
        assert!(ctx.join(".env").exists() && ctx.join("keys/id_rsa").exists());
    }

    #[test]
    fn tree_digest_follows_content_not_mtimes() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("ctx");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f"), "1").unwrap();
        let d1 = tree_digest(&root).unwrap();
        fsview::set_mtime(&root.join("a/f"), 12345).unwrap();
        assert_eq!(tree_digest(&root).unwrap(), d1);
        std::fs::write(root.join("a/f"), "2").unwrap();
        let d2 = tree_digest(&root).unwrap();
        assert_ne!(d2, d1);
        std::fs::write(root.join("b"), "").unwrap();
        assert_ne!(tree_digest(&root).unwrap(), d2);
    }

    #[test]
    fn bind_sources_resolve_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("ctx");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("sub/up")).unwrap();
        assert_eq!(bind_source(&root, None), root);
        assert_eq!(bind_source(&root, Some("sub")), root.join("sub"));
        assert_eq!(bind_source(&root, Some("etc-link")), root.join("etc"));
        assert_eq!(bind_source(&root, Some("sub/up")), root);
        assert_eq!(bind_source(&root, Some("../..")), root);
    }
}
