//! The tracing subscriber every bin installs: diagnostics on stderr, never stdout.

use tracing_subscriber::filter::LevelFilter;

/// Install a stderr logger at `level` (`warn`, `debug`, or any tracing filter).
pub fn init(level: &str) {
    // A plain level (the default `warn` of every start) needs no EnvFilter: a global
    // maximum level filters the same, without parsing directives at each start.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Escape codes only for a person at a terminal: not in Slurm's .err files or logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second init (tests calling main twice) is harmless; ignore it.
    let _ = match level.parse::<LevelFilter>() {
        Ok(max) => builder.with_max_level(max).try_init(),
        Err(_) => {
            let filter = tracing_subscriber::EnvFilter::try_new(level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
            builder.with_env_filter(filter).try_init()
        }
    };
}
