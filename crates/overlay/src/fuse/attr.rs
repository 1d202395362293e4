//! Host `stat` → FUSE attributes, and the errno conversion at the reply boundary.
//! Owns: file-type mapping, time conversion, the overlay's own fields (inode number,
//! nlink 1 for merged dirs). Never: touches the host.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};
use rustix::fs::Stat;
use rustix::io::Errno;

/// FUSE's file type for a host mode; `None` for a type FUSE cannot show.
pub(crate) fn kind(st: &Stat) -> Option<FileType> {
    use rustix::fs::FileType as F;
    Some(match super::sys::file_type(st) {
        F::RegularFile => FileType::RegularFile,
        F::Directory => FileType::Directory,
        F::Symlink => FileType::Symlink,
        F::Fifo => FileType::NamedPipe,
        F::Socket => FileType::Socket,
        F::CharacterDevice => FileType::CharDevice,
        F::BlockDevice => FileType::BlockDevice,
        F::Unknown => return None,
    })
}

/// FUSE's file type for a `d_type` from getdents.
pub(crate) fn kind_of(t: rustix::fs::FileType) -> Option<FileType> {
    use rustix::fs::FileType as F;
    Some(match t {
        F::RegularFile => FileType::RegularFile,
        F::Directory => FileType::Directory,
        F::Symlink => FileType::Symlink,
        F::Fifo => FileType::NamedPipe,
        F::Socket => FileType::Socket,
        F::CharacterDevice => FileType::CharDevice,
        F::BlockDevice => FileType::BlockDevice,
        F::Unknown => return None,
    })
}

fn time(sec: i64, nsec: i64) -> SystemTime {
    let nsec = u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0);
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec.unsigned_abs(), nsec)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::new(sec.unsigned_abs(), 0))
            .and_then(|t| t.checked_add(Duration::new(0, nsec)))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// The attributes of a host entry shown as inode `ino`.
#[allow(clippy::unnecessary_cast)] // the stat field types differ between targets
pub(crate) fn attr(ino: u64, st: &Stat, merged_dir: bool) -> FileAttr {
    let kind = kind(st).unwrap_or(FileType::RegularFile);
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size.max(0) as u64,
        blocks: st.st_blocks.max(0) as u64,
        atime: time(st.st_atime as i64, st.st_atime_nsec as i64),
        mtime: time(st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: time(st.st_ctime as i64, st.st_ctime_nsec as i64),
        crtime: UNIX_EPOCH,
        kind,
        perm: (st.st_mode & 0o7777) as u16,
        nlink: if merged_dir {
            1
        } else {
            u32::try_from(st.st_nlink).unwrap_or(u32::MAX)
        },
        uid: st.st_uid,
        gid: st.st_gid,
        // FUSE carries the kernel's 32-bit "new" encoding: the low half of glibc's.
        rdev: st.st_rdev as u32,
        blksize: u32::try_from(st.st_blksize).unwrap_or(4096),
        flags: 0,
    }
}

/// The attributes of a negative entry (inode 0: the kernel caches "no such name").
pub(crate) fn negative() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

/// A host errno as FUSE's.
pub(crate) fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.raw_os_error())
}
