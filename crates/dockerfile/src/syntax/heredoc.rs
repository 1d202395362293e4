//! Heredocs (`RUN <<EOF`), BuildKit's `heredocsFromLine` and `ParseHeredoc`: which
//! instructions may have them, the heredoc words of a line (`<<EOF`, `<<-EOF`,
//! `3<<'EOF'`) with their name, quoting and fd, and the body as the instruction sees it.
//! Never: reads the body lines (`lines` does, after the instruction's line) or expands
//! the body (`model` and the engine, with `ShellLex::for_heredoc`).

use super::{is_re_space, Node};
use crate::error::ParseErrorKind;
use crate::expand::{NoVars, ShellLex};

/// A heredoc attached to a RUN/COPY/ADD (or an ONBUILD wrapping one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter with quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// False when any part of the delimiter was quoted: the body is used verbatim.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines (see [`Heredoc::body`]).
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when absent.
    pub fd: u32,
    /// The raw body: the lines before the terminator, with their line endings.
    pub content: String,
}

impl Heredoc {
    /// The body as the instruction sees it: for `<<-`, leading tabs removed per line.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        let mut out = String::with_capacity(self.content.len());
        for line in self.content.split_inclusive('\n') {
            out.push_str(line.trim_start_matches('\t'));
        }
        out
    }
}

impl Node {
    pub(super) fn can_contain_heredoc(&self) -> bool {
        let n = match (&self.keyword[..], &self.child) {
            ("onbuild", Some(c)) => c,
            _ => self,
        };
        matches!(&n.keyword[..], "run" | "copy" | "add") && !n.json
    }
}

/// `heredocsFromLine` + `ParseHeredoc`.
pub(super) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
    let words = ShellLex::heredoc_line()
        .expand_words(line, &NoVars)
        .unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(doc) = parse_heredoc(&w)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// `^(\d*)<<(-?)\s*([^<]*)$` then the delimiter must be exactly one shell word.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ParseErrorKind> {
    let digits = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_re_space);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd = word[..digits]
        .parse::<u64>()
        .map_or(0, |v| v.min(u32::MAX as u64) as u32);
    let bad = |e: crate::expand::ExpandError| ParseErrorKind::InvalidHeredoc {
        word: word.to_string(),
        reason: e.kind.to_string(),
    };
    let words = ShellLex::heredoc_name(false)
        .expand_words(rest, &NoVars)
        .map_err(bad)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = ShellLex::heredoc_name(true)
        .expand_words(rest, &NoVars)
        .map_err(bad)?;
    if raw.len() != words.len() {
        return Err(ParseErrorKind::InvalidHeredoc {
            word: word.to_string(),
            reason: "internal lexing of heredoc produced inconsistent results".into(),
        });
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let name = words.into_iter().next().unwrap_or_default();
    let expand = quotes(&name) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name,
        expand,
        chomp,
        fd,
        content: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Span;
    use crate::syntax::{parse_syntax, tree};

    #[test]
    fn heredoc_words() {
        let h = parse_heredoc("<<EOF").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, 0)
        );
        let h = parse_heredoc("3<<-'EOF'").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", false, true, 3)
        );
        let h = parse_heredoc("<<E\"O\"F").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        assert!(parse_heredoc("<<'EOF").is_err());
        assert_eq!(parse_heredoc("<<"), Ok(None));
        assert_eq!(parse_heredoc("a<<b"), Ok(None));
    }

    #[test]
    fn heredocs_are_read_after_the_line() {
        let t = tree("FROM x\nRUN <<EOF\necho hi\nEOF\nRUN <<-A cat && 3<<'B' cat\n\tx\n\tA\ny $z\nB\nRUN true\n");
        let n = &t.nodes[1];
        assert_eq!(n.heredocs.len(), 1);
        assert_eq!(n.heredocs[0].content, "echo hi\n");
        assert_eq!(n.span, Span::new(2, 4, 1));
        let n = &t.nodes[2];
        assert_eq!(n.heredocs.len(), 2);
        assert_eq!(
            (n.heredocs[0].name.as_str(), n.heredocs[0].chomp),
            ("A", true)
        );
        assert_eq!(n.heredocs[0].content, "\tx\n");
        assert_eq!(n.heredocs[0].body(), "x\n");
        assert_eq!(
            (
                n.heredocs[1].name.as_str(),
                n.heredocs[1].expand,
                n.heredocs[1].fd
            ),
            ("B", false, 3)
        );
        assert_eq!(n.heredocs[1].content, "y $z\n");
        assert_eq!(n.span, Span::new(5, 9, 1));
        assert_eq!(t.nodes[3].span, Span::new(10, 10, 1));
        // the dump still has the literal heredoc text and no body
        assert_eq!(crate::dump::dump_node(&t.nodes[1]), "run \"<<EOF\"");
    }

    #[test]
    fn heredoc_with_space_and_onbuild() {
        let t = tree("FROM x\nONBUILD COPY << EOF /f\nbody\nEOF\n");
        assert_eq!(t.nodes[1].heredocs.len(), 1);
        assert_eq!(t.nodes[1].heredocs[0].name, "EOF");
    }

    #[test]
    fn no_heredoc_in_json_form_or_other_instructions() {
        let t = tree("FROM x\nRUN [\"a\", \"<<EOF\"]\nLABEL a=<<EOF\n");
        assert!(t.nodes.iter().all(|n| n.heredocs.is_empty()));
        assert_eq!(t.nodes.len(), 3);
    }

    #[test]
    fn unterminated_heredoc() {
        let e = parse_syntax("FROM x\nRUN <<EOF\necho\n", "Dockerfile").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UnterminatedHeredoc("EOF".into()));
        assert_eq!((e.line, e.column), (2, 1));
    }
}
