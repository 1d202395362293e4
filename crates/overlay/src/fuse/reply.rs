//! Turning results into FUSE replies, and what the server asks of the kernel at init.
//! Owns: the errno, TTL and generation of replies, the capabilities negotiated (and so
//! whether zero-message opens are in use), statfs. Never: touches a layer but the
//! upper's statfs.

use std::ffi::OsStr;

use fuser::{
    Generation, INodeNo, InitFlags, KernelConfig, ReplyEmpty, ReplyEntry, ReplyStatfs, ReplyXattr,
    Request,
};
use rustix::io::Errno;

use super::attr::errno;
use super::namespace::New;
use super::{sys, xattr, FuseOverlay};

/// Inode numbers are never reused: one generation.
pub(crate) const GEN: Generation = Generation(0);

impl FuseOverlay {
    pub(crate) fn entry(&self, r: Result<(u64, fuser::FileAttr), Errno>, reply: ReplyEntry) {
        match r {
            Ok((_, a)) => reply.entry(&self.ttl, &a, GEN),
            Err(e) => reply.error(errno(e)),
        }
    }

    /// Ask for what makes the mount fast; decide on zero-message opens.
    pub(crate) fn negotiate(&mut self, config: &mut KernelConfig) {
        self.zero_open = self.allow_zero_open
            && config
                .capabilities()
                .contains(InitFlags::FUSE_NO_OPEN_SUPPORT);
        // With zero-message opens no OPEN carries O_TRUNC: the kernel must send a SETATTR.
        let trunc = (!self.zero_open).then_some(InitFlags::FUSE_ATOMIC_O_TRUNC);
        let caps = [
            // Readdirplus always, not only when lookups follow ("auto"): a listing is
            // read in full at once, before whoever listed opens the files.
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_ASYNC_DIO,
        ];
        for cap in caps.into_iter().chain(trunc) {
            // An old kernel without one of these still works, only slower.
            let _ = config.add_capabilities(cap);
        }
        // Without it a shared mmap of a direct-I/O file fails (ENODEV).
        self.direct_create = self.allow_direct_create
            && config
                .add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP)
                .is_ok();
        // Kernel's own limits win: the call only reports them.
        let _ = config.set_max_background(64);
    }

    /// The open flags of a CREATE reply. Direct I/O where the kernel allows shared mmap
    /// with it: a cached write first asks for the new file's `security.capability`
    /// (one GETXATTR round trip per new file), a direct one leaves clearing setuid to
    /// this server (`FUSE_WRITE_KILL_SUIDGID`). The kernel keeps other opens' page
    /// cache and mmaps coherent with direct writes; reads through the creating fd are
    /// uncached.
    pub(crate) fn create_open_flags(&self) -> fuser::FopenFlags {
        use fuser::FopenFlags as F;
        match self.direct_create {
            true => F::FOPEN_KEEP_CACHE | F::FOPEN_DIRECT_IO,
            false => F::FOPEN_KEEP_CACHE,
        }
    }

    /// Make the kernel drop its cached attributes of `ino` (changed here unasked).
    pub(crate) fn invalidate_attrs(&self, ino: u64) {
        if let Some(n) = self.notifier.get() {
            // A negative offset: attributes only, no page-cache range. ENOENT (the
            // kernel forgot the inode meanwhile) leaves nothing stale.
            let _ = n.inval_inode(INodeNo(ino), -1, 0);
        }
    }

    /// statfs of the upper (where everything written goes).
    pub(crate) fn statfs_reply(&self, reply: ReplyStatfs) {
        let r = self
            .layers
            .first()
            .ok_or(Errno::STALE)
            .and_then(rustix::fs::fstatvfs);
        match r {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                u32::try_from(s.f_bsize).unwrap_or(4096),
                u32::try_from(s.f_namemax).unwrap_or(255),
                u32::try_from(s.f_frsize).unwrap_or(4096),
            ),
            Err(e) => reply.error(errno(e)),
        }
    }
}

/// Call `f` with the name `name` to create in `parent` for the caller of `req`.
pub(crate) fn new_entry<T>(
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    perms: u32,
    dir: bool,
    f: impl FnOnce(&New<'_>) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let n = sys::name(name)?;
    f(&New {
        parent: parent.0,
        name: &n,
        dir,
        perms,
        owner: Some((req.uid(), req.gid())),
    })
}

pub(crate) fn empty(r: Result<(), Errno>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

pub(crate) fn xattr_reply(r: Result<xattr::Reply, Errno>, reply: ReplyXattr) {
    match r {
        Ok(xattr::Reply::Size(n)) => reply.size(n),
        Ok(xattr::Reply::Data(d)) => reply.data(&d),
        Err(e) => reply.error(errno(e)),
    }
}
