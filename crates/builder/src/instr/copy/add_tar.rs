//! ADD of a local archive: recognised by content ([`is_archive`]: a tar, plain or
//! gzip), unpacked by [`crate::archive`] (the hardened unpacker) into a scratch dir
//! beside the layer dir, then moved into the layer dir at the destination.
//!
//! Semantics kept from BuildKit: names climb no higher than the destination, the
//! archive's owners are kept unless `--chown` says otherwise, `.wh.` names are plain
//! files, devices and fifos are skipped, and nothing is ever written through a symlink
//! this step made.
//!
//! Never: decides whether a source is extracted (`plan`) or reads a URL.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use imago_oci::layer::{LayerError, Rule};

use super::apply::{ensure_parents, remove_any, resolve_dest};
use super::{CopyError, Item, NewDirs};
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
pub(super) fn extract(
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

/// True when the file is a tar archive (plain or gzip), recognised by content (92).
pub fn is_archive(p: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    head.truncate(n);
    if head.starts_with(&[0x1f, 0x8b]) {
        // gzip: look inside for a tar header.
        let Ok(f) = std::fs::File::open(p) else {
            return false;
        };
        let mut gz = flate2::read::GzDecoder::new(f);
        let mut h = vec![0u8; 512];
        return gz.read_exact(&mut h).is_ok() && is_tar_header(&h);
    }
    is_tar_header(&head)
}

fn is_tar_header(h: &[u8]) -> bool {
    h.len() >= 262 && &h[257..262] == b"ustar"
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

#[cfg(test)]
mod tests {
    use super::super::fixture::{fx, none, run, spec};
    use super::*;

    #[test]
    fn h92_add_extracts_local_tar() {
        let f = fx(&[]);
        let tarp = f.ctx.join("a.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                std::fs::File::create(&tarp).unwrap(),
                flate2::Compression::fast(),
            );
            let mut b = tar::Builder::new(gz);
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "in/x", &b"abc"[..]).unwrap();
            b.into_inner().unwrap().finish().unwrap();
        }
        let mut s = spec(&["a.tar.gz"], "/dest");
        s.add = true;
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["dest/in/x"], "abc");
        let mut s = spec(&["a.tar.gz"], "/keep/");
        s.add = true;
        s.unpack = Some(false);
        let f2 = fx(&[]);
        std::fs::copy(&tarp, f2.ctx.join("a.tar.gz")).unwrap();
        let m = run(&f2, s, &none).unwrap();
        assert!(m.contains_key("keep/a.tar.gz"));
    }

    #[test]
    fn never_writes_through_a_symlink_it_made() {
        // A tar that makes `x -> /etc` (or any host path) then writes `x/evil`.
        let f = fx(&[]);
        let outside = f.out.parent().unwrap().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let tarp = f.ctx.join("evil.tar");
        {
            let mut b = tar::Builder::new(std::fs::File::create(&tarp).unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            h.set_cksum();
            b.append_link(&mut h, "x", &outside).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(4);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "x/evil", &b"evil"[..]).unwrap();
            b.finish().unwrap();
        }
        let mut s = spec(&["evil.tar"], "/d");
        s.add = true;
        let e = run(&f, s, &none).unwrap_err();
        assert!(matches!(e, CopyError::ThroughSymlink(_)), "{e}");
        assert!(
            !outside.join("evil").exists(),
            "wrote outside the layer dir"
        );
    }

    #[test]
    fn add_tar_keeps_climbing_entries_inside_and_dest_searchable() {
        let f = fx(&[]);
        let tarp = f.ctx.join("up.tar");
        {
            use std::os::unix::fs::PermissionsExt;
            let mut b = tar::Builder::new(std::fs::File::create(&tarp).unwrap());
            let mut h = tar::Header::new_ustar();
            // Raw name: the tar crate's set_path refuses `..`, other tar writers do not.
            h.as_ustar_mut().expect("ustar header").name[..7].copy_from_slice(b"../../f");
            h.set_size(2);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"up"[..]).unwrap();
            b.finish().unwrap();
            std::fs::set_permissions(&tarp, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let mut s = spec(&["up.tar"], "/dst/");
        s.add = true;
        let m = run(&f, s, &none).unwrap();
        assert_eq!(m["dst/f"], "up");
        let owner = if rustix::process::getuid().is_root() {
            OwnerMode::Real
        } else {
            OwnerMode::Xattr
        };
        let e = fsview::stat(&f.out.join("dst"), owner).unwrap();
        assert_eq!(e.mode, 0o755, "destination mode {:o}", e.mode);
    }

    #[test]
    fn add_tar_keeps_links_modes_and_whiteout_names_and_skips_devices() {
        use std::os::unix::fs::MetadataExt;
        let f = fx(&[]);
        std::fs::create_dir_all(f.below.join("keep")).unwrap();
        let tarp = f.ctx.join("t.tar");
        {
            let mut b = tar::Builder::new(std::fs::File::create(&tarp).unwrap());
            let mut put = |kind: tar::EntryType, name: &str, mode: u32, link: &str, data: &[u8]| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(kind);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                if !link.is_empty() {
                    h.set_link_name(link).unwrap();
                }
                h.set_cksum();
                b.append_data(&mut h, name, data).unwrap();
            };
            put(tar::EntryType::Directory, "d/", 0o750, "", b"");
            put(tar::EntryType::Regular, "d/f", 0o644, "", b"x");
            put(tar::EntryType::Link, "d/h", 0o644, "d/f", b"");
            put(tar::EntryType::Symlink, "s", 0o777, "d/f", b"");
            put(tar::EntryType::Regular, "d/.wh.gone", 0o644, "", b"");
            put(tar::EntryType::Regular, "i/j/k", 0o644, "", b"k");
            put(tar::EntryType::Char, "dev", 0o600, "", b"");
            b.finish().unwrap();
        }
        let mut s = spec(&["t.tar"], "/keep/");
        s.add = true;
        let m = run(&f, s, &none).unwrap();
        let out = f.out.join("keep");
        assert_eq!(m["keep/d/f"], "x");
        assert_eq!(m["keep/i/j/k"], "k");
        let ino = |p: &str| std::fs::symlink_metadata(out.join(p)).unwrap().ino();
        assert_eq!(ino("d/f"), ino("d/h"), "a hardlink stays a hardlink");
        assert_eq!(std::fs::read_link(out.join("s")).unwrap(), Path::new("d/f"));
        assert!(
            out.join("d/.wh.gone").is_file(),
            "a .wh. name is a plain file"
        );
        assert!(
            std::fs::symlink_metadata(out.join("dev")).is_err(),
            "devices are skipped"
        );
        let owner = if rustix::process::getuid().is_root() {
            OwnerMode::Real
        } else {
            OwnerMode::Xattr
        };
        assert_eq!(fsview::stat(&out.join("d"), owner).unwrap().mode, 0o750);
        assert_eq!(fsview::stat(&out.join("i/j"), owner).unwrap().mode, 0o755);
    }
}
