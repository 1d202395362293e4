//! The flags every program takes, and where the store lives.

use std::path::PathBuf;

/// Flags shared by every program; `#[command(flatten)]` them into each bin's options.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// Store root (default: $IMAGO_ROOT, else $XDG_DATA_HOME/imago, else ~/.local/share/imago)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace (or a tracing filter)
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        default_value = "warn",
        env = "IMAGO_LOG"
    )]
    pub log_level: String,
}

/// How listings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// A human table, aligned columns.
    #[default]
    Table,
    /// One JSON document on stdout.
    Json,
}

impl GlobalOpts {
    /// The store root, by precedence: `--root`, `$IMAGO_ROOT`, `$XDG_DATA_HOME/imago`,
    /// `~/.local/share/imago`. Works without `$XDG_RUNTIME_DIR` (HPC login nodes).
    pub fn store_root(&self) -> Result<PathBuf, NoStoreRoot> {
        resolve_store_root(
            self.root.clone(),
            std::env::var_os("IMAGO_ROOT").map(PathBuf::from),
            std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }
}

/// No flag, variable or home directory names a store.
#[derive(Debug, thiserror::Error)]
#[error("no store root: pass --root, or set IMAGO_ROOT, XDG_DATA_HOME or HOME")]
pub struct NoStoreRoot;

/// Pure precedence rule behind [`GlobalOpts::store_root`]; empty values count as unset.
pub fn resolve_store_root(
    flag: Option<PathBuf>,
    imago_root: Option<PathBuf>,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<PathBuf, NoStoreRoot> {
    let set = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = set(flag).or(set(imago_root)) {
        return Ok(p);
    }
    if let Some(p) = set(xdg_data_home) {
        return Ok(p.join("imago"));
    }
    set(home)
        .map(|h| h.join(".local/share/imago"))
        .ok_or(NoStoreRoot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<PathBuf> {
        Some(PathBuf::from(s))
    }

    #[test]
    fn flag_wins_over_everything() {
        let r = resolve_store_root(p("/f"), p("/i"), p("/x"), p("/h")).unwrap();
        assert_eq!(r, PathBuf::from("/f"));
    }

    #[test]
    fn imago_root_then_xdg_then_home() {
        assert_eq!(
            resolve_store_root(None, p("/i"), p("/x"), p("/h")).unwrap(),
            PathBuf::from("/i")
        );
        assert_eq!(
            resolve_store_root(None, None, p("/x"), p("/h")).unwrap(),
            PathBuf::from("/x/imago")
        );
        assert_eq!(
            resolve_store_root(None, p(""), None, p("/h")).unwrap(),
            PathBuf::from("/h/.local/share/imago")
        );
        assert!(resolve_store_root(None, None, None, None).is_err());
    }
}
