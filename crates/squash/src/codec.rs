//! Block compression: zstd for writing; zstd and gzip (zlib, mksquashfs's default) for
//! reading, every output bounded by the block's largest legal size.
//! Never: knows where blocks are (write/ and read/ do).

use std::io::Read;

use crate::format::{COMP_GZIP, COMP_ZSTD};

/// zstd level of written blocks: a tenth of level 19's time for most of its ratio on
/// image files (binaries, text); reads cost the same at any level.
pub const ZSTD_LEVEL: i32 = 9;

/// Failures of (de)compressing one block.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The archive uses a compressor this reader lacks.
    #[error("compressor {0} is not supported (zstd and gzip are)")]
    Unsupported(u16),
    /// The block does not decompress, or to more than its limit.
    #[error("a block does not decompress within {limit} bytes")]
    Corrupt {
        /// The most it may give.
        limit: usize,
    },
    /// Compressing failed.
    #[error("compress a block")]
    Compress(#[source] std::io::Error),
}

/// A decompressor for an archive's compressor id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// zstd.
    Zstd,
    /// zlib (squashfs's "gzip").
    Gzip,
}

impl Codec {
    /// The codec of compressor `id`.
    pub fn of(id: u16) -> Result<Codec, CodecError> {
        match id {
            COMP_ZSTD => Ok(Codec::Zstd),
            COMP_GZIP => Ok(Codec::Gzip),
            other => Err(CodecError::Unsupported(other)),
        }
    }

    /// Decompress `data`, which may give at most `limit` bytes.
    pub fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
        let bad = || CodecError::Corrupt { limit };
        match self {
            Codec::Zstd => zstd::bulk::decompress(data, limit).map_err(|_| bad()),
            Codec::Gzip => {
                let mut out = Vec::new();
                let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
                flate2::read::ZlibDecoder::new(data)
                    .take(cap)
                    .read_to_end(&mut out)
                    .map_err(|_| bad())?;
                if out.len() > limit {
                    return Err(bad());
                }
                Ok(out)
            }
        }
    }
}

/// A reusable zstd compressor for written blocks.
pub struct Compressor {
    inner: zstd::bulk::Compressor<'static>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Compressor {
    /// At [`ZSTD_LEVEL`].
    pub fn new() -> Result<Self, CodecError> {
        Ok(Compressor {
            inner: zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(CodecError::Compress)?,
        })
    }

    /// `Some(compressed)` when that is smaller than `data`, else `None` (store it raw).
    pub fn compress(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, CodecError> {
        let c = self.inner.compress(data).map_err(CodecError::Compress)?;
        Ok((c.len() < data.len()).then_some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_round_trips_and_refuses_more_than_the_limit() {
        let data = vec![7u8; 10_000];
        let c = Compressor::new().unwrap().compress(&data).unwrap().unwrap();
        assert_eq!(Codec::Zstd.decompress(&c, 10_000).unwrap(), data);
        assert!(Codec::Zstd.decompress(&c, 9_999).is_err());
        assert!(Codec::Zstd.decompress(b"garbage", 100).is_err());
        assert!(Codec::of(4).is_err());
    }

    #[test]
    fn gzip_is_bounded_too() {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&[1u8; 5000]).unwrap();
        let c = e.finish().unwrap();
        assert_eq!(Codec::Gzip.decompress(&c, 5000).unwrap().len(), 5000);
        assert!(Codec::Gzip.decompress(&c, 4999).is_err());
    }
}
