//! The copy driver: a container's root as a private copy of its image's layers, for
//! hosts where no overlay can be mounted in a user namespace.
//!
//! - [`make`]: merge the lower layers (bottom to top, whiteouts and opaque dirs applied
//!   exactly as overlayfs shows them) into a fresh tree at `dest`, keeping owner, mode,
//!   xattrs, times and a layer's hard links; file data reflinked where the file system
//!   can (FICLONE), else copied (copy_file_range). Made in `<dest>.tmp` and renamed, so
//!   `dest` is whole or absent; an existing `dest` is kept (a restarted container keeps
//!   its files). With a manifest path, also writes the [`manifest::Manifest`] the diff
//!   needs.
//! - [`to_upper`]: after a RUN, what the container changed in its copy, as an
//!   overlay-upper-shaped tree for the layer packer (the rule: [`diff`]).
//!
//! Both run inside the container's id mapping (the caller enters it): files of other
//! owners can only be made there, and the copy keeps every owner of the image.
//! Never: enters namespaces, mounts (the sandbox bind-mounts the copy as the root),
//! removes a container's copy (the container's owner does, inside the mapping).

pub mod diff;
mod fsx;
pub mod manifest;
mod merge;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use manifest::Manifest;

/// `st_mode`'s file type bits.
const S_IFMT: u32 = 0o170000;

/// How long [`make`] waits at most for the file system clock to pass the copy's last
/// change time (one clock tick, a few ms, in practice).
const TICK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What [`make`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyStats {
    /// Regular files.
    pub files: u64,
    /// Directories (the root not counted).
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Extra names of hard-linked files.
    pub hardlinks: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// Files whose data was reflinked, not copied.
    pub reflinked: u64,
    /// Device nodes this namespace may not make (a container's /dev is made at run time).
    pub devices_skipped: u64,
    /// xattrs that could not be set.
    pub xattrs_skipped: u64,
    /// False when `dest` existed and was kept.
    pub made: bool,
}

/// What [`to_upper`] put into the upper tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStats {
    /// Entries moved in (added or changed files, new directories with their contents).
    pub moved: u64,
    /// Directories kept (changed themselves or holding changes).
    pub dirs: u64,
    /// Whiteouts of deleted paths.
    pub whiteouts: u64,
    /// Directories made anew where the lower view had something.
    pub opaque: u64,
}

/// Errors of the copy driver; each names the path (relative to the tree) involved.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A file-system call failed.
    #[error("copy driver: {op} `{path}`")]
    Io {
        /// What was done.
        op: &'static str,
        /// The path in the tree.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A directory tree deeper than the walk allows.
    #[error("copy driver: `{path}` is more than {max} directories deep")]
    TooDeep {
        /// Where the limit was hit.
        path: String,
        /// The limit.
        max: usize,
    },
    /// The manifest beside the copy could not be read or written.
    #[error("copy driver: manifest `{path}`")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, p: &'a Path) -> impl FnOnce(std::io::Error) -> CopyError + 'a {
    move |source| CopyError::Io {
        op,
        path: p.display().to_string(),
        source,
    }
}

/// The temp name a copy is made under.
fn tmp_of(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Copy the merged view of `lowers` (bottom first) to `dest` (see the module doc);
/// with `manifest`, write the manifest there. Call inside the container's mapping.
pub fn make(
    lowers_bottom_first: &[PathBuf],
    dest: &Path,
    manifest: Option<&Path>,
) -> Result<CopyStats, CopyError> {
    if dest.is_dir() {
        return Ok(CopyStats::default());
    }
    let tmp = tmp_of(dest);
    // A leftover of an interrupted copy: made by us, in this mapping.
    imago_oci::layer::remove_tree(&tmp).map_err(io("remove", &tmp))?;
    std::fs::create_dir(&tmp).map_err(io("create", &tmp))?;
    let mut roots = Vec::with_capacity(lowers_bottom_first.len());
    for l in lowers_bottom_first.iter().rev() {
        roots.push(fsx::open_root(l).map_err(io("open layer", l))?);
    }
    let out = fsx::open_root(&tmp).map_err(io("open", &tmp))?;
    let mut c = merge::Copier::new(roots, out);
    c.run()?;
    if let Some(latest) = c.manifest.latest_ctime() {
        let parent = dest.parent().unwrap_or(Path::new("."));
        wait_past(parent, latest).map_err(io("wait for the clock in", parent))?;
    }
    if let Some(p) = manifest {
        c.manifest.save(p).map_err(|source| CopyError::Manifest {
            path: p.to_path_buf(),
            source,
        })?;
    }
    std::fs::rename(&tmp, dest).map_err(io("rename into place", dest))?;
    let mut stats = c.stats;
    stats.made = true;
    Ok(stats)
}

/// Wait until a file made in `dir` gets a change time later than `latest`: after this,
/// nothing written can carry a ctime the manifest recorded (the clock behind ctime is
/// coarse, a few ms per tick).
fn wait_past(dir: &Path, latest: (i64, u32)) -> std::io::Result<()> {
    let d = fsx::open_root(dir)?;
    let name = c".imago-copy-tick";
    let start = std::time::Instant::now();
    let r = loop {
        let f = rustix::fs::openat(
            &d,
            name,
            rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::TRUNC
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o600),
        )?;
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(0o600))?;
        let st = rustix::fs::fstat(&f)?;
        if fsx::ctime(&st) > latest {
            break Ok(());
        }
        if start.elapsed() > TICK_WAIT {
            break Err(std::io::Error::other(
                "the file system clock did not move past the copy's last change time",
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    // Best effort: a leftover tick file is an empty file of ours beside the copy.
    let _ = rustix::fs::unlinkat(d.as_fd(), name, rustix::fs::AtFlags::empty());
    r
}

/// After a RUN: move what the container changed in `copy` (against the manifest at
/// `manifest`) into the empty dir `upper`, whiteouts and opaque markers included. Call
/// inside the container's mapping.
pub fn to_upper(copy: &Path, manifest: &Path, upper: &Path) -> Result<DiffStats, CopyError> {
    let m = Manifest::load(manifest).map_err(|source| CopyError::Manifest {
        path: manifest.to_path_buf(),
        source,
    })?;
    diff::to_upper(copy, &m, upper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("imago-copy-{tag}-{}", std::process::id()));
        imago_oci::layer::remove_tree(&d).unwrap();
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(p: &Path, data: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    /// A whiteout of `name` in layer dir `dir`: overlay's 0:0 char device where this
    /// process may make one, else the `.wh.` file form (both are read).
    fn whiteout(dir: &Path, name: &str) {
        let d = fsx::open_root(dir).unwrap();
        let made = rustix::fs::mknodat(
            &d,
            name,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        );
        if made.is_err() {
            write(&dir.join(format!(".wh.{name}")), "");
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn merges_like_overlay_and_diffs_back_into_an_upper_tree() {
        let t = scratch("merge");
        let (l0, l1) = (t.join("l0"), t.join("l1"));
        write(&l0.join("a/x"), "x0");
        write(&l0.join("a/y"), "y0");
        write(&l0.join("b/z"), "z0");
        write(&l0.join("d/old"), "old");
        write(&l0.join("h1"), "linked");
        std::fs::hard_link(l0.join("h1"), l0.join("h2")).unwrap();
        std::os::unix::fs::symlink("a/x", l0.join("s")).unwrap();
        std::fs::set_permissions(
            l0.join("a/y"),
            std::os::unix::fs::PermissionsExt::from_mode(0o4755),
        )
        .unwrap();
        write(&l1.join("a/x"), "x1");
        whiteout(&l1.join("a"), "y");
        write(&l1.join("d/new"), "new");
        write(&l1.join("d/.wh..wh..opq"), "");
        let copy = t.join("c/copy");
        std::fs::create_dir_all(t.join("c")).unwrap();
        let m = t.join("c/manifest");
        let stats = make(&[l0.clone(), l1.clone()], &copy, Some(&m)).unwrap();
        assert!(stats.made && stats.hardlinks == 1, "{stats:?}");
        assert_eq!(std::fs::read_to_string(copy.join("a/x")).unwrap(), "x1");
        assert!(!copy.join("a/y").exists());
        assert_eq!(names(&copy.join("d")), ["new"]);
        assert_eq!(
            std::fs::read_link(copy.join("s")).unwrap(),
            Path::new("a/x")
        );
        let (h1, h2) = (
            std::fs::metadata(copy.join("h1")).unwrap(),
            std::fs::metadata(copy.join("h2")).unwrap(),
        );
        assert_eq!(h1.ino(), h2.ino());
        let z = std::fs::metadata(copy.join("b/z")).unwrap();
        let z0 = std::fs::metadata(l0.join("b/z")).unwrap();
        assert_eq!((z.mtime(), z.mode()), (z0.mtime(), z0.mode()));
        assert!(!copy.with_extension("tmp").exists());
        // A second make keeps the existing copy (a restarted container).
        assert!(!make(&[l0, l1], &copy, None).unwrap().made);

        // What a RUN does in its copy.
        std::fs::write(copy.join("a/x"), "x2").unwrap();
        std::fs::remove_file(copy.join("b/z")).unwrap();
        write(&copy.join("c/new"), "c");
        std::fs::remove_dir_all(copy.join("d")).unwrap();
        write(&copy.join("d/again"), "again");
        std::fs::set_permissions(
            copy.join("h1"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let upper = t.join("c/upper");
        std::fs::create_dir(&upper).unwrap();
        let d = to_upper(&copy, &m, &upper).unwrap();
        assert_eq!(names(&upper), ["a", "b", "c", "d", "h1", "h2"]);
        assert_eq!(names(&upper.join("a")), ["x"]);
        assert_eq!(std::fs::read_to_string(upper.join("a/x")).unwrap(), "x2");
        assert_eq!(names(&upper.join("b")), [".wh.z"]);
        assert_eq!(names(&upper.join("c")), ["new"]);
        assert_eq!(names(&upper.join("d")), [".wh..wh..opq", "again"]);
        let (u1, u2) = (
            std::fs::metadata(upper.join("h1")).unwrap(),
            std::fs::metadata(upper.join("h2")).unwrap(),
        );
        assert_eq!(u1.ino(), u2.ino());
        assert_eq!(
            (d.moved, d.dirs, d.whiteouts, d.opaque),
            (5, 2, 1, 1),
            "{d:?}"
        );
        // A kept dir has the copy's metadata.
        let (a, ua) = (
            std::fs::metadata(copy.join("a")).unwrap(),
            std::fs::metadata(upper.join("a")).unwrap(),
        );
        assert_eq!((a.mode(), a.mtime()), (ua.mode(), ua.mtime()));
        imago_oci::layer::remove_tree(&t).unwrap();
    }

    #[test]
    fn a_deleted_dir_is_one_whiteout_and_nothing_changed_is_an_empty_upper() {
        let t = scratch("del");
        let l0 = t.join("l0");
        write(&l0.join("gone/deep/f"), "f");
        write(&l0.join("keep/f"), "f");
        let copy = t.join("copy");
        let m = t.join("manifest");
        make(std::slice::from_ref(&l0), &copy, Some(&m)).unwrap();
        let upper = t.join("upper");
        std::fs::create_dir(&upper).unwrap();
        to_upper(&copy, &m, &upper).unwrap();
        assert!(names(&upper).is_empty());
        std::fs::remove_dir_all(copy.join("gone")).unwrap();
        to_upper(&copy, &m, &upper).unwrap();
        assert_eq!(names(&upper), [".wh.gone"]);
        imago_oci::layer::remove_tree(&t).unwrap();
    }
}
