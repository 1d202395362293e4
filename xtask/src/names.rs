//! Completion of image and container names from the store, added to clap's scripts:
//! for the positional arguments that name an image (`irun IMAGE`, `iimage rm
//! IMAGE...`, `ipush SOURCE`) or a container (`ictr stop CONTAINER...`), bash gets a
//! wrapper around clap's `_NAME` function and fish one more `complete` line, which
//! offer `iimage ls` / `ictr ps -a` names instead; zsh's is in zsh_names.rs.
//!
//! Which arguments these are is read from the clap definitions (an argument whose id or
//! value name says IMAGE or CONTAINER, plus [`SOURCE_IS_IMAGE`]), and so are the options
//! that take a value (their value is not a positional), so the script follows the
//! definitions as the rest of the generated files do.
//!
//! Never: asks the store at generation time; the names are listed when the user presses
//! TAB, bounded in time (`timeout 5`) and count (2000), and quiet when the store or the
//! program is missing.

use clap::Command;

/// Programs whose positional `source` is an image (elsewhere `source` is a file).
const SOURCE_IS_IMAGE: [&str; 2] = ["ipush", "itag"];

/// What a positional slot completes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    Container,
}

/// One command's (or verb's) name slots and value-taking options.
struct Slots {
    /// `slot:KIND[+]` words: the positional index, `i` or `c`, `+` for "and every later".
    spec: Vec<String>,
    /// `--long`, `-s` and aliases of the options that take a value.
    value_opts: Vec<String>,
}

/// One positional argument that takes names: its id, its position, what it names, and
/// whether every word from it on is one (`images`) or only its first (`IMAGE
/// [COMMAND]`).
pub(crate) struct NameArg {
    pub id: String,
    pub index: usize,
    pub kind: Kind,
    pub many: bool,
}

pub(crate) fn name_args(program: &str, cmd: &Command) -> Vec<NameArg> {
    let mut out = Vec::new();
    for (i, a) in cmd.get_positionals().enumerate() {
        let id = a.get_id().as_str().to_ascii_uppercase();
        let value_name = (a.get_value_names().unwrap_or_default().iter())
            .map(|v| v.as_str().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" ");
        let first = value_name.split(' ').next().unwrap_or_default();
        let kind = if id.starts_with("CONTAINER") || first.starts_with("CONTAINER") {
            Some(Kind::Container)
        } else if id.starts_with("IMAGE")
            || first.starts_with("IMAGE")
            || (id == "SOURCE" && SOURCE_IS_IMAGE.contains(&program))
        {
            Some(Kind::Image)
        } else {
            None
        };
        if let Some(kind) = kind {
            out.push(NameArg {
                id: a.get_id().as_str().to_owned(),
                index: i,
                kind,
                // `images`/`containers` take many names; `IMAGE [COMMAND]` only the first.
                many: id.ends_with('S'),
            });
        }
    }
    out
}

impl Kind {
    pub(crate) fn letter(self) -> char {
        match self {
            Kind::Image => 'i',
            Kind::Container => 'c',
        }
    }
}

fn slots(program: &str, cmd: &Command) -> Slots {
    let spec = (name_args(program, cmd).iter())
        .map(|a| {
            let plus = if a.many { "+" } else { "" };
            format!("{}:{}{plus}", a.index, a.kind.letter())
        })
        .collect();
    let mut value_opts = Vec::new();
    for a in cmd.get_arguments().filter(|a| !a.is_positional()) {
        // An optional value (`--tls-verify[=BOOL]`) is never the next word.
        let optional = a.get_num_args().is_some_and(|r| r.min_values() == 0);
        if !a.get_action().takes_values() || optional {
            continue;
        }
        value_opts.extend(a.get_short().map(|s| format!("-{s}")));
        value_opts.extend(a.get_long().map(|l| format!("--{l}")));
        value_opts.extend(
            a.get_all_aliases()
                .unwrap_or_default()
                .iter()
                .map(|l| format!("--{l}")),
        );
    }
    Slots { spec, value_opts }
}

/// The name slots of `cmd` and of each verb that has some (with the verb's names), or
/// nothing when no argument names an image or a container.
struct Layout {
    top: Slots,
    verbs: Vec<(Vec<String>, Slots)>,
    has_verbs: bool,
}

fn layout(program: &str, cmd: &Command) -> Option<Layout> {
    let mut cmd = cmd.clone();
    cmd.build();
    let top = slots(program, &cmd);
    let mut verbs = Vec::new();
    for v in cmd.get_subcommands() {
        let s = slots(program, v);
        if s.spec.is_empty() {
            continue;
        }
        let mut names = vec![v.get_name().to_owned()];
        names.extend(v.get_all_aliases().map(str::to_owned));
        verbs.push((names, s));
    }
    if top.spec.is_empty() && verbs.is_empty() {
        return None;
    }
    Some(Layout {
        top,
        verbs,
        has_verbs: cmd.has_subcommands(),
    })
}

/// The bash wrapper for `cmd` (named `program`), or nothing when no argument of it or
/// its verbs names an image or a container.
pub fn bash(program: &str, cmd: &Command) -> Option<String> {
    let Layout {
        top,
        verbs: verb_slots,
        has_verbs,
    } = layout(program, cmd)?;
    let mut verbs = String::new();
    for (names, s) in &verb_slots {
        verbs.push_str(&format!(
            "                    {}) spec='{}'; vopts+=' {} ' ;;\n",
            names.join("|"),
            s.spec.join(" "),
            s.value_opts.join(" "),
        ));
    }
    let has_verbs = if has_verbs { "1" } else { "" };
    let f = program.replace('-', "_");
    Some(format!(
        r#"
# Image and container names from the store (imago's addition to clap's script; see
# xtask/src/names.rs): a positional IMAGE or CONTAINER completes from `iimage ls` or
# `ictr ps -a`, bounded in time and count, quiet on error.
_imago_store_names() {{
    local root=()
    [[ -n $2 ]] && root=(--root "$2")
    case $1 in
        i) command timeout 5 iimage "${{root[@]}}" ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' 2>/dev/null | grep -v '<none>' | head -n 2000 ;;
        c) command timeout 5 ictr "${{root[@]}}" ps -a --format '{{{{.Names}}}}' 2>/dev/null | head -n 2000 ;;
    esac
}}

_{f}_names() {{
    _{f} "$@"
    local cur=$2 verb="" has_verbs='{has_verbs}' spec='{spec}' vopts=' {vopts} '
    local n=0 i w skip="" root="" want_root="" kind="" s
    [[ $cur == -* ]] && return 0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${{COMP_WORDS[i]}}
        if [[ -n $want_root ]]; then root=$w; want_root=""; fi
        if [[ -n $skip ]]; then skip=""; continue; fi
        case $w in
            --root=*) root=${{w#--root=}} ;;
            --*=*) ;;
            -*)
                [[ $w == --root ]] && want_root=1
                [[ $vopts == *" $w "* ]] && skip=1
                ;;
            *)
                if [[ -n $has_verbs && -z $verb ]]; then
                    verb=$w
                    spec=""
                    case $verb in
{verbs}                    esac
                else
                    n=$((n + 1))
                fi
                ;;
        esac
    done
    [[ -n $has_verbs && -z $verb ]] && return 0
    for s in $spec; do
        if [[ ${{s%%:*}} == "$n" || ( ${{s: -1}} == + && ${{s%%:*}} -le $n ) ]]; then
            kind=${{s#*:}}
            kind=${{kind%+}}
        fi
    done
    [[ -z $kind ]] && return 0
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$(_imago_store_names "$kind" "$root")" -- "$cur"))
    return 0
}}

if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _{f}_names -o nosort -o bashdefault -o default {program}
else
    complete -F _{f}_names -o bashdefault -o default {program}
fi
"#,
        spec = top.spec.join(" "),
        vopts = top.value_opts.join(" "),
    ))
}

/// The fish completion of `cmd`'s name slots (the same walk as [`bash`]'s), or nothing.
pub fn fish(program: &str, cmd: &Command) -> Option<String> {
    let l = layout(program, cmd)?;
    let mut verbs = String::new();
    for (names, s) in &l.verbs {
        verbs.push_str(&format!(
            "                    case {}\n                        set spec{}\n                        set -a vopts{}\n",
            names.join(" "),
            words(&s.spec),
            words(&s.value_opts),
        ));
    }
    let f = program.replace('-', "_");
    Some(format!(
        r#"
# Image and container names from the store (imago's addition to clap's script; see
# xtask/src/names.rs): a positional IMAGE or CONTAINER completes from `iimage ls` or
# `ictr ps -a`, bounded in time and count, quiet on error.
function __imago_store_names
    set -l root
    test -n "$argv[2]"; and set root --root $argv[2]
    switch $argv[1]
        case i
            command timeout 5 iimage $root ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' 2>/dev/null | string match -v -- '*<none>*' | head -n 2000
        case c
            command timeout 5 ictr $root ps -a --format '{{{{.Names}}}}' 2>/dev/null | head -n 2000
    end
end

# Prints the kind (i or c) and the line's --root when the word being completed is a
# name slot of {program}; fails otherwise.
function __{f}_imago_slot
    set -l words (commandline -opc)
    set -l has_verbs '{has_verbs}'
    set -l spec{spec}
    set -l vopts{vopts}
    set -l verb ''
    set -l n 0
    set -l skip 0
    set -l want_root 0
    set -l root ''
    for w in $words[2..]
        if test $want_root = 1
            set root $w
            set want_root 0
        end
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case '--root=*'
                set root (string replace -- '--root=' '' $w)
            case '--*=*'
            case '-*'
                test $w = --root; and set want_root 1
                contains -- $w $vopts; and set skip 1
            case '*'
                if test -n "$has_verbs" -a -z "$verb"
                    set verb $w
                    set spec
                    switch $verb
{verbs}                    end
                else
                    set n (math $n + 1)
                end
        end
    end
    if test -n "$has_verbs" -a -z "$verb"
        return 1
    end
    string match -q -- '-*' (commandline -ct); and return 1
    set -l kind ''
    for s in $spec
        set -l parts (string split : $s)
        set -l k (string replace + '' $parts[2])
        if test $parts[1] -eq $n
            set kind $k
        else if string match -q '*+' $s; and test $parts[1] -le $n
            set kind $k
        end
    end
    test -n "$kind"; or return 1
    echo $kind
    echo $root
end

complete -c {program} -n '__{f}_imago_slot >/dev/null' -f -a '(__imago_store_names (__{f}_imago_slot))'
"#,
        has_verbs = if l.has_verbs { "1" } else { "" },
        spec = words(&l.top.spec),
        vopts = words(&l.top.value_opts),
    ))
}

/// ` a b c`, or nothing for no words (fish's `set -l x` then sets an empty list).
fn words(w: &[String]) -> String {
    w.iter().map(|x| format!(" {x}")).collect()
}
