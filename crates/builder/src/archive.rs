//! Local tar archives into directories, always through imago_oci's hardened unpacker (no
//! write outside the destination, no absolute names, no device nodes, bounded entry
//! counts): the archive an `ADD` extracts, and the build context read from stdin.
//!
//! The unpacker takes layer tars. A local archive is first rewritten into one, in a temp
//! file: names cleaned as [`Names`] says, owners as [`Rewrite::owner`] says, PAX records
//! (xattrs, PAX owners) dropped, entry types the caller does not extract skipped.
//! Whiteout names (`.wh.x`) stay plain files: an archive is not a layer.
//!
//! Never: decides where an ADD's tree lands in the image (`instr::copy` merges it).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use imago_oci::layer::{self, LayerError, UnpackOptions, WhiteoutFormat};
use tar::{EntryType, Header};

use crate::fsview::OwnerMode;

/// Reading, rewriting or unpacking an archive failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("read the archive (after entry `{after}`)")]
    Read {
        after: String,
        #[source]
        source: std::io::Error,
    },
    #[error("write the rewritten archive `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Unpack(#[from] LayerError),
}

/// How entry names are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// ADD: `..` climbs no higher than the destination and a leading `/` is dropped, as
    /// BuildKit does; the root entry is skipped; only files, dirs and links are kept.
    Clamp,
    /// The context: names as they are, so that the unpacker refuses `..` and absolute
    /// names; the root entry is skipped; fifos and devices are handed on (and devices
    /// refused).
    Keep,
}

/// How an archive is rewritten.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite {
    pub names: Names,
    /// Every entry's owner (ADD --chown, or the building user for the context); None
    /// keeps the archive's.
    pub owner: Option<(u32, u32)>,
}

/// What the rewrite saw.
#[derive(Debug, Clone, Default)]
pub struct Rewritten {
    /// The directories the archive names itself (cleaned components), as opposed to
    /// those its entries only imply.
    pub dirs: BTreeSet<Vec<String>>,
}

/// Rewrite `archive` (plain, gzip or zstd) into `tar_path`, then unpack that into `dest`
/// (an existing empty directory) with the hardened unpacker. `tar_path` is left for the
/// caller to remove.
pub fn extract(
    archive: impl Read,
    tar_path: &Path,
    dest: &Path,
    rw: Rewrite,
    owner: OwnerMode,
) -> Result<Rewritten, ArchiveError> {
    let werr = |source| ArchiveError::Write {
        path: tar_path.to_path_buf(),
        source,
    };
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(tar_path)
        .map_err(werr)?;
    let (mut file, seen) = rewrite(archive, file, rw, tar_path)?;
    file.rewind().map_err(werr)?;
    let opts = UnpackOptions {
        owner,
        // An archive's `.wh.` names are files, never deletions.
        whiteouts: WhiteoutFormat::Files,
        allow_devices: false,
        xattrs: false,
        ..UnpackOptions::default()
    };
    layer::unpack(std::io::BufReader::new(file), dest, &opts)?;
    Ok(seen)
}

/// Unpack a build context tar (from stdin) into `dir`, an existing empty directory, as
/// the building user; `tar_path` is a temp file the caller removes.
pub fn extract_context(input: impl Read, tar_path: &Path, dir: &Path) -> Result<(), ArchiveError> {
    let me = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let rw = Rewrite {
        names: Names::Keep,
        owner: Some(me),
    };
    extract(input, tar_path, dir, rw, OwnerMode::Real).map(|_| ())
}

fn rewrite(
    input: impl Read,
    out: File,
    rw: Rewrite,
    tar_path: &Path,
) -> Result<(File, Rewritten), ArchiveError> {
    let rerr = |after: &str| {
        let after = after.to_string();
        move |source| ArchiveError::Read { after, source }
    };
    let werr = |source| ArchiveError::Write {
        path: tar_path.to_path_buf(),
        source,
    };
    let (_, input) = imago_oci::compress::auto_decompress(input).map_err(rerr("(start)"))?;
    let mut ar = tar::Archive::new(input);
    let mut b = tar::Builder::new(BufWriter::new(out));
    let mut seen = Rewritten::default();
    let mut last = String::from("(start)");
    for entry in ar.entries().map_err(rerr(&last))? {
        let mut e = entry.map_err(rerr(&last))?;
        let raw = e.path_bytes().into_owned();
        last = String::from_utf8_lossy(&raw).into_owned();
        let Some((kind, name)) = keep(&e, &raw, rw.names) else {
            continue;
        };
        let link = match e.link_name_bytes() {
            Some(l) if kind == EntryType::Link && rw.names == Names::Clamp => {
                Some(clamp(&l).join(&b'/'))
            }
            l => l.map(|l| l.into_owned()),
        };
        let size = if kind == EntryType::Regular {
            e.size()
        } else {
            0
        };
        let h = header(e.header(), kind, rw.owner, size);
        if kind == EntryType::Directory {
            seen.dirs
                .insert(clamp(&name).iter().map(|c| lossy(c)).collect());
        }
        if kind == EntryType::Regular {
            write_entry(&mut b, h, &name, link.as_deref(), &mut e).map_err(werr)?;
        } else {
            write_entry(&mut b, h, &name, link.as_deref(), std::io::empty()).map_err(werr)?;
        }
    }
    let out = b.into_inner().map_err(werr)?;
    let file = out.into_inner().map_err(|e| werr(e.into_error()))?;
    Ok((file, seen))
}

/// The entry's type and name as rewritten, or None when it is left out.
fn keep<R: Read>(e: &tar::Entry<'_, R>, raw: &[u8], names: Names) -> Option<(EntryType, Vec<u8>)> {
    let mut kind = e.header().entry_type();
    // Old tars mark directories by a trailing slash on a regular entry.
    if kind == EntryType::Regular && raw.ends_with(b"/") {
        kind = EntryType::Directory;
    }
    let wanted = match kind {
        EntryType::Regular | EntryType::Directory | EntryType::Symlink | EntryType::Link => true,
        EntryType::Char | EntryType::Block | EntryType::Fifo => names == Names::Keep,
        _ => false,
    };
    if !wanted {
        return None;
    }
    match names {
        // The root entry (`./`) would give the context dir the tar's mode; docker and
        // the tar crate ignore it.
        Names::Keep if raw.split(|b| *b == b'/').all(|c| c.is_empty() || c == b".") => None,
        Names::Keep => Some((kind, raw.to_vec())),
        Names::Clamp => {
            let parts = clamp(raw);
            (!parts.is_empty()).then(|| (kind, parts.join(&b'/')))
        }
    }
}

/// A fresh header: type, mode, owner, mtime, size and device numbers; nothing else.
fn header(h: &Header, kind: EntryType, owner: Option<(u32, u32)>, size: u64) -> Header {
    let mut n = Header::new_gnu();
    n.set_entry_type(kind);
    n.set_mode(h.mode().unwrap_or(0o644) & 0o7777);
    let (uid, gid) = owner.unwrap_or((h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32));
    n.set_uid(uid.into());
    n.set_gid(gid.into());
    n.set_mtime(h.mtime().unwrap_or(0));
    n.set_size(size);
    if let (Ok(Some(major)), Ok(Some(minor))) = (h.device_major(), h.device_minor()) {
        // Only meaningful for devices, which the unpacker refuses; kept so it can say so.
        // A GNU header has the device fields, so setting them cannot fail.
        let _ = n.set_device_major(major);
        let _ = n.set_device_minor(minor);
    }
    n
}

/// Append one entry with raw name bytes (the tar crate's path setters refuse `..`,
/// which the unpacker must see to refuse), long names as GNU long-name records.
fn write_entry<W: Write>(
    b: &mut tar::Builder<W>,
    mut h: Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> std::io::Result<()> {
    const FIELD: usize = 100;
    if name.len() > FIELD {
        long_record(b, EntryType::GNULongName, name)?;
    }
    let n = name.len().min(FIELD);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    if let Some(link) = link {
        if link.len() > FIELD {
            long_record(b, EntryType::GNULongLink, link)?;
        }
        let n = link.len().min(FIELD);
        h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
    }
    h.set_cksum();
    b.append(&h, data)
}

fn long_record<W: Write>(
    b: &mut tar::Builder<W>,
    kind: EntryType,
    v: &[u8],
) -> std::io::Result<()> {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(v.len() as u64 + 1);
    h.set_cksum();
    b.append(&h, v.chain(&[0u8][..]))
}

/// Clean a name into components: `.` and empty ones dropped, `..` climbs no higher than
/// the top (BuildKit keeps `../../f` inside the destination).
fn clamp(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn lossy(c: &[u8]) -> String {
    String::from_utf8_lossy(c).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Name, type, link target, data.
    type Spec<'a> = (&'a [u8], EntryType, &'a [u8], &'a [u8]);

    fn tar_of(entries: &[Spec<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = Header::new_gnu();
            h.set_entry_type(*kind);
            let dir = *kind == EntryType::Directory;
            h.set_mode(if dir { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            write_entry(&mut b, h, name, (!link.is_empty()).then_some(*link), *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn extract_into(
        t: &tempfile::TempDir,
        tar: &[u8],
        names: Names,
    ) -> Result<Rewritten, ArchiveError> {
        let dest = t.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let me = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        let rw = Rewrite {
            names,
            owner: Some(me),
        };
        extract(tar, &t.path().join("t.tar"), &dest, rw, OwnerMode::Real)
    }

    #[test]
    fn clamp_keeps_climbing_names_inside() {
        assert_eq!(clamp(b"../../f"), vec![b"f".to_vec()]);
        assert_eq!(clamp(b"/a/./b/../c/"), vec![b"a".to_vec(), b"c".to_vec()]);
        assert!(clamp(b"./").is_empty());
    }

    #[test]
    fn add_clamps_and_keeps_whiteout_names_as_files() {
        let t = tempfile::tempdir().unwrap();
        let long = format!("d/{}", "n".repeat(150));
        let tar = tar_of(&[
            (b"../../f", EntryType::Regular, b"", b"up"),
            (b"/abs", EntryType::Regular, b"", b"a"),
            (b"d/", EntryType::Directory, b"", b""),
            (b"d/.wh.gone", EntryType::Regular, b"", b""),
            (long.as_bytes(), EntryType::Regular, b"", b"long"),
            (b"h", EntryType::Link, b"../abs", b""),
        ]);
        let seen = extract_into(&t, &tar, Names::Clamp).unwrap();
        let d = t.path().join("dest");
        assert_eq!(std::fs::read(d.join("f")).unwrap(), b"up");
        assert_eq!(std::fs::read(d.join("abs")).unwrap(), b"a");
        assert!(d.join("d/.wh.gone").is_file());
        assert_eq!(std::fs::read(d.join(&long)).unwrap(), b"long");
        assert_eq!(std::fs::read(d.join("h")).unwrap(), b"a");
        assert!(seen.dirs.contains(&vec!["d".to_string()]));
    }

    #[test]
    fn context_refuses_hostile_names() {
        for (name, kind, link) in [
            (&b"../escape"[..], EntryType::Regular, &b""[..]),
            (b"/abs", EntryType::Regular, b""),
            (b"dev", EntryType::Char, b""),
        ] {
            let t = tempfile::tempdir().unwrap();
            let tar = tar_of(&[(name, kind, link, b"")]);
            let e = extract_into(&t, &tar, Names::Keep).unwrap_err();
            assert!(
                matches!(e, ArchiveError::Unpack(LayerError::Refused { .. })),
                "{e}"
            );
            assert!(!t.path().join("escape").exists());
        }
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let tar = tar_of(&[
            (
                b"l",
                EntryType::Symlink,
                outside.as_os_str().as_encoded_bytes(),
                b"",
            ),
            (b"l/x", EntryType::Regular, b"", b"x"),
        ]);
        let e = extract_into(&t, &tar, Names::Keep).unwrap_err();
        assert!(
            matches!(e, ArchiveError::Unpack(LayerError::Refused { .. })),
            "{e}"
        );
        assert!(!outside.join("x").exists());
    }
}
