//! The parser directives (`# syntax=`, `# escape=`, `# check=`), BuildKit's
//! `DirectiveParser`: recognised only before the first other line, each at most once,
//! `escape` only `\` or `` ` ``.
//! Never: reads lines itself (`lines` hands each one over) or acts on `syntax`/`check`.

use super::{is_re_space, Directives};
use crate::error::ParseErrorKind;

pub(super) struct DirectiveState {
    done: bool,
    pub(super) found: Directives,
    /// The escape character in effect (`\` until an `escape` directive).
    pub(super) escape: char,
}

impl DirectiveState {
    pub(super) fn new() -> Self {
        DirectiveState {
            done: false,
            found: Directives::default(),
            escape: '\\',
        }
    }

    /// BuildKit's `DirectiveParser.ParseLine` + `setEscapeToken`. Ok(true) = was a directive.
    pub(super) fn check(&mut self, line: &str) -> Result<bool, ParseErrorKind> {
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
}
