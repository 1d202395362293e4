//! imago's config file, for the keys the programs read: `$IMAGO_CONFIG`, else
//! `$XDG_CONFIG_HOME/imago/config.toml`, else `~/.config/imago/config.toml` (the same
//! file the store's node-local dir rule reads `local_dir` from). Top-level
//! `key = "value"` lines, `#` comments ([`imago_store::local::config_value`] parses).
//! Never: writes the file, reads it unbounded.

use std::io::Read;
use std::path::PathBuf;

/// A config file is a few lines; more than this is not read.
const MAX_BYTES: u64 = 64 * 1024;

/// The config file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("read the config file `{path}`")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The config file's path by the rule above (it may not exist); the store owns the rule.
pub fn file() -> Option<PathBuf> {
    imago_store::local::config_file()
}

/// The value of top-level `key` and the file it is in; `None` without a file or key.
pub fn value(key: &str) -> Result<Option<(String, PathBuf)>, ConfigError> {
    let Some(path) = file() else { return Ok(None) };
    let mut text = String::new();
    let read = std::fs::File::open(&path).and_then(|f| f.take(MAX_BYTES).read_to_string(&mut text));
    match read {
        Ok(_) => Ok(imago_store::local::config_value(&text, key).map(|v| (v, path))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError { path, source }),
    }
}
