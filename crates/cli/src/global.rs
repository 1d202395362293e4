//! The flags every program takes, where the store lives, and which shared read-only
//! stores are read after it.

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
    /// A shared read-only store whose images are used in place, after your own store's
    /// (repeatable; in front of $IMAGO_ADDITIONAL_STORES, else the config key
    /// additional_stores)
    #[arg(long = "additional-store", global = true, value_name = "DIR")]
    pub additional_store: Vec<PathBuf>,
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
    /// `--additional-store` flags are put in front of `$IMAGO_ADDITIONAL_STORES` (else
    /// of the config key's list) in this process's environment, where the store and the
    /// processes it starts (a detached container's monitor) read them.
    pub fn store_root(&self) -> Result<PathBuf, NoStoreRoot> {
        self.export_additional_stores();
        resolve_store_root(
            self.root.clone(),
            std::env::var_os("IMAGO_ROOT").map(PathBuf::from),
            std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )
    }
}

impl GlobalOpts {
    fn export_additional_stores(&self) {
        if self.additional_store.is_empty() {
            return;
        }
        let env = imago_store::shared::ENV;
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut list: Vec<String> = self
            .additional_store
            .iter()
            .map(|p| cwd.join(p).to_string_lossy().into_owned())
            .collect();
        let rest = match std::env::var(env) {
            Ok(v) => Some(v),
            // An unreadable config file adds nothing: the flags are what was asked for.
            Err(_) => crate::config::value(imago_store::shared::CONFIG_KEY)
                .ok()
                .flatten()
                .map(|(v, _)| v),
        };
        list.extend(rest.filter(|r| !r.is_empty()));
        // Single-threaded here: every program finds its store before starting threads.
        std::env::set_var(env, list.join(":"));
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
