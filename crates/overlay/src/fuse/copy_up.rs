//! Copy-up: giving a lower entry (and its parent dirs) its own copy in the upper before
//! anything about it changes.
//! Owns: building the copy in the work dir (data with holes kept, owner, mode, xattrs
//! but overlay's own, times) and renaming it into place; keeping the parent's times.
//! Never: writes a lower, follows a symlink, or leaves a partial copy in the upper.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, SeekFrom, Stat, Timestamps};
use rustix::io::Errno;

use super::inode::{Key, View, ROOT, UPPER};
use super::sys::{self, Res};
use super::xattr;
use super::FuseOverlay;

impl FuseOverlay {
    /// Make sure `ino` has its own entry in the upper, copying up its parents first.
    /// `data`: copy a file's contents (false when it is about to be truncated to 0).
    /// The caller holds the namespace lock.
    pub(crate) fn copy_up(&self, ino: u64, data: bool) -> Res<View> {
        let mut chain = Vec::new();
        let mut cur = self.inodes.view(ino)?;
        // An unlinked lower file has no name to copy up to: changes to it fail below.
        while cur.layer != UPPER && cur.orphan.is_none() {
            if cur.ino == ROOT || chain.len() > 4096 {
                return Err(Errno::STALE);
            }
            let parent = cur.parent;
            chain.push(cur);
            cur = self.inodes.view(parent)?;
        }
        for v in chain.iter().rev() {
            self.copy_up_one(v, data || v.ino != ino)?;
        }
        self.inodes.view(ino)
    }

    fn copy_up_one(&self, v: &View, data: bool) -> Res<()> {
        let pstack = self.stack_of(v.parent)?;
        let upper = pstack.upper().ok_or(Errno::STALE)?;
        let src = pstack.at(v.layer).ok_or(Errno::STALE)?;
        let st = sys::stat_at(src, &v.name)?.ok_or(Errno::NOENT)?;
        let parent_st = rustix::fs::fstat(upper)?;
        let tmp = self.tmp_name();
        let work = self.work.as_fd();
        let built = self
            .build_copy(src, &v.name, &st, &tmp, data)
            .and_then(|()| {
                rustix::fs::renameat_with(work, &tmp, upper, &v.name, RenameFlags::NOREPLACE)
            });
        if let Err(e) = built {
            // Best effort: a leftover is cleared on the next start; the error is what counts.
            let _ = sys::remove_all(work, &tmp);
            return Err(e);
        }
        // Copying up a child is no change of its parent.
        let _ = rustix::fs::futimens(upper, &times(&parent_st)); // times only: never fatal
        let new = sys::stat_at(upper, &v.name)?.ok_or(Errno::NOENT)?;
        let key = Key {
            layer: UPPER,
            dev: new.st_dev,
            ino: new.st_ino,
            alias: 0,
        };
        self.inodes.copied_up(v.ino, key);
        Ok(())
    }

    /// Build the copy of `name` in `src` as `tmp` in the work dir.
    fn build_copy(
        &self,
        src: BorrowedFd<'_>,
        name: &CStr,
        st: &Stat,
        tmp: &CStr,
        data: bool,
    ) -> Res<()> {
        let work = self.work.as_fd();
        let perm = Mode::from_raw_mode(st.st_mode & 0o7777);
        let kind = sys::file_type(st);
        match kind {
            FileType::Directory => rustix::fs::mkdirat(work, tmp, Mode::from_raw_mode(0o700))?,
            FileType::RegularFile => {
                let from = sys::open_at(src, name, OFlags::RDONLY, 0)?;
                let to = sys::open_at(
                    work,
                    tmp,
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY,
                    0o600,
                )?;
                if data {
                    copy_data(from.as_fd(), to.as_fd(), st.st_size.max(0) as u64)?;
                }
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), work, tmp)?;
            }
            other => rustix::fs::mknodat(work, tmp, other, perm, st.st_rdev)?,
        }
        rustix::fs::chownat(
            work,
            tmp,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
        if kind != FileType::Symlink {
            sys::chmod_at(work, tmp, st.st_mode & 0o7777)?;
        }
        copy_xattrs(src, name, work, tmp)?;
        rustix::fs::utimensat(work, tmp, &times(st), AtFlags::SYMLINK_NOFOLLOW)
    }
}

/// Access and modification times of `st`, for utimensat.
pub(crate) fn times(st: &Stat) -> Timestamps {
    #[allow(clippy::unnecessary_cast)] // the stat field types differ between targets
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as i64,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as i64,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Copy `size` bytes, skipping holes (they stay holes: the copy is truncated to size).
fn copy_data(from: BorrowedFd<'_>, to: BorrowedFd<'_>, size: u64) -> Res<()> {
    let mut off = 0;
    while off < size {
        let start = match rustix::fs::seek(from, SeekFrom::Data(off)) {
            Ok(d) => d,
            Err(Errno::NXIO) => break,
            // No SEEK_DATA here: copy the rest as it is.
            Err(_) => off,
        };
        if start >= size {
            break;
        }
        let end = match rustix::fs::seek(from, SeekFrom::Hole(start)) {
            Ok(h) if h > start => h.min(size),
            _ => size,
        };
        copy_range(from, to, start, end - start)?;
        off = end;
    }
    rustix::fs::ftruncate(to, size)
}

fn copy_range(from: BorrowedFd<'_>, to: BorrowedFd<'_>, at: u64, len: u64) -> Res<()> {
    let mut done = 0u64;
    while done < len {
        let mut i = at + done;
        let mut o = at + done;
        let want = usize::try_from((len - done).min(1 << 30)).unwrap_or(1 << 30);
        match rustix::fs::copy_file_range(from, Some(&mut i), to, Some(&mut o), want) {
            Ok(0) => return Ok(()),
            Ok(n) => done += n as u64,
            Err(Errno::INTR) => continue,
            // Across file systems or not supported: copy through a buffer.
            Err(_) => return copy_buffered(from, to, at + done, len - done),
        }
    }
    Ok(())
}

fn copy_buffered(from: BorrowedFd<'_>, to: BorrowedFd<'_>, at: u64, len: u64) -> Res<()> {
    let mut buf = vec![0u8; 128 * 1024];
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from(len - done)
            .unwrap_or(buf.len())
            .min(buf.len());
        let chunk = buf.get_mut(..want).ok_or(Errno::INVAL)?;
        let n = match rustix::io::pread(from, &mut *chunk, at + done) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        sys::write_all_at(to, chunk.get(..n).ok_or(Errno::INVAL)?, at + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Copy the xattrs of `name` in `src` to `tmp` in `dst`, but overlay's own. Xattrs the
/// upper cannot store are dropped, as kernel overlay does, unless they carry access
/// rights (ACLs, file capabilities).
fn copy_xattrs(src: BorrowedFd<'_>, name: &CStr, dst: BorrowedFd<'_>, tmp: &CStr) -> Res<()> {
    let from = sys::proc_at(src, name)?;
    let to = sys::proc_at(dst, tmp)?;
    for key in xattr::list(&from)? {
        if sys::private_xattr(key.to_bytes()) {
            continue;
        }
        let Some(value) = xattr::get(&from, &key)? else {
            continue;
        };
        match rustix::fs::lsetxattr(
            to.as_c_str(),
            key.as_c_str(),
            &value,
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            Err(Errno::NOTSUP) if !must_copy(key.to_bytes()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn must_copy(key: &[u8]) -> bool {
    key.starts_with(b"system.posix_acl_") || key == b"security.capability"
}
