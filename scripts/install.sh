#!/usr/bin/env bash
# install.sh [PREFIX] — install imago's programs, shell completions and man pages under
# PREFIX (default ~/.local): PREFIX/bin/, PREFIX/share/bash-completion/completions/NAME,
# PREFIX/share/zsh/site-functions/_NAME, PREFIX/share/fish/vendor_completions.d/NAME.fish
# and PREFIX/share/man/man1/. Builds the release programs first when one is missing.
# Needs no root for a PREFIX you own; run it again to update.
set -euo pipefail
cd "$(dirname "$0")/.."
PROGRAMS=(ibuild irun ictr ipull ipush ilogin ilogout itag iimage)
PREFIX="${1:-$HOME/.local}"
case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac

target="${CARGO_TARGET_DIR:-target}/release"
for p in "${PROGRAMS[@]}"; do
  if [ ! -x "$target/$p" ]; then
    echo "install.sh: building the release programs (cargo build --release)" >&2
    cargo build --release --locked $(printf -- '-p %s ' "${PROGRAMS[@]}")
    break
  fi
done

bin="$PREFIX/bin"
bash_dir="$PREFIX/share/bash-completion/completions"
zsh_dir="$PREFIX/share/zsh/site-functions"
fish_dir="$PREFIX/share/fish/vendor_completions.d"
man_dir="$PREFIX/share/man/man1"
mkdir -p "$bin" "$bash_dir" "$zsh_dir" "$fish_dir" "$man_dir"
for p in "${PROGRAMS[@]}"; do
  install -m 0755 "$target/$p" "$bin/$p"
  install -m 0644 "completions/bash/$p" "$bash_dir/$p"
  install -m 0644 "completions/zsh/_$p" "$zsh_dir/_$p"
  install -m 0644 "completions/fish/$p.fish" "$fish_dir/$p.fish"
done
install -m 0644 man/*.1 "$man_dir/"

echo "installed ${PROGRAMS[*]} into $bin, completions under $PREFIX/share and man pages into $man_dir" >&2
case ":$PATH:" in *":$bin:"*) ;; *) echo "note: $bin is not on your PATH" >&2 ;; esac
