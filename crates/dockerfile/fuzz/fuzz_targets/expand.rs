//! The shell-lexer expander on any word, with a small environment taken from the input:
//! the first line is `k=v` pairs separated by `;`, the rest is the word.
#![no_main]

use imago_dockerfile::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (vars, word) = text.split_once('\n').unwrap_or(("v=abc;e=", &text));
    let env: Vec<(String, String)> = vars
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for esc in ['\\', '`'] {
        let lex = ShellLex::new(esc);
        if let Ok(e) = lex.expand(word, &env) {
            let _ = (e.result.len(), e.words.len());
        }
    }
    let _ = ShellLex::for_heredoc('\\').expand_word(word, &env);
    let _ = Chmod::parse(word).map(|c| c.apply(0o644, false));
    let _ = parse_go_duration(word);
});
