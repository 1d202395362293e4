//! The typed model on top of the syntax nodes (BuildKit's `instructions` package):
//! stages, ARGs before the first FROM, one [`InstructionKind`] variant per instruction
//! with its flags checked (unknown, duplicate, missing value, bad boolean) and its fields
//! validated (argument counts, `--chmod`, HEALTHCHECK durations, stage names, ONBUILD
//! triggers), plus [`Instruction::expand`]: which words of which instruction BuildKit
//! expands.
//! Never: looks up variable values itself (scope.rs), reads files, or runs anything.

use crate::error::{ErrorSite, ParseError, ParseErrorKind as K, Span};
use crate::expand::{ExpandError, Lookup, ShellLex};
use crate::syntax::{parse_heredoc, Directives, Heredoc, Node, SyntaxTree, Warning};
use crate::values::{parse_go_duration, Chmod};
use std::time::Duration;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The file name given to [`crate::parse`], used in error messages.
    pub file: String,
    /// The escape character (`\` unless `# escape=``).
    pub escape: char,
    /// The parser directives (`syntax`, `escape`, `check`) found at the top.
    pub directives: Directives,
    /// ARG instructions before the first FROM (global scope, usable in FROM lines).
    pub meta_args: Vec<ArgInstruction>,
    /// The stages in file order (index 0 first). Never empty.
    pub stages: Vec<Stage>,
    /// Parser warnings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

/// An ARG line (before the first FROM, or inside a stage as [`InstructionKind::Arg`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgInstruction {
    pub span: Span,
    pub args: Vec<ArgDecl>,
}

/// `NAME` or `NAME=default`; the default is raw (quotes kept) until expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// One build stage: `FROM [--platform=p] base [AS name]` and its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position in the file (usable as `--from=<index>`).
    pub index: usize,
    /// The `AS` name, lowercased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The base as written: image reference, `scratch`, or a stage name; may contain
    /// `$VAR` to expand with the global scope ([`crate::scope::GlobalScope::expand_from`]).
    pub base: String,
    /// `--platform` as written (may contain `$BUILDPLATFORM`).
    pub platform: Option<String>,
    /// The FROM line.
    pub span: Span,
    /// The FROM line's text.
    pub original: String,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The name if any, else the index as text (how `--from` refers to it).
    pub fn name_or_index(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

impl Dockerfile {
    /// The stage `--from=<name_or_index>`/`--target` designates: a name (case-insensitive)
    /// or a 0-based index. None if there is no such stage.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_lowercase();
        if let Some(s) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(s);
        }
        name_or_index
            .parse::<usize>()
            .ok()
            .and_then(|i| self.stages.get(i))
    }

    /// A stage name close to `name` for "did you mean" hints.
    pub fn suggest_stage(&self, name: &str) -> Option<String> {
        let names: Vec<&str> = self
            .stages
            .iter()
            .filter_map(|s| s.name.as_deref())
            .collect();
        suggest(name, &names)
    }
}

/// One instruction inside a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Lines and column in the Dockerfile.
    pub span: Span,
    /// The logical line (continuations joined), for history and messages.
    pub original: String,
    pub kind: InstructionKind,
}

/// Shell form (run through SHELL, default `/bin/sh -c`) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Shell(String),
    Exec(Vec<String>),
}

/// A COPY/ADD source: a path (or URL, or glob) from the context/stage, or a heredoc body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(String),
    /// `COPY <<EOF dest`: a file named `name` with `content` (chomped if `<<-`). When
    /// `expand` is true, expand it with [`ShellLex::for_heredoc`] (done by
    /// [`Instruction::expand`]).
    Heredoc {
        name: String,
        content: String,
        expand: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// `--mount` values as written (parse with [`crate::values::Mount::parse`] after
    /// expansion).
    pub mounts: Vec<String>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=sandbox|insecure`.
    pub security: Option<String>,
    /// Heredocs of the command line (`RUN <<EOF`), in order.
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    /// `--from=<stage name|index|image>` (never expanded: BuildKit refuses `$` there).
    pub from: Option<String>,
    pub chown: Option<String>,
    /// `--chmod` as written; [`Chmod::parse`] it after expansion (already validated here
    /// when it has no `$`).
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: bool,
    pub checksum: Option<String>,
    pub exclude: Vec<String>,
    /// `--unpack=true|false`; None: default (local archives unpacked, URLs not).
    pub unpack: Option<bool>,
}

/// `KEY=value` of ENV/LABEL; both raw until expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `KEY value` form (linter LegacyKeyValueFormat).
    pub legacy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: config Test `["NONE"]`.
    None,
    Check {
        /// Shell form gives Test `["CMD-SHELL", cmd]`, exec form `["CMD", ...]`.
        command: CommandLine,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

impl Healthcheck {
    /// The image config `Healthcheck.Test` array.
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".into()],
            Healthcheck::Check {
                command: CommandLine::Shell(s),
                ..
            } => {
                vec!["CMD-SHELL".into(), s.clone()]
            }
            Healthcheck::Check {
                command: CommandLine::Exec(v),
                ..
            } => {
                let mut t = vec!["CMD".to_string()];
                t.extend(v.iter().cloned());
                t
            }
        }
    }
}

/// One variant per Dockerfile instruction (FROM is the [`Stage`] itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    /// `SHELL ["exe", "args"...]` (JSON form only, at least one element).
    Shell(Vec<String>),
    Copy(Copy),
    Add(Add),
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Label(Vec<KeyValue>),
    /// Port words as written; after [`Instruction::expand`] each is one spec, to parse
    /// with [`crate::values::PortSpec::parse`].
    Expose(Vec<String>),
    Workdir(String),
    User(String),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Maintainer(String),
    Onbuild(Onbuild),
}

/// `ONBUILD <instruction>`: `trigger` is the text stored in the image config's
/// `OnBuild` (heredoc bodies appended as BuildKit does); `instruction` its typed parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    pub trigger: String,
    pub instruction: Box<Instruction>,
}

impl InstructionKind {
    /// The keyword in upper case (`RUN`, `COPY`, ...).
    pub fn keyword(&self) -> &'static str {
        use InstructionKind::*;
        match self {
            Run(_) => "RUN",
            Cmd(_) => "CMD",
            Entrypoint(_) => "ENTRYPOINT",
            Shell(_) => "SHELL",
            Copy(_) => "COPY",
            Add(_) => "ADD",
            Env(_) => "ENV",
            Arg(_) => "ARG",
            Label(_) => "LABEL",
            Expose(_) => "EXPOSE",
            Workdir(_) => "WORKDIR",
            User(_) => "USER",
            Volume(_) => "VOLUME",
            StopSignal(_) => "STOPSIGNAL",
            Healthcheck(_) => "HEALTHCHECK",
            Maintainer(_) => "MAINTAINER",
            Onbuild(_) => "ONBUILD",
        }
    }
}

/// All instruction keywords, for suggestions.
pub const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

// ---------------------------------------------------------------------------------------
// expansion

/// Expands the words of one instruction with one environment, within one length budget
/// ([`crate::expand::MAX_EXPANDED_LEN`] for all the words together), so that many words
/// each just under the limit (`LABEL a=$X b=$X …`) cannot add up to gigabytes either.
struct Expander<'a> {
    lex: &'a ShellLex,
    env: &'a dyn Lookup,
    left: std::cell::Cell<usize>,
}

impl<'a> Expander<'a> {
    fn new(lex: &'a ShellLex, env: &'a dyn Lookup) -> Self {
        Expander {
            lex,
            env,
            left: std::cell::Cell::new(crate::expand::MAX_EXPANDED_LEN),
        }
    }

    fn expansion(&self, lex: &ShellLex, w: &str) -> Result<crate::Expansion, ExpandError> {
        let x = lex.expand_within(w, self.env, self.left.get())?;
        // The expander has checked `x.result` against the budget it was given.
        self.left
            .set(self.left.get().saturating_sub(x.result.len()));
        Ok(x)
    }

    fn word(&self, w: &str) -> Result<String, ExpandError> {
        Ok(self.expansion(self.lex, w)?.result)
    }

    fn words(&self, w: &str) -> Result<Vec<String>, ExpandError> {
        Ok(self.expansion(self.lex, w)?.words)
    }

    fn opt(&self, w: &Option<String>) -> Result<Option<String>, ExpandError> {
        w.as_deref().map(|w| self.word(w)).transpose()
    }

    fn sources(&self, s: &[Source]) -> Result<Vec<Source>, ExpandError> {
        s.iter()
            .map(|s| match s {
                Source::Path(p) => Ok(Source::Path(self.word(p)?)),
                Source::Heredoc {
                    name,
                    content,
                    expand: true,
                } => Ok(Source::Heredoc {
                    name: name.clone(),
                    content: self
                        .expansion(&ShellLex::for_heredoc('\\'), content)?
                        .result,
                    expand: false,
                }),
                other => Ok(other.clone()),
            })
            .collect()
    }
}

impl Instruction {
    /// A copy with the words BuildKit expands expanded, all with the same `env` (a
    /// variable's value is fixed for the whole instruction):
    /// ENV and LABEL keys and values; ARG names and defaults; COPY/ADD sources (heredoc
    /// bodies with an unquoted delimiter too), destination, `--chown`, `--chmod`,
    /// `--exclude`, ADD `--checksum`; EXPOSE (split into words); WORKDIR, USER,
    /// STOPSIGNAL, VOLUME; RUN `--mount`, `--network`, `--security`.
    /// Not expanded: RUN/CMD/ENTRYPOINT/SHELL commands (the shell does it), HEALTHCHECK,
    /// MAINTAINER, ONBUILD (expanded when the trigger runs), COPY `--from`.
    pub fn expand(&self, lex: &ShellLex, env: &dyn Lookup) -> Result<Instruction, ExpandError> {
        use InstructionKind as I;
        let x = Expander::new(lex, env);
        let kind = match &self.kind {
            I::Env(kvs) | I::Label(kvs) => {
                let out = kvs
                    .iter()
                    .map(|kv| {
                        Ok(KeyValue {
                            key: x.word(&kv.key)?,
                            value: x.word(&kv.value)?,
                            legacy: kv.legacy,
                        })
                    })
                    .collect::<Result<Vec<_>, ExpandError>>()?;
                if matches!(self.kind, I::Env(_)) {
                    I::Env(out)
                } else {
                    I::Label(out)
                }
            }
            I::Arg(decls) => I::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: x.word(&d.name)?,
                            default: x.opt(&d.default)?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            I::Copy(c) => I::Copy(Copy {
                sources: x.sources(&c.sources)?,
                dest: x.word(&c.dest)?,
                from: c.from.clone(),
                chown: x.opt(&c.chown)?,
                chmod: x.opt(&c.chmod)?,
                link: c.link,
                parents: c.parents,
                exclude: c
                    .exclude
                    .iter()
                    .map(|e| x.word(e))
                    .collect::<Result<_, _>>()?,
            }),
            I::Add(a) => I::Add(Add {
                sources: x.sources(&a.sources)?,
                dest: x.word(&a.dest)?,
                chown: x.opt(&a.chown)?,
                chmod: x.opt(&a.chmod)?,
                link: a.link,
                keep_git_dir: a.keep_git_dir,
                checksum: x.opt(&a.checksum)?,
                exclude: a
                    .exclude
                    .iter()
                    .map(|e| x.word(e))
                    .collect::<Result<_, _>>()?,
                unpack: a.unpack,
            }),
            I::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(x.words(p)?);
                }
                I::Expose(out)
            }
            I::Workdir(w) => I::Workdir(x.word(w)?),
            I::User(w) => I::User(x.word(w)?),
            I::StopSignal(w) => I::StopSignal(x.word(w)?),
            I::Volume(v) => I::Volume(v.iter().map(|p| x.word(p)).collect::<Result<_, _>>()?),
            I::Run(r) => I::Run(Run {
                command: r.command.clone(),
                mounts: r
                    .mounts
                    .iter()
                    .map(|m| x.word(m))
                    .collect::<Result<_, _>>()?,
                network: x.opt(&r.network)?,
                security: x.opt(&r.security)?,
                heredocs: r.heredocs.clone(),
            }),
            other => other.clone(),
        };
        Ok(Instruction {
            span: self.span,
            original: self.original.clone(),
            kind,
        })
    }
}

// ---------------------------------------------------------------------------------------
// flags

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    Str,
    List,
}

#[derive(Default)]
struct Flags {
    values: Vec<(&'static str, FlagValue)>,
}

enum FlagValue {
    Bool(bool),
    Str(String),
    List(Vec<String>),
}

impl Flags {
    fn str(&mut self, name: &str) -> Option<String> {
        self.values
            .iter_mut()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                FlagValue::Str(s) => Some(std::mem::take(s)),
                _ => None,
            })
    }
    fn bool(&self, name: &str) -> Option<bool> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| match v {
                FlagValue::Bool(b) => Some(*b),
                _ => None,
            })
    }
    fn list(&mut self, name: &str) -> Vec<String> {
        self.values
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| match v {
                FlagValue::List(l) => std::mem::take(l),
                _ => Vec::new(),
            })
            .unwrap_or_default()
    }
}

/// BuildKit's `BFlags.Parse` for the flags an instruction accepts.
fn parse_flags(raw: &[String], spec: &[(&'static str, FlagKind)]) -> Result<Flags, K> {
    let mut flags = Flags::default();
    for arg in raw {
        let Some(body) = arg.strip_prefix("--") else {
            return Err(K::InvalidArgument(format!(
                "arg should start with -- : {arg}"
            )));
        };
        if body.is_empty() {
            return Ok(flags);
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(sname, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            return Err(K::UnknownFlag {
                flag: name.to_string(),
                suggestion: suggest(name, &names),
            });
        };
        let seen = flags.values.iter().position(|(n, _)| *n == sname);
        if seen.is_some() && kind != FlagKind::List {
            return Err(K::DuplicateFlag(name.to_string()));
        }
        match kind {
            FlagKind::Bool => {
                let b = match value.map(str::to_lowercase).as_deref() {
                    None => true,
                    Some("") => return Err(K::MissingFlagValue(name.to_string())),
                    Some("true") => true,
                    Some("false") => false,
                    Some(_) => {
                        return Err(K::InvalidFlagValue {
                            flag: name.to_string(),
                            value: value.unwrap_or_default().to_string(),
                            reason: "expecting a boolean (true or false)".into(),
                        })
                    }
                };
                flags.values.push((sname, FlagValue::Bool(b)));
            }
            FlagKind::Str => {
                let Some(v) = value else {
                    return Err(K::MissingFlagValue(name.to_string()));
                };
                flags.values.push((sname, FlagValue::Str(v.to_string())));
            }
            FlagKind::List => {
                let Some(v) = value else {
                    return Err(K::MissingFlagValue(name.to_string()));
                };
                match seen {
                    Some(i) => {
                        if let FlagValue::List(l) = &mut flags.values[i].1 {
                            l.push(v.to_string());
                        }
                    }
                    None => flags
                        .values
                        .push((sname, FlagValue::List(vec![v.to_string()]))),
                }
            }
        }
    }
    Ok(flags)
}

/// The closest candidate (case-insensitive Levenshtein), if close enough to be a typo.
pub(crate) fn suggest(word: &str, candidates: &[&str]) -> Option<String> {
    let w = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(&w, &c.to_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let len = w.chars().count();
    let max = if len <= 3 { 1 } else { (len / 3).clamp(2, 3) };
    (d <= max).then(|| c.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(256).collect();
    let b: Vec<char> = b.chars().take(256).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------------------
// nodes → instructions

const COPY_FLAGS: &[(&str, FlagKind)] = &[
    ("from", FlagKind::Str),
    ("chown", FlagKind::Str),
    ("chmod", FlagKind::Str),
    ("link", FlagKind::Bool),
    ("parents", FlagKind::Bool),
    ("exclude", FlagKind::List),
];
const ADD_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", FlagKind::Str),
    ("chmod", FlagKind::Str),
    ("link", FlagKind::Bool),
    ("keep-git-dir", FlagKind::Bool),
    ("checksum", FlagKind::Str),
    ("exclude", FlagKind::List),
    ("unpack", FlagKind::Bool),
];
const RUN_FLAGS: &[(&str, FlagKind)] = &[
    ("mount", FlagKind::List),
    ("network", FlagKind::Str),
    ("security", FlagKind::Str),
];
const HEALTH_FLAGS: &[(&str, FlagKind)] = &[
    ("interval", FlagKind::Str),
    ("timeout", FlagKind::Str),
    ("start-period", FlagKind::Str),
    ("start-interval", FlagKind::Str),
    ("retries", FlagKind::Str),
];

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

fn check_chmod(flag: &Option<String>) -> Result<(), K> {
    if let Some(c) = flag {
        if !c.contains('$') {
            Chmod::parse(c).map_err(K::InvalidArgument)?;
        }
    }
    Ok(())
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

fn duration_flag(flags: &mut Flags, name: &str) -> Result<Option<Duration>, K> {
    let Some(v) = flags.str(name) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    let bad = |reason: String| K::InvalidFlagValue {
        flag: name.to_string(),
        value: v.clone(),
        reason,
    };
    let d = parse_go_duration(&v).map_err(bad)?;
    if d.is_zero() {
        return Ok(None);
    }
    if d < Duration::from_millis(1) {
        return Err(bad(format!("Interval {name:?} cannot be less than 1ms")));
    }
    Ok(Some(d))
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
    use InstructionKind as I;
    let kw = node.keyword.to_uppercase();
    let args = &node.args;
    let no_flags = |node: &Node| parse_flags(&node.flags, &[]).map(|_| ());
    let kind = match node.keyword.as_str() {
        "run" => {
            let mut f = parse_flags(&node.flags, RUN_FLAGS)?;
            I::Run(Run {
                command: command_line(node),
                mounts: f.list("mount"),
                network: f.str("network"),
                security: f.str("security"),
                heredocs: node.heredocs.clone(),
            })
        }
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
        "copy" => {
            let mut f = parse_flags(&node.flags, COPY_FLAGS)?;
            let (sources, dest) = sources_and_dest("COPY", node)?;
            let from = f.str("from");
            if let Some(fr) = &from {
                if fr.contains('$') {
                    return Err(K::InvalidArgument(
                        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into(),
                    ));
                }
            }
            for s in &sources {
                if let Source::Path(p) = s {
                    if p.contains("://") && (p.starts_with("http://") || p.starts_with("https://"))
                    {
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
            I::Copy(c)
        }
        "add" => {
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
            I::Add(a)
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
        "workdir" => {
            no_flags(node)?;
            I::Workdir(exactly_one("WORKDIR", args)?)
        }
        "user" => {
            no_flags(node)?;
            I::User(exactly_one("USER", args)?)
        }
        "stopsignal" => {
            no_flags(node)?;
            I::StopSignal(exactly_one("STOPSIGNAL", args)?)
        }
        "maintainer" => {
            no_flags(node)?;
            I::Maintainer(exactly_one("MAINTAINER", args)?)
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
        "healthcheck" => {
            at_least_one("HEALTHCHECK", args)?;
            let mut f = parse_flags(&node.flags, HEALTH_FLAGS)?;
            let typ = args[0].to_uppercase();
            let rest = &args[1..];
            if typ == "NONE" {
                if !rest.is_empty() {
                    return Err(K::InvalidArgument(
                        "HEALTHCHECK NONE takes no arguments".into(),
                    ));
                }
                I::Healthcheck(Healthcheck::None)
            } else if typ == "CMD" {
                if rest.is_empty() {
                    return Err(K::InvalidArgument(
                        "Missing command after HEALTHCHECK CMD".into(),
                    ));
                }
                let command = if node.json {
                    CommandLine::Exec(rest.to_vec())
                } else {
                    CommandLine::Shell(rest[0].clone())
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
                I::Healthcheck(Healthcheck::Check {
                    command,
                    interval: duration_flag(&mut f, "interval")?,
                    timeout: duration_flag(&mut f, "timeout")?,
                    start_period: duration_flag(&mut f, "start-period")?,
                    start_interval: duration_flag(&mut f, "start-interval")?,
                    retries: retries.map(|r| r as u32),
                })
            } else {
                return Err(K::InvalidArgument(format!(
                    "Unknown type {:?} in HEALTHCHECK (try CMD)",
                    args[0]
                )));
            }
        }
        "onbuild" => {
            no_flags(node)?;
            let Some(child) = &node.child else {
                return Err(K::ArgumentCount {
                    instruction: "ONBUILD".into(),
                    expected: "at least one argument",
                });
            };
            match child.keyword.as_str() {
                "onbuild" => return Err(K::OnbuildChain),
                "maintainer" | "from" => {
                    return Err(K::OnbuildForbidden(child.keyword.to_uppercase()))
                }
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
            I::Onbuild(Onbuild {
                trigger,
                instruction: Box::new(inner),
            })
        }
        "from" => return Err(K::InvalidArgument("FROM can't be used here".into())),
        _ => {
            let keyword = written_keyword(node);
            let suggestion = suggest(&keyword, &KEYWORDS);
            return Err(K::UnknownInstruction {
                keyword,
                suggestion,
            });
        }
    };
    let _ = kw;
    Ok(Instruction {
        span: node.span,
        original: node.original.clone(),
        kind,
    })
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

/// For flag errors, the column of `--flag` on the instruction's first line.
fn flag_column(line: &str, kind: &K) -> Option<u32> {
    let flag = match kind {
        K::UnknownFlag { flag, .. }
        | K::DuplicateFlag(flag)
        | K::MissingFlagValue(flag)
        | K::InvalidFlagValue { flag, .. } => flag,
        _ => return None,
    };
    let needle = format!("--{flag}");
    let at = match kind {
        K::DuplicateFlag(_) => line.rfind(&needle)?,
        _ => line.find(&needle)?,
    };
    Some(line[..at].chars().count() as u32 + 1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instructions_words_share_one_budget() {
        // Each word is under the limit; together they are not.
        let x = "x".repeat(crate::MAX_EXPANDED_LEN / 2 + 1);
        let env = vec![("X".to_string(), x)];
        let df = crate::parse("FROM x\nLABEL a=$X\nLABEL a=$X b=$X c=$X\n", "Dockerfile").unwrap();
        let lex = ShellLex::new('\\');
        df.stages[0].instructions[0].expand(&lex, &env).unwrap();
        let e = df.stages[0].instructions[1].expand(&lex, &env).unwrap_err();
        assert_eq!(e.word, "$X");
        assert!(
            matches!(e.kind, crate::ExpandErrorKind::TooLong { .. }),
            "{e}"
        );
    }
    use crate::parse;

    fn first(text: &str) -> InstructionKind {
        let d = parse(&format!("FROM x\n{text}"), "Dockerfile")
            .unwrap_or_else(|e| panic!("{}", e.render()));
        d.stages[0].instructions[0].kind.clone()
    }

    fn err(text: &str) -> ParseError {
        parse(&format!("FROM x\n{text}"), "Dockerfile").unwrap_err()
    }

    #[test]
    fn copy_heredoc_sources() {
        let k = first(
            "COPY --chmod=755 <<EOF <<-\"EOT\" file /dest/\nhello $name\nEOF\n\tx $y\n\tEOT\n",
        );
        let InstructionKind::Copy(c) = k else {
            panic!()
        };
        assert_eq!(
            c.sources,
            [
                Source::Heredoc {
                    name: "EOF".into(),
                    content: "hello $name\n".into(),
                    expand: true
                },
                Source::Heredoc {
                    name: "EOT".into(),
                    content: "x $y\n".into(),
                    expand: false
                },
                Source::Path("file".into()),
            ]
        );
        assert_eq!(c.chmod.as_deref(), Some("755"));
        let env = vec![
            ("name".to_string(), "world".to_string()),
            ("y".to_string(), "Y".to_string()),
        ];
        let d = parse(
            "FROM x\nCOPY <<EOF <<'EOT' /d/\nhi \"$name\" \\$x\nEOF\n$y\nEOT\n",
            "D",
        )
        .unwrap();
        let e = d.stages[0].instructions[0]
            .expand(&ShellLex::new('\\'), &env)
            .unwrap();
        let InstructionKind::Copy(c) = e.kind else {
            panic!()
        };
        assert_eq!(
            c.sources[..2],
            [
                Source::Heredoc {
                    name: "EOF".into(),
                    content: "hi \"world\" $x\n".into(),
                    expand: false
                },
                Source::Heredoc {
                    name: "EOT".into(),
                    content: "$y\n".into(),
                    expand: false
                },
            ]
        );
    }

    #[test]
    fn run_heredoc_and_flags() {
        let k = first("RUN --mount=type=cache,target=/c --network=none <<EOF\necho\nEOF\n");
        let InstructionKind::Run(r) = k else { panic!() };
        assert_eq!(r.mounts, ["type=cache,target=/c"]);
        assert_eq!(r.network.as_deref(), Some("none"));
        assert_eq!(r.heredocs.len(), 1);
        assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
    }

    #[test]
    fn healthcheck() {
        let k = first(
            "HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD curl -f http://x/ || exit 1",
        );
        let InstructionKind::Healthcheck(h) = k else {
            panic!()
        };
        assert_eq!(h.test(), ["CMD-SHELL", "curl -f http://x/ || exit 1"]);
        let Healthcheck::Check {
            interval,
            timeout,
            retries,
            start_period,
            ..
        } = h
        else {
            panic!()
        };
        assert_eq!(interval, Some(Duration::from_secs(300)));
        assert_eq!(timeout, Some(Duration::from_secs(3)));
        assert_eq!((retries, start_period), (Some(3), None));
        let k = first("healthcheck cmd [\"/bin/check\", \"-q\"]");
        let InstructionKind::Healthcheck(h) = k else {
            panic!()
        };
        assert_eq!(h.test(), ["CMD", "/bin/check", "-q"]);
        assert_eq!(
            first("HEALTHCHECK NONE"),
            InstructionKind::Healthcheck(Healthcheck::None)
        );
        let e = err("HEALTHCHECK --interval=500us CMD x");
        assert!(e.to_string().contains("cannot be less than 1ms"), "{e}");
        assert!(err("HEALTHCHECK --retries=-1 CMD x")
            .to_string()
            .contains("cannot be negative"));
        assert!(err("HEALTHCHECK CMD")
            .to_string()
            .contains("Missing command"));
        assert!(err("HEALTHCHECK FOO x")
            .to_string()
            .contains("Unknown type"));
        assert!(err("HEALTHCHECK --interval=5 CMD x")
            .to_string()
            .contains("invalid duration"));
    }

    #[test]
    fn flag_errors() {
        let e = err("COPY --from=a --from=b x y");
        assert_eq!(
            (e.kind, e.line, e.column),
            (K::DuplicateFlag("from".into()), 2, 15)
        );
        let e = err("RUN --mont=x true");
        assert_eq!((e.line, e.column), (2, 5));
        assert_eq!(
            err("COPY --from x y").kind,
            K::MissingFlagValue("from".into())
        );
        assert_eq!(
            err("COPY --link= x y").kind,
            K::MissingFlagValue("link".into())
        );
        assert!(matches!(
            err("COPY --link=maybe x y").kind,
            K::InvalidFlagValue { .. }
        ));
        let InstructionKind::Copy(c) = first("COPY --link=false --exclude=a --exclude=*.b x y")
        else {
            panic!()
        };
        assert!(!c.link);
        assert_eq!(c.exclude, ["a", "*.b"]);
        let InstructionKind::Add(a) =
            first("ADD --keep-git-dir --unpack=false --checksum=sha256:0 x y")
        else {
            panic!()
        };
        assert!(a.keep_git_dir && a.unpack == Some(false));
        assert!(matches!(
            err("ADD --from=x a b").kind,
            K::UnknownFlag { .. }
        ));
        assert!(err("COPY --chmod=64a a b")
            .to_string()
            .contains("invalid chmod parameter: '64a'"));
    }

    #[test]
    fn misc_validation() {
        assert!(err("SHELL /bin/sh -c").to_string().contains("JSON form"));
        assert!(err("VOLUME [\"\"]")
            .to_string()
            .contains("can not be an empty string"));
        assert!(err("COPY http://x/y /z")
            .to_string()
            .contains("source can't be a URL for COPY"));
        assert!(err("COPY a <<EOF\nx\nEOF")
            .to_string()
            .contains("heredoc as a destination"));
        assert!(err("ENV =x").to_string().contains("names can not be blank"));
        assert!(err("ARG =x").to_string().contains("names can not be blank"));
        assert!(err("LABEL a=b c")
            .to_string()
            .contains("can't find = in \"c\""));
        let e = parse("FROM a b", "Dockerfile").unwrap_err();
        assert!(
            e.to_string().contains("either one or three arguments"),
            "{e}"
        );
        let e = parse("FROM a AS 1x", "Dockerfile").unwrap_err();
        assert!(
            e.to_string().contains("invalid name for build stage"),
            "{e}"
        );
        let e = parse("FROM a AS x\nFROM b AS X", "Dockerfile").unwrap_err();
        assert_eq!((e.kind, e.line), (K::DuplicateStageName("x".into()), 2));
    }

    #[test]
    fn stages_and_lookup() {
        let d = parse(
            "ARG V=1\nFROM --platform=$P a AS Build\nRUN x\nFROM build\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(
            d.meta_args[0].args,
            [ArgDecl {
                name: "V".into(),
                default: Some("1".into())
            }]
        );
        assert_eq!(d.stages[0].platform.as_deref(), Some("$P"));
        assert_eq!(d.stage("BUILD").map(|s| s.index), Some(0));
        assert_eq!(d.stage("1").map(|s| s.base.as_str()), Some("build"));
        assert_eq!(d.stage("2"), None);
        assert_eq!(d.suggest_stage("bulid").as_deref(), Some("build"));
        assert_eq!(d.stages[1].name_or_index(), "1");
    }

    #[test]
    fn onbuild_trigger_text() {
        let k = first("ONBUILD COPY <<EOF /f\nbody\nEOF\n");
        let InstructionKind::Onbuild(o) = k else {
            panic!()
        };
        assert_eq!(o.trigger, "COPY <<EOF /f\nbody\nEOF");
        let InstructionKind::Copy(c) = &o.instruction.kind else {
            panic!()
        };
        assert_eq!(
            c.sources[0],
            Source::Heredoc {
                name: "EOF".into(),
                content: "body\n".into(),
                expand: true
            }
        );
    }

    #[test]
    fn error_render_shows_the_line() {
        let e = parse("FROM x\n  RUNN echo\n", "Dockerfile").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:2:3: unknown instruction: RUNN (did you mean RUN?)"
        );
        let r = e.render();
        assert!(
            r.contains("error: unknown instruction: RUNN (did you mean RUN?)"),
            "{r}"
        );
        assert!(r.contains("--> Dockerfile:2:3"), "{r}");
        assert!(r.contains("2 |   RUNN echo"), "{r}");
        assert!(r.contains("^ expected a Dockerfile instruction"), "{r}");
    }
}
