//! The template text to a tree: literal text and `{{ }}` actions (fields, functions,
//! pipes, `if`/`with`/`range`/`else`/`end`, trim markers `{{-` and `-}}`).
//!
//! Never: evaluates anything (exec.rs does).

use super::TemplateError;

/// Deepest `if`/`range`/`with` nesting accepted.
const MAX_DEPTH: usize = 32;

/// The functions exec.rs knows, and Go's constants.
const FUNCS: &[&str] = &[
    "and", "eq", "index", "join", "json", "len", "lower", "ne", "not", "or", "pad", "println",
    "split", "title", "truncate", "upper", "true", "false", "nil",
];

/// Where a node starts: line (from 1) and byte column (from 0), as Go reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One operand of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.` (empty) or `.A.B`.
    Field(Vec<String>, Pos),
    /// A quoted or raw string.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A function name.
    Func(String, Pos),
}

/// One command of a pipeline: a function and its arguments, or one operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub args: Vec<Arg>,
}

/// Commands joined by `|`: each one's value is the next one's last argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub cmds: Vec<Command>,
    /// The action's source text, for error messages (`at <.Foo>`).
    pub text: String,
}

/// A node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

/// One `{{ }}` or the text between two.
enum Piece {
    Text(String),
    Action(String, Pos),
}

fn err(pos: Pos, what: impl std::fmt::Display) -> TemplateError {
    TemplateError::Parse(format!("template: :{}: {what}", pos.line))
}

fn pos_at(src: &str, offset: usize) -> Pos {
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = offset - before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    Pos { line, col }
}

/// Split into text and actions, applying the trim markers.
fn pieces(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut out = vec![];
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(open) = src[rest..].find("{{").map(|i| i + rest) {
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner = open + 2;
        let trim_prev = src[inner..].starts_with("- ") || src[inner..].starts_with("-\t");
        if trim_prev {
            text = text.trim_end();
            inner += 1;
        }
        out.push(Piece::Text(text.to_owned()));
        let close =
            find_close(src, inner).ok_or_else(|| err(pos_at(src, open), "unclosed action"))?;
        let mut body_end = close;
        trim_next = false;
        if src[..close].ends_with(" -") || src[..close].ends_with("\t-") {
            body_end -= 1;
            trim_next = true;
        }
        let body = &src[inner..body_end];
        let lead = body.len() - body.trim_start().len();
        out.push(Piece::Action(
            body.trim().to_owned(),
            pos_at(src, inner + lead),
        ));
        rest = close + 2;
    }
    let mut text = &src[rest..];
    if trim_next {
        text = text.trim_start();
    }
    out.push(Piece::Text(text.to_owned()));
    Ok(out)
}

/// The `}}` closing the action whose body starts at `from`, skipping quoted strings.
fn find_close(src: &str, from: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parse a whole template.
pub fn parse(src: &str) -> Result<Vec<Node>, TemplateError> {
    let pieces = pieces(src)?;
    let mut it = pieces.into_iter().peekable();
    let (nodes, end) = block(&mut it, 0)?;
    match end {
        None => Ok(nodes),
        Some((word, pos)) => Err(err(pos, format!("unexpected {{{{{word}}}}}"))),
    }
}

/// A block's nodes and the `end`/`else` that closed it (None: the input ended).
type Block = (Vec<Node>, Option<(String, Pos)>);

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

/// Nodes up to an `{{end}}` or `{{else}}` (returned) or the end of input (None).
fn block(it: &mut Pieces, depth: usize) -> Result<Block, TemplateError> {
    let mut nodes = vec![];
    while let Some(p) = it.next() {
        let (body, pos) = match p {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
                continue;
            }
            Piece::Action(b, pos) => (b, pos),
        };
        if body.starts_with("/*") {
            continue;
        }
        let (word, rest) = match body.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (body.as_str(), ""),
        };
        match word {
            "end" | "else" => return Ok((nodes, Some((word.to_owned(), pos)))),
            "if" | "with" | "range" => {
                if depth >= MAX_DEPTH {
                    return Err(err(pos, "nesting too deep"));
                }
                let pipe = pipe(rest, pos)?;
                let (then, end) = block(it, depth + 1)?;
                let els = match end {
                    Some((w, _)) if w == "end" => vec![],
                    Some((w, _)) if w == "else" => match block(it, depth + 1)? {
                        (els, Some((w, _))) if w == "end" => els,
                        _ => return Err(err(pos, format!("unexpected EOF in {word}"))),
                    },
                    _ => return Err(err(pos, format!("unexpected EOF in {word}"))),
                };
                nodes.push(match word {
                    "if" => Node::If(pipe, then, els),
                    "with" => Node::With(pipe, then, els),
                    _ => Node::Range(pipe, then, els),
                });
            }
            _ => nodes.push(Node::Action(pipe(&body, pos)?)),
        }
    }
    Ok((nodes, None))
}

/// `a b | c d`: commands of operands.
fn pipe(text: &str, pos: Pos) -> Result<Pipe, TemplateError> {
    let tokens = tokens(text, pos)?;
    if tokens.is_empty() {
        return Err(err(pos, "missing value for command"));
    }
    let mut cmds = vec![Command { args: vec![] }];
    for t in tokens {
        match t {
            Tok::Bar => cmds.push(Command { args: vec![] }),
            Tok::Arg(a) => cmds.last_mut().expect("one command at least").args.push(a),
        }
    }
    if cmds.iter().any(|c| c.args.is_empty()) {
        return Err(err(pos, "missing command in pipeline"));
    }
    Ok(Pipe {
        cmds,
        text: text.to_owned(),
    })
}

enum Tok {
    Bar,
    Arg(Arg),
}

fn tokens(text: &str, start: Pos) -> Result<Vec<Tok>, TemplateError> {
    let mut out = vec![];
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    let at = |off: usize| Pos {
        line: start.line,
        col: start.col + off,
    };
    while i < chars.len() {
        let (off, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                out.push(Tok::Bar);
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&(_, c)) = chars.get(i) else {
                        return Err(err(at(off), "unterminated quoted string"));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).map(|&(_, c)| c);
                            i += 1;
                            s.push(match e {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some(c @ ('\\' | '"')) => c,
                                _ => return Err(err(at(off), "bad escape in quoted string")),
                            });
                        }
                        c => s.push(c),
                    }
                }
                out.push(Tok::Arg(Arg::Str(s)));
            }
            '`' => {
                let end = text[off + 1..]
                    .find('`')
                    .ok_or_else(|| err(at(off), "unterminated raw quoted string"))?;
                out.push(Tok::Arg(Arg::Str(text[off + 1..off + 1 + end].to_owned())));
                let stop = off + 2 + end;
                while i < chars.len() && chars[i].0 < stop {
                    i += 1;
                }
            }
            _ => {
                let from = i;
                while i < chars.len() && !chars[i].1.is_whitespace() && chars[i].1 != '|' {
                    i += 1;
                }
                let end = chars.get(i).map(|&(o, _)| o).unwrap_or(text.len());
                out.push(Tok::Arg(word(&text[chars[from].0..end], at(off))?));
            }
        }
    }
    Ok(out)
}

fn word(w: &str, pos: Pos) -> Result<Arg, TemplateError> {
    if w == "." {
        return Ok(Arg::Field(vec![], pos));
    }
    if let Some(path) = w.strip_prefix('.') {
        let names: Vec<String> = path.split('.').map(str::to_owned).collect();
        let ok = |n: &String| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !names.iter().all(ok) {
            return Err(err(pos, format!("bad field name {w:?}")));
        }
        return Ok(Arg::Field(names, pos));
    }
    if let Ok(n) = w.parse::<i64>() {
        return Ok(Arg::Int(n));
    }
    if FUNCS.contains(&w) {
        return Ok(Arg::Func(w.to_owned(), pos));
    }
    if w.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(err(pos, format!("function {w:?} not defined")));
    }
    Err(err(pos, format!("unexpected {w:?} in operand")))
}
