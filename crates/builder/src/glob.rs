//! Wildcards of COPY/ADD sources: Go's `filepath.Match` (`*`, `?`, `[...]`, `\` escapes;
//! `*` never crosses `/`) plus `**` for `--parents` and `--exclude` (any number of
//! directories).
//!
//! Never: reads the file system (`instr::copy` walks it).

/// A malformed pattern (an unclosed `[`, a trailing `\`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("syntax error in pattern `{0}`")]
pub struct BadPattern(pub String);

/// True when the pattern has a wildcard character.
pub fn has_wildcard(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Match a whole path against a pattern, segment by segment; `**` matches zero or more
/// segments.
pub fn path_match(pattern: &str, path: &str) -> Result<bool, BadPattern> {
    let pat: Vec<&str> = pattern
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    match_segs(pattern, &pat, &segs)
}

/// Match `path` or any of its parent directories (an exclude of `dir` covers `dir/x`).
pub fn path_or_parent_match(pattern: &str, path: &str) -> Result<bool, BadPattern> {
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    for n in 1..=segs.len() {
        if path_match(pattern, &segs[..n].join("/"))? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn match_segs(whole: &str, pat: &[&str], segs: &[&str]) -> Result<bool, BadPattern> {
    match pat.first() {
        None => Ok(segs.is_empty()),
        Some(&"**") => {
            for k in 0..=segs.len() {
                if match_segs(whole, &pat[1..], &segs[k..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some(p) => match segs.first() {
            None => Ok(false),
            Some(s) => {
                if segment_match(p, s).map_err(|_| BadPattern(whole.to_string()))? {
                    match_segs(whole, &pat[1..], &segs[1..])
                } else {
                    Ok(false)
                }
            }
        },
    }
}

/// Go's `filepath.Match` for one path segment (no `/` in either).
pub fn segment_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first, so errors do not depend on the name.
    validate(&p).map_err(|_| BadPattern(pattern.to_string()))?;
    Ok(m(&p, &n))
}

fn validate(p: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if i < p.len() && p[i] == '^' {
                    i += 1;
                }
                let start = i;
                loop {
                    if i >= p.len() {
                        return Err(());
                    }
                    if p[i] == ']' && i > start {
                        break;
                    }
                    if p[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn m(p: &[char], n: &[char]) -> bool {
    if p.is_empty() {
        return n.is_empty();
    }
    match p[0] {
        '*' => (0..=n.len()).any(|k| m(&p[1..], &n[k..])),
        '?' => !n.is_empty() && m(&p[1..], &n[1..]),
        '[' => {
            if n.is_empty() {
                return false;
            }
            let c = n[0];
            let mut i = 1;
            let negate = i < p.len() && p[i] == '^';
            if negate {
                i += 1;
            }
            let mut matched = false;
            let start = i;
            while i < p.len() && !(p[i] == ']' && i > start) {
                let mut lo = p[i];
                if lo == '\\' && i + 1 < p.len() {
                    i += 1;
                    lo = p[i];
                }
                let mut hi = lo;
                if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                    hi = p[i + 2];
                    if hi == '\\' && i + 3 < p.len() {
                        hi = p[i + 3];
                        i += 1;
                    }
                    i += 2;
                }
                if lo <= c && c <= hi {
                    matched = true;
                }
                i += 1;
            }
            matched != negate && m(&p[(i + 1).min(p.len())..], &n[1..])
        }
        '\\' if p.len() > 1 => !n.is_empty() && n[0] == p[1] && m(&p[2..], &n[1..]),
        c => !n.is_empty() && n[0] == c && m(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g72_go_filepath_match() {
        assert!(segment_match("*.go", "a.go").unwrap());
        assert!(!segment_match("*.go", "a.goo").unwrap());
        assert!(segment_match("f?o", "foo").unwrap());
        assert!(segment_match("[a-c]x", "bx").unwrap());
        assert!(!segment_match("[^a-c]x", "bx").unwrap());
        assert!(segment_match("\\*", "*").unwrap());
        assert!(!segment_match("\\*", "a").unwrap());
        assert!(segment_match("[", "x").is_err());
        assert!(path_match("sub/*/dir2/foo", "sub/dir1/dir2/foo").unwrap());
        assert!(!path_match("*", "a/b").unwrap());
    }

    #[test]
    fn g84_double_star() {
        assert!(path_match("test/a/b*/c/**/e", "test/a/bx/c/e").unwrap());
        assert!(path_match("test/a/b*/c/**/e", "test/a/bx/c/1/2/e").unwrap());
        assert!(!path_match("test/a/b*/c/**/e", "test/a/bx/d/e").unwrap());
    }

    #[test]
    fn g85_exclude_covers_children() {
        assert!(path_or_parent_match("dir", "dir/x/y").unwrap());
        assert!(path_or_parent_match("*.txt", "a.txt").unwrap());
        assert!(!path_or_parent_match("*.txt", "a.md").unwrap());
    }
}
