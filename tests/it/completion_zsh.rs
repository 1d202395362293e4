//! The zsh completions offer names from the store, as bash's and fish's do: `irun
//! bu<TAB>` gives `busybox:latest` (after options and their values too), `iimage rm`
//! every image argument, `ipush` its source, `ictr rm` a container's name; the command
//! after irun's image is not an image, and the line's `--root` is the store asked. A
//! real interactive zsh (in a zsh/zpty pseudo-terminal) completes the line with the
//! repository's `completions/zsh` files on its fpath and the built programs on PATH,
//! as each of `users()`.

#![allow(clippy::unwrap_used)] // test code: a failed step is a test failure

use imago_it::{users, Env};

use crate::registry_support::busybox_into_store;

/// Drives an interactive zsh: compinit over DIR ($1), the line ($2) and a TAB, each
/// match compadd adds printed on a line of its own. Nothing more is typed until the
/// completion has ended (its widget prints a marker): typeahead would make zsh cut the
/// completion short. The markers are typed split
/// (`@@REA''DY@@`) so that only the shell's output, never the echo of the typing,
/// matches them.
const CAPTURE: &str = r#"
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT=''; RPROMPT=''; fpath=('$1' \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits
  builtin compadd -A __hits "$@"
  local r=$?
  (( $#__hits )) && print -rl -- "" "@@HIT@@"${^__hits}
  return r
}'
zpty -w z 'complete-then-mark () { zle complete-word; print -u2 -n "@@DO""NE@@" }'
zpty -w z "zle -N complete-then-mark; bindkey '^I' complete-then-mark; print @@REA''DY@@"
zpty -r z out '*@@READY@@*'
zpty -w -n z "$2"$'\t'
hits=''
zpty -r z hits '*@@DONE@@*'
zpty -w -n z $'\C-u'"print @@E''ND@@"$'\n'
out=''
zpty -r z out '*@@END@@*'
print -r -- "$hits$out" | tr -d '\r' | grep -a '^@@HIT@@' | sed 's/^@@HIT@@//; s/@@DONE@@.*//' | sort -u
zpty -d z
"#;

/// The matches zsh offers for `line`, as `env`'s user. The completion files are the
/// repository's, or `$IMAGO_ZSH_COMPLETIONS`'s (to try freshly generated ones).
fn complete(env: &Env, line: &str) -> Vec<String> {
    let dir = std::env::var_os("IMAGO_ZSH_COMPLETIONS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| imago_it::repo_root().join("completions/zsh"));
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        env.write(&format!("zsh/{name}"), std::fs::read(f.path()).unwrap());
    }
    let script = env.write("capture.zsh", CAPTURE);
    let path = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        imago_it::bin_dir().display()
    );
    let out = (env.cmd_path("timeout").env("PATH", path))
        .args(["60", "zsh", "-f"])
        .arg(script)
        .arg(env.path("zsh"))
        .arg(line)
        .ok();
    out.stdout().lines().map(str::to_owned).collect()
}

#[test]
fn zsh_completes_image_and_container_names_from_the_store() {
    if !imago_it::have("zsh") {
        imago_it::skip("`zsh` is not installed (apt-get install zsh)");
        return;
    }
    for user in users() {
        let who = user.name();
        let env = Env::new(user);
        assert_eq!(complete(&env, "irun bu"), Vec::<String>::new(), "[{who}]");
        busybox_into_store(&env, "busybox");
        let busybox = vec!["busybox:latest".to_owned()];
        assert_eq!(complete(&env, "irun bu"), busybox, "[{who}]");
        // an option's value is not the image; the word after it is
        assert_eq!(
            complete(&env, "irun --name x -e A=1 bu"),
            busybox,
            "[{who}]"
        );
        // the command after the image is not an image
        let after = complete(&env, "irun busybox:latest b");
        assert!(!after.contains(&busybox[0]), "[{who}] {after:?}");
        // options still complete as clap's script does
        let opts = complete(&env, "irun --ne");
        assert!(opts.contains(&"--network".to_owned()), "[{who}] {opts:?}");
        assert_eq!(
            complete(&env, "iimage rm busybox:latest b"),
            busybox,
            "[{who}]"
        );
        // a verb's alias completes as the verb does (docker's `rmi`)
        assert_eq!(complete(&env, "iimage rmi b"), busybox, "[{who}]");
        assert_eq!(complete(&env, "ipush b"), busybox, "[{who}]");
        assert_eq!(complete(&env, "itag b"), busybox, "[{who}]");
        // the line's --root is the store listed
        let empty = env.path("empty-store");
        let other = complete(&env, &format!("iimage --root {} rm b", empty.display()));
        assert!(other.is_empty(), "[{who}] {other:?}");
        env.cmd("irun")
            .args(["--name", "named-ctr", "busybox", "true"])
            .ok();
        assert_eq!(
            complete(&env, "ictr rm named"),
            vec!["named-ctr".to_owned()],
            "[{who}]"
        );
        assert_eq!(
            complete(&env, "ictr remove named"),
            vec!["named-ctr".to_owned()],
            "[{who}]"
        );
    }
}
