//! BuildKit's AST dump (`parser.Node.Dump`), the `result` format of its parser test corpus:
//! one `(keyword ["flags"] "arg" ...)` line per instruction, strings quoted exactly like
//! Go's `strconv.Quote`.
//! Never: parses; it only prints a [`SyntaxTree`].

use crate::syntax::{Node, SyntaxTree};
use std::fmt::Write;

/// The dump of a whole file: one line per instruction, each ending in `\n`.
pub fn dump(tree: &SyntaxTree) -> String {
    let mut out = String::new();
    for n in &tree.nodes {
        out.push('(');
        out.push_str(&dump_node(n));
        out.push_str(")\n");
    }
    out
}

/// The dump of one node, without the surrounding parentheses.
pub fn dump_node(n: &Node) -> String {
    let mut s = n.keyword.clone();
    if !n.flags.is_empty() {
        s.push_str(" [");
        for (i, f) in n.flags.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&go_quote(f));
        }
        s.push(']');
    }
    if let Some(c) = &n.child {
        s.push_str(" (");
        s.push_str(&dump_node(c));
        s.push(')');
    }
    for a in &n.args {
        s.push(' ');
        s.push_str(&go_quote(a));
    }
    s.trim_matches(char::is_whitespace).to_string()
}

/// Go's `strconv.Quote`: `"`, printable runes raw, `\a \b \f \n \r \t \v`, `\xHH` for other
/// controls and DEL, `\uHHHH` / `\UHHHHHHHH` for other non-printable runes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and U+0020.
fn is_go_print(c: char) -> bool {
    use unicode_general_category::{get_general_category as cat, GeneralCategory as G};
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    matches!(
        cat(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::NonspacingMark
            | G::SpacingMark
            | G::EnclosingMark
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
            | G::ConnectorPunctuation
            | G::DashPunctuation
            | G::OpenPunctuation
            | G::ClosePunctuation
            | G::InitialPunctuation
            | G::FinalPunctuation
            | G::OtherPunctuation
            | G::MathSymbol
            | G::CurrencySymbol
            | G::ModifierSymbol
            | G::OtherSymbol
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\t\u{7f}"), r#""\x00\t\x7f""#);
        assert_eq!(go_quote("♥☃é"), "\"♥☃é\"");
        assert_eq!(go_quote("\u{a0}\u{200b}"), r#""\u00a0\u200b""#);
        assert_eq!(go_quote("\u{e0001}"), r#""\U000e0001""#);
    }
}
