//! Reading the file line by line, BuildKit's `parser.Parse`: BOM, CRLF, the line length
//! limit, comments, continuations with the escape character (and BuildKit's warning
//! for an empty continuation line), the heredoc bodies that follow a line, and each
//! node's span.
//! Never: splits a line into keyword, flags and arguments (`command`, `args`) or decides
//! what a directive or a heredoc word is (`directives`, `heredoc`).

use super::args::node_from_line;
use super::directives::DirectiveState;
use super::heredoc::heredocs_from_line;
use super::{is_space, Node, SyntaxTree, Warning};
use crate::error::{ErrorSite, ParseError, ParseErrorKind, Span};

const MAX_LINE: usize = 65536;

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// The continuation test: `([^E])E[ \t]*$|^E[ \t]*$` → replace with `$1`.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    if let Some(before) = body.strip_suffix(escape) {
        match before.chars().last() {
            None => return (String::new(), false),
            Some(c) if c != escape => return (before.to_string(), false),
            Some(_) => {}
        }
    }
    (line.to_string(), true)
}

/// Splits `text` into physical lines, keeping terminators.
fn physical_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Parses the text into syntax nodes (BuildKit's `parser.Parse`).
pub fn parse_syntax(text: &str, file: &str) -> Result<SyntaxTree, ParseError> {
    let site = ErrorSite::new(file, text);
    let lines = physical_lines(text);
    let mut d = DirectiveState::new();
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0usize; // index of the next physical line
    let mut current_line = 0u32;

    let scan = |i: &mut usize| -> Result<Option<&str>, ParseError> {
        let Some(l) = lines.get(*i) else {
            return Ok(None);
        };
        if l.len() > MAX_LINE || (l.len() == MAX_LINE && !l.ends_with('\n')) {
            return Err(site.error(*i as u32 + 1, 1, ParseErrorKind::LineTooLong));
        }
        *i += 1;
        Ok(Some(l))
    };

    while let Some(raw) = scan(&mut i)? {
        let mut raw = raw;
        if current_line == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        let token = trim_newline(raw);
        let stripped = token.trim_start_matches(is_space);
        let column = (token.chars().count() - stripped.chars().count()) as u32 + 1;
        d.check(stripped)
            .map_err(|k| site.error(current_line + 1, column, k))?;
        let token = if is_comment(stripped) { "" } else { stripped };
        current_line += 1;
        let start_line = current_line;
        let (first, mut eol) = trim_continuation(token, d.escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut line = first;
        let mut empty_continuation = false;
        while !eol {
            let Some(next) = scan(&mut i)? else { break };
            let tok = trim_newline(next);
            d.check(tok)
                .map_err(|k| site.error(current_line + 1, 1, k))?;
            current_line += 1;
            if is_comment(next) {
                continue;
            }
            if tok.trim_start_matches(is_space).is_empty() {
                empty_continuation = true;
                continue;
            }
            let (piece, e) = trim_continuation(tok, d.escape);
            eol = e;
            line.push_str(&piece);
        }
        if empty_continuation {
            warnings.push(Warning {
                line: current_line,
                message: format!("Empty continuation line found in: {line}"),
            });
        }
        let mut node =
            node_from_line(&line, d.escape, 0).map_err(|k| site.error(start_line, column, k))?;
        if node.can_contain_heredoc() && line.contains("<<") {
            let docs = heredocs_from_line(&line).map_err(|k| site.error(start_line, column, k))?;
            for mut doc in docs {
                let mut terminated = false;
                while let Some(body_line) = scan(&mut i)? {
                    current_line += 1;
                    let mut candidate = trim_newline(body_line);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(body_line);
                }
                if !terminated {
                    return Err(site.error(
                        start_line,
                        column,
                        ParseErrorKind::UnterminatedHeredoc(doc.name),
                    ));
                }
                node.heredocs.push(doc);
            }
        }
        node.span = Span::new(start_line, current_line, column);
        set_child_span(&mut node);
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(site.error(current_line, 1, ParseErrorKind::NoInstructions));
    }
    Ok(SyntaxTree {
        nodes,
        escape: d.escape,
        directives: d.found,
        warnings,
    })
}

fn set_child_span(node: &mut Node) {
    let span = node.span;
    if let Some(c) = node.child.as_mut() {
        c.span = span;
        set_child_span(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::tree;

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ".into(), false));
        assert_eq!(trim_continuation("\\", '\\'), ("".into(), false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\".into(), true));
        assert_eq!(trim_continuation("a\\ \t", '\\'), ("a".into(), false));
        assert_eq!(trim_continuation("a `", '`'), ("a ".into(), false));
    }

    #[test]
    fn bom_and_crlf() {
        let t = tree("\u{feff}FROM x\r\nRUN a \\\r\n  b\r\n");
        assert_eq!(crate::dump(&t), "(from \"x\")\n(run \"a   b\")\n");
        assert_eq!(t.nodes[1].span, Span::new(2, 3, 1));
    }

    #[test]
    fn overlong_line() {
        let text = format!("FROM x\nRUN {}\n", "a".repeat(70_000));
        let e = parse_syntax(&text, "Dockerfile").unwrap_err();
        assert_eq!((e.kind, e.line), (ParseErrorKind::LineTooLong, 2));
    }

    #[test]
    fn column_of_indented_instruction() {
        let t = tree("FROM x\n    RUN y\n");
        assert_eq!(t.nodes[1].span, Span::new(2, 2, 5));
    }
}
