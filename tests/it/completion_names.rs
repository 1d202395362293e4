//! The checked-in bash and fish completions offer names from the store: `irun bu<TAB>`
//! gives `busybox:latest`, `iimage rm` the same, `ictr rm` a container's name, and
//! option values are not taken for the image. Sourced in a real bash (and fish), with
//! the built programs on PATH, as each of `users()`.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{users, Env};

use crate::registry_support::busybox_into_store;

/// The words bash's completion for `program` offers for `words` (the last is the one
/// being completed), from the repository's completion file, as `env`'s user.
fn complete(env: &Env, program: &str, words: &[&str]) -> Vec<String> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read(repo.join("completions/bash").join(program)).unwrap();
    let file = env.write(&format!("{program}.bash"), text);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let script = format!(
        "PATH='{bins}':$PATH\nsource '{file}'\n\
         COMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _{program}_names {program} '{cur}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bins = imago_it::bin_dir().display(),
        file = file.display(),
        words = quoted.join(" "),
        line = words.join(" "),
        cur = words[cword],
    );
    let out = env
        .cmd_path("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .ok();
    out.stdout()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// fish's completions of the command line `line`, from the repository's fish file.
fn complete_fish(env: &Env, line: &str) -> Vec<String> {
    let program = line.split(' ').next().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read(repo.join(format!("completions/fish/{program}.fish"))).unwrap();
    let file = env.write(&format!("{program}.fish"), text);
    let script = format!(
        "set -x PATH '{}' $PATH; source '{}'; complete -C '{line}'",
        imago_it::bin_dir().display(),
        file.display(),
    );
    let out = env
        .cmd_path("fish")
        .args(["--no-config", "-c", &script])
        .ok();
    // Each line is the word, then a tab and its description.
    (out.stdout().lines())
        .filter_map(|l| l.split('\t').next())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn fish_completes_image_names_from_the_store() {
    if !imago_it::have("fish") {
        imago_it::skip("`fish` is not installed (apt-get install fish)");
        return;
    }
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        assert!(complete_fish(&env, "irun bu").is_empty(), "[{who}]");
        busybox_into_store(&env, "busybox");
        let busybox = vec!["busybox:latest".to_owned()];
        assert_eq!(complete_fish(&env, "irun -e A=1 bu"), busybox, "[{who}]");
        assert_eq!(complete_fish(&env, "iimage rmi b"), busybox, "[{who}]");
        assert!(
            !complete_fish(&env, "irun busybox b").contains(&busybox[0]),
            "[{who}] the command is no image"
        );
    }
}

#[test]
fn image_and_container_names_complete_from_the_store() {
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        // Empty store: nothing offered, and no error leaks into the completion.
        assert_eq!(
            complete(&env, "irun", &["irun", "bu"]),
            Vec::<String>::new(),
            "[{who}]"
        );
        busybox_into_store(&env, "busybox");
        let busybox = vec!["busybox:latest".to_owned()];
        assert_eq!(complete(&env, "irun", &["irun", "bu"]), busybox, "[{who}]");
        // an option's value is not the image; the word after it is
        assert_eq!(
            complete(&env, "irun", &["irun", "--name", "x", "-e", "A=1", "bu"]),
            busybox,
            "[{who}]"
        );
        // the command after the image is not completed as an image
        assert!(
            complete(&env, "irun", &["irun", "busybox", "bu"]).is_empty(),
            "[{who}]"
        );
        // options still complete as clap's script does
        assert!(
            complete(&env, "irun", &["irun", "--ne"]).contains(&"--network".to_owned()),
            "[{who}]"
        );
        // every image argument of `iimage rm` (and its alias rmi), not its verb
        assert_eq!(
            complete(&env, "iimage", &["iimage", "rm", "busybox", "b"]),
            busybox,
            "[{who}]"
        );
        assert_eq!(
            complete(&env, "iimage", &["iimage", "rmi", "b"]),
            busybox,
            "[{who}]"
        );
        assert!(
            complete(&env, "iimage", &["iimage", "ls", "b"]).is_empty(),
            "[{who}]"
        );
        assert_eq!(complete(&env, "ipush", &["ipush", "b"]), busybox, "[{who}]");
        // containers: a stopped one is offered by name
        env.cmd("irun")
            .args(["--name", "named-ctr", "busybox", "true"])
            .ok();
        assert_eq!(
            complete(&env, "ictr", &["ictr", "rm", "named"]),
            vec!["named-ctr".to_owned()],
            "[{who}]"
        );
    }
}
