//! The head of an instruction line, BuildKit's `splitCommand` and
//! `extractBuilderFlags`: the keyword (lowercased), the leading `--flag` words (quotes
//! removed, up to a lone `--`), and the argument text after them.
//! Never: interprets the arguments or checks the flags (`args`, `model`).

use super::{is_space, is_ws_token};

/// `splitCommand` + `extractBuilderFlags`.
pub(super) fn split_command(line: &str) -> (String, Vec<String>, String) {
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

#[cfg(test)]
mod tests {
    use crate::syntax::tree;

    #[test]
    fn flags_with_quotes() {
        let t = tree("COPY --chown=\"a b\" --x='' -- --y z\n");
        assert_eq!(t.nodes[0].flags, ["--chown=a b", "--x="]);
        assert_eq!(t.nodes[0].args, ["--y", "z"]);
    }
}
