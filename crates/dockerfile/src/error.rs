//! Parse errors of the Dockerfile front end: where (file, line, column, the line's text)
//! and what (a typed kind), rendered with `annotate-snippets` for people.
//! Never: reads files or decides exit codes (the bins do).

use std::fmt;

/// A position in the Dockerfile: 1-based lines, 1-based column (in characters) of the
/// instruction's first character. `end_line` is the last physical line the node consumed
/// (continuations, skipped comments and heredoc bodies included), as BuildKit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start_line: u32,
    pub end_line: u32,
    pub column: u32,
}

impl Span {
    pub fn new(start_line: u32, end_line: u32, column: u32) -> Self {
        Span {
            start_line,
            end_line,
            column,
        }
    }
}

/// An error found while parsing a Dockerfile (or an ignore file). `Display` gives the
/// one-line form `file:line:col: message`; [`ParseError::render`] adds the source line
/// with a caret, for a terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {kind}")]
pub struct ParseError {
    /// The file name given to `parse` (e.g. `Dockerfile`).
    pub file: String,
    /// 1-based line of the offending instruction (its first line).
    pub line: u32,
    /// 1-based column (characters) of the offending text on that line.
    pub column: u32,
    /// The text of that line, without its line ending (empty at end of file).
    pub source_line: String,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error located at `span` of the Dockerfile `text` named `file`, for problems
    /// found after parsing (e.g. `ParseErrorKind::Expand` when the engine expands an
    /// instruction), so that they are reported like parse errors.
    pub fn new(file: &str, text: &str, span: Span, kind: ParseErrorKind) -> ParseError {
        ErrorSite::new(file, text).at(span, kind)
    }

    /// The error with the offending line shown and marked, ready for stderr.
    pub fn render(&self) -> String {
        use annotate_snippets::{Level, Renderer, Snippet};
        let title = self.kind.to_string();
        let (line, col0) = shown_line(&self.source_line, (self.column.max(1) - 1) as usize);
        let line = line.as_str();
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let start = chars.get(col0).map_or(line.len(), |(i, _)| *i);
        let end = chars
            .get(col0)
            .map_or(line.len(), |(i, c)| i + c.len_utf8());
        let message = Level::Error.title(&title).snippet(
            Snippet::source(line)
                .line_start(self.line.max(1) as usize)
                .origin(&self.file)
                .annotation(Level::Error.span(start..end).label(self.kind.expected())),
        );
        let out = Renderer::plain().render(message).to_string();
        out
    }

    /// [`render`](Self::render) without its leading `error: `, for a caller whose own
    /// report prints that word (so the user never reads `error: error: …`).
    pub fn render_body(&self) -> String {
        let out = self.render();
        match out.strip_prefix("error: ") {
            Some(body) => body.to_string(),
            None => out,
        }
    }
}

/// At most this many bytes of a line are shown around the mark.
const SHOWN_BYTES: usize = 100;

/// The part of `line` an error shows, and the mark's char index in it. annotate-snippets
/// 0.11 mixes byte lengths and columns and underflows on a line wider than its terminal
/// whose leading whitespace reaches past the mark. So: whitespace and control characters
/// become spaces (one char for one), and the line is cut to at most [`SHOWN_BYTES`]
/// bytes around column `col0`, with `…` at a cut end. (The column annotate-snippets then
/// prints is the window's; the error's own `file:line:col` is the line's.)
fn shown_line(line: &str, col0: usize) -> (String, usize) {
    let chars: Vec<char> = line
        .chars()
        .map(|c| match c.is_whitespace() || c.is_control() {
            true => ' ',
            false => c,
        })
        .collect();
    let mark = col0.min(chars.len());
    // Grow a window [from, to) around the mark, a char at a time on each side.
    let (mut from, mut to, mut bytes) = (mark, mark, 0);
    loop {
        let mut grew = false;
        if let Some(c) = chars
            .get(to)
            .filter(|c| bytes + c.len_utf8() <= SHOWN_BYTES)
        {
            bytes += c.len_utf8();
            to += 1;
            grew = true;
        }
        if let Some(c) = from
            .checked_sub(1)
            .and_then(|i| chars.get(i))
            .filter(|c| bytes + c.len_utf8() <= SHOWN_BYTES)
        {
            bytes += c.len_utf8();
            from -= 1;
            grew = true;
        }
        if !grew {
            break;
        }
    }
    let (mut out, mut at) = (String::new(), mark - from);
    if from > 0 {
        out.insert(0, '…');
        at += 1;
    }
    out.extend(&chars[from..to]);
    if to < chars.len() {
        out.push('…');
    }
    (out, at)
}

/// What went wrong. Messages follow BuildKit's wording where it has one, so that users
/// can search for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("file with no instructions")]
    NoInstructions,
    #[error("dockerfile contains no stages to build (add a FROM line)")]
    NoStages,
    #[error("no build stage in current context: {instruction} comes before the first FROM")]
    NoBuildStage { instruction: String },
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong,
    #[error("{0} must have two arguments")]
    NeedsTwoArguments(String),
    #[error("Syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    MissingEquals { word: String },
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStrings,
    #[error("unterminated heredoc {0:?}")]
    UnterminatedHeredoc(String),
    #[error("invalid heredoc {word:?}: {reason}")]
    InvalidHeredoc { word: String, reason: String },
    #[error("unknown instruction: {keyword}{}", suggestion_text(.suggestion))]
    UnknownInstruction {
        keyword: String,
        suggestion: Option<String>,
    },
    #[error("unknown flag: --{flag}{}", suggestion_text(.suggestion))]
    UnknownFlag {
        flag: String,
        suggestion: Option<String>,
    },
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    #[error("missing a value on flag: --{0}")]
    MissingFlagValue(String),
    #[error("invalid value {value:?} for flag --{flag}: {reason}")]
    InvalidFlagValue {
        flag: String,
        value: String,
        reason: String,
    },
    #[error("{instruction} requires {expected}")]
    ArgumentCount {
        instruction: String,
        expected: &'static str,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildForbidden(String),
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    #[error("duplicate name {0:?} for build stage")]
    DuplicateStageName(String),
    #[error("invalid .dockerignore pattern {pattern:?}: {reason}")]
    IgnorePattern { pattern: String, reason: String },
    /// A variable expansion failed (raised by the engine through [`ParseError::new`]).
    #[error("{0}")]
    Expand(crate::expand::ExpandError),
}

fn suggestion_text(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

impl ParseErrorKind {
    /// A short "what to do" label shown under the marked line.
    pub fn expected(&self) -> &'static str {
        use ParseErrorKind::*;
        match self {
            NoInstructions | NoStages => "add at least `FROM <image>`",
            NoBuildStage { .. } => "only ARG may come before the first FROM",
            DuplicateDirective(_) => "remove the repeated directive",
            InvalidEscape(_) => "use `# escape=\\` or `# escape=``",
            LineTooLong => "split the line with a line continuation",
            NeedsTwoArguments(_) | MissingEquals { .. } => "expected `name=value` or `name value`",
            JsonNotStrings => "use a JSON array of strings, e.g. [\"sh\", \"-c\", \"x\"]",
            UnterminatedHeredoc(_) => "end the heredoc with its delimiter on a line of its own",
            InvalidHeredoc { .. } => "check the quotes of the heredoc delimiter",
            UnknownInstruction { .. } => "expected a Dockerfile instruction (FROM, RUN, COPY, ...)",
            UnknownFlag { .. } | DuplicateFlag(_) | MissingFlagValue(_) => {
                "check the flags this instruction takes"
            }
            InvalidFlagValue { .. } => "fix the flag's value",
            ArgumentCount { .. } | InvalidArgument(_) => "fix the instruction's arguments",
            OnbuildChain | OnbuildForbidden(_) => "this instruction can't be an ONBUILD trigger",
            InvalidStageName(_) => "stage names are [a-z][a-z0-9-_.]*",
            DuplicateStageName(_) => "give each stage its own name",
            IgnorePattern { .. } => "fix or remove this pattern",
            Expand(_) => "check the variables used here (ARG, ENV, --build-arg)",
        }
    }
}

/// Builds errors for one file: knows the text, so it can fill `source_line`.
pub(crate) struct ErrorSite<'a> {
    pub file: &'a str,
    pub lines: Vec<&'a str>,
}

impl<'a> ErrorSite<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Self {
        let lines = text.split('\n').collect();
        ErrorSite { file, lines }
    }

    pub fn error(&self, line: u32, column: u32, kind: ParseErrorKind) -> ParseError {
        let source_line = if line == 0 {
            ""
        } else {
            self.lines.get(line as usize - 1).copied().unwrap_or("")
        };
        let source_line = source_line.trim_end_matches(['\r', '\n']);
        let source_line = source_line.strip_prefix('\u{feff}').unwrap_or(source_line);
        ParseError {
            file: self.file.to_string(),
            line: line.max(1),
            column: column.max(1),
            source_line: source_line.to_string(),
            kind,
        }
    }

    pub fn at(&self, span: Span, kind: ParseErrorKind) -> ParseError {
        self.error(span.start_line, span.column, kind)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start_line == self.end_line {
            write!(f, "line {}", self.start_line)
        } else {
            write!(f, "lines {}-{}", self.start_line, self.end_line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_render_like_parse_errors() {
        let text = "FROM x\nENV A=${B:?required}\n";
        let df = crate::parse(text, "Dockerfile").unwrap();
        let ins = &df.stages[0].instructions[0];
        let e = ins
            .expand(&crate::ShellLex::new('\\'), &crate::NoVars)
            .unwrap_err();
        let err = ParseError::new("Dockerfile", text, ins.span, ParseErrorKind::Expand(e));
        assert_eq!(
            err.to_string(),
            "Dockerfile:2:1: failed to process \"${B:?required}\": B: required"
        );
        assert!(
            err.render().contains("2 | ENV A=${B:?required}"),
            "{}",
            err.render()
        );
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_that_keeps_the_mark() {
        let line = format!("RUN{}x", "\x0c".repeat(300));
        let (shown, mark) = super::shown_line(&line, 303);
        assert_eq!(shown.chars().nth(mark), Some('x'), "{shown:?}");
        assert!(shown.len() <= super::SHOWN_BYTES + 6, "{shown:?}");
        assert!(!shown.contains('\x0c'));
        let short = "FROM\tbusybox";
        assert_eq!(super::shown_line(short, 5), ("FROM busybox".to_string(), 5));
        // A mark past the end of the line stays past it.
        let (shown, mark) = super::shown_line("FROM", 4);
        assert_eq!((shown.as_str(), mark), ("FROM", 4));
        // Multi-byte chars count by their bytes.
        let wide = "\u{fffd}".repeat(200);
        let (shown, mark) = super::shown_line(&wide, 100);
        assert!(shown.len() <= super::SHOWN_BYTES + 6, "{}", shown.len());
        assert_eq!(shown.chars().nth(mark), Some('\u{fffd}'));
    }
}
