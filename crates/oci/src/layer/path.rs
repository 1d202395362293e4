//! Tar entry names, cleaned into components before anything touches the disk. A name
//! from a tar is untrusted until it is a [`CleanPath`]: no `..`, no NUL, no empty
//! component, relative.

use super::{LayerError, Rule};

/// Longest path we accept (Linux PATH_MAX).
pub const PATH_MAX: usize = 4096;

/// A relative path inside a layer root, as components. Empty = the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanPath {
    pub parts: Vec<Vec<u8>>,
}

/// How absolute names are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AbsolutePaths {
    /// Refuse them (the default: well-formed layers never have them).
    #[default]
    Refuse,
    /// Take them relative to the layer root, as docker does.
    Relative,
}

impl CleanPath {
    /// Clean a raw tar name: `./` and duplicate `/` are dropped, a trailing `/` is
    /// ignored; `..` anywhere, NUL, and (unless allowed) a leading `/` are refused.
    pub fn parse(raw: &[u8], abs: AbsolutePaths) -> Result<Self, LayerError> {
        let shown = || display(raw);
        if raw.contains(&0) {
            return Err(LayerError::refused(shown(), Rule::NulInName));
        }
        if raw.len() > PATH_MAX {
            return Err(LayerError::refused(shown(), Rule::PathTooLong(PATH_MAX)));
        }
        // `/` alone is the root, which is harmless; `/x` is refused unless allowed.
        let has_name = raw
            .split(|b| *b == b'/')
            .any(|c| !c.is_empty() && c != b".");
        if raw.first() == Some(&b'/') && abs == AbsolutePaths::Refuse && has_name {
            return Err(LayerError::refused(shown(), Rule::AbsolutePath));
        }
        let mut parts = Vec::new();
        for c in raw.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err(LayerError::refused(shown(), Rule::ParentTraversal)),
                c => parts.push(c.to_vec()),
            }
        }
        Ok(Self { parts })
    }

    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last component (None for the root).
    pub fn base(&self) -> Option<&[u8]> {
        self.parts.last().map(Vec::as_slice)
    }

    /// The parent's components.
    pub fn parent(&self) -> &[Vec<u8>] {
        &self.parts[..self.parts.len().saturating_sub(1)]
    }

    /// `a/b/c` (no leading `./`, no trailing `/`).
    pub fn display(&self) -> String {
        let joined: Vec<u8> = self.parts.join(&b'/');
        display(&joined)
    }
}

/// A lossy, printable form of raw name bytes for messages.
pub fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace('\0', "\\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<String>, String> {
        CleanPath::parse(s.as_bytes(), AbsolutePaths::Refuse)
            .map(|c| {
                c.parts
                    .iter()
                    .map(|x| String::from_utf8(x.clone()).unwrap())
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn cleans_and_refuses() {
        assert_eq!(p("./a//b/").unwrap(), ["a", "b"]);
        assert_eq!(p(".").unwrap(), Vec::<String>::new());
        assert_eq!(p("./").unwrap(), Vec::<String>::new());
        assert_eq!(p("/").unwrap(), Vec::<String>::new());
        assert!(p("../x").unwrap_err().contains("`..`"));
        assert!(p("a/../../x").unwrap_err().contains("`..`"));
        assert!(p("a/..").unwrap_err().contains("`..`"));
        assert!(p("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(p("a\0b").unwrap_err().contains("NUL"));
        assert!(p(&"a/".repeat(3000)).unwrap_err().contains("longer"));
        let rel = CleanPath::parse(b"/etc/x", AbsolutePaths::Relative).unwrap();
        assert_eq!(rel.display(), "etc/x");
        assert_eq!(rel.parent().len(), 1);
        assert_eq!(rel.base(), Some(&b"x"[..]));
    }
}
