//! Word expansion exactly as BuildKit's shell lexer (`frontend/dockerfile/shell/lex.go`):
//! `$VAR`, `${VAR}`, `${VAR:-x}` `${VAR-x}` `${VAR:+x}` `${VAR+x}` `${VAR:?msg}`
//! `${VAR?msg}`, `${VAR#p}` `${VAR##p}` `${VAR%p}` `${VAR%%p}` `${VAR/p/r}` `${VAR//p/r}`,
//! quotes, the escape character, and word splitting (`expand_words`).
//! Never: knows which instruction expands what (`model`) or where values come from
//! (scope.rs); never runs a shell.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where expansion finds variable values. `None` means unset (not the same as empty).
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Lookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A list of `(name, value)` pairs; the last pair with the name wins.
impl Lookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Lookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

impl<T: Lookup + ?Sized> Lookup for &T {
    fn lookup(&self, name: &str) -> Option<String> {
        (**self).lookup(name)
    }
}

/// An environment with nothing set.
pub struct NoVars;

impl Lookup for NoVars {
    fn lookup(&self, _: &str) -> Option<String> {
        None
    }
}

/// A closure as a [`Lookup`].
pub struct FnLookup<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Lookup for FnLookup<F> {
    fn lookup(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

/// An expansion failed. `Display`: `failed to process "<word>": <kind>` (BuildKit's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ExpandError {
    pub word: String,
    pub kind: ExpandErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandErrorKind {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(String),
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${name:?message}` and friends.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern { pattern: String, reason: String },
    /// imago's guard against stack exhaustion; BuildKit has no limit.
    #[error("substitutions nested more than {MAX_NESTING} deep")]
    TooDeep,
    /// imago's guard against memory exhaustion (`ENV A=$A$A` repeated doubles the value
    /// each line); BuildKit has no limit.
    #[error("the expansion is longer than imago's limit of {limit} bytes (for a word, and for all the expanded words of an instruction together)")]
    TooLong { limit: usize },
    /// imago's guard against CPU exhaustion: `${v/pattern/r}` on a long value costs
    /// length² × pattern steps; BuildKit has no limit.
    #[error("the pattern ({pattern}) takes more than {MAX_MATCH_STEPS} steps to match")]
    TooExpensive { pattern: String },
}

/// How deeply `${...}` may nest (`${a:-${b:-...}}`); real Dockerfiles use two or three.
pub const MAX_NESTING: usize = 128;

/// The longest result of one expansion, in bytes (1 MiB). Also the bound of every
/// intermediate string (a default word, a replacement), so memory stays within a few
/// times this whatever the input.
pub const MAX_EXPANDED_LEN: usize = 1 << 20;

/// The pattern-matching work one expansion may do (`${v#p}`, `${v/p/r}`), in
/// character × pattern-token steps: ample for real patterns, well under a second.
pub const MAX_MATCH_STEPS: u64 = 1 << 26;

/// The result of one expansion with the names it looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The word with quotes removed and variables substituted (`ProcessWord`).
    pub result: String,
    /// The same, split into words (`ProcessWords`).
    pub words: Vec<String>,
    /// Names that were found set in the environment (for cache keys, "used build args").
    pub matched: BTreeSet<String>,
    /// Names that were referenced but unset.
    pub unmatched: BTreeSet<String>,
}

/// BuildKit's shell lexer with a given escape character (`\` or `` ` ``).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellLex {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset: bool,
    heredoc_lt: bool,
}

impl Default for ShellLex {
    fn default() -> Self {
        ShellLex::new('\\')
    }
}

/// `ShellLex::new('\\').expand_word(word, env)`.
pub fn expand_word(word: &str, env: &dyn Lookup) -> Result<String, ExpandError> {
    ShellLex::new('\\').expand_word(word, env)
}

/// `ShellLex::new('\\').expand_words(word, env)`.
pub fn expand_words(word: &str, env: &dyn Lookup) -> Result<Vec<String>, ExpandError> {
    ShellLex::new('\\').expand_words(word, env)
}

impl ShellLex {
    /// A lexer for instruction words with the Dockerfile's escape character.
    pub fn new(escape: char) -> Self {
        ShellLex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset: false,
            heredoc_lt: false,
        }
    }

    /// The lexer BuildKit uses for the body of an unquoted-delimiter heredoc
    /// (`COPY <<EOF`): quotes are ordinary characters, `\` escapes, `$` expands.
    pub fn for_heredoc(escape: char) -> Self {
        ShellLex {
            skip_process_quotes: true,
            ..ShellLex::new(escape)
        }
    }

    pub(crate) fn heredoc_line() -> Self {
        ShellLex {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
            heredoc_lt: true,
            ..ShellLex::new('\\')
        }
    }

    pub(crate) fn heredoc_name(raw_quotes: bool) -> Self {
        ShellLex {
            raw_quotes,
            skip_unset: true,
            ..ShellLex::new('\\')
        }
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// One word, no splitting (`ProcessWord`): used for ENV, LABEL, ARG, USER, WORKDIR,
    /// COPY/ADD paths, FROM, ...
    pub fn expand_word(&self, word: &str, env: &dyn Lookup) -> Result<String, ExpandError> {
        Ok(self.expand(word, env)?.result)
    }

    /// Expansion then splitting at unquoted whitespace (`ProcessWords`): used for EXPOSE.
    pub fn expand_words(&self, word: &str, env: &dyn Lookup) -> Result<Vec<String>, ExpandError> {
        Ok(self.expand(word, env)?.words)
    }

    /// Both forms at once, plus the names looked up. Fails with
    /// [`ExpandErrorKind::TooLong`] beyond [`MAX_EXPANDED_LEN`] bytes.
    pub fn expand(&self, word: &str, env: &dyn Lookup) -> Result<Expansion, ExpandError> {
        self.expand_within(word, env, MAX_EXPANDED_LEN)
    }

    /// [`ShellLex::expand`] with a smaller length limit (an instruction's remaining
    /// budget); `limit` is capped at [`MAX_EXPANDED_LEN`].
    pub fn expand_within(
        &self,
        word: &str,
        env: &dyn Lookup,
        limit: usize,
    ) -> Result<Expansion, ExpandError> {
        let mut sw = ShellWord {
            limit: limit.min(MAX_EXPANDED_LEN),
            steps_left: MAX_MATCH_STEPS,
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match sw.process_stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(Expansion {
                result,
                words,
                matched: sw.matched,
                unmatched: sw.unmatched,
            }),
            Err(kind) => Err(ExpandError {
                word: word.to_string(),
                kind,
            }),
        }
    }
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

fn is_letter(c: char) -> bool {
    use unicode_general_category::{get_general_category as cat, GeneralCategory as G};
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches!(
        cat(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
    )
}

fn is_digit(c: char) -> bool {
    use unicode_general_category::{get_general_category as cat, GeneralCategory as G};
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    cat(c) == G::DecimalNumber
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if is_space(ch) {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: ShellLex,
    /// The longest string this expansion may build (see [`MAX_EXPANDED_LEN`]).
    limit: usize,
    /// Pattern-matching work left (see [`MAX_MATCH_STEPS`]).
    steps_left: u64,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Lookup,
    raw_escapes: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

type R<T> = Result<T, ExpandErrorKind>;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn too_long(&self) -> ExpandErrorKind {
        // The fixed limit, not what is left of an instruction's budget: that is what a
        // user can look up.
        ExpandErrorKind::TooLong {
            limit: MAX_EXPANDED_LEN,
        }
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v)
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> R<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = ch == '$'
                || (!self.lex.skip_process_quotes && (ch == '\'' || ch == '"'))
                || (self.lex.heredoc_lt && ch == '<');
            if special {
                let tmp = match ch {
                    '$' => self.process_dollar()?,
                    '\'' => self.process_single_quote()?,
                    '"' => self.process_double_quote()?,
                    _ => self.process_possible_heredoc(),
                };
                if result.len() + tmp.len() > self.limit {
                    return Err(self.too_long());
                }
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
            } else {
                let mut ch = ch;
                self.next();
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    match self.next() {
                        None => break,
                        Some(c) => ch = c,
                    }
                    words.add_raw_char(ch);
                } else {
                    words.add_char(ch);
                }
                result.push(ch);
                if result.len() > self.limit {
                    return Err(self.too_long());
                }
            }
        }
        if let Some(stop) = stop {
            return Err(ExpandErrorKind::Unterminated(stop.to_string()));
        }
        Ok((result, words.finish()))
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = "<<".to_string();
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' {
                out.push(c);
                self.next();
            } else {
                break;
            }
        }
        out
    }

    fn process_single_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            result.extend(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(ExpandErrorKind::Unterminated("single-quote".into()));
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => {
                    result.push(c);
                    if result.len() > self.limit {
                        return Err(self.too_long());
                    }
                }
            }
        }
    }

    fn process_double_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            result.extend(q);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandErrorKind::Unterminated("double-quote".into())),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    if result.len() + v.len() > self.limit {
                        return Err(self.too_long());
                    }
                    result.push_str(&v);
                }
                Some(_) => {
                    let Some(mut ch) = self.next() else { continue };
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                    if result.len() > self.limit {
                        return Err(self.too_long());
                    }
                }
            }
        }
    }

    fn process_dollar(&mut self) -> R<String> {
        if self.depth >= MAX_NESTING {
            return Err(ExpandErrorKind::TooDeep);
        }
        self.depth += 1;
        let r = self.process_dollar_inner();
        self.depth -= 1;
        r
    }

    fn process_dollar_inner(&mut self) -> R<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let ch = self.next();
        let mut chs = ch.map_or('\u{fffd}'.to_string(), |c| c.to_string());
        match ch {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut ch = ch;
                let mut null_is_unset = false;
                if ch == Some(':') {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push(ch.unwrap_or('\u{fffd}'));
                }
                let raw = matches!(ch, Some('#' | '%'));
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(ExpandErrorKind::MissingBrace);
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let unset_or_null =
                    value.is_none() || (null_is_unset && value.as_deref() == Some(""));
                match ch {
                    Some('-') => Ok(if unset_or_null {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if unset_or_null { String::new() } else { word }),
                    Some('?') => {
                        if value.is_none() {
                            let message = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            return Err(ExpandErrorKind::Required { name, message });
                        }
                        if null_is_unset && value.as_deref() == Some("") {
                            let message = if word.is_empty() {
                                "is not allowed to be empty".to_string()
                            } else {
                                word
                            };
                            return Err(ExpandErrorKind::Required { name, message });
                        }
                        Ok(value.unwrap_or_default())
                    }
                    Some(c @ ('%' | '#')) => {
                        let mut pat = word.as_str();
                        let mut greedy = false;
                        if pat.starts_with(c) {
                            greedy = true;
                            pat = &pat[c.len_utf8()..];
                        }
                        let value = value.unwrap_or_default();
                        let tokens = pattern_tokens(pat)?;
                        let mut m = Matcher::new(&tokens, pat, &mut self.steps_left);
                        if c == '%' {
                            m.trim_suffix(&value, greedy)
                        } else {
                            m.trim_prefix(&value, greedy)
                        }
                    }
                    _ => Err(ExpandErrorKind::UnsupportedModifier(chs)),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(ExpandErrorKind::MissingSlash);
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(ExpandErrorKind::MissingBrace);
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                let Some(value) = value else {
                    if self.lex.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let tokens = pattern_tokens(&pattern)?;
                let limit = self.limit;
                Matcher::new(&tokens, &pattern, &mut self.steps_left).replace(
                    &value,
                    &replacement,
                    replace_all,
                    limit,
                )
            }
            _ => Err(ExpandErrorKind::UnsupportedModifier(chs)),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(c) = self.peek() {
                    if !is_digit(c) {
                        break;
                    }
                    name.push(c);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

/// One element of a `${v#pattern}` glob: `*`, `?` or a literal character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// BuildKit's `convertShellPatternToRegex` as tokens: `*`, `?`, `\*` `\?` `\\` literal,
/// `\}` and `\/` drop the backslash, any other escape is an error.
fn pattern_tokens(pattern: &str) -> R<Vec<Tok>> {
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
/// step budget ([`MAX_MATCH_STEPS`]).
struct Matcher<'a> {
    tokens: &'a [Tok],
    pattern: &'a str,
    steps_left: &'a mut u64,
}

impl<'a> Matcher<'a> {
    fn new(tokens: &'a [Tok], pattern: &'a str, steps_left: &'a mut u64) -> Self {
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

    fn trim_prefix(&mut self, value: &str, greedy: bool) -> R<String> {
        let chars: Vec<char> = value.chars().collect();
        Ok(match self.match_ends(&chars, 0)? {
            Some((short, long)) => {
                let end = if greedy { long } else { short };
                chars[end..].iter().collect()
            }
            None => value.to_string(),
        })
    }

    fn trim_suffix(&mut self, value: &str, greedy: bool) -> R<String> {
        let rev_tokens: Vec<Tok> = self.tokens.iter().rev().copied().collect();
        let rev: String = value.chars().rev().collect();
        let mut m = Matcher::new(&rev_tokens, self.pattern, self.steps_left);
        Ok(m.trim_prefix(&rev, greedy)?.chars().rev().collect())
    }

    /// Go's `regexp.ReplaceAllString` / first-match replacement with a greedy pattern,
    /// including its `$name` template expansion of the replacement; the result stays
    /// within `limit` bytes.
    fn replace(&mut self, value: &str, replacement: &str, all: bool, limit: usize) -> R<String> {
        let chars: Vec<char> = value.chars().collect();
        let too_long = || ExpandErrorKind::TooLong {
            limit: MAX_EXPANDED_LEN,
        };
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
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

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
    fn matches_are_recorded() {
        let e = env(&[("A", "1")]);
        let r = ShellLex::new('\\').expand("$A $B ${C:-x}", &e).unwrap();
        assert_eq!(r.result, "1  x");
        assert!(r.matched.contains("A"));
        assert!(r.unmatched.contains("B") && r.unmatched.contains("C"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}x{}", "${a:-".repeat(20_000), "}".repeat(20_000));
        let e = expand_word(&deep, &NoVars).unwrap_err();
        assert_eq!(e.kind, ExpandErrorKind::TooDeep);
        let ok = format!("{}x{}", "${a:-".repeat(50), "}".repeat(50));
        assert_eq!(expand_word(&ok, &NoVars).unwrap(), "x");
    }

    #[test]
    fn doubling_bomb_stops_at_the_limit() {
        // `ENV A=<1000 chars>` then `ENV A=$A$A` again and again: 1000 · 2ⁿ bytes.
        let mut a = "x".repeat(1000);
        let t0 = std::time::Instant::now();
        let mut doublings = 0;
        let err = loop {
            match expand_word("$A$A", &env(&[("A", &a)])) {
                Ok(v) => {
                    a = v;
                    doublings += 1;
                }
                Err(e) => break e,
            }
            assert!(a.len() <= 4 << 20, "no limit: {} bytes", a.len());
        };
        assert_eq!(doublings, 10, "1000 · 2^10 fits in 1 MiB, 2^11 does not");
        assert_eq!(
            err.kind,
            ExpandErrorKind::TooLong {
                limit: MAX_EXPANDED_LEN
            }
        );
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
        // The same inside quotes, defaults and replacements.
        let big = "y".repeat(MAX_EXPANDED_LEN / 2 + 1);
        let e = env(&[("B", big.as_str()), ("S", "ab")]);
        for w in [
            "\"$B$B\"",
            "${U:-$B$B}",
            "${S//?/$B}",
            "${S//?/$0$B}",
            "$B''$B",
        ] {
            let r = expand_word(w, &e).unwrap_err();
            assert!(
                matches!(r.kind, ExpandErrorKind::TooLong { .. }),
                "{w}: {r}"
            );
        }
        // A literal word longer than the limit too.
        let long = "z".repeat(MAX_EXPANDED_LEN + 1);
        assert!(matches!(
            expand_word(&long, &NoVars).unwrap_err().kind,
            ExpandErrorKind::TooLong { .. }
        ));
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

    #[test]
    fn backtick_escape() {
        let lex = ShellLex::new('`');
        assert_eq!(
            lex.expand_word("c:\\dir `$x", &NoVars).unwrap(),
            "c:\\dir $x"
        );
    }
}
