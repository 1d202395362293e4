//! Authentication: the `WWW-Authenticate` challenge (challenge.rs), stored credentials
//! (creds.rs) with their keys (keys.rs) and docker's credential helpers (helper.rs),
//! bearer tokens and their scopes (token.rs).
//!
//! Never: sends registry API requests (client.rs does, and asks this module for the
//! `Authorization` value).

pub mod base64;
pub mod challenge;
pub mod creds;
pub mod helper;
pub mod keys;
pub mod token;

pub use challenge::Challenge;
pub use creds::{CredError, Credentials};
pub use token::{Scope, TokenCache};
