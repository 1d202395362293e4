//! Resuming a blob download: the `Range: bytes=N-` header asked for when a partial
//! download of the blob holds N bytes, `Content-Range` parsing, and the decision what
//! to do with the registry's answer (append, start again from byte 0, or ask again
//! without a range). The bytes themselves go to the store's partial file
//! (`imago_store::PartialBlob`), which hashes what it already holds.
//!
//! Never: sends requests or retries (pull.rs), touches files (the store).

/// A `Content-Range` value that is not `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a byte range: {0:?}")]
pub struct RangeError(String);

/// A parsed `Content-Range: bytes FIRST-LAST/TOTAL`; `total` is `None` for `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub total: Option<u64>,
}

/// Parse a `Content-Range` header value.
pub fn parse_content_range(value: &str) -> Result<ContentRange, RangeError> {
    let bad = || RangeError(value.to_owned());
    let rest = value.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (span, total) = rest.split_once('/').ok_or_else(bad)?;
    let (first, last) = span.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| -> Result<u64, RangeError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (first, last) = (num(first)?, num(last)?);
    let total = if total == "*" {
        None
    } else {
        Some(num(total)?)
    };
    if last < first || total.is_some_and(|t| last >= t) {
        return Err(bad());
    }
    Ok(ContentRange { first, last, total })
}

/// The `Range` header for a download that holds `from` bytes (none from byte 0).
pub fn range_header(from: u64) -> Option<(&'static str, String)> {
    (from > 0).then(|| ("Range", format!("bytes={from}-")))
}

/// What to do with the answer to a blob `GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The body continues the bytes held (206 from the right place; 200 from byte 0).
    Append,
    /// The registry ignored the range and sends the whole blob (200): empty the partial
    /// file and write this body into it.
    FromZero,
    /// The range answer is unusable (wrong start, bad `Content-Range`, 416): discard the
    /// partial file and ask again without a range. The text says why.
    Again(String),
    /// Not a blob: fail as any other unexpected answer.
    Fail,
}

/// Decide what the answer `status` (with its `Content-Range`, if any) to a request for
/// the blob of `size` bytes from byte `from` means.
pub fn decide(from: u64, size: u64, status: u16, content_range: Option<&str>) -> Decision {
    match status {
        200 if from == 0 => Decision::Append,
        200 => Decision::FromZero,
        206 => {
            let Some(value) = content_range else {
                return Decision::Again("a 206 answer without Content-Range".into());
            };
            match parse_content_range(value) {
                Ok(r) if r.first == from && r.total.is_none_or(|t| t == size) && r.last < size => {
                    Decision::Append
                }
                Ok(r) => Decision::Again(format!(
                    "asked for bytes from {from} of {size}, the registry sent {}-{}/{}",
                    r.first,
                    r.last,
                    r.total.map_or_else(|| "*".to_owned(), |t| t.to_string())
                )),
                Err(e) => Decision::Again(e.to_string()),
            }
        }
        416 if from > 0 => {
            Decision::Again(format!("the registry refused the range from byte {from}"))
        }
        _ => Decision::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Ok(ContentRange {
                first: 100,
                last: 199,
                total: Some(200)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-0/*").map(|r| r.total),
            Ok(None)
        );
        for bad in [
            "",
            "bytes",
            "bytes */200",
            "bytes 10-5/200",
            "bytes 0-200/200",
            "bytes -1-5/9",
            "bytes 1-2",
            "items 1-2/3",
            "bytes +1-2/3",
            "bytes 1-99999999999999999999999/3",
        ] {
            assert!(parse_content_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn range_headers_only_for_a_resumed_download() {
        assert_eq!(range_header(0), None);
        assert_eq!(range_header(42), Some(("Range", "bytes=42-".into())));
    }

    #[test]
    fn the_decision_table() {
        let size = 1000;
        // 206 from the right place appends; a wrong start, a wrong total, no or a bad
        // Content-Range: ask again without a range.
        assert_eq!(
            decide(400, size, 206, Some("bytes 400-999/1000")),
            Decision::Append
        );
        assert_eq!(
            decide(400, size, 206, Some("bytes 400-999/*")),
            Decision::Append
        );
        for cr in [
            Some("bytes 0-999/1000"),
            Some("bytes 401-999/1000"),
            Some("bytes 400-999/2000"),
            Some("bytes 400-1200/1300"),
            Some("junk"),
            None,
        ] {
            assert!(
                matches!(decide(400, size, 206, cr), Decision::Again(_)),
                "{cr:?}"
            );
        }
        // 200: the registry ignored the range: the whole blob, from 0.
        assert_eq!(decide(400, size, 200, None), Decision::FromZero);
        assert_eq!(decide(0, size, 200, None), Decision::Append);
        // 416: discard and restart.
        assert!(matches!(decide(400, size, 416, None), Decision::Again(_)));
        // Anything else is an error, as without resuming.
        for status in [404, 401, 500, 302] {
            assert_eq!(decide(400, size, status, None), Decision::Fail, "{status}");
        }
        assert_eq!(decide(0, size, 416, None), Decision::Fail);
    }
}
