//! The content digest of a planned COPY/ADD for its cache key: destination paths,
//! kinds, modes, owners, link targets and the bytes of every file, archive and heredoc.
//!
//! Never: mtimes (a touched file with the same content hits the cache), and never
//! writes anything.

use sha2::{Digest as _, Sha256};

use super::{CopyError, Data, Item};

/// The digest of everything about the items that matters to the result: paths, kinds,
/// modes, owners, link targets and content (never mtimes).
pub fn items_digest(items: &[Item]) -> Result<String, CopyError> {
    let mut h = Sha256::new();
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by(|a, b| a.dest.cmp(&b.dest));
    for it in sorted {
        h.update(it.dest.join("/").as_bytes());
        h.update([0]);
        h.update(
            format!(
                "{:?} {:o} {} {} {:?}",
                it.kind, it.mode, it.uid, it.gid, it.link
            )
            .as_bytes(),
        );
        h.update([0]);
        match &it.data {
            Some(Data::Host(p)) | Some(Data::Archive(p)) => {
                let mut f = std::fs::File::open(p).map_err(|err| CopyError::Read {
                    path: p.clone(),
                    err,
                })?;
                let mut fh = Sha256::new();
                std::io::copy(&mut f, &mut HashWrite(&mut fh)).map_err(|err| CopyError::Read {
                    path: p.clone(),
                    err,
                })?;
                h.update(fh.finalize());
            }
            Some(Data::Inline(b)) => h.update(Sha256::digest(b)),
            None => {}
        }
    }
    Ok(hex::encode(h.finalize()))
}

struct HashWrite<'a>(&'a mut Sha256);
impl std::io::Write for HashWrite<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{fx, none, spec};
    use super::super::{plan, Sources};
    use super::*;
    use crate::fsview::{self, LowerView, OwnerMode};

    #[test]
    fn digest_ignores_mtime_but_not_content() {
        let f = fx(&["a"]);
        let view = LowerView::from_bottom_first(vec![f.ctx.clone()], OwnerMode::Real);
        let src = Sources {
            view: &view,
            context: true,
            ignored: &none,
        };
        let no = |_: &[String]| false;
        let d1 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        fsview::set_mtime(&f.ctx.join("a"), 12345).unwrap();
        let d2 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        assert_eq!(d1, d2);
        std::fs::write(f.ctx.join("a"), "changed").unwrap();
        let d3 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        assert_ne!(d1, d3);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f.ctx.join("a"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let d4 = items_digest(&plan(&spec(&["a"], "/a"), &src, &no).unwrap()).unwrap();
        assert_ne!(d3, d4);
    }
}
