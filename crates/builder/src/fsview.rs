//! A read-only view of a stack of unpacked layer dirs with overlay semantics (whiteouts
//! as 0:0 char devices, opaque dirs by the `user.overlay.opaque` / `trusted.overlay.opaque`
//! xattr), used to look at the parent state of a COPY/ADD/WORKDIR without mounting:
//! does the destination exist, is it a dir, who owns it, where do its symlinks lead.
//! Also the ownership seam: real (lstat/lchown) or the `user.containers.override_stat`
//! xattr (single-id mapping).
//!
//! Never: writes into a lower dir; mounts anything.

use std::ffi::OsStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

// The workspace's one owner-mode type, re-exported so `crate::fsview::OwnerMode` keeps
// naming it.
pub use imago_oci::layer::OwnerMode;
use imago_oci::layer::{OverrideStat, OVERRIDE_STAT_XATTR};

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

/// The metadata of a file as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path of the file on the host (in some layer dir).
    pub host: PathBuf,
    pub kind: Kind,
    /// Permission bits (incl. setuid/setgid/sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// Read an entry's in-container metadata at a host path.
pub fn stat(host: &Path, mode: OwnerMode) -> std::io::Result<Entry> {
    let md = std::fs::symlink_metadata(host)?;
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    let mut e = Entry {
        host: host.to_path_buf(),
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: md.mtime(),
    };
    if mode == OwnerMode::Xattr {
        if let Some(o) = read_override(host) {
            e.uid = o.uid;
            e.gid = o.gid;
            e.mode = o.mode;
        } else {
            e.uid = 0;
            e.gid = 0;
        }
    }
    Ok(e)
}

/// The override record of `host` (not following it); `None` when absent or malformed.
pub fn read_override(host: &Path) -> Option<OverrideStat> {
    let mut buf = [0u8; 128];
    let n = rustix::fs::lgetxattr(host, OVERRIDE_STAT_XATTR, &mut buf).ok()?;
    OverrideStat::parse(&buf[..n])
}

/// Give `host` the in-container owner and mode (`mode` = permission bits).
pub fn set_owner(
    host: &Path,
    kind: Kind,
    uid: u32,
    gid: u32,
    perm: u32,
    mode: OwnerMode,
) -> std::io::Result<()> {
    match mode {
        OwnerMode::Real => {
            std::os::unix::fs::lchown(host, Some(uid), Some(gid))?;
            if kind != Kind::Symlink {
                set_perm(host, perm)?;
            }
        }
        OwnerMode::Xattr => {
            if kind == Kind::Symlink {
                // Symlinks cannot carry user.* xattrs: their owner is root in the image.
                return Ok(());
            }
            // On disk: no setuid/setgid/sticky, and the real owner can always read and
            // write (and search); the xattr holds the truth (oci's OwnerMode::Xattr).
            let real = (perm & 0o777) | if kind == Kind::Dir { 0o700 } else { 0o600 };
            set_perm(host, real)?;
            let record = OverrideStat {
                uid,
                gid,
                mode: perm & 0o7777,
                kind: if kind == Kind::Dir { "dir" } else { "file" }.to_owned(),
            };
            rustix::fs::lsetxattr(
                host,
                OVERRIDE_STAT_XATTR,
                record.format().as_bytes(),
                rustix::fs::XattrFlags::empty(),
            )?;
        }
    }
    Ok(())
}

fn set_perm(host: &Path, perm: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(host, std::fs::Permissions::from_mode(perm))
}

/// Set a file's mtime (not following symlinks).
pub fn set_mtime(host: &Path, secs: i64) -> std::io::Result<()> {
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        host,
        &t,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

fn is_whiteout(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_char_device() && m.rdev() == 0)
        .unwrap_or(false)
}

fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    for name in ["user.overlay.opaque", "trusted.overlay.opaque"] {
        if let Ok(n) = rustix::fs::lgetxattr(p, name, &mut buf) {
            if n >= 1 && buf[0] == b'y' {
                return true;
            }
        }
    }
    false
}

/// Clean a container path into its components (no `.`/`..` escapes above the root).
pub fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

/// A stack of layer dirs, top first.
#[derive(Debug, Clone)]
pub struct LowerView {
    pub dirs: Vec<PathBuf>,
    pub mode: OwnerMode,
}

impl LowerView {
    /// A view of `dirs` given bottom first (the store's order).
    pub fn from_bottom_first(mut dirs: Vec<PathBuf>, mode: OwnerMode) -> Self {
        dirs.reverse();
        Self { dirs, mode }
    }

    /// The entry at a clean container path (components), without following a final
    /// symlink; intermediate components are taken literally (see [`LowerView::resolve`]).
    pub fn lookup(&self, comps: &[String]) -> Option<Entry> {
        if comps.is_empty() {
            // The root: the top-most layer that has it, else a default dir.
            return self.dirs.first().and_then(|d| stat(d, self.mode).ok());
        }
        for dir in &self.dirs {
            let mut stop = false;
            let mut cur = dir.clone();
            let mut hidden = false;
            let mut missing = false;
            for c in &comps[..comps.len() - 1] {
                cur.push(c);
                match std::fs::symlink_metadata(&cur) {
                    Err(_) => {
                        missing = true;
                        break;
                    }
                    Ok(m) if m.is_dir() => {
                        if is_opaque(&cur) {
                            stop = true;
                        }
                    }
                    Ok(_) => {
                        hidden = true;
                        break;
                    }
                }
            }
            if hidden {
                return None;
            }
            if !missing {
                cur.push(&comps[comps.len() - 1]);
                if std::fs::symlink_metadata(&cur).is_ok() {
                    if is_whiteout(&cur) {
                        return None;
                    }
                    return stat(&cur, self.mode).ok();
                }
            }
            if stop {
                return None;
            }
        }
        None
    }

    /// Names in a directory of the merged view (whiteouts applied), sorted.
    pub fn read_dir(&self, comps: &[String]) -> Vec<String> {
        let mut seen = std::collections::BTreeMap::<String, bool>::new();
        for dir in &self.dirs {
            let mut p = dir.clone();
            for c in comps {
                p.push(c);
            }
            let Ok(rd) = std::fs::read_dir(&p) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                seen.entry(name.clone())
                    .or_insert_with(|| !is_whiteout(&e.path()));
            }
            if is_opaque(&p) {
                break;
            }
        }
        seen.into_iter()
            .filter(|(_, keep)| *keep)
            .map(|(n, _)| n)
            .collect()
    }

    /// Resolve symlinks along `path` inside the view (absolute links restart at the root,
    /// `..` never leaves it). With `follow_last`, a final symlink is followed too.
    /// Returns the clean components of the real path (which may not exist).
    pub fn resolve(&self, path: &str, follow_last: bool) -> Vec<String> {
        let mut todo: Vec<String> = components(path);
        todo.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            let last = todo.is_empty();
            if last && !follow_last {
                break;
            }
            if let Some(e) = self.lookup(&done) {
                if e.kind == Kind::Symlink && hops < 40 {
                    hops += 1;
                    let target = std::fs::read_link(&e.host).unwrap_or_default();
                    let t = target.to_string_lossy().into_owned();
                    done.pop();
                    if t.starts_with('/') {
                        done.clear();
                    }
                    let mut more: Vec<String> = t
                        .split('/')
                        .filter(|s| !s.is_empty() && *s != ".")
                        .map(str::to_string)
                        .collect();
                    more.reverse();
                    todo.extend(more);
                }
            }
        }
        done
    }
}

impl LowerView {
    /// The first symlink met while resolving `path` (as [`LowerView::resolve`] does,
    /// following the last one too) whose target leaves the view's root: an absolute
    /// target, or one with more `..` than it has parents. Returns the link's path and
    /// its target. Such links are resolved inside the root; this says why the result
    /// may then be missing.
    pub fn escaping_link(&self, path: &str) -> Option<(String, String)> {
        // Each pending component remembers the link whose target it came from.
        let mut todo: Vec<(String, Option<usize>)> = components(path)
            .into_iter()
            .rev()
            .map(|c| (c, None))
            .collect();
        let mut links: Vec<(String, String)> = Vec::new();
        let mut done: Vec<String> = Vec::new();
        while let Some((c, from)) = todo.pop() {
            if c == ".." {
                if done.pop().is_none() {
                    if let Some(i) = from {
                        return links.get(i).cloned();
                    }
                }
                continue;
            }
            done.push(c);
            let Some(e) = self.lookup(&done) else {
                continue;
            };
            if e.kind != Kind::Symlink || links.len() >= 40 {
                continue;
            }
            let target = std::fs::read_link(&e.host)
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            links.push((done.join("/"), target.clone()));
            if target.starts_with('/') {
                return links.last().cloned();
            }
            done.pop();
            let i = links.len() - 1;
            todo.extend(
                target
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .rev()
                    .map(|s| (s.to_string(), Some(i))),
            );
        }
        None
    }
}

/// Join components under a host dir.
pub fn host_path(root: &Path, comps: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(OsStr::new(c));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    #[test]
    fn lookup_top_wins_and_symlinks_resolve() {
        let t = tempfile::tempdir().unwrap();
        let (lo, hi) = (t.path().join("lo"), t.path().join("hi"));
        w(&lo.join("usr/bin/a"), "lo");
        w(&hi.join("usr/bin/a"), "hi");
        std::os::unix::fs::symlink("usr/bin", lo.join("bin")).unwrap();
        let v = LowerView::from_bottom_first(vec![lo.clone(), hi.clone()], OwnerMode::Real);
        let e = v.lookup(&components("/usr/bin/a")).unwrap();
        assert_eq!(std::fs::read_to_string(e.host).unwrap(), "hi");
        assert_eq!(v.resolve("/bin/a", true), components("/usr/bin/a"));
        assert_eq!(v.resolve("/bin", false), components("/bin"));
        assert_eq!(v.lookup(&components("/bin")).unwrap().kind, Kind::Symlink);
        assert_eq!(v.read_dir(&components("/usr/bin")), ["a"]);
        assert!(v.lookup(&components("/nope")).is_none());
    }

    #[test]
    fn links_leaving_the_root_are_named() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        w(&ctx.join("dir/f"), "x");
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../outside", ctx.join("dir/up")).unwrap();
        std::os::unix::fs::symlink("dir/f", ctx.join("inside")).unwrap();
        std::os::unix::fs::symlink("../dir", ctx.join("dir/self")).unwrap();
        let v = LowerView::from_bottom_first(vec![ctx], OwnerMode::Real);
        assert_eq!(
            v.escaping_link("abs"),
            Some(("abs".into(), "/etc/passwd".into()))
        );
        assert_eq!(
            v.escaping_link("dir/up"),
            Some(("dir/up".into(), "../../outside".into()))
        );
        assert_eq!(v.escaping_link("inside"), None);
        assert_eq!(v.escaping_link("dir/self/f"), None);
        // A `..` written in the path itself is not a link's doing.
        assert_eq!(v.escaping_link("../x"), None);
    }

    #[test]
    fn override_xattr_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, "x").unwrap();
        if set_owner(&f, Kind::File, 33, 34, 0o640, OwnerMode::Xattr).is_err() {
            eprintln!("SKIP: user xattrs not supported on this fs");
            return;
        }
        let e = stat(&f, OwnerMode::Xattr).unwrap();
        assert_eq!((e.uid, e.gid, e.mode), (33, 34, 0o640));
        // The record is the layer crate's, byte for byte (what pack reads back).
        let mut buf = [0u8; 64];
        let n = rustix::fs::lgetxattr(&f, OVERRIDE_STAT_XATTR, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"33:34:0640:file");
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        set_owner(&d, Kind::Dir, 0, 0, 0o1777, OwnerMode::Xattr).unwrap();
        assert_eq!(read_override(&d).unwrap().format(), "0:0:01777:dir");
        assert_eq!(stat(&d, OwnerMode::Xattr).unwrap().mode, 0o1777);
    }
}
