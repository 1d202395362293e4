//! File data: any byte range of a regular file, from its data blocks (holes read as
//! zeros) and its tail fragment, each block decompressed at most to the block size and
//! cached.
//! Never: parses inodes (inode.rs).

use super::inode::InodeKind;
use super::{corrupt, Archive, ReadError};
use crate::format::DATA_UNCOMPRESSED;

impl Archive {
    /// Up to `len` bytes of the file at inode `r` from `offset` (fewer at its end).
    pub fn read(&self, r: u64, offset: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let ino = self.inode(r)?;
        let InodeKind::File {
            size,
            blocks,
            fragment,
            ..
        } = &ino.kind
        else {
            return corrupt("not a regular file");
        };
        let bs = u64::from(self.superblock().block_size);
        let (size, end) = (*size, (*size).min(offset.saturating_add(len as u64)));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut at = offset;
        while at < end {
            let index = at / bs;
            let block_start = index * bs;
            let want = (size - block_start).min(bs) as usize;
            let data = match blocks.get(index as usize) {
                Some(&(pos, field)) => self.data_block(pos, field, want)?,
                None => match fragment {
                    Some((frag, frag_off)) => {
                        let f = self.fragment_block(*frag)?;
                        let from = *frag_off as usize;
                        match f.get(from..from + want) {
                            Some(_) => std::sync::Arc::new(f[from..from + want].to_vec()),
                            None => return corrupt("fragment too short"),
                        }
                    }
                    None => return corrupt("file has fewer blocks than its size"),
                },
            };
            if data.len() < want {
                return corrupt("data block too short");
            }
            let from = (at - block_start) as usize;
            let to = ((end - block_start) as usize).min(want);
            out.extend_from_slice(&data[from..to]);
            at = block_start + to as u64;
        }
        Ok(out)
    }

    /// The data block at `pos` with size field `field`, `want` bytes long once
    /// decompressed (a hole when the field is 0).
    fn data_block(
        &self,
        pos: u64,
        field: u32,
        want: usize,
    ) -> Result<std::sync::Arc<Vec<u8>>, ReadError> {
        let on_disk = (field & !DATA_UNCOMPRESSED) as usize;
        if on_disk == 0 {
            return Ok(std::sync::Arc::new(vec![0u8; want]));
        }
        self.blocks.get_or(pos, || {
            let mut raw = vec![0u8; on_disk];
            self.pread(&mut raw, pos)?;
            if field & DATA_UNCOMPRESSED != 0 {
                Ok(raw)
            } else {
                let limit = self.superblock().block_size as usize;
                Ok(self.codec.decompress(&raw, limit)?)
            }
        })
    }

    /// The fragment block `i`, decompressed.
    fn fragment_block(&self, i: u32) -> Result<std::sync::Arc<Vec<u8>>, ReadError> {
        let Some(&(pos, field)) = self.frags.get(i as usize) else {
            return corrupt("fragment index");
        };
        let on_disk = u64::from(field & !DATA_UNCOMPRESSED);
        if on_disk == 0 || on_disk > u64::from(self.superblock().block_size) {
            return corrupt("fragment size");
        }
        // Cached by position like data blocks: a fragment never shares one with them.
        self.data_block(pos, field, 0)
    }
}
