//! Word expansion exactly as BuildKit's shell lexer (`frontend/dockerfile/shell/lex.go`):
//! `$VAR`, `${VAR}`, `${VAR:-x}` `${VAR-x}` `${VAR:+x}` `${VAR+x}` `${VAR:?msg}`
//! `${VAR?msg}`, `${VAR#p}` `${VAR##p}` `${VAR%p}` `${VAR%%p}` `${VAR/p/r}` `${VAR//p/r}`,
//! quotes, the escape character, and word splitting (`expand_words`).
//! Never: knows which instruction expands what (`model`) or where values come from
//! (scope.rs); never runs a shell.
//!
//! Files: `lookup` (where values come from: [`Lookup`]), `lex` ([`ShellLex`], the entry
//! points), `word` (the scanner: quotes, escapes, names, word splitting), `param` (the
//! `${...}` operators), `pattern` (`#`/`%`/`/` glob matching and replacement), `limits`
//! (the nesting, length and work bounds). This file: the one error type they share and
//! the result of an expansion.

use std::collections::BTreeSet;

mod lex;
mod limits;
mod lookup;
mod param;
mod pattern;
mod word;

pub use lex::{expand_word, expand_words, ShellLex};
pub use limits::{MAX_EXPANDED_LEN, MAX_MATCH_STEPS, MAX_NESTING};
pub use lookup::{FnLookup, Lookup, NoVars};

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

/// What the scanner's steps return: the failure is located (wrapped in an
/// [`ExpandError`] with the word) only once, by [`ShellLex::expand_within`].
type R<T> = Result<T, ExpandErrorKind>;

/// An environment of `(name, value)` pairs, for the tests of every part.
#[cfg(test)]
fn test_env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
