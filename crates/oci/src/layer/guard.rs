//! A pass-through reader in front of the tar parser that refuses oversized metadata
//! entries (PAX `x`/`g`, GNU long name `L`/`K`) by their declared size, before the tar
//! crate would read them whole into memory — a gzip'd layer can declare a 10 GiB PAX
//! header in a few MB. It follows the block structure the way the tar crate does (header
//! size, overridden by a preceding PAX `size` record; GNU sparse extension blocks), so it
//! stays in step with it; anything malformed is passed through for the parser to refuse.

use std::io::{self, Read};

/// Largest metadata entry accepted (paths are at most 4 KiB; xattrs at most 64 KiB each).
pub const META_LIMIT: u64 = 1 << 20;

const BLOCK: usize = 512;

enum State {
    Header,
    /// File data (padded to the block size) still to pass.
    Data(u64),
    /// PAX data being passed and kept, to learn a `size` record.
    Pax {
        left: u64,
        size: u64,
        kept: Vec<u8>,
    },
    /// GNU sparse extension headers, then this much padded data.
    SparseExt(u64),
    /// After the end marker, or once the stream stopped making sense.
    Passthrough,
}

pub struct TarGuard<R> {
    inner: R,
    state: State,
    pending: Vec<u8>,
    pos: usize,
    pax_size: Option<u64>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            state: State::Header,
            pending: Vec::new(),
            pos: 0,
            pax_size: None,
        }
    }

    /// Read one block (fewer bytes only at EOF).
    fn block(&mut self) -> io::Result<Vec<u8>> {
        let mut b = Vec::with_capacity(BLOCK);
        (&mut self.inner).take(BLOCK as u64).read_to_end(&mut b)?;
        Ok(b)
    }

    fn header(&mut self) -> io::Result<()> {
        let b = self.block()?;
        if b.len() < BLOCK || b.iter().all(|x| *x == 0) {
            self.state = State::Passthrough;
            self.pending = b;
            return Ok(());
        }
        let kind = b[156];
        let Some(mut size) = parse_size(&b[124..136]) else {
            self.state = State::Passthrough;
            self.pending = b;
            return Ok(());
        };
        let is_ext = matches!(kind, b'x' | b'g' | b'L' | b'K');
        if is_ext {
            if size > META_LIMIT {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "a tar metadata entry (type `{}`) of {size} bytes exceeds the limit of \
                         {META_LIMIT} bytes",
                        char::from(kind).escape_default()
                    ),
                ));
            }
        } else if let Some(ps) = self.pax_size.take() {
            size = ps;
        }
        // A hostile header (a pax `size` near 2^64) must not wrap the padded length.
        let Some(padded) = size.div_ceil(BLOCK as u64).checked_mul(BLOCK as u64) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a tar entry claims {size} bytes: more than any file can hold"),
            ));
        };
        self.state = if kind == b'x' {
            State::Pax {
                left: padded,
                size,
                kept: Vec::new(),
            }
        } else if kind == b'S' && b[482] != 0 {
            State::SparseExt(padded)
        } else {
            State::Data(padded)
        };
        self.pending = b;
        Ok(())
    }
}

/// A tar numeric field: octal text, or base-256 when the high bit is set.
fn parse_size(f: &[u8]) -> Option<u64> {
    if f[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(f[0] & 0x7f);
        for b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let s: Vec<u8> = f
        .iter()
        .copied()
        .filter(|b| *b != 0 && *b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

/// The first `size` record of PAX data, as the tar crate reads it.
fn pax_size(data: &[u8]) -> Option<u64> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > rest.len() {
            return None;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n")?;
        if let Some(v) = rec.strip_prefix(b"size=") {
            return std::str::from_utf8(v).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    None
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.pending.len() {
                let n = out.len().min(self.pending.len() - self.pos);
                out[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            self.pending.clear();
            self.pos = 0;
            match &mut self.state {
                State::Passthrough => return self.inner.read(out),
                State::Data(0) => self.state = State::Header,
                State::Data(left) => {
                    let want = out.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut out[..want])?;
                    *left -= n as u64;
                    return Ok(n);
                }
                State::Pax {
                    left: 0,
                    size,
                    kept,
                } => {
                    kept.truncate(usize::try_from(*size).unwrap_or(usize::MAX));
                    self.pax_size = pax_size(kept);
                    self.state = State::Header;
                }
                State::Pax { left, kept, .. } => {
                    let want = out.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut out[..want])?;
                    if n == 0 {
                        return Ok(0);
                    }
                    *left -= n as u64;
                    kept.extend_from_slice(&out[..n]);
                    return Ok(n);
                }
                State::SparseExt(data) => {
                    let data = *data;
                    let b = self.block()?;
                    if b.len() < BLOCK {
                        self.state = State::Passthrough;
                    } else if b[504] == 0 {
                        self.state = State::Data(data);
                    }
                    self.pending = b;
                    if self.pending.is_empty() {
                        return Ok(0);
                    }
                }
                State::Header => {
                    self.header()?;
                    if self.pending.is_empty() {
                        return Ok(0);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(tar: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        TarGuard::new(tar).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn passes_the_corpus_through_unchanged_or_refuses_metadata_bombs() {
        for case in super::super::hostile::corpus() {
            match through(&case.tar) {
                Ok(out) => assert_eq!(out, case.tar, "{}", case.name),
                Err(e) => {
                    assert!(case.name.ends_with("-bomb"), "{}: {e}", case.name);
                    assert!(e.to_string().contains("exceeds the limit"), "{e}");
                }
            }
        }
    }

    #[test]
    fn parses_numeric_fields_and_pax_sizes() {
        assert_eq!(parse_size(b"00000001750\0"), Some(1000));
        assert_eq!(parse_size(b"\0\0\0\0\0\0\0\0\0\0\0\0"), Some(0));
        let mut b = [0u8; 12];
        b[0] = 0x80;
        b[11] = 5;
        b[10] = 1;
        assert_eq!(parse_size(&b), Some(261));
        assert_eq!(parse_size(b"zz"), None);
        assert_eq!(pax_size(b"9 path=a\n12 size=100\n"), Some(100));
        assert_eq!(pax_size(b"9 path=a\n"), None);
        assert_eq!(pax_size(b"garbage"), None);
    }
}
