#!/usr/bin/env bash
# gen-docs.sh — regenerate the shell completions (completions/{bash,zsh,fish}/) and man
# pages (man/) from the programs' clap definitions (bins/*/src/args.rs). Run it after
# changing a flag and commit the result; `cargo test -p xtask` fails while they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --locked -p xtask -- "$(pwd)"
