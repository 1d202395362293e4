//! The image config inside a `.sqsh`: a trailer after the squashfs proper, at the first
//! 4 KiB boundary past `bytes_used`, where squashfs readers (the kernel, unsquashfs,
//! squashfuse) never look, so the file system shows exactly the image's files.
//! Layout: 16 magic bytes, the JSON's length (u64 LE), its sha256, the JSON.
//! Never: interprets the JSON (the runtime does).

use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 16] = b"imago.config.v1\n";
const HEAD: usize = 16 + 8 + 32;
/// The largest config accepted: image configs are a few KiB.
pub const MAX_CONFIG: u64 = 4 << 20;

/// Failures of reading a trailer.
#[derive(Debug, thiserror::Error)]
pub enum TrailerError {
    /// Reading failed.
    #[error("read the image config")]
    Read(#[source] std::io::Error),
    /// The trailer is there but broken.
    #[error("the embedded image config is damaged ({0})")]
    Damaged(&'static str),
}

/// Where the trailer of an archive of `bytes_used` bytes starts.
pub fn offset(bytes_used: u64) -> u64 {
    bytes_used.div_ceil(4096).saturating_mul(4096)
}

/// The trailer bytes for `config`.
pub fn encode(config: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEAD + config.len());
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&(config.len() as u64).to_le_bytes());
    b.extend_from_slice(&Sha256::digest(config));
    b.extend_from_slice(config);
    b
}

/// The config stored at `at` in `file` (`file_len` long): `None` when there is no
/// trailer (a squashfs made by another tool).
pub fn read(file: &std::fs::File, at: u64, file_len: u64) -> Result<Option<Vec<u8>>, TrailerError> {
    if at.saturating_add(HEAD as u64) > file_len {
        return Ok(None);
    }
    let mut head = [0u8; HEAD];
    file.read_exact_at(&mut head, at)
        .map_err(TrailerError::Read)?;
    if &head[..16] != MAGIC {
        return Ok(None);
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[16..24]);
    let len = u64::from_le_bytes(len);
    if len > MAX_CONFIG {
        return Err(TrailerError::Damaged("larger than 4 MiB"));
    }
    if at + HEAD as u64 + len > file_len {
        return Err(TrailerError::Damaged("truncated"));
    }
    let mut body = vec![0u8; len as usize];
    file.read_exact_at(&mut body, at + HEAD as u64)
        .map_err(TrailerError::Read)?;
    if Sha256::digest(&body).as_slice() != &head[24..] {
        return Err(TrailerError::Damaged("checksum mismatch"));
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trip_absent_and_damaged() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[0u8; 10]).unwrap();
        f.write_all(&encode(b"{\"a\":1}")).unwrap();
        let len = f.metadata().unwrap().len();
        assert_eq!(read(&f, 10, len).unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(read(&f, 0, len).unwrap(), None);
        assert!(read(&f, 10, len - 1).is_err());
        f.write_all_at(b"x", len - 1).unwrap();
        assert!(read(&f, 10, len).is_err());
        assert_eq!(offset(0), 0);
        assert_eq!(offset(1), 4096);
        assert_eq!(offset(4096), 4096);
    }
}
