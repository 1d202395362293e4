//! The exec-form reader: a JSON array of strings, decoded the way Go's `encoding/json`
//! does it (RFC 8259, lone surrogates become U+FFFD, nesting limit 10000), so that
//! `RUN ["a"]junk` falls back to shell form exactly like BuildKit.
//! Never: allocates for values it skips, or recurses (deep nesting can't blow the stack).

/// How a text starting with `[` reads as JSON.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonArray {
    /// Valid JSON, an array of strings only.
    Strings(Vec<String>),
    /// Valid JSON, but some element is not a string: a hard error in BuildKit.
    NotStrings,
    /// Not valid JSON (or not an array): the caller falls back to shell form.
    Invalid,
}

const MAX_DEPTH: usize = 10_000;

pub(crate) fn parse_array(text: &str) -> JsonArray {
    let mut p = Parser {
        b: text.as_bytes(),
        s: text,
        pos: 0,
    };
    match p.top() {
        Some(r) => r,
        None => JsonArray::Invalid,
    }
}

struct Parser<'a> {
    b: &'a [u8],
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn top(&mut self) -> Option<JsonArray> {
        self.ws();
        self.eat(b'[')?;
        let mut out = Vec::new();
        let mut all_strings = true;
        self.ws();
        if self.eat(b']').is_none() {
            loop {
                self.ws();
                if self.peek() == Some(b'"') {
                    let s = self.string()?;
                    out.push(s);
                } else {
                    self.skip_value()?;
                    all_strings = false;
                }
                self.ws();
                if self.eat(b',').is_some() {
                    continue;
                }
                self.eat(b']')?;
                break;
            }
        }
        self.ws();
        if self.pos != self.b.len() {
            return None;
        }
        Some(if all_strings {
            JsonArray::Strings(out)
        } else {
            JsonArray::NotStrings
        })
    }

    /// Validates one value that is not a top-level string, iteratively.
    fn skip_value(&mut self) -> Option<()> {
        // stack of open containers: b'[' or b'{'
        let mut stack: Vec<u8> = Vec::new();
        loop {
            // expect a value
            self.ws();
            match self.peek()? {
                b'"' => {
                    self.skip_string()?;
                }
                b'[' => {
                    self.pos += 1;
                    // depth counts the top-level array too
                    if stack.len() + 2 > MAX_DEPTH {
                        return None;
                    }
                    self.ws();
                    if self.eat(b']').is_none() {
                        stack.push(b'[');
                        continue;
                    }
                }
                b'{' => {
                    self.pos += 1;
                    if stack.len() + 2 > MAX_DEPTH {
                        return None;
                    }
                    self.ws();
                    if self.eat(b'}').is_none() {
                        stack.push(b'{');
                        self.key()?;
                        continue;
                    }
                }
                b't' => self.lit(b"true")?,
                b'f' => self.lit(b"false")?,
                b'n' => self.lit(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // after a value: close containers or separate
            loop {
                let Some(&top) = stack.last() else {
                    return Some(());
                };
                self.ws();
                if self.eat(b',').is_some() {
                    if top == b'{' {
                        self.key()?;
                    }
                    break;
                }
                let close = if top == b'[' { b']' } else { b'}' };
                self.eat(close)?;
                stack.pop();
            }
        }
    }

    fn key(&mut self) -> Option<()> {
        self.ws();
        if self.peek() != Some(b'"') {
            return None;
        }
        self.skip_string()?;
        self.ws();
        self.eat(b':')
    }

    fn lit(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.pos..self.pos + word.len())? == word {
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn skip_string(&mut self) -> Option<()> {
        self.string().map(|_| ())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(h, 16).ok()
    }

    /// Reads a string token starting at `"`, decoding escapes as Go does.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            match c {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            if (0xD800..0xDC00).contains(&u) {
                                // a high surrogate: pair it with a following \uDC00.. if any
                                let save = self.pos;
                                if self.s.get(self.pos..self.pos + 2) == Some("\\u") {
                                    self.pos += 2;
                                    if let Some(lo) = self.hex4() {
                                        if (0xDC00..0xE000).contains(&lo) {
                                            let cp = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                            continue;
                                        }
                                    }
                                }
                                self.pos = save;
                                out.push('\u{fffd}');
                            } else {
                                out.push(char::from_u32(u).unwrap_or('\u{fffd}'));
                            }
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => {
                    // copy one UTF-8 character
                    let ch = self.s.get(self.pos..)?.chars().next()?;
                    out.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            parse_array(r#"["a", "\u00e9\/\n", "\ud83d\ude00", "\ud800x"]"#),
            JsonArray::Strings(vec![
                "a".into(),
                "é/\n".into(),
                "😀".into(),
                "\u{fffd}x".into()
            ])
        );
        assert_eq!(parse_array("[]"), JsonArray::Strings(vec![]));
        assert_eq!(parse_array("[ ] \n"), JsonArray::Strings(vec![]));
    }

    #[test]
    fn not_strings_and_invalid() {
        assert_eq!(parse_array(r#"["a", ["b"]]"#), JsonArray::NotStrings);
        assert_eq!(
            parse_array(r#"[1, {"a": [true, null, -1.5e3]}]"#),
            JsonArray::NotStrings
        );
        assert_eq!(parse_array(r#"["a"]junk"#), JsonArray::Invalid);
        assert_eq!(parse_array(r#"['a']"#), JsonArray::Invalid);
        assert_eq!(parse_array(r#"["a",]"#), JsonArray::Invalid);
        assert_eq!(parse_array(r#"[01]"#), JsonArray::Invalid);
        assert_eq!(parse_array("[\"a\tb\"]"), JsonArray::Invalid);
        assert_eq!(parse_array(r#"["a""#), JsonArray::Invalid);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("[{}{}]", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(parse_array(&deep), JsonArray::Invalid);
        let ok = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_array(&ok), JsonArray::NotStrings);
    }
}
