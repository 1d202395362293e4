//! The typed model on top of the syntax nodes (BuildKit's `instructions` package):
//! stages, ARGs before the first FROM, one [`InstructionKind`] variant per instruction
//! with its flags checked (unknown, duplicate, missing value, bad boolean) and its fields
//! validated (argument counts, `--chmod`, HEALTHCHECK durations, stage names, ONBUILD
//! triggers), plus [`Instruction::expand`]: which words of which instruction BuildKit
//! expands.
//! Never: looks up variable values itself (`scope`), reads files, or runs anything.
//!
//! Files: `types` (the model), `lower` (nodes → model), `flags` (instruction flags and
//! their checks), `expansion` ([`Instruction::expand`]), `suggest` ("did you mean").

mod expansion;
mod flags;
mod lower;
mod suggest;
mod types;

pub(crate) use lower::from_syntax;
pub(crate) use suggest::suggest;
pub use suggest::KEYWORDS;
pub use types::*;

#[cfg(test)]
mod tests;
