//! The build context: where it comes from and what the build sees of it.
//!
//! - [`input`]: the context the user gives (a directory, or a tar on stdin extracted
//!   through the hardened unpacker), the Dockerfile in it (`-f`, else `Dockerfile`, else
//!   `Containerfile`) and the ignore file (`<Dockerfile>.dockerignore`, else
//!   `.containerignore`, else `.dockerignore`).
//! - [`bind`]: the context as `RUN --mount=type=bind` sees it (`.dockerignore` applied,
//!   `source=` resolved inside it) and its content digest for the cache key.

pub mod bind;
pub mod input;

pub use bind::{bind_source, filtered_copy, tree_digest, ContextError};
pub use input::{BuildContext, Dockerfile, InputError};
