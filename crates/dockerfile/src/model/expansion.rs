//! [`Instruction::expand`]: which words of which instruction BuildKit expands, all of
//! one instruction's words within one length budget.

use super::types::*;
use crate::expand::{ExpandError, Lookup, ShellLex};

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
