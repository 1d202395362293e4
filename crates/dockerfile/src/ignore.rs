//! `.dockerignore` with moby's semantics: `dockerignore.ReadAll` (comments, BOM, trimming,
//! `!` exceptions, `filepath.Clean`, leading `/` removed) and `patternmatcher`
//! (`*` `?` `[...]` `**`, exact/prefix/suffix/regexp match kinds, later rules win, a path
//! is excluded when it or one of its parent directories matches).
//! Never: walks the context or reads the file (the engine passes the text and paths).

use crate::error::{ErrorSite, ParseError, ParseErrorKind};

/// The ignore files to try for a Dockerfile at `dockerfile` (a path as given to the build,
/// e.g. `Dockerfile` or `sub/app.Dockerfile`): first `<dockerfile>.dockerignore` next to
/// it (BuildKit), then at the context root `.containerignore` (podman and buildah prefer
/// it) and `.dockerignore`. Use the first that exists.
pub fn ignore_file_candidates(dockerfile: &str) -> [String; 3] {
    [
        format!("{dockerfile}.dockerignore"),
        ".containerignore".to_string(),
        ".dockerignore".to_string(),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: one char but `/`
    Any,
    /// `*`: any run without `/`
    Star,
    /// `**` inside a pattern: `(.*/)?`
    DirStar,
    /// `**` at the end after other wildcards: `.*`
    All,
    /// `[...]` as a Go regexp class (may match `/`).
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regexp(Vec<Tok>),
}

/// One cleaned pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The cleaned pattern without its `!`.
    pub text: String,
    /// A `!` pattern: re-includes what earlier patterns excluded.
    pub exclusion: bool,
    kind: Kind,
}

/// A parsed ignore file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the text of an ignore file; `file` names it in errors. An error names the
    /// line (a lone `!`, an unclosed `[`, a trailing `\`).
    pub fn parse(text: &str, file: &str) -> Result<DockerIgnore, ParseError> {
        let site = ErrorSite::new(file, text);
        let mut patterns = Vec::new();
        let mut lines: Vec<&str> = text.split('\n').collect();
        if text.ends_with('\n') {
            lines.pop();
        }
        for (i, raw) in lines.iter().enumerate() {
            let mut line = *raw;
            // bufio.ScanLines drops one trailing \r
            line = line.strip_suffix('\r').unwrap_or(line);
            if i == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut cleaned = String::new();
            if !p.is_empty() {
                cleaned = clean(p);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            let err = |reason: &str| {
                site.error(
                    i as u32 + 1,
                    1,
                    ParseErrorKind::IgnorePattern {
                        pattern: line.trim().to_string(),
                        reason: reason.to_string(),
                    },
                )
            };
            // patternmatcher.New: trim, clean again, split off `!`
            let full = if invert {
                format!("!{cleaned}")
            } else {
                cleaned
            };
            let full = full.trim();
            if full.is_empty() {
                continue;
            }
            let full = clean(full);
            let (exclusion, body) = match full.strip_prefix('!') {
                Some("") => return Err(err("illegal exclusion pattern: \"!\"")),
                Some(b) => (true, b.to_string()),
                None => (false, full),
            };
            validate_match_syntax(&body).map_err(|r| err(&r))?;
            let kind = compile(&body).map_err(|r| err(&r))?;
            patterns.push(Pattern {
                text: body,
                exclusion,
                kind,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// The patterns in file order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True if some pattern is a `!` exception (then excluded directories must still be
    /// walked, as their children may be re-included).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Is `path` (relative to the context root, `/`-separated, e.g. `src/main.rs`)
    /// excluded from the context? moby's `MatchesOrParentMatches`: the last matching
    /// pattern wins, and a pattern also matches when it matches a parent directory.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path.trim_start_matches('/'));
        let parent = match path.rfind('/') {
            Some(i) => &path[..i],
            None => ".",
        };
        // the path and its parent directories, prepared once for every pattern
        let prepared = |p: &str| (p.to_string(), p.chars().collect::<Vec<char>>());
        let whole = prepared(&path);
        let parents: Vec<(String, Vec<char>)> = if parent == "." {
            Vec::new()
        } else {
            parent
                .match_indices('/')
                .map(|(i, _)| &parent[..i])
                .chain([parent])
                .map(prepared)
                .collect()
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let m = p.matches_prepared(&whole.0, &whole.1)
                || parents.iter().any(|(s, c)| p.matches_prepared(s, c));
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

impl Pattern {
    /// Does this pattern match exactly this path (no parent logic)?
    pub fn matches(&self, path: &str) -> bool {
        self.matches_prepared(path, &path.chars().collect::<Vec<_>>())
    }

    fn matches_prepared(&self, path: &str, chars: &[char]) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.text[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                suffix.strip_prefix('/') == Some(path)
            }
            Kind::Regexp(toks) => regex_match(toks, chars),
        }
    }
}

/// Go's `filepath.Clean` for `/` paths.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// `filepath.Match(p, ".")`'s syntax check: classes closed and well formed, no trailing `\`.
fn validate_match_syntax(p: &str) -> Result<(), String> {
    let bad = || "syntax error in pattern".to_string();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err(bad());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(bad());
                    };
                    if c == ']' && n > 0 {
                        i += 1;
                        break;
                    }
                    let mut lo = c;
                    if lo == '\\' {
                        i += 1;
                        lo = *chars.get(i).ok_or_else(bad)?;
                    } else if lo == '-' || lo == ']' {
                        return Err(bad());
                    }
                    i += 1;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        let mut hi = *chars.get(i).ok_or_else(bad)?;
                        if hi == '\\' {
                            i += 1;
                            hi = *chars.get(i).ok_or_else(bad)?;
                        } else if hi == ']' || hi == '-' {
                            return Err(bad());
                        }
                        if hi < lo {
                            return Err(bad());
                        }
                        i += 1;
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// patternmatcher's `compile`, producing a match kind.
fn compile(p: &str) -> Result<Kind, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regexp
    let mut i = 0;
    let mut idx = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' => {
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if kind == 0 {
                            kind = 1;
                        } else {
                            toks.push(Tok::All);
                            kind = 3;
                        }
                    } else {
                        toks.push(Tok::DirStar);
                        kind = 3;
                    }
                    if idx == 0 {
                        kind = 2;
                    }
                } else {
                    toks.push(Tok::Star);
                    kind = 3;
                }
            }
            '?' => {
                toks.push(Tok::Any);
                kind = 3;
            }
            '\\' => {
                if let Some(&n) = chars.get(i) {
                    i += 1;
                    toks.push(Tok::Lit(n));
                    kind = 3;
                } else {
                    toks.push(Tok::Lit('\\'));
                }
            }
            '[' => {
                let mut negated = false;
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("syntax error in pattern".into());
                    };
                    i += 1;
                    if c == ']' && !ranges.is_empty() {
                        break;
                    }
                    let lo = if c == '\\' {
                        let n = *chars.get(i).ok_or("syntax error in pattern")?;
                        i += 1;
                        n
                    } else {
                        c
                    };
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        i += 1;
                        let c2 = chars[i];
                        i += 1;
                        hi = if c2 == '\\' {
                            let n = *chars.get(i).ok_or("syntax error in pattern")?;
                            i += 1;
                            n
                        } else {
                            c2
                        };
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class { negated, ranges });
                kind = 3;
            }
            c => toks.push(Tok::Lit(c)),
        }
        idx += 1;
    }
    Ok(match kind {
        0 => Kind::Exact,
        1 => Kind::Prefix,
        2 => Kind::Suffix,
        _ => Kind::Regexp(toks),
    })
}

/// Full match of the tokens against the path, by dynamic programming over
/// (token, position): no backtracking blow-up.
fn regex_match(toks: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    // reach[j] = positions reachable after j tokens
    let mut cur = vec![false; n + 1];
    cur[0] = true;
    for t in toks {
        let mut next = vec![false; n + 1];
        for i in 0..=n {
            if !cur[i] {
                continue;
            }
            match t {
                Tok::Lit(c) => {
                    if s.get(i) == Some(c) {
                        next[i + 1] = true;
                    }
                }
                Tok::Any => {
                    if s.get(i).is_some_and(|c| *c != '/') {
                        next[i + 1] = true;
                    }
                }
                Tok::Star => {
                    next[i] = true;
                    let mut k = i;
                    while k < n && s[k] != '/' {
                        k += 1;
                        next[k] = true;
                    }
                }
                Tok::DirStar => {
                    next[i] = true;
                    for k in i..n {
                        if s[k] == '/' {
                            next[k + 1] = true;
                        }
                    }
                }
                Tok::All => {
                    for x in next.iter_mut().skip(i) {
                        *x = true;
                    }
                }
                Tok::Class { negated, ranges } => {
                    if let Some(c) = s.get(i) {
                        let inside = ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
                        if inside != *negated {
                            next[i + 1] = true;
                        }
                    }
                }
            }
        }
        cur = next;
        if !cur.iter().any(|x| *x) {
            return false;
        }
    }
    cur[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("/../a/./b/.."), "/a");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("a/../.."), "..");
    }

    #[test]
    fn match_kinds() {
        let k = |p: &str| compile(p).unwrap();
        assert_eq!(k("a/b"), Kind::Exact);
        assert_eq!(k("a/**"), Kind::Prefix);
        assert_eq!(k("**/a"), Kind::Suffix);
        assert!(matches!(k("**/*.go"), Kind::Regexp(_)));
        assert!(matches!(k("a/*/**"), Kind::Regexp(_)));
    }

    #[test]
    fn classes_and_negation() {
        let ig = DockerIgnore::parse("[^a]x\n[a-c\\]]y\n", "i").unwrap();
        assert!(ig.is_excluded("bx") && !ig.is_excluded("ax"));
        assert!(ig.is_excluded("]y") && ig.is_excluded("by") && !ig.is_excluded("dy"));
        assert!(DockerIgnore::parse("[]a]\n", "i").is_err());
        assert!(DockerIgnore::parse("[z-a]\n", "i").is_err());
        assert!(DockerIgnore::parse("a\\\n", "i").is_err());
    }

    #[test]
    fn crlf_bom_and_paths() {
        let ig = DockerIgnore::parse("\u{feff}a\r\n./b/../c/\r\n", "i").unwrap();
        let texts: Vec<&str> = ig.patterns().iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["a", "c"]);
        assert!(ig.is_excluded("/c/d") && ig.is_excluded("./a"));
    }
}
