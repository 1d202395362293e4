//! Completion of image and container names from the store in zsh: the `_arguments`
//! specs of clap's zsh script for the arguments names.rs finds (`irun IMAGE`, `iimage
//! rm IMAGE...`, `ictr stop CONTAINER...`) get the action `_imago_store_names`, which
//! lists `iimage ls` / `ictr ps -a` names as bash's and fish's scripts do.
//!
//! Never: asks the store at generation time; the names are listed when the user presses
//! TAB, bounded in time (`timeout 5`) and count (2000), and quiet when the store or the
//! program is missing.

use clap::Command;

use crate::names::{name_args, NameArg};

/// clap's zsh script with the name arguments' `_arguments` specs completing from the
/// store (`_imago_store_names`, defined before clap's function so that the first TAB,
/// which autoloads the file, has it), or the script unchanged when no argument of
/// `cmd` or its verbs names an image or a container.
pub fn zsh(program: &str, cmd: &Command, script: &str) -> String {
    let mut built = cmd.clone();
    built.build();
    let top = name_args(program, &built);
    let verbs: Vec<(String, Vec<NameArg>)> = (built.get_subcommands())
        .map(|v| (v.get_name().to_owned(), name_args(program, v)))
        .filter(|(_, a)| !a.is_empty())
        .collect();
    if top.is_empty() && verbs.is_empty() {
        return script.to_owned();
    }
    let mut out = String::with_capacity(script.len() + ZSH_NAMES.len());
    // The verb whose `_arguments` block the line is in (clap writes `(verb)` before it).
    let mut verb: Option<&str> = None;
    // Verbs whose case label got their aliases: only the first label of each, the
    // dispatch to the verb's own `_arguments` (the second is in clap's `help` block).
    let mut labelled = std::collections::HashSet::new();
    for line in script.split_inclusive('\n') {
        let t = line.trim();
        if let Some(v) = t.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
            if let Some(labels) = aliased_label(&built, v).filter(|_| labelled.insert(v)) {
                out.push_str(&line.replacen(&format!("({v})"), &labels, 1));
                verb = verbs.iter().any(|(n, _)| n == v).then_some(v);
                continue;
            }
            verb = (v != program).then_some(v);
            // A verb name seen again, in clap's `help` block, has no name arguments.
            if let Some(v) = verb {
                verb = verbs.iter().any(|(n, _)| n == v).then_some(v);
            }
        }
        let args = match verb {
            Some(v) => verbs
                .iter()
                .find(|(n, _)| n == v)
                .map(|(_, a)| a.as_slice()),
            None => Some(top.as_slice()),
        };
        out.push_str(&zsh_spec(line, args.unwrap_or_default()));
        if line == "autoload -U is-at-least\n" {
            out.push_str(ZSH_NAMES);
        }
    }
    out
}

/// The case label `(verb|alias|…)` of a verb that has aliases (hidden ones too: clap's
/// script lists only the name, so `iimage rmi <TAB>` completed nothing), else None.
fn aliased_label(cmd: &Command, verb: &str) -> Option<String> {
    let sub = cmd.find_subcommand(verb)?;
    let aliases: Vec<&str> = sub.get_all_aliases().collect();
    (!aliases.is_empty()).then(|| format!("({verb}|{})", aliases.join("|")))
}

/// `line` with its action replaced when it is the `_arguments` spec of one of `args`
/// (`':source -- help:_default' \`, `'*::images:_default' \`).
fn zsh_spec(line: &str, args: &[NameArg]) -> String {
    let Some(body) = line.strip_prefix('\'') else {
        return line.to_owned();
    };
    let spec = body.trim_start_matches('*').trim_start_matches(':');
    for a in args {
        let named =
            spec.starts_with(&format!("{} -- ", a.id)) || spec.starts_with(&format!("{}:", a.id));
        let Some(cut) = line.rfind(":_default' \\").filter(|_| named) else {
            continue;
        };
        // In a rest spec (`*::rest`), only its first word is a name unless all are.
        let first = if body.starts_with('*') && !a.many {
            " first"
        } else {
            ""
        };
        let tail = &line[cut + ":_default' \\".len()..];
        return format!(
            "{}:_imago_store_names {}{first}' \\{tail}",
            &line[..cut],
            a.kind.letter()
        );
    }
    line.to_owned()
}

/// The zsh action of a name argument: `_imago_store_names i|c [first]` (`first`: only
/// the argument's first word is a name, the rest is a command). `_arguments` puts its
/// compadd options (`-J group`, …) before these words; they are passed on. The
/// `--root` of the line is the store asked.
const ZSH_NAMES: &str = r#"
# Image and container names from the store (imago's addition to clap's script; see
# xtask/src/zsh_names.rs): the action of a positional IMAGE or CONTAINER lists `iimage ls`
# or `ictr ps -a` names, bounded in time and count, quiet on error.
(( $+functions[_imago_store_names] )) ||
_imago_store_names() {
    local first=""
    if [[ ${@[-1]} == first ]]; then
        first=1
        argv[-1]=()
    fi
    local kind=${@[-1]}
    argv[-1]=()
    if [[ -n $first && $CURRENT -gt 1 ]]; then
        _default "$@"
        return
    fi
    local -a given root names
    local i
    given=(${(Q)${(z)BUFFER}})
    for ((i = 1; i <= $#given; i++)); do
        case $given[i] in
            --root=*) root=(--root "${given[i]#--root=}") ;;
            --root) root=(--root "$given[i+1]") ;;
        esac
    done
    case $kind in
        i) names=(${(f)"$(command timeout 5 iimage $root ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>' | head -n 2000)"}) ;;
        c) names=(${(f)"$(command timeout 5 ictr $root ps -a --format '{{.Names}}' 2>/dev/null | head -n 2000)"}) ;;
    esac
    compadd "$@" -a names
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's zsh script of `name`, with the store names put in.
    fn zsh_of(name: &str) -> String {
        let p = (crate::programs::all().into_iter())
            .find(|p| p.name() == name)
            .unwrap();
        let mut cmd = p.command.clone();
        let mut bytes = Vec::new();
        clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut bytes);
        zsh(name, &p.command, &String::from_utf8(bytes).unwrap())
    }

    fn actions(script: &str) -> Vec<&str> {
        (script.lines())
            .filter_map(|l| l.split_once(":_imago_store_names ").map(|(_, a)| a))
            .collect()
    }

    #[test]
    fn zsh_name_arguments_complete_from_the_store() {
        let irun = zsh_of("irun");
        // defined before clap's function, which the first TAB runs
        let defined = irun.find("_imago_store_names() {").unwrap();
        assert!(defined < irun.find("_irun() {").unwrap());
        assert_eq!(actions(&irun), ["i first' \\"]);
        let iimage = zsh_of("iimage");
        assert!(
            actions(&iimage).contains(&"i' \\"),
            "{:?}",
            actions(&iimage)
        );
        assert!(actions(&zsh_of("ictr")).iter().all(|a| a.starts_with('c')));
        assert_eq!(actions(&zsh_of("itag")), ["i' \\"]);
        // no name argument: clap's script as it is
        let ipull = zsh_of("ipull");
        assert!(!ipull.contains("_imago_store_names"));
    }

    #[test]
    fn zsh_dispatches_verb_aliases_once() {
        let iimage = zsh_of("iimage");
        assert_eq!(iimage.matches("(rm|rmi)").count(), 1, "{iimage}");
        assert_eq!(iimage.matches("(ls|list|images)").count(), 1);
        // the alias's block still completes names
        let rm = &iimage[iimage.find("(rm|rmi)").unwrap()..];
        let block = &rm[..rm.find(";;").unwrap()];
        assert!(block.contains("_imago_store_names i"), "{block}");
        let ictr = zsh_of("ictr");
        assert_eq!(ictr.matches("(rm|remove)").count(), 1);
        assert_eq!(ictr.matches("(ps|ls|list)").count(), 1);
        // a verb without aliases keeps clap's label
        assert!(ictr.contains("(stop)"));
    }
}
