//! The model's types: a [`Dockerfile`] of [`Stage`]s of [`Instruction`]s, one
//! [`InstructionKind`] variant per instruction with its typed fields.

use std::time::Duration;

use super::suggest::suggest;
use crate::error::Span;
use crate::syntax::{Directives, Heredoc, Warning};

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
    /// `expand` is true, expand it with [`ShellLex::for_heredoc`](crate::ShellLex::for_heredoc) (done by
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
    /// `--chmod` as written; [`Chmod::parse`](crate::Chmod::parse) it after expansion (already validated here
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
