//! Content digests (`sha256:<64 hex>`): parsing, computing, and the identities built on
//! them. Other algorithms are rejected by name, since every registry and tool we meet
//! uses sha256.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest `{0}`: expected `sha256:` followed by 64 lowercase hex digits")]
    Malformed(String),
    #[error("unsupported digest algorithm `{algo}` in `{digest}`: only sha256 is supported")]
    UnsupportedAlgorithm { algo: String, digest: String },
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// Build from 64 lowercase hex digits (no `sha256:` prefix).
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self {
                hex: hex.to_owned(),
            })
        } else {
            Err(DigestError::Malformed(hex.to_owned()))
        }
    }

    /// The algorithm name, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as docker shows image ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_owned()));
        };
        if algo != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm {
                algo: algo.to_owned(),
                digest: s.to_owned(),
            });
        }
        Self::from_hex(hex).map_err(|_| DigestError::Malformed(s.to_owned()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<&Digest> for oci_spec::image::Digest {
    fn from(d: &Digest) -> Self {
        oci_spec::image::Sha256Digest::from_str(&d.hex)
            .map(Into::into)
            .expect("a validated sha256 digest is a valid oci-spec digest")
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(d: Digest) -> Self {
        (&d).into()
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;
    /// Refuses algorithms other than sha256, by name.
    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        d.to_string().parse()
    }
}

/// An incremental sha256 that also counts bytes.
#[derive(Default, Clone)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.inner.finalize()),
        }
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// The digest and length of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        let len = self.hasher.len();
        (self.hasher.finish(), len)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A reader that fails at EOF (`InvalidData`) when the content does not hash to the
/// expected digest or (when given) does not have the expected size; reading past the
/// expected size fails at once. Bytes are handed out before the check, so a consumer must
/// treat its output as provisional until EOF was reached without error.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    expected: Digest,
    size: Option<u64>,
    checked: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
            expected,
            size,
            checked: false,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some(size) = self.size {
            if self.hasher.len() > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {} is longer than its {size} bytes", self.expected),
                ));
            }
        }
        if n == 0 && !buf.is_empty() && !self.checked {
            self.checked = true;
            let len = self.hasher.len();
            let actual = std::mem::take(&mut self.hasher).finish();
            if actual != self.expected || self.size.is_some_and(|s| s != len) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} is corrupt: content hashes to {actual} ({len} bytes)",
                        self.expected
                    ),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_bad_input() {
        let d = Digest::of(b"x");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!(matches!(
            "sha256:abc".parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            format!("sha512:{}", d.hex()).parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(format!("sha256:{}", d.hex().to_uppercase())
            .parse::<Digest>()
            .is_err());
    }

    #[test]
    fn converts_to_and_from_oci_spec() {
        let d = Digest::of(b"x");
        let o: oci_spec::image::Digest = (&d).into();
        assert_eq!(o.to_string(), d.to_string());
        assert_eq!(Digest::try_from(&o).unwrap(), d);
    }

    #[test]
    fn verifying_reader_checks_digest_and_size() {
        let ok = |r: &mut dyn Read| std::io::copy(r, &mut std::io::sink());
        assert!(ok(&mut VerifyingReader::new(
            &b"abc"[..],
            Digest::of(b"abc"),
            Some(3)
        ))
        .is_ok());
        assert!(ok(&mut VerifyingReader::new(
            &b"abc"[..],
            Digest::of(b"abc"),
            None
        ))
        .is_ok());
        assert!(ok(&mut VerifyingReader::new(
            &b"abd"[..],
            Digest::of(b"abc"),
            Some(3)
        ))
        .is_err());
        assert!(ok(&mut VerifyingReader::new(
            &b"abc"[..],
            Digest::of(b"abc"),
            Some(2)
        ))
        .is_err());
        assert!(ok(&mut VerifyingReader::new(
            &b"abc"[..],
            Digest::of(b"abc"),
            Some(4)
        ))
        .is_err());
    }

    #[test]
    fn hashing_reader_matches_one_shot() {
        let mut r = HashingReader::new(&b"hello world"[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(r.finish(), (Digest::of(b"hello world"), 11));
    }
}
