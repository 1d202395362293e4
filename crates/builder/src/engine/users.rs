//! USER and `--chown` names resolved against the `/etc/passwd` and `/etc/group` of the
//! state a step writes into (docs/semantics.md item 78), read through its layer view:
//! bounded, and never through a symlink on the host.
//! Never: resolves a RUN container's user (the sandbox does, in the mounted root).

use std::io::Read;

use super::error::{io_err, StepError};
use crate::fsview::{Kind, LowerView};
use crate::perms;

/// A passwd or group file larger than this is refused (the sandbox's limit too).
const MAX_ETC_FILE: u64 = 16 << 20;

/// The text of a file in the view (symlinks followed inside the view), empty when
/// missing or not a regular file (a chain of links the view gave up following is not
/// read: on the host it could lead anywhere); opened without following a symlink and
/// read up to [`MAX_ETC_FILE`].
fn read(view: &LowerView, path: &str) -> Result<String, StepError> {
    let c = view.resolve(path, true);
    let Some(e) = view.lookup(&c).filter(|e| e.kind == Kind::File) else {
        return Ok(String::new());
    };
    let fd = rustix::fs::open(
        &e.host,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|errno| io_err("open", &e.host)(errno.into()))?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_ETC_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", &e.host))?;
    if bytes.len() as u64 > MAX_ETC_FILE {
        let big = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 16 MiB: not a passwd or group file",
        );
        return Err(io_err("read", &e.host)(big));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// uid/gid of a USER string (`0:0` for an empty one).
pub(super) fn user_ids(view: &LowerView, user: &str) -> Result<(u32, u32), StepError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let ids = perms::resolve_user(
        user,
        &read(view, "/etc/passwd")?,
        &read(view, "/etc/group")?,
    )?;
    Ok((ids.uid, ids.gid))
}

/// uid/gid of a `--chown` value.
pub(super) fn chown_ids(view: &LowerView, chown: &str) -> Result<(u32, u32), StepError> {
    Ok(perms::resolve_chown(
        chown,
        &read(view, "/etc/passwd")?,
        &read(view, "/etc/group")?,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsview::OwnerMode;

    #[test]
    fn names_resolve_through_links_inside_the_view_never_on_the_host() {
        let t = tempfile::tempdir().unwrap();
        let layer = t.path().join("layer");
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::fs::create_dir_all(layer.join("usr/lib")).unwrap();
        std::fs::write(
            layer.join("usr/lib/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(layer.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
        // An absolute link: resolved inside the view, never the host's /usr/lib.
        std::os::unix::fs::symlink("/usr/lib/passwd", layer.join("etc/passwd")).unwrap();
        let view = LowerView::from_bottom_first(vec![layer.clone()], OwnerMode::Real);
        assert_eq!(user_ids(&view, "app").unwrap(), (1000, 1000));
        assert_eq!(chown_ids(&view, "app").unwrap(), (1000, 1000));
        // A link to itself: the view gives up after 40 hops and is left with the link,
        // which on the host would lead to the host's own /etc/passwd (it has root).
        std::fs::remove_file(layer.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", layer.join("etc/passwd")).unwrap();
        assert!(
            user_ids(&view, "root").is_err(),
            "the host's passwd was read through the image's link"
        );
        assert_eq!(user_ids(&view, "").unwrap(), (0, 0));
    }
}
