//! The syntax layer, BuildKit's `parser` package: physical lines → logical lines
//! (BOM, CRLF, parser directives, the escape character, continuations, comments),
//! `splitCommand` (keyword, flags, argument text), the per-instruction argument rules
//! (maybe-JSON, words, name/value, HEALTHCHECK, ONBUILD) and heredoc bodies. The result is
//! a list of [`Node`]s, what BuildKit's `result` dump shows.
//! Never: validates instruction semantics (`model`) or expands variables.
//!
//! Files: `lines` ([`parse_syntax`]: the file, line by line), `directives` (the parser
//! directives at the top), `command` (keyword and flags), `args` (the argument rule of
//! each instruction), `heredoc` (heredoc words and bodies). This file: the tree they
//! build and the character classes they share. Errors are the crate's
//! [`ParseErrorKind`](crate::ParseErrorKind), located by `lines`.

mod args;
mod command;
mod directives;
mod heredoc;
mod lines;

pub(crate) use heredoc::parse_heredoc;
pub use heredoc::Heredoc;
pub use lines::parse_syntax;

use crate::error::Span;

/// One instruction as BuildKit's parser sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword, lowercased (`run`, `from`, or an unknown word).
    pub keyword: String,
    /// Flags with their leading `--`, quotes removed (`--from=build`).
    pub flags: Vec<String>,
    /// Arguments as in BuildKit's dump (ENV/LABEL: name, value, "=" or "" triples).
    pub args: Vec<String>,
    /// ONBUILD only: the wrapped instruction.
    pub child: Option<Box<Node>>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// Heredocs (only for RUN/COPY/ADD, and ONBUILD of those).
    pub heredocs: Vec<Heredoc>,
    /// Lines and column of the instruction.
    pub span: Span,
    /// The logical line (continuations joined), as given to the instruction parser.
    pub original: String,
}

/// The values of the parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directives {
    pub syntax: Option<String>,
    pub escape: Option<String>,
    pub check: Option<String>,
}

/// A non-fatal finding of the parser (BuildKit prints these as warnings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: u32,
    pub message: String,
}

/// The parse of a whole file at the syntax level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxTree {
    pub nodes: Vec<Node>,
    pub directives: Directives,
    /// The escape character in effect (`\` or `` ` ``).
    pub escape: char,
    pub warnings: Vec<Warning>,
}

fn is_re_space(c: char) -> bool {
    // RE2 `\s`
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

fn is_ws_token(c: char) -> bool {
    // `[\t\v\f\r ]`
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// The tree of `text` named `Dockerfile`, for the tests of every part.
#[cfg(test)]
fn tree(text: &str) -> SyntaxTree {
    parse_syntax(text, "Dockerfile").unwrap()
}
