//! Open files and attribute changes.
//! Owns: the host fd each read and write goes to (`pread`/`pwrite`): a file handle's own
//! (one opened on a lower re-opens the upper once the file is copied up, so every reader
//! sees the writes), or with zero-message opens the inode's cached fd (a write copies the
//! file up first); copy-up on open for writing (no data copied when the open
//! truncates); setattr (size, owner, mode, times) after a copy-up.
//! Never: opens anything but a regular file, writes a lower.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, ReplyData, TimeOrNow};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::inode::{FastMap, UPPER};
use super::lookup::Loc;
use super::sys::{self, Res};
use super::{attr, FuseOverlay};

struct Handle {
    fd: Arc<OwnedFd>,
    ino: u64,
    writable: bool,
    /// Opened on a lower: how to follow the file once it is copied up.
    lower: Option<LowerWatch>,
}

struct LowerWatch {
    /// The node's copied-up flag.
    copied: Arc<AtomicBool>,
    /// The upper file, once re-opened.
    upper: Mutex<Option<Arc<OwnedFd>>>,
}

/// The open file handles.
#[derive(Default)]
pub(crate) struct Handles {
    map: RwLock<FastMap<u64, Arc<Handle>>>,
    next: AtomicU64,
}

impl Handles {
    fn get(&self, fh: u64) -> Res<Arc<Handle>> {
        let m = self.map.read().unwrap_or_else(|p| p.into_inner());
        m.get(&fh).cloned().ok_or(Errno::BADF)
    }
}

/// What a setattr asks for.
pub(crate) struct Changes {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
    pub fh: Option<u64>,
}

/// The flags a host open keeps from the caller's (no create, append or direct I/O: the
/// kernel gives every write its offset, and the page cache sits above us).
fn host_flags(flags: i32) -> OFlags {
    let keep = OFlags::ACCMODE | OFlags::TRUNC | OFlags::SYNC | OFlags::DSYNC;
    OFlags::from_bits_retain(flags as u32) & keep
}

/// Open the entry at `loc` (a regular file).
pub(crate) fn open_loc(loc: &Loc, flags: OFlags) -> Res<OwnedFd> {
    match loc {
        Loc::At { .. } => {
            let (dir, name) = loc.dir().ok_or(Errno::STALE)?;
            sys::open_at(dir, name, flags, 0)
        }
        // Re-open the unlinked file through its O_PATH fd.
        Loc::Orphan(fd) => rustix::fs::open(
            sys::proc_fd(fd.as_fd()).as_c_str(),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
        ),
        Loc::Root(_) => Err(Errno::ISDIR),
    }
}

impl FuseOverlay {
    pub(crate) fn add_handle(
        &self,
        fd: OwnedFd,
        ino: u64,
        writable: bool,
        lower: Option<Arc<AtomicBool>>,
    ) -> u64 {
        let fh = self.files.next.fetch_add(1, Ordering::Relaxed) + 1;
        let h = Arc::new(Handle {
            fd: Arc::new(fd),
            ino,
            writable,
            lower: lower.map(|copied| LowerWatch {
                copied,
                upper: Mutex::new(None),
            }),
        });
        let mut m = self.files.map.write().unwrap_or_else(|p| p.into_inner());
        m.insert(fh, h);
        fh
    }

    pub(crate) fn open_ino(&self, ino: u64, flags: i32) -> Res<u64> {
        let v = self.inodes.view(ino)?;
        match v.kind {
            FileType::RegularFile => {}
            FileType::Directory => return Err(Errno::ISDIR),
            _ => return Err(Errno::INVAL),
        }
        let hf = host_flags(flags);
        let write =
            hf.contains(OFlags::WRONLY) || hf.contains(OFlags::RDWR) || hf.contains(OFlags::TRUNC);
        if !write {
            let fd = open_loc(&self.locate(&v)?, hf)?;
            let lower = (v.layer != UPPER).then(|| v.copied.clone());
            return Ok(self.add_handle(fd, ino, false, lower));
        }
        let _ns = self.lock_ns();
        let v = self.copy_up(ino, !hf.contains(OFlags::TRUNC))?;
        if v.layer != UPPER {
            return Err(Errno::ROFS);
        }
        let fd = open_loc(&self.locate(&v)?, hf)?;
        Ok(self.add_handle(fd, ino, true, None))
    }

    /// The host file of `ino` for requests without a handle (zero-message opens): cached
    /// per inode; writing copies a lower file up first.
    fn node_file(&self, ino: u64, write: bool) -> Res<Arc<OwnedFd>> {
        if let Some(fd) = self.inodes.file(ino, write) {
            return Ok(fd);
        }
        let v = if write {
            let _ns = self.lock_ns();
            self.copy_up(ino, true)?
        } else {
            self.inodes.view(ino)?
        };
        if v.kind != FileType::RegularFile {
            return Err(Errno::INVAL);
        }
        if write && v.layer != UPPER {
            return Err(Errno::ROFS);
        }
        let flags = if write { OFlags::RDWR } else { OFlags::RDONLY };
        let fd = Arc::new(open_loc(&self.locate(&v)?, flags)?);
        self.inodes.set_file(ino, fd.clone(), write, v.layer);
        Ok(fd)
    }

    /// The fd a request on `fh` (0: none) for `ino` goes to.
    fn io_fd(&self, ino: u64, fh: u64, write: bool) -> Res<Arc<OwnedFd>> {
        if fh == 0 {
            return self.node_file(ino, write);
        }
        let h = self.files.get(fh)?;
        if write && !h.writable {
            return Err(Errno::BADF);
        }
        self.current(&h)
    }

    /// The fd handle `fh` reads from now (the upper once a lower file was copied up).
    fn current(&self, h: &Handle) -> Res<Arc<OwnedFd>> {
        let Some(w) = &h.lower else {
            return Ok(h.fd.clone());
        };
        if !w.copied.load(Ordering::Acquire) {
            return Ok(h.fd.clone());
        }
        let mut up = w.upper.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fd) = up.as_ref() {
            return Ok(fd.clone());
        }
        let v = self.inodes.view(h.ino)?;
        let fd = Arc::new(open_loc(&self.locate(&v)?, OFlags::RDONLY)?);
        *up = Some(fd.clone());
        Ok(fd)
    }

    pub(crate) fn read_fh(&self, ino: u64, fh: u64, offset: u64, size: u32, reply: ReplyData) {
        thread_local! {
            static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        let fd = match self.io_fd(ino, fh, false) {
            Ok(fd) => fd,
            Err(e) => return reply.error(attr::errno(e)),
        };
        let size = size as usize;
        // Exactly `size` bytes at most: the kernel refuses (EINVAL) a reply longer than
        // the request, and the reused buffer may have more capacity than that.
        let read = |v: &mut Vec<u8>| -> Res<()> {
            v.clear();
            v.resize(size, 0);
            loop {
                match rustix::io::pread(fd.as_fd(), &mut v[..], offset) {
                    Ok(n) => {
                        v.truncate(n);
                        return Ok(());
                    }
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        BUF.with(|b| match b.try_borrow_mut() {
            Ok(mut v) => match read(&mut v) {
                Ok(()) => reply.data(&v),
                Err(e) => reply.error(attr::errno(e)),
            },
            Err(_) => {
                let mut v = Vec::new();
                match read(&mut v) {
                    Ok(()) => reply.data(&v),
                    Err(e) => reply.error(attr::errno(e)),
                }
            }
        });
    }

    /// Write `data` at `offset`; `kill_suid`: then clear setuid and group-executable
    /// setgid, as a write by a caller without CAP_FSETID does on any file system (this
    /// server has it, so its own write clears nothing).
    pub(crate) fn write_fh(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        data: &[u8],
        kill_suid: bool,
    ) -> Res<u32> {
        let fd = self.io_fd(ino, fh, true)?;
        let written = sys::write_all_at(fd.as_fd(), data, offset);
        self.changed();
        written?;
        if kill_suid {
            self.drop_suid(ino, fd.as_fd())?;
        }
        u32::try_from(data.len()).map_err(|_| Errno::INVAL)
    }

    fn drop_suid(&self, ino: u64, fd: BorrowedFd<'_>) -> Res<()> {
        let mode = rustix::fs::fstat(fd)?.st_mode & 0o7777;
        let mut kill = mode & 0o4000;
        if mode & 0o2010 == 0o2010 {
            kill |= 0o2000;
        }
        if kill == 0 {
            return Ok(());
        }
        let _ns = self.lock_ns();
        rustix::fs::fchmod(fd, Mode::from_raw_mode(mode & !kill))?;
        keep_record_mode(&sys::proc_fd(fd), mode & !kill, true)?;
        // The kernel still holds the old mode (a write reply carries no attributes).
        self.invalidate_attrs(ino);
        Ok(())
    }

    pub(crate) fn release_fh(&self, fh: u64) {
        if fh == 0 {
            // A file created without a handle (zero-message opens).
            return;
        }
        let mut m = self.files.map.write().unwrap_or_else(|p| p.into_inner());
        m.remove(&fh);
    }

    pub(crate) fn fsync_fh(&self, ino: u64, fh: u64, datasync: bool) -> Res<()> {
        let fd = self.io_fd(ino, fh, false)?;
        if datasync {
            rustix::fs::fdatasync(fd.as_fd())
        } else {
            rustix::fs::fsync(fd.as_fd())
        }
    }

    pub(crate) fn fallocate_fh(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> Res<()> {
        let fd = self.io_fd(ino, fh, true)?;
        let flags = rustix::fs::FallocateFlags::from_bits_retain(mode as u32);
        let r = rustix::fs::fallocate(fd.as_fd(), flags, offset, len);
        self.changed();
        r
    }

    pub(crate) fn setattr_ino(&self, ino: u64, c: Changes) -> Res<FileAttr> {
        let _ns = self.lock_ns();
        let v = self.copy_up(ino, c.size != Some(0))?;
        if v.layer != UPPER {
            return Err(Errno::ROFS);
        }
        let loc = self.locate(&v)?;
        if let Some(size) = c.size {
            let h =
                c.fh.and_then(|fh| self.files.get(fh).ok())
                    .filter(|h| h.writable);
            match h {
                Some(h) => rustix::fs::ftruncate(h.fd.as_fd(), size)?,
                None => rustix::fs::ftruncate(open_loc(&loc, OFlags::WRONLY)?, size)?,
            }
        }
        if c.uid.is_some() || c.gid.is_some() {
            let uid = c.uid.map(rustix::fs::Uid::from_raw);
            let gid = c.gid.map(rustix::fs::Gid::from_raw);
            match (loc.dir(), loc.fd()) {
                (Some((d, n)), _) => {
                    rustix::fs::chownat(d, n, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?
                }
                (None, Some(fd)) => rustix::fs::chownat(fd, c"", uid, gid, AtFlags::EMPTY_PATH)?,
                (None, None) => return Err(Errno::STALE),
            }
        }
        if let Some(mode) = c.mode {
            let (path, follow) = match (loc.dir(), loc.fd()) {
                (Some((d, n)), _) => {
                    sys::chmod_at(d, n, mode & 0o7777)?;
                    (sys::proc_at(d, n)?, false)
                }
                (None, Some(fd)) => {
                    let p = sys::proc_fd(fd);
                    rustix::fs::chmod(p.as_c_str(), Mode::from_raw_mode(mode & 0o7777))?;
                    (p, true)
                }
                (None, None) => return Err(Errno::STALE),
            };
            keep_record_mode(&path, mode, follow)?;
        }
        if c.atime.is_some() || c.mtime.is_some() {
            let t = Timestamps {
                last_access: timespec(c.atime),
                last_modification: timespec(c.mtime),
            };
            match (loc.dir(), loc.fd()) {
                (Some((d, n)), _) => rustix::fs::utimensat(d, n, &t, AtFlags::SYMLINK_NOFOLLOW)?,
                (None, Some(fd)) => rustix::fs::utimensat(
                    rustix::fs::CWD,
                    sys::proc_fd(fd).as_c_str(),
                    &t,
                    AtFlags::empty(),
                )?,
                (None, None) => return Err(Errno::STALE),
            }
        }
        self.attr_of(&v)
    }
}

fn timespec(t: Option<TimeOrNow>) -> Timespec {
    let (tv_sec, tv_nsec) = match t {
        None => (0, rustix::fs::UTIME_OMIT),
        Some(TimeOrNow::Now) => (0, rustix::fs::UTIME_NOW),
        Some(TimeOrNow::SpecificTime(st)) => since_epoch(st),
    };
    Timespec { tv_sec, tv_nsec }
}

fn since_epoch(t: SystemTime) -> (i64, rustix::fs::Nsecs) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos().into(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, (1_000_000_000 - d.subsec_nanos()).into())
            }
        }
    }
}

/// A chmod of an entry that carries an ownership record (`user.containers.override_stat`,
/// single-mapped layers): the record takes the new mode too, as the kernel overlay's
/// does through the recording fakeroot, since the layer committer reads the mode from it.
/// `follow`: `path` is a `/proc/self/fd/N` link to the file.
fn keep_record_mode(path: &std::ffi::CStr, mode: u32, follow: bool) -> Res<()> {
    use imago_oci::layer::{OverrideStat, OVERRIDE_STAT_XATTR};
    let key = std::ffi::CString::new(OVERRIDE_STAT_XATTR).map_err(|_| Errno::INVAL)?;
    let Some(mut rec) =
        super::xattr::get_at(path, &key, follow)?.and_then(|v| OverrideStat::parse(&v))
    else {
        return Ok(());
    };
    rec.mode = mode & 0o7777;
    let flags = rustix::fs::XattrFlags::empty();
    match follow {
        true => rustix::fs::setxattr(path, &key, rec.format().as_bytes(), flags),
        false => rustix::fs::lsetxattr(path, &key, rec.format().as_bytes(), flags),
    }
}
