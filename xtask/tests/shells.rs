//! The checked-in bash completion works in a real bash, and the man pages render with
//! groff (`fresh.rs` checks that both are what the definitions generate).

use std::path::Path;
use std::process::Command;

/// A tool the test needs is missing: fail under IMAGO_TEST_STRICT=1 (CI, where
/// scripts/setup-host.sh installs it), else say so and pass.
fn missing(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("IMAGO_TEST_STRICT").is_none_or(|v| v != "1"),
            "{tool} is not installed (scripts/setup-host.sh installs it)"
        );
        // Test output goes through libtest's capture; this says why nothing was checked.
        std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("skip: {tool} is not installed\n").as_bytes(),
        )
        .ok();
    }
    !found
}

/// Run a bash script in the repository root; its stdout, or a panic with its stderr.
fn bash(script: &str) -> String {
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script])
        .current_dir(xtask::repo_root())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The words bash's completion offers for a command line typed so far.
fn complete(program: &str, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let cur = words[cword];
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let script = format!(
        "source completions/bash/{program}\n\
         COMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _{program} {program} '{cur}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words.join(" "),
    );
    bash(&script).lines().map(str::to_owned).collect()
}

#[test]
fn bash_registers_every_program() {
    if missing("bash") {
        return;
    }
    for p in [
        "ibuild", "irun", "ictr", "ipull", "ipush", "ilogin", "ilogout", "itag", "iimage",
    ] {
        let out = bash(&format!("source completions/bash/{p}; complete -p {p}"));
        assert!(
            out.contains(&format!("-F _{p}")) && out.trim_end().ends_with(p),
            "complete -p {p}: {out}"
        );
    }
}

#[test]
fn bash_completes_flags_and_verbs() {
    if missing("bash") {
        return;
    }
    assert_eq!(complete("irun", &["irun", "--ne"]), ["--net", "--network"]);
    let verbs = complete("iimage", &["iimage", "l"]);
    assert!(
        verbs.contains(&"ls".to_owned()) && verbs.contains(&"load".to_owned()),
        "{verbs:?}"
    );
    let flags = complete("ictr", &["ictr", "logs", "--fo"]);
    assert_eq!(flags, ["--follow"]);
}

/// `groff -man -Tutf8` renders the page with its NAME, SYNOPSIS and OPTIONS sections
/// and the program's flags.
fn render(page: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run groff");
    assert!(out.status.success(), "groff {}: {:?}", page.display(), out);
    assert!(
        out.stderr.is_empty(),
        "groff warns on {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn man_pages_render() {
    if missing("groff") {
        return;
    }
    let man = xtask::repo_root().join("man");
    let irun = render(&man.join("irun.1"));
    for want in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "--network",
        "--publish",
        "--root",
    ] {
        assert!(irun.contains(want), "irun.1 lacks {want}:\n{irun}");
    }
    // groff justifies lines: compare with single spaces.
    let ls = render(&man.join("iimage-ls.1"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for want in [
        "iimage-ls - List images",
        "SYNOPSIS iimage ls [-q|--quiet]",
        "--no-trunc",
        "OPTIONS",
    ] {
        assert!(ls.contains(want), "iimage-ls.1 lacks {want}:\n{ls}");
    }
    for page in std::fs::read_dir(&man).expect("read man/") {
        let page = page.expect("a man/ entry").path();
        let text = render(&page);
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{}",
            page.display()
        );
    }
}
