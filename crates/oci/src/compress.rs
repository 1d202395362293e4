//! Layer compression: detection by magic bytes, decompressing readers and compressing
//! writers for gzip (flate2 with the zlib-rs backend) and zstd.
//!
//! Levels ([`Level`]): `Fast` is gzip 1 / zstd 1, `Default` is gzip 6 / zstd 3 (what
//! `gzip` and `zstd` use), `Best` is gzip 9 / zstd 19. Store layers want `Fast` (cheap to
//! write, registries accept any level); `Default` matches docker/podman output sizes.
//!
//! Never: knows media types (media_type.rs maps those) or touches files.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read, Write};

/// How a blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// Detect from the first bytes of a blob (4 are enough). Anything not gzip or zstd is
    /// `None` (an uncompressed tar, or not a layer at all: the tar reader will say).
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&GZIP_MAGIC) {
            Self::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// The name used in media types and on the command line (`none`, `gzip`, `zstd`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "uncompressed" => Ok(Self::None),
            "gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            _ => Err(format!("unknown compression `{s}`: use none, gzip or zstd")),
        }
    }
}

/// A compression level, mapped per algorithm (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    Fast,
    #[default]
    Default,
    Best,
    /// An algorithm-specific level (gzip 0–9, zstd 1–22), clamped to the valid range.
    Exact(i32),
}

impl Level {
    pub(crate) fn gzip(self) -> flate2::Compression {
        match self {
            Self::Fast => flate2::Compression::new(1),
            Self::Default => flate2::Compression::new(6),
            Self::Best => flate2::Compression::new(9),
            Self::Exact(n) => flate2::Compression::new(n.clamp(0, 9) as u32),
        }
    }

    pub(crate) fn zstd(self) -> i32 {
        match self {
            Self::Fast => 1,
            Self::Default => 3,
            Self::Best => 19,
            Self::Exact(n) => n.clamp(1, 22),
        }
    }
}

/// Read up to 4 bytes (fewer only at EOF) and detect the compression; returns the bytes
/// read so they can be put back in front of the stream.
pub fn sniff<R: Read>(r: &mut R) -> io::Result<(Compression, Vec<u8>)> {
    let mut head = Vec::with_capacity(4);
    r.by_ref().take(4).read_to_end(&mut head)?;
    Ok((Compression::detect(&head), head))
}

/// Detect the compression of a buffered stream without consuming anything: fills the
/// buffer until 4 bytes are visible or EOF (a `BufReader` of capacity ≥ 4 is fine).
pub fn detect_buffered<R: BufRead>(r: &mut R) -> io::Result<Compression> {
    let buf = r.fill_buf()?;
    Ok(Compression::detect(buf))
}

/// A reader that yields the decompressed bytes of `R` (Send when `R` is).
pub enum Decompressor<R: Read> {
    None(R),
    Gzip(Box<flate2::read::MultiGzDecoder<BufReader<R>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::None(r) => r.read(buf),
            Self::Gzip(r) => r.read(buf),
            Self::Zstd(r) => r.read(buf),
        }
    }
}

/// Decompress `r` as `c` says. Gzip handles concatenated members (as Go's reader does).
pub fn decompress<R: Read>(r: R, c: Compression) -> io::Result<Decompressor<R>> {
    Ok(match c {
        Compression::None => Decompressor::None(r),
        Compression::Gzip => Decompressor::Gzip(Box::new(flate2::read::MultiGzDecoder::new(
            BufReader::with_capacity(64 * 1024, r),
        ))),
        Compression::Zstd => Decompressor::Zstd(zstd::stream::read::Decoder::new(r)?),
    })
}

/// A stream with its first bytes read and put back in front.
pub type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

/// Detect by magic and decompress: what an unpack of a blob of unknown type wants.
pub fn auto_decompress<R: Read>(mut r: R) -> io::Result<(Compression, Decompressor<Peeked<R>>)> {
    let (c, head) = sniff(&mut r)?;
    let chained: Chain<Cursor<Vec<u8>>, R> = Cursor::new(head).chain(r);
    Ok((c, decompress(chained, c)?))
}

/// A writer that compresses into `W`. Call [`Compressor::finish`] to write the trailer
/// and get `W` back; dropping it without `finish` leaves a truncated stream.
pub enum Compressor<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(w: W, c: Compression, level: Level) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Self::None(w),
            // No file name and mtime 0 in the header: the output is reproducible.
            Compression::Gzip => Self::Gzip(flate2::GzBuilder::new().write(w, level.gzip())),
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(w, level.zstd())?;
                e.include_checksum(true)?;
                Self::Zstd(e)
            }
        })
    }

    /// Finish the stream (trailer, checksum) and return the inner writer, flushed.
    pub fn finish(self) -> io::Result<W> {
        let mut w = match self {
            Self::None(w) => w,
            Self::Gzip(e) => e.finish()?,
            Self::Zstd(e) => e.finish()?,
        };
        w.flush()?;
        Ok(w)
    }

    pub fn get_ref(&self) -> &W {
        match self {
            Self::None(w) => w,
            Self::Gzip(e) => e.get_ref(),
            Self::Zstd(e) => e.get_ref(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::None(w) => w.write(buf),
            Self::Gzip(e) => e.write(buf),
            Self::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::None(w) => w.flush(),
            Self::Gzip(e) => e.flush(),
            Self::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Compression, level: Level) {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = Compressor::new(Vec::new(), c, level).unwrap();
        w.write_all(&data).unwrap();
        let blob = w.finish().unwrap();
        assert_eq!(Compression::detect(&blob), c, "{c}");
        let (detected, mut r) = auto_decompress(&blob[..]).unwrap();
        assert_eq!(detected, c);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "{c}");
    }

    #[test]
    fn round_trips_every_algorithm_and_level() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            for l in [Level::Fast, Level::Default, Level::Best, Level::Exact(99)] {
                roundtrip(c, l);
            }
        }
    }

    #[test]
    fn detects_short_and_plain_input() {
        assert_eq!(Compression::detect(b""), Compression::None);
        assert_eq!(Compression::detect(&[0x1f]), Compression::None);
        assert_eq!(Compression::detect(&[0x1f, 0x8b]), Compression::Gzip);
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f]), Compression::None);
        let (c, mut r) = auto_decompress(&b"ab"[..]).unwrap();
        assert_eq!(c, Compression::None);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "ab");
        let mut br = BufReader::new(&[0x28u8, 0xb5, 0x2f, 0xfd, 0][..]);
        assert_eq!(detect_buffered(&mut br).unwrap(), Compression::Zstd);
    }

    #[test]
    fn gzip_is_reproducible_and_multimember() {
        let one = |d: &[u8]| {
            let mut w = Compressor::new(Vec::new(), Compression::Gzip, Level::Fast).unwrap();
            w.write_all(d).unwrap();
            w.finish().unwrap()
        };
        assert_eq!(one(b"x"), one(b"x"));
        let mut two = one(b"hello ");
        two.extend(one(b"world"));
        let mut s = String::new();
        decompress(&two[..], Compression::Gzip)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hello world");
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let mut bad = vec![0x1f, 0x8b, 8, 0];
        bad.extend([0xffu8; 32]);
        let mut out = Vec::new();
        assert!(decompress(&bad[..], Compression::Gzip)
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
        assert_eq!("zstd".parse::<Compression>(), Ok(Compression::Zstd));
        assert!("lz4".parse::<Compression>().is_err());
    }
}
