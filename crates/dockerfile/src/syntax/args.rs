//! The argument rule of each instruction, BuildKit's `newNodeFromLine` and its parsers:
//! maybe-JSON (exec form), whitespace-split words, `parseWords`, ENV/LABEL name/value
//! triples, HEALTHCHECK's type and command, and ONBUILD's wrapped instruction (nested at
//! most a fixed depth).
//! Never: reads more than the one logical line it is given (`lines`) or checks the
//! arguments' meaning (`model`).

use super::command::split_command;
use super::{is_space, is_ws_token, Node};
use crate::error::{ParseErrorKind, Span};
use crate::json::{parse_array, JsonArray};

const NESTING_LIMIT: usize = 64;

/// `newNodeFromLine`: keyword, flags, then the per-instruction argument rule.
pub(super) fn node_from_line(
    line: &str,
    escape: char,
    depth: usize,
) -> Result<Node, ParseErrorKind> {
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

fn split_ws(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_ws_token)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
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
fn parse_words(rest: &str, escape: char) -> Vec<String> {
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
