//! The diff of a container's private copy against what the copy started as (the
//! [`Manifest`]), made into an overlay-upper-shaped tree the layer packer reads.
//!
//! The rule, per path of the copy (see [`decide`]):
//! - not in the manifest → added: moved into the upper tree whole;
//! - another inode (number, or birth time where the file system keeps one: a new file
//!   may get a freed inode number) or another file type than the copy made → replaced:
//!   moved whole, and
//!   a directory gets the opaque marker `.wh..wh..opq` (overlayfs makes a directory
//!   created over a deleted one opaque);
//! - same inode, same change time → untouched. The kernel moves ctime on every write,
//!   truncate, chmod, chown, utimes, setxattr, link and rename, and no process can set it
//!   back; the copy waits for the clock to pass its last ctime before the container
//!   starts, so a change made in the container never keeps a recorded ctime;
//! - same inode, another change time → changed: a file is moved, a directory is kept
//!   (made in the upper tree with its current owner, mode, xattrs and times);
//! - a directory that is kept or has anything below it that is, is made in the upper
//!   tree (overlayfs copies up the parents of what changes);
//! - a manifest path missing from the copy → deleted: a `.wh.NAME` file in its parent
//!   (only the topmost: the children of a deleted directory need none).
//!
//! So type, mode, owner, size, mtime, xattrs, symlink targets and content are all
//! covered by one comparison, with no file read twice. Where it differs from overlayfs:
//! a file opened for writing but left unchanged is not in the layer (overlayfs copies it
//! up); and on a file system without birth times, when a deleted directory is made
//! again under the very same inode number, its old children become whiteouts instead of
//! one opaque marker (the same tree either way).
//!
//! Never: follows a symlink of the copy (the container wrote it), reads file content.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode};
use rustix::io::Errno;

use imago_oci::layer::OVERRIDE_STAT_XATTR;

use super::fsx::{self, OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::manifest::{join, split, Manifest, Stamp};
use super::{CopyError, DiffStats};

/// Deeper trees are refused: the walk recurses and holds one fd per level.
pub const MAX_DEPTH: usize = 512;

/// What happens to one path of the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Untouched: not in the layer (a directory is still walked).
    Same,
    /// Added or changed file, or an added directory: moved whole.
    Move,
    /// A directory made anew where the lower view had something: moved whole, opaque.
    MoveOpaque,
    /// The same directory, changed itself: kept (made in the upper tree), walked.
    Dir,
}

/// The rule for one entry: its recorded stamp (None: not in the lower view) and what is
/// there now. The same file is the same inode number and, where the file system keeps
/// one, the same birth time (a new file may get a freed inode number).
pub fn decide(recorded: Option<&Stamp>, now: &Stamp) -> Verdict {
    let is_dir = now.fmt == FileType::Directory.as_raw_mode();
    let known = |b: (i64, u32)| b != (0, 0);
    match recorded {
        None => Verdict::Move,
        Some(r)
            if r.ino != now.ino
                || r.fmt != now.fmt
                || (known(r.born) && known(now.born) && r.born != now.born) =>
        {
            match is_dir {
                true => Verdict::MoveOpaque,
                false => Verdict::Move,
            }
        }
        Some(r) if r.ctime == now.ctime => Verdict::Same,
        Some(_) if is_dir => Verdict::Dir,
        Some(_) => Verdict::Move,
    }
}

/// One change, in walk order (a directory before what is below it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Make the directory in the upper tree (its metadata is set at the end).
    Dir(Vec<u8>),
    /// Move the entry from the copy into the upper tree; `true`: mark it opaque.
    Move(Vec<u8>, bool),
    /// A whiteout for the deleted path.
    Whiteout(Vec<u8>),
}

fn err<'a>(op: &'static str, path: &'a [u8]) -> impl FnOnce(std::io::Error) -> CopyError + 'a {
    move |source| CopyError::Io {
        op,
        path: String::from_utf8_lossy(path).into_owned(),
        source,
    }
}

fn errno<'a>(op: &'static str, path: &'a [u8]) -> impl FnOnce(Errno) -> CopyError + 'a {
    move |e| err(op, path)(e.into())
}

/// Walk directory `rel` of the copy; true when anything below it changed.
fn plan(
    dir: BorrowedFd<'_>,
    rel: &[u8],
    m: &Manifest,
    depth: usize,
    out: &mut Vec<Change>,
) -> Result<bool, CopyError> {
    if depth > MAX_DEPTH {
        return Err(CopyError::TooDeep {
            path: String::from_utf8_lossy(rel).into_owned(),
            max: MAX_DEPTH,
        });
    }
    let names = fsx::list(dir).map_err(err("read directory", rel))?;
    let mut changed = false;
    for name in &names {
        let path = join(rel, name.as_bytes());
        let Some(now) = fsx::stamp(dir, name).map_err(err("inspect", &path))? else {
            continue;
        };
        match decide(m.get(&path), &now) {
            Verdict::Move => out.push(Change::Move(path, false)),
            Verdict::MoveOpaque => out.push(Change::Move(path, true)),
            v @ (Verdict::Same | Verdict::Dir) => {
                if now.fmt != FileType::Directory.as_raw_mode() {
                    continue;
                }
                let at = out.len();
                out.push(Change::Dir(path.clone()));
                let sub = fsx::open_dir(dir, name).map_err(err("open", &path))?;
                let below = plan(sub.as_fd(), &path, m, depth + 1, out)?;
                if !below && v == Verdict::Same {
                    out.truncate(at);
                    continue;
                }
            }
        }
        changed = true;
    }
    for gone in m.children(rel) {
        if names.binary_search_by(|n| n.as_bytes().cmp(gone)).is_err() {
            out.push(Change::Whiteout(join(rel, gone)));
            changed = true;
        }
    }
    Ok(changed)
}

/// Make `upper` (an empty dir) hold what changed in `copy` since `manifest` was taken:
/// moved entries leave the copy. The upper tree is in the layer packer's form with
/// whiteouts as `.wh.NAME` files and opaque dirs as `.wh..wh..opq` files.
pub fn to_upper(copy: &Path, manifest: &Manifest, upper: &Path) -> Result<DiffStats, CopyError> {
    let root = fsx::open_root(copy).map_err(err("open", b"."))?;
    let up = fsx::open_root(upper).map_err(err("open", b"."))?;
    let mut changes = Vec::new();
    plan(root.as_fd(), b"", manifest, 0, &mut changes)?;
    let mut stats = DiffStats::default();
    for c in &changes {
        let (path, name) = match c {
            Change::Dir(p) | Change::Move(p, _) | Change::Whiteout(p) => (p, split(p).1),
        };
        let parent = split(path).0;
        let cname = fsx::cstr(name).map_err(err("name", path))?;
        let to = fsx::open_rel(up.as_fd(), parent).map_err(err("open", parent))?;
        match c {
            Change::Dir(_) => {
                rustix::fs::mkdirat(&to, cname.as_c_str(), Mode::from_raw_mode(0o700))
                    .map_err(errno("create directory", path))?;
                stats.dirs += 1;
            }
            Change::Move(_, opaque) => {
                let from = fsx::open_rel(root.as_fd(), parent).map_err(err("open", parent))?;
                rustix::fs::renameat(&from, cname.as_c_str(), &to, cname.as_c_str())
                    .map_err(errno("move into the layer", path))?;
                if *opaque {
                    mark_opaque(to.as_fd(), &cname, path)?;
                    stats.opaque += 1;
                }
                stats.moved += 1;
            }
            Change::Whiteout(_) => {
                whiteout(to.as_fd(), name, path)?;
                stats.whiteouts += 1;
            }
        }
    }
    // Deepest first: a dir's times are set after everything below it was made.
    for c in changes.iter().rev() {
        let Change::Dir(path) = c else { continue };
        let src = fsx::open_rel(root.as_fd(), path).map_err(err("open", path))?;
        let dst = fsx::open_rel(up.as_fd(), path).map_err(err("open", path))?;
        let st = rustix::fs::fstat(&src).map_err(errno("stat", path))?;
        let x = fsx::xattrs(src.as_fd()).map_err(err("read xattrs of", path))?;
        fsx::apply_meta(dst.as_fd(), &st, &x).map_err(err("set metadata of", path))?;
    }
    Ok(stats)
}

/// `.wh..wh..opq` in the moved directory `name` of `parent`, with the directory's mode,
/// owner (its ownership record too, under a single-id mapping) and times, as the packer
/// writes the marker of an overlay opaque dir; the directory keeps its times.
fn mark_opaque(parent: BorrowedFd<'_>, name: &CStr, path: &[u8]) -> Result<(), CopyError> {
    let d = fsx::open_dir(parent, name).map_err(err("open", path))?;
    let st = rustix::fs::fstat(&d).map_err(errno("stat", path))?;
    let marker = fsx::cstr(OPAQUE_MARKER).map_err(err("name", path))?;
    let made = fsx::create_new(d.as_fd(), &marker);
    match made {
        Ok(f) => {
            let owner = (st.st_uid, st.st_gid);
            let record: Vec<_> = fsx::xattrs(d.as_fd())
                .map_err(err("read xattrs of", path))?
                .into_iter()
                .filter(|(k, _)| k.as_bytes() == OVERRIDE_STAT_XATTR.as_bytes())
                .collect();
            fsx::apply(
                f.as_fd(),
                owner,
                st.st_mode & 0o777,
                &fsx::times(&st),
                &record,
            )
            .map_err(err("set metadata of", path))?;
        }
        // The container made one itself: it says the same.
        Err(Errno::EXIST) => {}
        Err(e) => return Err(errno("mark opaque", path)(e)),
    }
    rustix::fs::futimens(&d, &fsx::times(&st)).map_err(errno("set times of", path))
}

/// The whiteout of `name` in the upper dir `parent`: a `.wh.NAME` file, or, when that
/// name would be too long, overlayfs' own form (a 0:0 character device named NAME).
fn whiteout(parent: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> Result<(), CopyError> {
    let wh = fsx::cstr(&[WHITEOUT_PREFIX, name].concat()).map_err(err("name", path))?;
    let made = fsx::create_new(parent, &wh);
    match made {
        Ok(f) => {
            // Root's, as overlay's whiteouts are packed, also under a single-id mapping
            // (where a file without an ownership record would be given the RUN's user).
            // A file system without user xattrs has no such records to begin with.
            let key = fsx::cstr(OVERRIDE_STAT_XATTR.as_bytes()).map_err(err("name", path))?;
            fsx::set_xattrs(f.as_fd(), &[(key, b"0:0:0600:file".to_vec())]);
            Ok(())
        }
        Err(Errno::EXIST) => Ok(()),
        Err(Errno::NAMETOOLONG) => rustix::fs::mknodat(
            parent,
            fsx::cstr(name).map_err(err("name", path))?.as_c_str(),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(errno("create whiteout", path)),
        Err(e) => Err(errno("create whiteout", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: u32 = 0o040000;
    const REG: u32 = 0o100000;
    const LNK: u32 = 0o120000;

    fn s(fmt: u32, ino: u64, ctime: i64) -> Stamp {
        Stamp {
            fmt,
            ino,
            ctime: (ctime, 0),
            born: (50, 0),
        }
    }

    #[test]
    fn untouched_entries_stay_out() {
        assert_eq!(
            decide(Some(&s(REG, 7, 100)), &s(REG, 7, 100)),
            Verdict::Same
        );
        assert_eq!(
            decide(Some(&s(DIR, 7, 100)), &s(DIR, 7, 100)),
            Verdict::Same
        );
    }

    #[test]
    fn new_paths_and_new_inodes_move() {
        assert_eq!(decide(None, &s(REG, 9, 1)), Verdict::Move);
        assert_eq!(decide(None, &s(DIR, 9, 1)), Verdict::Move);
        // `sed -i`: a new file renamed over the old one.
        assert_eq!(
            decide(Some(&s(REG, 7, 100)), &s(REG, 8, 100)),
            Verdict::Move
        );
        // A file replaced by a symlink.
        assert_eq!(
            decide(Some(&s(REG, 7, 100)), &s(LNK, 7, 100)),
            Verdict::Move
        );
    }

    #[test]
    fn a_recreated_or_retyped_directory_is_opaque() {
        assert_eq!(
            decide(Some(&s(DIR, 7, 100)), &s(DIR, 8, 200)),
            Verdict::MoveOpaque
        );
        assert_eq!(
            decide(Some(&s(REG, 7, 100)), &s(DIR, 8, 200)),
            Verdict::MoveOpaque
        );
        // `rm -rf d; mkdir d` where the file system hands out the freed inode number:
        // the birth time tells.
        let again = Stamp {
            born: (60, 0),
            ..s(DIR, 7, 200)
        };
        assert_eq!(decide(Some(&s(DIR, 7, 100)), &again), Verdict::MoveOpaque);
        // Without birth times, the inode number alone decides.
        let unknown = Stamp {
            born: (0, 0),
            ..s(DIR, 7, 200)
        };
        assert_eq!(decide(Some(&s(DIR, 7, 100)), &unknown), Verdict::Dir);
    }

    #[test]
    fn a_changed_ctime_keeps_a_dir_and_moves_a_file() {
        // Written, chmod-ed or touched, even back to the same mtime: ctime moved.
        let written = Stamp {
            ctime: (100, 1),
            ..s(REG, 7, 100)
        };
        assert_eq!(decide(Some(&s(REG, 7, 100)), &written), Verdict::Move);
        assert_eq!(decide(Some(&s(DIR, 7, 100)), &s(DIR, 7, 101)), Verdict::Dir);
    }
}
