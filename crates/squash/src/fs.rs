//! The read-only FUSE server over an [`Archive`]: lookup, getattr, readlink, open,
//! read, readdir, statfs; every change is refused (`EROFS`). Inode numbers are the
//! archive's inode references plus 2 (the root is 1), so no table is kept and
//! hardlinks share a number. Long cache TTLs: the archive never changes.
//! Several worker threads answer at once (fuser's session on one `/dev/fuse` fd);
//! the archive's reads are `pread`s and its caches are locked briefly.
//! Never: mounts (the caller hands a mounted fd) or follows a symlink.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig,
    LockOwner, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyXattr, Request,
};

use crate::format::kind;
use crate::owners::Owners;
use crate::read::{Archive, Inode, InodeKind};

/// The archive never changes: the kernel may cache everything for long.
const TTL: Duration = Duration::from_secs(24 * 3600);
const GEN: Generation = Generation(0);

/// The file system; serve it with [`serve_on`].
#[derive(Debug)]
pub struct SquashFs {
    archive: Archive,
    owners: Owners,
}

impl SquashFs {
    /// Serve `archive`, showing owners through `owners`.
    pub fn new(archive: Archive, owners: Owners) -> SquashFs {
        SquashFs { archive, owners }
    }

    fn to_ref(&self, ino: INodeNo) -> u64 {
        match ino.0 {
            1 => self.archive.root(),
            n => n.saturating_sub(2),
        }
    }

    fn to_ino(&self, r: u64) -> INodeNo {
        if r == self.archive.root() {
            INodeNo(1)
        } else {
            INodeNo(r + 2)
        }
    }

    /// The attributes of a negative entry (inode 0).
    fn negative(&self) -> FileAttr {
        let none = Inode {
            kind: InodeKind::Fifo,
            perm: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
            number: 0,
        };
        FileAttr {
            ino: INodeNo(0),
            nlink: 0,
            ..self.attr(0, &none)
        }
    }

    fn attr(&self, r: u64, i: &Inode) -> FileAttr {
        let (kind, size, nlink, rdev) = match &i.kind {
            InodeKind::Dir { len, nlink, .. } => (FileType::Directory, *len as u64, *nlink, 0),
            InodeKind::File { size, nlink, .. } => (FileType::RegularFile, *size, *nlink, 0),
            InodeKind::Symlink(t) => (FileType::Symlink, t.len() as u64, 1, 0),
            InodeKind::Block(d) => (FileType::BlockDevice, 0, 1, *d),
            InodeKind::Char(d) => (FileType::CharDevice, 0, 1, *d),
            InodeKind::Fifo => (FileType::NamedPipe, 0, 1, 0),
            InodeKind::Socket => (FileType::Socket, 0, 1, 0),
        };
        let t = UNIX_EPOCH + Duration::from_secs(u64::from(i.mtime));
        FileAttr {
            ino: self.to_ino(r),
            size,
            blocks: size.div_ceil(512),
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind,
            perm: i.perm,
            nlink: nlink.max(1),
            uid: self.owners.uid(i.uid),
            gid: self.owners.gid(i.gid),
            rdev,
            blksize: 4096,
            flags: 0,
        }
    }
}

fn file_type(t: u16) -> FileType {
    match t {
        kind::DIR => FileType::Directory,
        kind::SYMLINK => FileType::Symlink,
        kind::BLOCK => FileType::BlockDevice,
        kind::CHAR => FileType::CharDevice,
        kind::FIFO => FileType::NamedPipe,
        kind::SOCKET => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

impl Filesystem for SquashFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for cap in [
            fuser::InitFlags::FUSE_CACHE_SYMLINKS,
            fuser::InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            // An old kernel without one of these still works, only slower.
            let _ = config.add_capabilities(cap);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let p = self.to_ref(parent);
        match self.archive.lookup(p, name.as_bytes()) {
            Ok(Some(e)) => match self.archive.inode(e.inode) {
                Ok(i) => reply.entry(&TTL, &self.attr(e.inode, &i), GEN),
                Err(_) => reply.error(fuser::Errno::EIO),
            },
            // A negative entry (inode 0): the kernel caches "no such name" for the TTL,
            // right for an archive that never changes (PATH searches ask often).
            Ok(None) => reply.entry(&TTL, &self.negative(), GEN),
            Err(_) => reply.error(fuser::Errno::EIO),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.to_ref(ino);
        match self.archive.inode(r) {
            Ok(i) => reply.attr(&TTL, &self.attr(r, &i)),
            Err(_) => reply.error(fuser::Errno::EIO),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.archive.inode(self.to_ref(ino)) {
            Ok(i) => match &i.kind {
                InodeKind::Symlink(t) => reply.data(t),
                _ => reply.error(fuser::Errno::EINVAL),
            },
            Err(_) => reply.error(fuser::Errno::EIO),
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc_accmode() != 0 {
            return reply.error(fuser::Errno::EROFS);
        }
        reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.archive.read(self.to_ref(ino), offset, size as usize) {
            Ok(d) => reply.data(&d),
            Err(_) => reply.error(fuser::Errno::EIO),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(
            FileHandle(0),
            FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.archive.dir(self.to_ref(ino)) {
            Ok(e) => e,
            Err(_) => return reply.error(fuser::Errno::EIO),
        };
        let dots = [
            (ino, FileType::Directory, &b"."[..]),
            (ino, FileType::Directory, b".."),
        ];
        let all = dots.into_iter().chain(
            entries
                .iter()
                .map(|e| (self.to_ino(e.inode), file_type(e.kind), e.name.as_slice())),
        );
        for (i, (n, t, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(n, i as u64 + 1, t, OsStr::from_bytes(name)) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let sb = self.archive.superblock();
        let bs = sb.block_size;
        let blocks = sb.bytes_used.div_ceil(u64::from(bs));
        reply.statfs(blocks, 0, 0, u64::from(sb.inode_count), 0, bs, 255, bs);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(fuser::Errno::from_i32(61)); // ENODATA: no xattrs are stored
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }
}

/// O_WRONLY | O_RDWR: an open asking for either is refused.
fn libc_accmode() -> i32 {
    0o3
}

/// Serve `fs` on `fd`, an open `/dev/fuse` already mounted with `fd=N`, with `threads`
/// workers, until the mount is gone.
pub fn serve_on(fd: OwnedFd, fs: SquashFs, threads: usize) -> std::io::Result<()> {
    let mut config = fuser::Config::default();
    config.n_threads = Some(threads.max(1));
    config.clone_fd = false;
    let session = fuser::Session::from_fd(fs, fd, fuser::SessionACL::All, config)?;
    session.run()
}
