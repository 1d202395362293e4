//! Whiteout names (the OCI/aufs tar convention) and overlayfs' on-disk forms.

/// Prefix of a whiteout entry: `.wh.NAME` deletes `NAME` of lower layers.
pub const PREFIX: &str = ".wh.";
/// Prefix of aufs metadata entries (`.wh..wh.plnk`, `.wh..wh.aufs`): skipped on unpack.
pub const META_PREFIX: &str = ".wh..wh.";
/// The opaque marker: the directory hides everything of lower layers.
pub const OPAQUE: &str = ".wh..wh..opq";

pub const USER_OPAQUE_XATTR: &str = "user.overlay.opaque";
pub const TRUSTED_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// fuse-overlayfs' own opaque marker (read on pack, never written).
pub const FUSE_OPAQUE_XATTR: &str = "user.fuseoverlayfs.opaque";

/// What a tar entry's base name means.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An ordinary name.
    Plain,
    /// `.wh..wh..opq`: the parent directory is opaque.
    Opaque,
    /// `.wh.NAME`: delete `NAME`.
    Whiteout(&'a [u8]),
    /// `.wh..wh.*` other than the opaque marker (aufs bookkeeping).
    Meta,
}

/// Classify a base name.
pub fn classify(base: &[u8]) -> Kind<'_> {
    if base == OPAQUE.as_bytes() {
        Kind::Opaque
    } else if base.starts_with(META_PREFIX.as_bytes()) {
        Kind::Meta
    } else if let Some(name) = base.strip_prefix(PREFIX.as_bytes()) {
        Kind::Whiteout(name)
    } else {
        Kind::Plain
    }
}

/// True for xattrs that are overlay or ownership bookkeeping: never taken from a tar
/// (a hostile layer could forge opaque dirs, redirects or owners) and never packed.
pub fn is_bookkeeping_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.overlay.")
        || name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.fuseoverlayfs.")
        || name.starts_with(b"security.fuseoverlayfs.")
        || name == super::OVERRIDE_STAT_XATTR.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names() {
        assert_eq!(classify(b"a"), Kind::Plain);
        assert_eq!(classify(b".wh.a"), Kind::Whiteout(b"a"));
        assert_eq!(classify(b".wh..wh..opq"), Kind::Opaque);
        assert_eq!(classify(b".wh..wh.plnk"), Kind::Meta);
        assert_eq!(classify(b".wh."), Kind::Whiteout(b""));
        assert!(is_bookkeeping_xattr(b"user.overlay.redirect"));
        assert!(is_bookkeeping_xattr(b"user.containers.override_stat"));
        assert!(!is_bookkeeping_xattr(b"user.foo"));
        assert!(!is_bookkeeping_xattr(b"security.capability"));
    }
}
