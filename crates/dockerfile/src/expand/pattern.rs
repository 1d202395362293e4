//! The glob patterns of `${v#p}` `${v%p}` `${v/p/r}`, as BuildKit's
//! `convertShellPatternToRegex` plus Go's regexp: tokens, shortest and longest match by
//! NFA simulation (no backtracking), prefix and suffix trims, first and all replacements
//! with Go's `$0` template, all charged to the expansion's step budget and length limit.
//! Never: reads variables or parses the `${...}` around the pattern (`param`).

use super::limits::too_long;
use super::{ExpandErrorKind, R};

/// One element of a `${v#pattern}` glob: `*`, `?` or a literal character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    Star,
    Any,
    Lit(char),
}

/// BuildKit's `convertShellPatternToRegex` as tokens: `*`, `?`, `\*` `\?` `\\` literal,
/// `\}` and `\/` drop the backslash, any other escape is an error.
pub(super) fn pattern_tokens(pattern: &str) -> R<Vec<Tok>> {
    let mut out = Vec::new();
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '\\' => {
                if matches!(it.peek(), Some('}' | '/')) {
                    continue;
                }
                match it.next() {
                    Some(n @ ('*' | '?' | '\\')) => out.push(Tok::Lit(n)),
                    other => {
                        let shown = other.map_or(String::new(), |c| c.to_string());
                        return Err(ExpandErrorKind::InvalidPattern {
                            pattern: pattern.to_string(),
                            reason: format!("invalid escape '\\{shown}'"),
                        });
                    }
                }
            }
            c => out.push(Tok::Lit(c)),
        }
    }
    Ok(out)
}

/// Matches one `${v#p}` / `${v/p/r}` pattern, charging its work to the expansion's
/// step budget ([`MAX_MATCH_STEPS`](super::MAX_MATCH_STEPS)).
pub(super) struct Matcher<'a> {
    tokens: &'a [Tok],
    pattern: &'a str,
    steps_left: &'a mut u64,
}

impl<'a> Matcher<'a> {
    pub(super) fn new(tokens: &'a [Tok], pattern: &'a str, steps_left: &'a mut u64) -> Self {
        Matcher {
            tokens,
            pattern,
            steps_left,
        }
    }

    fn charge(&mut self, steps: u64) -> R<()> {
        match self.steps_left.checked_sub(steps) {
            Some(left) => {
                *self.steps_left = left;
                Ok(())
            }
            None => Err(ExpandErrorKind::TooExpensive {
                pattern: self.pattern.to_string(),
            }),
        }
    }

    /// The end positions (in chars) at which the pattern matches `text[start..]`, computed
    /// by NFA simulation (no backtracking). Returns (shortest, longest).
    fn match_ends(&mut self, text: &[char], start: usize) -> R<Option<(usize, usize)>> {
        let tokens = self.tokens;
        let m = tokens.len();
        let mut cur = vec![false; m + 1];
        let mut next = vec![false; m + 1];
        let close = |set: &mut Vec<bool>| {
            for j in 0..m {
                if set[j] && tokens[j] == Tok::Star {
                    set[j + 1] = true;
                }
            }
        };
        cur[0] = true;
        close(&mut cur);
        let mut first = None;
        let mut last = None;
        let mut i = start;
        loop {
            self.charge(m as u64 + 1)?;
            if cur[m] {
                first.get_or_insert(i);
                last = Some(i);
            }
            let Some(&c) = text.get(i) else { break };
            next.iter_mut().for_each(|x| *x = false);
            let mut any = false;
            for j in 0..m {
                if !cur[j] {
                    continue;
                }
                let ok = match tokens[j] {
                    Tok::Star => {
                        next[j] = true;
                        any = true;
                        continue;
                    }
                    Tok::Any => true,
                    Tok::Lit(l) => l == c,
                };
                if ok {
                    next[j + 1] = true;
                    any = true;
                }
            }
            if !any {
                break;
            }
            close(&mut next);
            std::mem::swap(&mut cur, &mut next);
            i += 1;
        }
        Ok(first.zip(last))
    }

    pub(super) fn trim_prefix(&mut self, value: &str, greedy: bool) -> R<String> {
        let chars: Vec<char> = value.chars().collect();
        Ok(match self.match_ends(&chars, 0)? {
            Some((short, long)) => {
                let end = if greedy { long } else { short };
                chars[end..].iter().collect()
            }
            None => value.to_string(),
        })
    }

    pub(super) fn trim_suffix(&mut self, value: &str, greedy: bool) -> R<String> {
        let rev_tokens: Vec<Tok> = self.tokens.iter().rev().copied().collect();
        let rev: String = value.chars().rev().collect();
        let mut m = Matcher::new(&rev_tokens, self.pattern, self.steps_left);
        Ok(m.trim_prefix(&rev, greedy)?.chars().rev().collect())
    }

    /// Go's `regexp.ReplaceAllString` / first-match replacement with a greedy pattern,
    /// including its `$name` template expansion of the replacement; the result stays
    /// within `limit` bytes.
    pub(super) fn replace(
        &mut self,
        value: &str,
        replacement: &str,
        all: bool,
        limit: usize,
    ) -> R<String> {
        let chars: Vec<char> = value.chars().collect();
        let find = |m: &mut Self, from: usize| -> R<Option<(usize, usize)>> {
            for s in from..=chars.len() {
                if let Some((_, e)) = m.match_ends(&chars, s)? {
                    return Ok(Some((s, e)));
                }
            }
            Ok(None)
        };
        let slice = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
        if !all {
            let out = match find(self, 0)? {
                Some((s, e)) => {
                    format!("{}{}{}", slice(0, s), replacement, slice(e, chars.len()))
                }
                None => value.to_string(),
            };
            if out.len() > limit {
                return Err(too_long());
            }
            return Ok(out);
        }
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= chars.len() {
            let Some((a0, a1)) = find(self, search)? else {
                break;
            };
            out.push_str(&slice(last_end, a0));
            if a1 > last_end || a0 == 0 {
                let room = limit.saturating_sub(out.len());
                out.push_str(
                    &expand_template(replacement, &slice(a0, a1), room).ok_or_else(too_long)?,
                );
            }
            if out.len() > limit {
                return Err(too_long());
            }
            last_end = a1;
            if search + 1 > a1 {
                search += 1;
            } else {
                search = a1;
            }
        }
        out.push_str(&slice(last_end.min(chars.len()), chars.len()));
        if out.len() > limit {
            return Err(too_long());
        }
        Ok(out)
    }
}

/// Go's `Regexp.Expand` for a pattern without capture groups: `$$` is `$`, `$0`/`${0}`
/// the match, any other `$name` empty, a `$` not followed by a name stays literal.
/// None when the result would be longer than `limit` bytes.
fn expand_template(template: &str, whole: &str, limit: usize) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        if out.len() > limit {
            return None;
        }
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (name, after) = if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(j)
                    if j > 0
                        && r[..j]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    (&r[..j], &r[j + 1..])
                }
                _ => ("", rest),
            }
        } else {
            let n = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..n], &rest[n..])
        };
        if name.is_empty() {
            out.push('$');
            continue;
        }
        if name.bytes().all(|b| b.is_ascii_digit()) && name.parse::<u64>().ok() == Some(0) {
            out.push_str(whole);
        }
        rest = after;
    }
    out.push_str(rest);
    (out.len() <= limit).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::super::{expand_word, test_env as env, MAX_EXPANDED_LEN, MAX_MATCH_STEPS};
    use super::*;

    #[test]
    fn patterns() {
        let e = env(&[
            ("v", "def_val"),
            ("p", "a/b/c.tar.gz"),
            ("image", "idlebox"),
        ]);
        let x = |w: &str| expand_word(w, &e).unwrap();
        assert_eq!(x("${v%%e*}"), "d");
        assert_eq!(x("${v%a*}"), "def_v");
        assert_eq!(x("${v#*e}"), "f_val");
        assert_eq!(x("${v##*a}"), "l");
        assert_eq!(x("${p%.*}"), "a/b/c.tar");
        assert_eq!(x("${p%%.*}"), "a/b/c");
        assert_eq!(x("${p##*/}"), "c.tar.gz");
        assert_eq!(x("busy${image#idle}"), "busybox");
        assert_eq!(x("${p/\\//_}"), "a_b/c.tar.gz");
        assert_eq!(x("${p//\\//_}"), "a_b_c.tar.gz");
        assert_eq!(x("${v/?/X}"), "Xef_val");
        // `$$` is the special parameter `$` (always empty), expanded before replacing
        assert_eq!(x("${v//a/$$}"), "def_vl");
        assert_eq!(x("${v/*/}"), "");
        assert_eq!(x("${v/\\*/y}"), "def_val");
        assert!(expand_word("${v#\\x}", &e).is_err());
    }

    #[test]
    fn replace_all_empty_matches() {
        let e = env(&[("v", "abc")]);
        // Go: regexp `.*` on "abc" ReplaceAll "X" -> "X" (the empty match at the end abuts)
        assert_eq!(expand_word("${v//*/X}", &e).unwrap(), "X");
        let e = env(&[("v", "")]);
        assert_eq!(expand_word("${v//*/X}", &e).unwrap(), "X");
    }

    #[test]
    fn template_bomb_is_bounded() {
        // A replacement of many `$0` (Go's template for "the match"), each the whole
        // quarter-MiB value. (`$0` in a Dockerfile word is expanded, as a variable,
        // before this step; the bound holds for any template all the same.)
        let v = "v".repeat(MAX_EXPANDED_LEN / 4);
        let template = "$0".repeat(10_000);
        assert_eq!(expand_template(&template, &v, MAX_EXPANDED_LEN), None);
        assert_eq!(expand_template("<$0>", "ab", 4).as_deref(), Some("<ab>"));
        let mut steps = MAX_MATCH_STEPS;
        let tokens = [Tok::Star];
        let r =
            Matcher::new(&tokens, "*", &mut steps).replace(&v, &template, true, MAX_EXPANDED_LEN);
        assert_eq!(
            r,
            Err(ExpandErrorKind::TooLong {
                limit: MAX_EXPANDED_LEN
            })
        );
    }

    #[test]
    fn quadratic_patterns_are_cut_short() {
        // Every start position scans to the end: length² steps without the budget.
        let v = "x".repeat(200_000);
        let t0 = std::time::Instant::now();
        let e = expand_word("${V/x*y/z}", &env(&[("V", v.as_str())])).unwrap_err();
        assert!(
            matches!(e.kind, ExpandErrorKind::TooExpensive { .. }),
            "{e}"
        );
        assert!(t0.elapsed() < std::time::Duration::from_secs(10));
        // Ordinary patterns on ordinary values are far from it.
        let e = env(&[("P", "/usr/local/lib/python3.11/site-packages")]);
        assert_eq!(expand_word("${P//\\//_}", &e).unwrap().len(), 39);
    }
}
