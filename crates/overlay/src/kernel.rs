//! Kernel overlayfs options, with the short-path scheme for many layers.
//! Owns: the `lowerdir=…,upperdir=…,workdir=…,userxattr` string and the working
//! directory the mount must be made from.
//! Never: mounts (the sandbox does, inside the user namespace), forks.
//!
//! Mount options must fit in one page (4096 bytes, `PAGE_SIZE` in the kernel's
//! `mount_data` copy). Three steps, the first that fits wins:
//! 1. absolute lower paths;
//! 2. paths relative to the lowers' common parent (the store's `layers/` dir), with the
//!    mount made after `chdir` into it — lowerdir names become `<chainhex>/diff`;
//! 3. short symlinks `links_dir/<n>` → each lower (podman's `l/` scheme), mount made
//!    from `links_dir`: lowerdir names become `0:1:2…` (overlay resolves the links at
//!    mount time and keeps the targets).

use std::path::{Path, PathBuf};

use crate::{Layers, OverlayError};

/// The kernel's limit on mount data (one page), minus room for the trailing NUL.
pub const MAX_OPTIONS: usize = 4095;

/// A kernel overlayfs mount: `mount("overlay", target, "overlay", 0, data)` made with
/// the current directory set to `cwd` when it is Some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelOverlay {
    /// Where to `chdir` before mounting (relative lowerdir names).
    pub cwd: Option<PathBuf>,
    /// The options string.
    pub data: String,
    /// Short links to create before mounting: (link, target).
    pub links: Vec<(PathBuf, PathBuf)>,
}

impl KernelOverlay {
    /// Create the short links this plan needs (idempotent: an existing link is replaced).
    pub fn create_links(&self) -> Result<(), OverlayError> {
        for (link, target) in &self.links {
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(|source| OverlayError::Link {
                    link: link.clone(),
                    target: target.clone(),
                    source,
                })?;
            }
            // Ignoring a failed remove: the symlink call below reports the real problem.
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(target, link).map_err(|source| OverlayError::Link {
                link: link.clone(),
                target: target.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

fn check(p: &Path) -> Result<String, OverlayError> {
    let s = p.to_string_lossy();
    if s.contains(',') || s.contains(':') {
        return Err(OverlayError::BadPath(p.to_path_buf()));
    }
    Ok(s.into_owned())
}

fn options(lowers: &[String], upper: &str, work: &str) -> String {
    format!(
        "lowerdir={},upperdir={upper},workdir={work},userxattr",
        lowers.join(":")
    )
}

/// Plan the options for `layers` (see the module doc for the three steps).
pub fn plan(layers: &Layers) -> Result<KernelOverlay, OverlayError> {
    let lowers = &layers.lowers_top_first;
    if lowers.is_empty() {
        return Err(OverlayError::NoLayers);
    }
    let upper = check(&layers.upper)?;
    let work = check(&layers.work)?;
    let abs: Vec<String> = lowers.iter().map(|p| check(p)).collect::<Result<_, _>>()?;
    let data = options(&abs, &upper, &work);
    if data.len() <= MAX_OPTIONS {
        return Ok(KernelOverlay {
            cwd: None,
            data,
            links: vec![],
        });
    }
    if let Some(parent) = common_parent(lowers) {
        let rel: Vec<String> = lowers
            .iter()
            .filter_map(|p| p.strip_prefix(&parent).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let data = options(&rel, &upper, &work);
        if rel.len() == lowers.len() && data.len() <= MAX_OPTIONS {
            return Ok(KernelOverlay {
                cwd: Some(parent),
                data,
                links: vec![],
            });
        }
    }
    let dir = layers.links_dir.join("l");
    let names: Vec<String> = (0..lowers.len()).map(|i| i.to_string()).collect();
    let data = options(&names, &upper, &work);
    if data.len() > MAX_OPTIONS {
        return Err(OverlayError::TooManyLayers {
            layers: lowers.len(),
            len: data.len(),
            max: MAX_OPTIONS,
        });
    }
    let links = names
        .iter()
        .zip(lowers)
        .map(|(n, t)| (dir.join(n), t.clone()))
        .collect();
    Ok(KernelOverlay {
        cwd: Some(dir),
        data,
        links,
    })
}

/// The deepest dir that contains every path (None if only `/`).
fn common_parent(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut it = paths.iter();
    let mut acc: PathBuf = it.next()?.parent()?.to_path_buf();
    for p in it {
        while !p.starts_with(&acc) {
            acc = acc.parent()?.to_path_buf();
        }
    }
    (acc.as_os_str().len() > 1).then_some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(n: usize) -> Layers {
        let base = "/home/user/.local/share/imago/imago/layers";
        Layers {
            lowers_top_first: (0..n)
                .map(|i| PathBuf::from(format!("{base}/{i:064x}/diff")))
                .collect(),
            upper: "/home/user/.local/share/imago/containers/abc/upper".into(),
            work: "/home/user/.local/share/imago/containers/abc/work".into(),
            links_dir: "/home/user/.local/share/imago/containers/abc".into(),
        }
    }

    #[test]
    fn few_layers_absolute() {
        let p = plan(&layers(3)).unwrap();
        assert_eq!(p.cwd, None);
        assert!(p.data.starts_with("lowerdir=/home/user/"));
        assert!(p.data.ends_with(",userxattr"));
        assert_eq!(p.data.matches(':').count(), 2);
    }

    #[test]
    fn many_layers_relative_to_common_parent() {
        let p = plan(&layers(40)).unwrap();
        assert_eq!(
            p.cwd.as_deref(),
            Some(Path::new("/home/user/.local/share/imago/imago/layers"))
        );
        assert!(p.data.starts_with(&format!("lowerdir={:064x}/diff:", 0)));
        assert!(p.data.len() <= MAX_OPTIONS);
        assert!(p.links.is_empty());
    }

    #[test]
    fn very_many_layers_use_short_links() {
        let p = plan(&layers(120)).unwrap();
        assert_eq!(
            p.cwd.as_deref(),
            Some(Path::new("/home/user/.local/share/imago/containers/abc/l"))
        );
        assert!(p.data.starts_with("lowerdir=0:1:2:"));
        assert_eq!(p.links.len(), 120);
        assert!(p.links[5].1.ends_with(format!("{:064x}/diff", 5)));
    }

    #[test]
    fn refuses_empty_and_bad_paths() {
        assert!(matches!(plan(&layers(0)), Err(OverlayError::NoLayers)));
        let mut l = layers(1);
        l.lowers_top_first[0] = "/a,b".into();
        assert!(matches!(plan(&l), Err(OverlayError::BadPath(_))));
    }

    #[test]
    fn absurd_layer_counts_fail_cleanly() {
        assert!(matches!(
            plan(&layers(2000)),
            Err(OverlayError::TooManyLayers { .. })
        ));
    }

    #[test]
    fn fuse_plans_the_layers_as_given() {
        let l = layers(2);
        assert_eq!(
            crate::plan(crate::RootfsMethod::Fuse, &l).unwrap(),
            crate::RootfsPlan::Fuse(l.clone())
        );
    }

    #[test]
    fn links_are_created() {
        let t = std::env::temp_dir().join(format!("imago-ovl-links-{}", std::process::id()));
        let mut l = layers(120);
        l.links_dir = t.clone();
        let p = plan(&l).unwrap();
        p.create_links().unwrap();
        p.create_links().unwrap(); // idempotent
        assert_eq!(
            std::fs::read_link(t.join("l/7")).unwrap(),
            l.lowers_top_first[7]
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
}
