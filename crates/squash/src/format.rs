//! The squashfs 4.0 on-disk layout this crate writes and reads: the superblock, inode
//! type numbers, flags, size fields, little-endian field access.
//! Never: does I/O or compression (write/, read/ and codec.rs do).

/// `hsqs`.
pub const MAGIC: u32 = 0x7371_7368;
/// The superblock's size.
pub const SUPER_LEN: usize = 96;
/// An absent table.
pub const INVALID: u64 = u64::MAX;
/// Uncompressed bytes in one metadata block.
pub const META_SIZE: usize = 8192;
/// Metadata block header bit: the block is stored uncompressed.
pub const META_UNCOMPRESSED: u16 = 0x8000;
/// Data block size field bit: the block is stored uncompressed.
pub const DATA_UNCOMPRESSED: u32 = 1 << 24;
/// No fragment (a file's `frag_index`).
pub const NO_FRAGMENT: u32 = u32::MAX;
/// No xattrs (an extended inode's `xattr_idx`).
pub const NO_XATTR: u32 = u32::MAX;

/// Compressor ids.
pub const COMP_GZIP: u16 = 1;
/// zstd.
pub const COMP_ZSTD: u16 = 6;

/// Flags: no fragments are used.
pub const FLAG_NO_FRAGMENTS: u16 = 0x0010;
/// Flags: no xattrs are stored.
pub const FLAG_NO_XATTRS: u16 = 0x0200;

/// Basic inode types (directory entries always carry these); extended = basic + 7.
pub mod kind {
    /// Directory.
    pub const DIR: u16 = 1;
    /// Regular file.
    pub const FILE: u16 = 2;
    /// Symbolic link.
    pub const SYMLINK: u16 = 3;
    /// Block device.
    pub const BLOCK: u16 = 4;
    /// Character device.
    pub const CHAR: u16 = 5;
    /// FIFO.
    pub const FIFO: u16 = 6;
    /// Socket.
    pub const SOCKET: u16 = 7;
    /// Extended types are the basic ones plus this.
    pub const EXTENDED: u16 = 7;
}

/// The superblock fields this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Super {
    /// Inodes in the archive.
    pub inode_count: u32,
    /// Seconds since the epoch.
    pub mtime: u32,
    /// Data block size (a power of two, 4 KiB to 1 MiB).
    pub block_size: u32,
    /// Entries in the fragment table.
    pub fragment_count: u32,
    /// Compressor id.
    pub compression: u16,
    /// log2 of `block_size`.
    pub block_log: u16,
    /// Flags.
    pub flags: u16,
    /// Entries in the id table.
    pub id_count: u16,
    /// Reference of the root directory's inode.
    pub root_inode: u64,
    /// Bytes of the archive (tables included; padding and trailer excluded).
    pub bytes_used: u64,
    /// Where the id table's index is.
    pub id_table: u64,
    /// Where the xattr id table is, or [`INVALID`].
    pub xattr_table: u64,
    /// Where the inode table starts.
    pub inode_table: u64,
    /// Where the directory table starts.
    pub dir_table: u64,
    /// Where the fragment table's index is, or [`INVALID`].
    pub fragment_table: u64,
    /// Where the export table's index is, or [`INVALID`].
    pub export_table: u64,
}

impl Super {
    /// The 96 bytes on disk.
    pub fn encode(&self) -> [u8; SUPER_LEN] {
        let mut b = Vec::with_capacity(SUPER_LEN);
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&self.inode_count.to_le_bytes());
        b.extend_from_slice(&self.mtime.to_le_bytes());
        b.extend_from_slice(&self.block_size.to_le_bytes());
        b.extend_from_slice(&self.fragment_count.to_le_bytes());
        b.extend_from_slice(&self.compression.to_le_bytes());
        b.extend_from_slice(&self.block_log.to_le_bytes());
        b.extend_from_slice(&self.flags.to_le_bytes());
        b.extend_from_slice(&self.id_count.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        for v in [
            self.root_inode,
            self.bytes_used,
            self.id_table,
            self.xattr_table,
            self.inode_table,
            self.dir_table,
            self.fragment_table,
            self.export_table,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let mut out = [0u8; SUPER_LEN];
        out.copy_from_slice(&b);
        out
    }

    /// Parse the 96 bytes; `None` when this is no squashfs 4.0 superblock.
    pub fn decode(b: &[u8; SUPER_LEN]) -> Option<Super> {
        let c = Cursor::new(b);
        if c.u32(0)? != MAGIC || c.u16(28)? != 4 || c.u16(30)? != 0 {
            return None;
        }
        Some(Super {
            inode_count: c.u32(4)?,
            mtime: c.u32(8)?,
            block_size: c.u32(12)?,
            fragment_count: c.u32(16)?,
            compression: c.u16(20)?,
            block_log: c.u16(22)?,
            flags: c.u16(24)?,
            id_count: c.u16(26)?,
            root_inode: c.u64(32)?,
            bytes_used: c.u64(40)?,
            id_table: c.u64(48)?,
            xattr_table: c.u64(56)?,
            inode_table: c.u64(64)?,
            dir_table: c.u64(72)?,
            fragment_table: c.u64(80)?,
            export_table: c.u64(88)?,
        })
    }
}

/// Bounds-checked little-endian reads from a byte slice (`None` past its end).
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// Over `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b }
    }

    /// `n` bytes at `at`.
    pub fn bytes(&self, at: usize, n: usize) -> Option<&'a [u8]> {
        self.b.get(at..at.checked_add(n)?)
    }

    /// A u16 at `at`.
    pub fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes(at, 2)?.try_into().ok()?))
    }

    /// A u32 at `at`.
    pub fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(at, 4)?.try_into().ok()?))
    }

    /// A u64 at `at`.
    pub fn u64(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(at, 8)?.try_into().ok()?))
    }
}

/// The kernel's "new" 32-bit device encoding, as squashfs stores device numbers.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// (major, minor) of [`encode_dev`]'s form.
pub fn decode_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_round_trips() {
        let s = Super {
            inode_count: 7,
            block_size: 131072,
            block_log: 17,
            compression: COMP_ZSTD,
            root_inode: 0x1234_0056,
            bytes_used: 4096,
            xattr_table: INVALID,
            ..Super::default()
        };
        assert_eq!(Super::decode(&s.encode()), Some(s));
        let mut bad = s.encode();
        bad[0] = b'x';
        assert_eq!(Super::decode(&bad), None);
    }

    #[test]
    fn device_numbers_round_trip() {
        for (ma, mi) in [(1, 3), (8, 17), (259, 70000), (0, 0)] {
            assert_eq!(decode_dev(encode_dev(ma, mi)), (ma, mi));
        }
    }
}
