//! Base64 for Basic auth and auth.json `auth` fields, through the `base64` crate: what
//! imago writes is RFC 4648 standard and padded; what it reads may also lack padding or
//! use the URL-safe alphabet (other tools write both). Anything else — padding in the
//! middle, stray characters, non-zero trailing bits — is refused.

use ::base64::engine::general_purpose::{
    STANDARD, STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT,
};
use ::base64::Engine;

/// Encode with padding.
pub fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decode the standard or URL-safe alphabet, padded or not; `None` on bad input.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD_PAD_INDIFFERENT
        .decode(text)
        .or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(decode("Zg").unwrap(), b"f", "padding is optional");
        assert_eq!(decode("-_8=").unwrap(), [0xfb, 0xff], "URL-safe alphabet");
        assert!(decode("not base64!").is_none());
    }

    #[test]
    fn refuses_data_after_padding() {
        // The hand-written decoder stopped at the first `=` and took this as "f".
        assert_eq!(decode("Zg==Zg"), None);
        assert_eq!(decode("Zm8=Zm8="), None);
    }
}
