//! The scanner of one word, BuildKit's `shellWord`: characters, the escape character,
//! single and double quotes, variable names, `<<` for heredoc detection, and word
//! splitting at unquoted whitespace, each string kept within the expansion's length
//! limit.
//! Never: applies a `${...}` operator (`param`) or matches a pattern (`pattern`).

use std::collections::BTreeSet;

use super::lex::ShellLex;
use super::limits::{too_long, MAX_MATCH_STEPS};
use super::{ExpandErrorKind, Expansion, Lookup, R};

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

pub(super) struct ShellWord<'a> {
    pub(super) lex: ShellLex,
    /// The longest string this expansion may build (see
    /// [`MAX_EXPANDED_LEN`](super::MAX_EXPANDED_LEN)).
    pub(super) limit: usize,
    /// Pattern-matching work left (see [`MAX_MATCH_STEPS`]).
    pub(super) steps_left: u64,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Lookup,
    raw_escapes: bool,
    /// How many `${...}` enclose the scanner now (see [`MAX_NESTING`](super::MAX_NESTING)).
    pub(super) depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> ShellWord<'a> {
    /// A scanner over `word` whose strings stay within `limit` bytes.
    pub(super) fn new(lex: ShellLex, word: &str, env: &'a dyn Lookup, limit: usize) -> Self {
        ShellWord {
            limit,
            steps_left: MAX_MATCH_STEPS,
            lex,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: lex.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    /// The whole word, in both forms, with the names it looked up.
    pub(super) fn run(mut self) -> R<Expansion> {
        let (result, words) = self.process_stop_on(None, self.lex.raw_escapes)?;
        Ok(Expansion {
            result,
            words,
            matched: self.matched,
            unmatched: self.unmatched,
        })
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    pub(super) fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    pub(super) fn get_env(&mut self, name: &str) -> Option<String> {
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

    pub(super) fn process_stop_on(
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
                    return Err(too_long());
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
                    return Err(too_long());
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
                        return Err(too_long());
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
                        return Err(too_long());
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
                        return Err(too_long());
                    }
                }
            }
        }
    }

    pub(super) fn process_name(&mut self) -> String {
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
