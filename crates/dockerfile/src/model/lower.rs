//! Lowering: syntax nodes into the typed model (BuildKit's `instructions` package):
//! stages, the ARGs before the first FROM, and each instruction with its flags checked
//! and its fields validated (argument counts, stage names, ONBUILD triggers).

use super::flags::*;
use super::suggest::{suggest, KEYWORDS};
use super::types::*;
use crate::error::{ErrorSite, ParseError, ParseErrorKind as K};
use crate::syntax::{parse_heredoc, Node, SyntaxTree};

fn exactly_one(kw: &str, args: &[String]) -> Result<String, K> {
    match args {
        [one] => Ok(one.clone()),
        _ => Err(K::ArgumentCount {
            instruction: kw.to_string(),
            expected: "exactly one argument",
        }),
    }
}

fn at_least_one(kw: &str, args: &[String]) -> Result<(), K> {
    if args.is_empty() {
        return Err(K::ArgumentCount {
            instruction: kw.to_string(),
            expected: "at least one argument",
        });
    }
    Ok(())
}

fn command_line(node: &Node) -> CommandLine {
    if node.json {
        CommandLine::Exec(node.args.clone())
    } else {
        CommandLine::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn key_values(kw: &str, args: &[String]) -> Result<Vec<KeyValue>, K> {
    at_least_one(kw, args)?;
    if !args.len().is_multiple_of(3) {
        return Err(K::InvalidArgument(format!(
            "Bad input to {kw}, too many arguments"
        )));
    }
    args.chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(K::InvalidArgument(format!("{kw} names can not be blank")));
            }
            Ok(KeyValue {
                key: c[0].clone(),
                value: c[1].clone(),
                legacy: c[2].is_empty(),
            })
        })
        .collect()
}

fn arg_decls(args: &[String]) -> Result<Vec<ArgDecl>, K> {
    at_least_one("ARG", args)?;
    args.iter()
        .map(|a| match a.split_once('=') {
            Some(("", _)) => Err(K::InvalidArgument("ARG names can not be blank".into())),
            Some((n, v)) => Ok(ArgDecl {
                name: n.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                name: a.clone(),
                default: None,
            }),
        })
        .collect()
}

fn sources_and_dest(kw: &str, node: &Node) -> Result<(Vec<Source>, String), K> {
    let args = &node.args;
    if args.len() < 2 {
        return Err(K::ArgumentCount {
            instruction: kw.to_string(),
            expected: "at least two arguments (sources and a destination)",
        });
    }
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    let heredoc_word = |w: &str| {
        if node.json {
            Ok(None)
        } else {
            parse_heredoc(w)
        }
    };
    if heredoc_word(&dest).ok().flatten().is_some() {
        return Err(K::InvalidArgument(format!(
            "{kw} cannot accept a heredoc as a destination"
        )));
    }
    let mut sources = Vec::new();
    for s in srcs {
        match heredoc_word(s).ok().flatten() {
            Some(h) => {
                let found = node.heredocs.iter().find(|d| d.name == h.name);
                let content = found.map(|d| d.body()).unwrap_or_default();
                sources.push(Source::Heredoc {
                    name: h.name,
                    content,
                    expand: h.expand,
                });
            }
            None => sources.push(Source::Path(s.clone())),
        }
    }
    Ok((sources, dest))
}

/// The keyword as written in the source line (for messages).
fn written_keyword(node: &Node) -> String {
    node.original
        .trim_start_matches(char::is_whitespace)
        .split(['\t', '\x0b', '\x0c', '\r', ' '])
        .next()
        .unwrap_or("")
        .to_string()
}

fn instruction(node: &Node, depth: usize) -> Result<Instruction, K> {
    let kind = match node.keyword.as_str() {
        "run" => run(node)?,
        "copy" => copy(node)?,
        "add" => add(node)?,
        "healthcheck" => healthcheck(node)?,
        "onbuild" => onbuild(node, depth)?,
        "from" => return Err(K::InvalidArgument("FROM can't be used here".into())),
        _ => plain(node)?,
    };
    Ok(Instruction {
        span: node.span,
        original: node.original.clone(),
        kind,
    })
}

/// The instructions that take no flags (an unknown keyword gets a suggestion).
fn plain(node: &Node) -> Result<InstructionKind, K> {
    use InstructionKind as I;
    let args = &node.args;
    let no_flags = |node: &Node| parse_flags(&node.flags, &[]).map(|_| ());
    Ok(match node.keyword.as_str() {
        "cmd" => {
            no_flags(node)?;
            I::Cmd(command_line(node))
        }
        "entrypoint" => {
            no_flags(node)?;
            I::Entrypoint(command_line(node))
        }
        "shell" => {
            no_flags(node)?;
            at_least_one("SHELL", args)?;
            if !node.json {
                return Err(K::InvalidArgument(
                    "SHELL requires the arguments to be in JSON form".into(),
                ));
            }
            I::Shell(args.clone())
        }
        "env" => {
            no_flags(node)?;
            I::Env(key_values("ENV", args)?)
        }
        "label" => {
            no_flags(node)?;
            I::Label(key_values("LABEL", args)?)
        }
        "arg" => {
            no_flags(node)?;
            I::Arg(arg_decls(args)?)
        }
        "expose" => {
            no_flags(node)?;
            at_least_one("EXPOSE", args)?;
            I::Expose(args.clone())
        }
        "volume" => {
            no_flags(node)?;
            at_least_one("VOLUME", args)?;
            if args.iter().any(|v| v.trim().is_empty()) {
                return Err(K::InvalidArgument(
                    "VOLUME specified can not be an empty string".into(),
                ));
            }
            I::Volume(args.iter().map(|v| v.trim().to_string()).collect())
        }
        kw @ ("workdir" | "user" | "stopsignal" | "maintainer") => {
            no_flags(node)?;
            let one = exactly_one(&kw.to_uppercase(), args)?;
            match kw {
                "workdir" => I::Workdir(one),
                "user" => I::User(one),
                "stopsignal" => I::StopSignal(one),
                _ => I::Maintainer(one),
            }
        }
        _ => {
            let keyword = written_keyword(node);
            let suggestion = suggest(&keyword, &KEYWORDS);
            return Err(K::UnknownInstruction {
                keyword,
                suggestion,
            });
        }
    })
}

fn run(node: &Node) -> Result<InstructionKind, K> {
    let mut f = parse_flags(&node.flags, RUN_FLAGS)?;
    Ok(InstructionKind::Run(Run {
        command: command_line(node),
        mounts: f.list("mount"),
        network: f.str("network"),
        security: f.str("security"),
        heredocs: node.heredocs.clone(),
    }))
}

fn copy(node: &Node) -> Result<InstructionKind, K> {
    let mut f = parse_flags(&node.flags, COPY_FLAGS)?;
    let (sources, dest) = sources_and_dest("COPY", node)?;
    let from = f.str("from");
    if from.as_ref().is_some_and(|fr| fr.contains('$')) {
        return Err(K::InvalidArgument(
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into(),
        ));
    }
    for s in &sources {
        if let Source::Path(p) = s {
            if p.contains("://") && (p.starts_with("http://") || p.starts_with("https://")) {
                return Err(K::InvalidArgument("source can't be a URL for COPY".into()));
            }
        }
    }
    let c = Copy {
        sources,
        dest,
        from,
        chown: f.str("chown"),
        chmod: f.str("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        exclude: f.list("exclude"),
    };
    check_chmod(&c.chmod)?;
    Ok(InstructionKind::Copy(c))
}

fn add(node: &Node) -> Result<InstructionKind, K> {
    let mut f = parse_flags(&node.flags, ADD_FLAGS)?;
    let (sources, dest) = sources_and_dest("ADD", node)?;
    let a = Add {
        sources,
        dest,
        chown: f.str("chown"),
        chmod: f.str("chmod"),
        link: f.bool("link").unwrap_or(false),
        keep_git_dir: f.bool("keep-git-dir").unwrap_or(false),
        checksum: f.str("checksum"),
        exclude: f.list("exclude"),
        unpack: f.bool("unpack"),
    };
    check_chmod(&a.chmod)?;
    Ok(InstructionKind::Add(a))
}

fn healthcheck(node: &Node) -> Result<InstructionKind, K> {
    let args = &node.args;
    at_least_one("HEALTHCHECK", args)?;
    let mut f = parse_flags(&node.flags, HEALTH_FLAGS)?;
    let rest = &args[1..];
    match args[0].to_uppercase().as_str() {
        "NONE" if rest.is_empty() => Ok(InstructionKind::Healthcheck(Healthcheck::None)),
        "NONE" => Err(K::InvalidArgument(
            "HEALTHCHECK NONE takes no arguments".into(),
        )),
        "CMD" if rest.is_empty() => Err(K::InvalidArgument(
            "Missing command after HEALTHCHECK CMD".into(),
        )),
        "CMD" => health_cmd(node, rest, &mut f),
        _ => Err(K::InvalidArgument(format!(
            "Unknown type {:?} in HEALTHCHECK (try CMD)",
            args[0]
        ))),
    }
}

/// `HEALTHCHECK [flags] CMD …`: the command and the checked flag values.
fn health_cmd(node: &Node, rest: &[String], f: &mut Flags) -> Result<InstructionKind, K> {
    let command = match node.json {
        true => CommandLine::Exec(rest.to_vec()),
        false => CommandLine::Shell(rest[0].clone()),
    };
    let retries = match f.str("retries") {
        None => None,
        Some(r) if r.is_empty() => None,
        Some(r) => Some(r.parse::<i32>().map_err(|e| K::InvalidFlagValue {
            flag: "retries".into(),
            value: r.clone(),
            reason: e.to_string(),
        })?),
    };
    if let Some(r) = retries.filter(|r| *r < 0) {
        return Err(K::InvalidArgument(format!(
            "--retries cannot be negative ({r})"
        )));
    }
    Ok(InstructionKind::Healthcheck(Healthcheck::Check {
        command,
        interval: duration_flag(f, "interval")?,
        timeout: duration_flag(f, "timeout")?,
        start_period: duration_flag(f, "start-period")?,
        start_interval: duration_flag(f, "start-interval")?,
        retries: retries.map(|r| r as u32),
    }))
}

/// `ONBUILD <instruction>`: the trigger text as the image config stores it (heredoc
/// bodies appended) and its typed parse; no chains, no ONBUILD FROM/MAINTAINER.
fn onbuild(node: &Node, depth: usize) -> Result<InstructionKind, K> {
    parse_flags(&node.flags, &[])?;
    let Some(child) = &node.child else {
        return Err(K::ArgumentCount {
            instruction: "ONBUILD".into(),
            expected: "at least one argument",
        });
    };
    match child.keyword.as_str() {
        "onbuild" => return Err(K::OnbuildChain),
        "maintainer" | "from" => return Err(K::OnbuildForbidden(child.keyword.to_uppercase())),
        _ => {}
    }
    if depth > 0 {
        return Err(K::OnbuildChain);
    }
    let mut inner_node = (**child).clone();
    inner_node.heredocs = node.heredocs.clone();
    let inner = instruction(&inner_node, depth + 1)?;
    let mut trigger = strip_onbuild(&node.original);
    for h in &node.heredocs {
        trigger.push('\n');
        trigger.push_str(&h.content);
        trigger.push_str(&h.name);
    }
    Ok(InstructionKind::Onbuild(Onbuild {
        trigger,
        instruction: Box::new(inner),
    }))
}

/// `(?i)^\s*ONBUILD\s*` removed from the original line.
fn strip_onbuild(original: &str) -> String {
    let t = original.trim_start_matches(char::is_whitespace);
    let rest = if t.len() >= 7 && t.is_char_boundary(7) && t[..7].eq_ignore_ascii_case("onbuild") {
        &t[7..]
    } else {
        t
    };
    rest.trim_start_matches(char::is_whitespace).to_string()
}

fn parse_from(node: &Node, index: usize) -> Result<Stage, K> {
    let mut f = parse_flags(&node.flags, &[("platform", FlagKind::Str)])?;
    let args = &node.args;
    let name = match args.len() {
        1 => None,
        3 if args[1].eq_ignore_ascii_case("as") => {
            let n = args[2].to_lowercase();
            let mut chars = n.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !ok {
                return Err(K::InvalidStageName(args[2].clone()));
            }
            Some(n)
        }
        _ => {
            return Err(K::ArgumentCount {
                instruction: "FROM".into(),
                expected: "either one or three arguments (FROM image [AS name])",
            })
        }
    };
    Ok(Stage {
        index,
        name,
        base: args[0].clone(),
        platform: f.str("platform"),
        span: node.span,
        original: node.original.clone(),
        instructions: Vec::new(),
    })
}

/// Builds the typed model from the syntax tree.
pub(crate) fn from_syntax(
    tree: SyntaxTree,
    file: &str,
    text: &str,
) -> Result<Dockerfile, ParseError> {
    let site = ErrorSite::new(file, text);
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &tree.nodes {
        let err = |k: K| {
            let mut e = site.at(node.span, k);
            if let Some(col) = flag_column(&e.source_line, &e.kind) {
                e.column = col;
            }
            e
        };
        if node.keyword == "from" {
            let stage = parse_from(node, stages.len()).map_err(err)?;
            if let Some(n) = &stage.name {
                if stages.iter().any(|s| s.name.as_ref() == Some(n)) {
                    return Err(err(K::DuplicateStageName(n.clone())));
                }
            }
            stages.push(stage);
            continue;
        }
        let ins = instruction(node, 0).map_err(err)?;
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(ins),
            None => match ins.kind {
                InstructionKind::Arg(args) => meta_args.push(ArgInstruction {
                    span: ins.span,
                    args,
                }),
                other => {
                    return Err(err(K::NoBuildStage {
                        instruction: other.keyword().to_string(),
                    }))
                }
            },
        }
    }
    if stages.is_empty() {
        let line = tree.nodes.last().map_or(1, |n| n.span.start_line);
        return Err(site.error(line, 1, K::NoStages));
    }
    Ok(Dockerfile {
        file: file.to_string(),
        escape: tree.escape,
        directives: tree.directives,
        meta_args,
        stages,
        warnings: tree.warnings,
    })
}
