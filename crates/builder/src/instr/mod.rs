//! The semantics of instructions: metadata ones ([`meta`]) and COPY/ADD ([`copy`]).
//! RUN's process setup lives in the engine (it needs the runtime).

pub mod copy;
pub mod meta;
