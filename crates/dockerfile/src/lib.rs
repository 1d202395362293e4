//! imago's Dockerfile front end, BuildKit-exact: parsing, the typed model, word
//! expansion, ARG/ENV scoping and `.dockerignore` matching.
//!
//! Pure: no I/O besides the text it is given; no process environment is read.
//! Never: knows the store, images or namespaces (the build engine does).
//!
//! # Entry points
//!
//! * [`parse`]`(text, file_name) -> Result<`[`Dockerfile`]`, `[`ParseError`]`>`: the
//!   whole front end. A [`Dockerfile`] has the parser directives, `escape`, `meta_args`
//!   (ARGs before the first FROM) and `stages` (never empty). Each [`Stage`] has `index`,
//!   `name` (lowercased), `base` and `platform` as written (expand them with
//!   [`GlobalScope::expand_from`]) and its [`Instruction`]s. An [`Instruction`] has a
//!   [`Span`] (start/end line, column), the `original` logical line and an
//!   [`InstructionKind`]: one variant per instruction with validated fields (flags checked,
//!   argument counts, `--chmod`, HEALTHCHECK durations, stage names, ONBUILD triggers).
//!   Unknown instructions and flags are errors with a suggestion. Strings stay raw
//!   (quotes kept) until expanded.
//! * [`Instruction::expand`]`(&ShellLex, &dyn Lookup)`: a copy with exactly the words
//!   BuildKit expands expanded (see its doc). Use one env for the whole instruction.
//! * [`ShellLex`]`::new(escape)` with `expand_word` (ProcessWord), `expand_words`
//!   (ProcessWords, for EXPOSE), `expand` (both + names matched/unmatched, for cache
//!   keys); shortcuts [`expand_word`] and [`expand_words`] use `\`. Errors:
//!   [`ExpandError`] (`failed to process "<word>": ...`). Bounded: a result (and every
//!   intermediate string) longer than [`MAX_EXPANDED_LEN`] (1 MiB) is
//!   [`ExpandErrorKind::TooLong`], and so are an instruction's expanded words together
//!   ([`Instruction::expand`]); pattern matching has a step budget
//!   ([`ExpandErrorKind::TooExpensive`]).
//! * [`Lookup`]: where expansion reads variables (implemented for `HashMap`,
//!   `BTreeMap`, `[(String, String)]`/`Vec` (last wins), [`FnLookup`], [`NoVars`],
//!   [`GlobalScope`], [`StageScope`]).
//! * Scoping ([`scope`]): [`GlobalScope::new`]`(&df, &build_args, &Predefined)` evaluates
//!   predefined platform args and the meta ARGs; [`StageScope`] tracks one stage's ARGs
//!   and ENV (`apply` an expanded ENV/ARG, `run_env` for RUN, `env` for the image
//!   config; clone it for a stage `FROM` another stage). [`HOST_PROXY_VARS`]. Both bound
//!   their variables: 1 MiB a value, [`MAX_SCOPE_TOTAL`] (2 MiB) together, else
//!   [`ScopeError`].
//! * Typed values ([`values`]): [`Chmod`] (`parse`, `apply`), [`PortSpec::parse`] (EXPOSE
//!   after expansion), [`Mount::parse`] (`RUN --mount` after expansion),
//!   [`parse_go_duration`].
//! * [`DockerIgnore::parse`]`(text, file_name)` and `is_excluded(path)`; pick the file with
//!   [`ignore_file_candidates`]`(dockerfile_path)`.
//! * [`parse_syntax`] + [`dump()`]: BuildKit's syntax tree and its `result` dump format
//!   (used by the conformance test; `imago-dockerfile` has no user-facing command).
//! * [`ParseError`]: `file:line:col: message`; `render()` shows the line with a marker
//!   and a hint (annotate-snippets). [`ParseError::new`] locates an engine-side error
//!   (e.g. [`ParseErrorKind::Expand`]) at an instruction's span the same way.
//!
//! No function panics on any input (the parser and the expander are fuzzed).

// ParseError carries the file name and the offending line for its report (~128 bytes);
// parsing is a once-per-build cold path, so boxing it would only cost readability.
#![allow(clippy::result_large_err)]

pub mod dump;
pub mod error;
pub mod expand;
pub mod ignore;
mod json;
pub mod model;
pub mod scope;
pub mod syntax;
pub mod values;

pub use dump::{dump, go_quote};
pub use error::{ParseError, ParseErrorKind, Span};
pub use expand::{
    expand_word, expand_words, ExpandError, ExpandErrorKind, Expansion, FnLookup, Lookup, NoVars,
    ShellLex, MAX_EXPANDED_LEN,
};
pub use ignore::{ignore_file_candidates, DockerIgnore};
pub use model::{
    Add, ArgDecl, ArgInstruction, CommandLine, Copy, Dockerfile, Healthcheck, Instruction,
    InstructionKind, KeyValue, Onbuild, Run, Source, Stage,
};
pub use scope::{
    BuildArgs, GlobalScope, Platform, Predefined, ScopeError, StageScope, HOST_PROXY_VARS,
    MAX_SCOPE_TOTAL, PROXY_ARGS_TLS,
};
pub use syntax::{parse_syntax, Directives, Heredoc, Node, SyntaxTree, Warning};
pub use values::{parse_go_duration, Chmod, Mount, MountType, PortSpec, Proto, Sharing};

/// Parses a Dockerfile into the typed model. `file_name` is only used in errors.
pub fn parse(text: &str, file_name: &str) -> Result<Dockerfile, ParseError> {
    let tree = parse_syntax(text, file_name)?;
    model::from_syntax(tree, file_name, text)
}

/// [`parse`] for bytes that may not be UTF-8 (invalid sequences become U+FFFD).
pub fn parse_bytes(bytes: &[u8], file_name: &str) -> Result<Dockerfile, ParseError> {
    parse(&String::from_utf8_lossy(bytes), file_name)
}
