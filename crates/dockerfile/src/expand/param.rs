//! `$name` and the `${...}` operators, BuildKit's `processDollar`: plain `${VAR}`, the
//! defaults and alternatives (`-` `+` `?`, with or without `:`), the trims (`#` `##` `%`
//! `%%`) and the replacements (`/` `//`), with BuildKit's error for each malformed form.
//! Never: scans quotes or names itself (`word`) or matches a glob (`pattern`).

use super::limits::MAX_NESTING;
use super::pattern::{pattern_tokens, Matcher};
use super::word::ShellWord;
use super::{ExpandErrorKind, R};

impl ShellWord<'_> {
    pub(super) fn process_dollar(&mut self) -> R<String> {
        if self.depth >= MAX_NESTING {
            return Err(ExpandErrorKind::TooDeep);
        }
        self.depth += 1;
        let r = self.process_dollar_inner();
        self.depth -= 1;
        r
    }

    fn process_dollar_inner(&mut self) -> R<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let ch = self.next();
        let mut chs = ch.map_or('\u{fffd}'.to_string(), |c| c.to_string());
        match ch {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut ch = ch;
                let mut null_is_unset = false;
                if ch == Some(':') {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push(ch.unwrap_or('\u{fffd}'));
                }
                let raw = matches!(ch, Some('#' | '%'));
                let word = self.word_until('}', raw, ExpandErrorKind::MissingBrace)?;
                let value = self.get_env(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let unset_or_null =
                    value.is_none() || (null_is_unset && value.as_deref() == Some(""));
                match ch {
                    Some('-') => Ok(if unset_or_null {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if unset_or_null { String::new() } else { word }),
                    Some('?') => {
                        if value.is_none() {
                            let message = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            return Err(ExpandErrorKind::Required { name, message });
                        }
                        if null_is_unset && value.as_deref() == Some("") {
                            let message = if word.is_empty() {
                                "is not allowed to be empty".to_string()
                            } else {
                                word
                            };
                            return Err(ExpandErrorKind::Required { name, message });
                        }
                        Ok(value.unwrap_or_default())
                    }
                    Some(c @ ('%' | '#')) => {
                        let mut pat = word.as_str();
                        let mut greedy = false;
                        if pat.starts_with(c) {
                            greedy = true;
                            pat = &pat[c.len_utf8()..];
                        }
                        let value = value.unwrap_or_default();
                        let tokens = pattern_tokens(pat)?;
                        let mut m = Matcher::new(&tokens, pat, &mut self.steps_left);
                        if c == '%' {
                            m.trim_suffix(&value, greedy)
                        } else {
                            m.trim_prefix(&value, greedy)
                        }
                    }
                    _ => Err(ExpandErrorKind::UnsupportedModifier(chs)),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = self.word_until('/', true, ExpandErrorKind::MissingSlash)?;
                let replacement = self.word_until('}', true, ExpandErrorKind::MissingBrace)?;
                let value = self.get_env(&name);
                let Some(value) = value else {
                    if self.lex.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let tokens = pattern_tokens(&pattern)?;
                let limit = self.limit;
                Matcher::new(&tokens, &pattern, &mut self.steps_left).replace(
                    &value,
                    &replacement,
                    replace_all,
                    limit,
                )
            }
            _ => Err(ExpandErrorKind::UnsupportedModifier(chs)),
        }
    }

    /// The word up to `stop`; input that ends first is `missing` (BuildKit's
    /// "missing '}'" or "missing '/'"), any other failure is passed on.
    fn word_until(&mut self, stop: char, raw: bool, missing: ExpandErrorKind) -> R<String> {
        match self.process_stop_on(Some(stop), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(missing),
            Err(e) => Err(e),
        }
    }
}
