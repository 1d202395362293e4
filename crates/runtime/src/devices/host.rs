//! docker's `--device HOST[:CONTAINER][:PERMS]` for a host path: the parse (docker's
//! rules: a middle part made of r, w, m is the permissions), and the host check shared
//! with CDI device nodes (the node must exist: it is bound, never made).
//! Never: reads CDI specs, mounts.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A `--device` value that names a host path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// The node (or a directory of nodes) on the host.
    pub src: PathBuf,
    /// Where it appears inside the container.
    pub dst: PathBuf,
    /// docker's cgroup permissions (`rwm` unless given).
    pub perms: String,
}

/// What a host path is, for a device bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A character device, with its major and minor numbers.
    Char(u64, u64),
    /// A block device, with its major and minor numbers.
    Block(u64, u64),
    /// A FIFO.
    Fifo,
    /// A directory (of device nodes: bound whole).
    Dir,
    /// Anything else (a regular file, a socket).
    Other,
}

/// docker's permission string: one or more of r, w, m, each at most once.
pub fn valid_perms(p: &str) -> bool {
    !p.is_empty()
        && p.chars().all(|c| "rwm".contains(c))
        && ['r', 'w', 'm'].iter().all(|c| p.matches(*c).count() <= 1)
}

/// Parse `HOST[:CONTAINER][:PERMS]` (`HOST:PERMS` too); `Err` says what is wrong.
pub fn parse(spec: &str) -> Result<HostDevice, &'static str> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, p] if valid_perms(p) => (*s, *s, *p),
        [s, d] => (*s, *d, "rwm"),
        [s, d, p] => {
            if !valid_perms(p) {
                return Err("the permissions must be made of r, w and m");
            }
            (*s, *d, *p)
        }
        _ => return Err("expected HOST[:CONTAINER][:PERMISSIONS]"),
    };
    if !src.starts_with('/') {
        return Err(
            "expected an absolute host path (/dev/…) or a CDI name (vendor.com/class=name)",
        );
    }
    if !dst.starts_with('/') {
        return Err("the container path must be absolute");
    }
    Ok(HostDevice {
        src: src.into(),
        dst: dst.into(),
        perms: perms.into(),
    })
}

/// What `p` is on the host (symlinks followed, as the bind follows them).
pub fn node_kind(p: &Path) -> std::io::Result<NodeKind> {
    let md = std::fs::metadata(p)?;
    let ft = md.file_type();
    let (major, minor) = (
        rustix::fs::major(md.rdev()) as u64,
        rustix::fs::minor(md.rdev()) as u64,
    );
    Ok(if ft.is_char_device() {
        NodeKind::Char(major, minor)
    } else if ft.is_block_device() {
        NodeKind::Block(major, minor)
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_dir() {
        NodeKind::Dir
    } else {
        NodeKind::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(s: &str, d: &str, p: &str) -> HostDevice {
        HostDevice {
            src: s.into(),
            dst: d.into(),
            perms: p.into(),
        }
    }

    #[test]
    fn docker_forms() {
        assert_eq!(parse("/dev/x").unwrap(), dev("/dev/x", "/dev/x", "rwm"));
        assert_eq!(parse("/dev/x:r").unwrap(), dev("/dev/x", "/dev/x", "r"));
        assert_eq!(
            parse("/dev/x:/dev/y").unwrap(),
            dev("/dev/x", "/dev/y", "rwm")
        );
        assert_eq!(
            parse("/dev/x:/dev/y:rw").unwrap(),
            dev("/dev/x", "/dev/y", "rw")
        );
        assert!(parse("/dev/x:/dev/y:rx").is_err());
        assert!(parse("/dev/x:/dev/y:rr").is_err());
        assert!(parse("/dev/x:y").is_err());
        assert!(parse("x").is_err());
        assert!(parse("/a:/b:r:w").is_err());
    }

    #[test]
    fn kinds() {
        assert!(matches!(
            node_kind(Path::new("/dev/null")).unwrap(),
            NodeKind::Char(1, 3)
        ));
        assert_eq!(node_kind(Path::new("/")).unwrap(), NodeKind::Dir);
        assert!(node_kind(Path::new("/no/such/node")).is_err());
    }
}
