//! [`ShellLex`], the entry points of expansion: which lexer (the Dockerfile's escape
//! character, or one of BuildKit's heredoc variants) and which form of the result (one
//! word, split words, or both with the names looked up).
//! Never: scans a word itself (`word` and `param` do) or picks the words an instruction
//! expands (`model`).

use super::limits::MAX_EXPANDED_LEN;
use super::word::ShellWord;
use super::{ExpandError, Expansion, Lookup};

/// BuildKit's shell lexer with a given escape character (`\` or `` ` ``).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShellLex {
    pub(super) escape: char,
    /// Quotes are kept in the result (BuildKit's `RawQuotes`).
    pub(super) raw_quotes: bool,
    /// Escape characters are kept in the result (`RawEscapes`).
    pub(super) raw_escapes: bool,
    /// Quotes are ordinary characters (`SkipProcessQuotes`).
    pub(super) skip_process_quotes: bool,
    /// An unset variable stays as written (`SkipUnsetEnv`).
    pub(super) skip_unset: bool,
    /// `<<` and the blanks after it stay in one word, so `<< EOF` is found as a heredoc.
    pub(super) heredoc_lt: bool,
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
    /// [`ExpandErrorKind::TooLong`](super::ExpandErrorKind::TooLong) beyond [`MAX_EXPANDED_LEN`] bytes.
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
        ShellWord::new(*self, word, env, limit.min(MAX_EXPANDED_LEN))
            .run()
            .map_err(|kind| ExpandError {
                word: word.to_string(),
                kind,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{test_env as env, NoVars};
    use super::*;

    #[test]
    fn matches_are_recorded() {
        let e = env(&[("A", "1")]);
        let r = ShellLex::new('\\').expand("$A $B ${C:-x}", &e).unwrap();
        assert_eq!(r.result, "1  x");
        assert!(r.matched.contains("A"));
        assert!(r.unmatched.contains("B") && r.unmatched.contains("C"));
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
