//! BuildKit conformance: the parser corpus (33 positive cases dumped byte for byte, 4
//! negative cases rejected, the line-number fixture) and the shell-lexer fixtures
//! (`envVarTest`, `wordsTest`). The corpus is vendored in `tests/conformance/` (BuildKit's
//! fixtures, Apache-2.0, see its NOTICE); `$IMAGO_CONFORMANCE_DIR` points elsewhere.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on purpose

use imago_dockerfile::{dump, parse_syntax, ShellLex};
use std::io::Write;
use std::path::PathBuf;

/// Prints a tally line on stderr past libtest's output capture (which only takes the
/// print macros), so that it shows in every test run, passing or not.
fn tally(line: String) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn corpus() -> PathBuf {
    match std::env::var_os("IMAGO_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"),
    }
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let dir = corpus().join("buildkit-parser").join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e} (set IMAGO_CONFORMANCE_DIR)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn read(p: &std::path::Path) -> String {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    String::from_utf8(b).expect("corpus files are UTF-8")
}

#[test]
fn buildkit_parser_corpus() {
    let positive = cases("testfiles");
    let negative = cases("testfiles-negative");
    let mut p = 0;
    let mut failures = Vec::new();
    for case in &positive {
        let text = read(&case.join("Dockerfile"));
        let want = read(&case.join("result"));
        match parse_syntax(&text, "Dockerfile") {
            Ok(tree) => {
                let got = dump(&tree);
                if got == want {
                    p += 1;
                } else {
                    failures.push(format!(
                        "{}:\n--- want\n{want}--- got\n{got}",
                        case.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.display())),
        }
    }
    let mut n = 0;
    for case in &negative {
        let text = read(&case.join("Dockerfile"));
        match parse_syntax(&text, "Dockerfile") {
            Err(_) => n += 1,
            Ok(tree) => failures.push(format!("{}: accepted: {}", case.display(), dump(&tree))),
        }
    }
    tally(format!(
        "buildkit-parser: {p}/{} positive byte-identical, {n}/{} negative rejected",
        positive.len(),
        negative.len()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!((p, positive.len()), (33, 33));
    assert_eq!((n, negative.len()), (4, 4));
}

#[test]
fn buildkit_line_numbers() {
    let text = read(&corpus().join("buildkit-parser/testfile-line/Dockerfile"));
    let tree = parse_syntax(&text, "Dockerfile").unwrap();
    let spans: Vec<(u32, u32)> = tree
        .nodes
        .iter()
        .map(|n| (n.span.start_line, n.span.end_line))
        .collect();
    assert_eq!(spans, [(5, 5), (11, 12), (17, 31)]);
}

fn env_var_env() -> Vec<(String, String)> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn shell_env_var_test() {
    let text = read(&corpus().join("buildkit-parser/shell/envVarTest"));
    let lex = ShellLex::new('\\');
    let env = env_var_env();
    let (mut ok, mut total, mut failures) = (0, 0, Vec::new());
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 3, "bad fixture line {line:?}");
        let (platform, input, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        total += 1;
        let got = lex.expand_word(input, &env);
        let pass = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(g), e) => g == e,
            _ => false,
        };
        if pass {
            ok += 1;
        } else {
            failures.push(format!("{input:?}: want {expected:?}, got {got:?}"));
        }
    }
    tally(format!("shell envVarTest: {ok}/{total} lines pass"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total > 100);
}

#[test]
fn shell_words_test() {
    let text = read(&corpus().join("buildkit-parser/shell/wordsTest"));
    let lex = ShellLex::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let (mut ok, mut total, mut failures) = (0, 0, Vec::new());
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(kv) = line.strip_prefix("ENV ") {
            let (k, v) = kv.split_once('=').expect("ENV k=v");
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let (input, expected) = line.split_once('|').expect("input|words");
        let input = input.trim();
        let expected = expected.trim_start();
        total += 1;
        let got = lex.expand_words(input, &env);
        let pass = match &got {
            Err(_) => expected == "error",
            Ok(words) => *words == expected.split(',').collect::<Vec<_>>(),
        };
        if pass {
            ok += 1;
        } else {
            failures.push(format!("{input:?}: want {expected:?}, got {got:?}"));
        }
    }
    tally(format!("shell wordsTest: {ok}/{total} lines pass"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total > 20);
}
