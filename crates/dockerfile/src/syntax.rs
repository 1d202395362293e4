//! The syntax layer, BuildKit's `parser` package: physical lines → logical lines
//! (BOM, CRLF, parser directives, the escape character, continuations, comments),
//! `splitCommand` (keyword, flags, argument text), the per-instruction argument rules
//! (maybe-JSON, words, name/value, HEALTHCHECK, ONBUILD) and heredoc bodies. The result is
//! a list of [`Node`]s, what BuildKit's `result` dump shows.
//! Never: validates instruction semantics (`model`) or expands variables.

use crate::error::{ErrorSite, ParseError, ParseErrorKind, Span};
use crate::expand::{NoVars, ShellLex};
use crate::json::{parse_array, JsonArray};

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

const MAX_LINE: usize = 65536;

struct DirectiveState {
    done: bool,
    found: Directives,
    escape: char,
}

impl DirectiveState {
    /// BuildKit's `DirectiveParser.ParseLine` + `setEscapeToken`. Ok(true) = was a directive.
    fn check(&mut self, line: &str) -> Result<bool, ParseErrorKind> {
        if self.done {
            return Ok(false);
        }
        let Some((key, value)) = match_directive(line) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        let slot = match key.as_str() {
            "syntax" => &mut self.found.syntax,
            "escape" => &mut self.found.escape,
            "check" => &mut self.found.check,
            _ => {
                self.done = true;
                return Ok(false);
            }
        };
        if slot.is_some() {
            return Err(ParseErrorKind::DuplicateDirective(key));
        }
        *slot = Some(value.to_string());
        if key == "escape" {
            match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                other => return Err(ParseErrorKind::InvalidEscape(other.to_string())),
            }
        }
        Ok(true)
    }
}

fn is_re_space(c: char) -> bool {
    // RE2 `\s`
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches(is_re_space);
    let key_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let key = &rest[..key_len];
    let rest = rest[key_len..].trim_start_matches(is_re_space);
    let rest = rest.strip_prefix('=')?;
    if rest.is_empty() || rest.contains('\n') {
        return None;
    }
    let value = rest.trim_matches(is_re_space);
    if value.is_empty() {
        // `\s*(.+?)` must take one character: the last whitespace one
        let last = rest.char_indices().last()?;
        return Some((key, &rest[last.0..]));
    }
    Some((key, value))
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

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
    let mut d = DirectiveState {
        done: false,
        found: Directives::default(),
        escape: '\\',
    };
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

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        let n = match (&self.keyword[..], &self.child) {
            ("onbuild", Some(c)) => c,
            _ => self,
        };
        matches!(&n.keyword[..], "run" | "copy" | "add") && !n.json
    }
}

const NESTING_LIMIT: usize = 64;

/// `newNodeFromLine`: keyword, flags, then the per-instruction argument rule.
fn node_from_line(line: &str, escape: char, depth: usize) -> Result<Node, ParseErrorKind> {
    let (keyword, flags, rest) = split_command(line);
    let mut node = Node {
        keyword,
        flags,
        args: Vec::new(),
        child: None,
        json: false,
        heredocs: Vec::new(),
        span: Span::default(),
        original: line.to_string(),
    };
    match node.keyword.as_str() {
        "add" | "copy" | "volume" => {
            if let Some(list) = maybe_json(&rest)? {
                node.args = list;
                node.json = true;
            } else {
                node.args = split_ws(&rest);
            }
        }
        "run" | "cmd" | "entrypoint" | "shell" => {
            if let Some(list) = maybe_json(&rest)? {
                node.args = list;
                node.json = true;
            } else if !rest.is_empty() {
                node.args = vec![rest];
            }
        }
        "from" | "expose" => node.args = split_ws(&rest),
        "user" | "workdir" | "stopsignal" | "maintainer" => {
            if !rest.is_empty() {
                node.args = vec![rest];
            }
        }
        "arg" => node.args = parse_words(&rest, escape),
        "env" => node.args = parse_name_val(&rest, "ENV", escape)?,
        "label" => node.args = parse_name_val(&rest, "LABEL", escape)?,
        "healthcheck" => {
            let trimmed_end = rest.find(is_space).unwrap_or(rest.len());
            if trimmed_end > 0 {
                let typ = &rest[..trimmed_end];
                let cmd = rest[trimmed_end..].trim_start_matches(is_space);
                node.args.push(typ.to_string());
                if let Some(list) = maybe_json(cmd)? {
                    node.args.extend(list);
                    node.json = true;
                } else if !cmd.is_empty() {
                    node.args.push(cmd.to_string());
                }
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                if depth >= NESTING_LIMIT {
                    return Err(ParseErrorKind::OnbuildChain);
                }
                node.child = Some(Box::new(node_from_line(&rest, escape, depth + 1)?));
            }
        }
        _ => node.args = vec![String::new()],
    }
    Ok(node)
}

fn is_ws_token(c: char) -> bool {
    // `[\t\v\f\r ]`
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

fn split_ws(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_ws_token)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `splitCommand` + `extractBuilderFlags`.
pub(crate) fn split_command(line: &str) -> (String, Vec<String>, String) {
    let line = line.trim_matches(is_space);
    let (cmd, rest) = match line.find(is_ws_token) {
        Some(i) => {
            let after = line[i..].trim_start_matches(is_ws_token);
            (&line[..i], Some(after))
        }
        None => (line, None),
    };
    let keyword = cmd.to_lowercase();
    let Some(rest) = rest else {
        return (keyword, Vec::new(), String::new());
    };
    let (args, flags) = extract_flags(rest);
    (keyword, flags, args.trim_matches(is_space).to_string())
}

fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let ch = chars.get(pos).map(|x| x.1);
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if is_space(c) {
                pos += 1;
                continue;
            }
            if c != '-' || chars.get(pos + 1).map(|x| x.1) != Some('-') {
                return (line[chars[pos].0..].to_string(), words);
            }
            phase = Phase::Word;
        }
        let Some(c) = ch else {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        };
        match phase {
            Phase::Word => {
                if is_space(c) {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (line[chars[pos].0..].to_string(), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    pos += 1;
                    continue;
                }
                if c == '\'' || c == '"' {
                    phase = Phase::Quote(c);
                    blank_ok = true;
                    pos += 1;
                    continue;
                }
                let mut c = c;
                if c == '\\' {
                    if pos + 1 == chars.len() {
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    c = chars[pos].1;
                }
                word.push(c);
                pos += 1;
            }
            Phase::Quote(q) => {
                if c == q {
                    phase = Phase::Word;
                    pos += 1;
                    continue;
                }
                let mut c = c;
                if c == '\\' {
                    if pos + 1 == chars.len() {
                        phase = Phase::Word;
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    c = chars[pos].1;
                }
                word.push(c);
                pos += 1;
            }
            Phase::Spaces => {}
        }
    }
    (String::new(), words)
}

/// maybe-JSON: Ok(Some(list)) for a JSON array of strings, Ok(None) for "not JSON".
fn maybe_json(rest: &str) -> Result<Option<Vec<String>>, ParseErrorKind> {
    let t = rest.trim_start_matches(is_space);
    if !t.starts_with('[') {
        return Ok(None);
    }
    match parse_array(t) {
        JsonArray::Strings(v) => Ok(Some(v)),
        JsonArray::NotStrings => Err(ParseErrorKind::JsonNotStrings),
        JsonArray::Invalid => Ok(None),
    }
}

/// `parseWords`: split at unquoted whitespace, keeping quotes and escapes.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let ch = chars.get(pos).copied();
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if is_space(c) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        let Some(mut c) = ch else {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        };
        if phase == Phase::Word {
            if is_space(c) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if c == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(c);
                pos += 1;
                c = chars[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // in quote
        if c == quote {
            phase = Phase::Word;
        }
        if c == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(c);
            c = chars[pos];
        }
        word.push(c);
        pos += 1;
    }
    words
}

/// `parseNameVal` for ENV and LABEL: triples (name, value, "=" or "").
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, ParseErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let Some(i) = rest.find(is_ws_token) else {
            return Err(ParseErrorKind::NeedsTwoArguments(key.to_string()));
        };
        let name = &rest[..i];
        let value = rest[i..].trim_start_matches(is_ws_token);
        return Ok(vec![name.to_string(), value.to_string(), String::new()]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals { word: w });
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

/// `heredocsFromLine` + `ParseHeredoc`.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
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

    #[test]
    fn directive_regex() {
        assert_eq!(match_directive("# escape = ` "), Some(("escape", "`")));
        assert_eq!(
            match_directive("#syntax=docker/dockerfile:1"),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(match_directive("# Comment here."), None);
        assert_eq!(match_directive("# key="), None);
        assert_eq!(match_directive("# key=  "), Some(("key", " ")));
        assert_eq!(match_directive("# 1a=b"), None);
    }

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ".into(), false));
        assert_eq!(trim_continuation("\\", '\\'), ("".into(), false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\".into(), true));
        assert_eq!(trim_continuation("a\\ \t", '\\'), ("a".into(), false));
        assert_eq!(trim_continuation("a `", '`'), ("a ".into(), false));
    }

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

    fn tree(text: &str) -> SyntaxTree {
        parse_syntax(text, "Dockerfile").unwrap()
    }

    #[test]
    fn bom_and_crlf() {
        let t = tree("\u{feff}FROM x\r\nRUN a \\\r\n  b\r\n");
        assert_eq!(crate::dump(&t), "(from \"x\")\n(run \"a   b\")\n");
        assert_eq!(t.nodes[1].span, Span::new(2, 3, 1));
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

    #[test]
    fn flags_with_quotes() {
        let t = tree("COPY --chown=\"a b\" --x='' -- --y z\n");
        assert_eq!(t.nodes[0].flags, ["--chown=a b", "--x="]);
        assert_eq!(t.nodes[0].args, ["--y", "z"]);
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
