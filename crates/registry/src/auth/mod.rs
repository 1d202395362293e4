//! Authentication: the `WWW-Authenticate` challenge (challenge.rs), stored credentials
//! and credential helpers (creds.rs), bearer tokens and their scopes (token.rs).
//!
//! Never: sends registry API requests (client.rs does, and asks this module for the
//! `Authorization` value).

pub mod base64;
pub mod challenge;
pub mod creds;
pub mod token;

pub use challenge::Challenge;
pub use creds::{CredError, Credentials};
pub use token::{Scope, TokenCache};
