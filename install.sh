#!/usr/bin/env bash
# Builds and installs hoopctl, hoop-broker and hoopctl's shell completions.
#
#   ./install.sh                 # into ~/.local (binaries in ~/.local/bin)
#   PREFIX=/usr/local ./install.sh
#   HOOP_INSTALL_FROM=target/debug ./install.sh   # install binaries already built
#   HOOP_NO_MODIFY_PATH=1 ./install.sh            # leave shell profiles alone
#
# Idempotent: running it again rebuilds and overwrites the same files. On
# Debian/Ubuntu it installs the PostgreSQL server packages `hoop-broker dev`
# needs for its demo database when they are missing. When PREFIX/bin is not
# on PATH it adds it to ~/.profile and ~/.bashrc (once, marked), so new
# shells find hoopctl; this shell can run $PREFIX/bin/hoop-broker directly.
set -euo pipefail
cd "$(dirname "$0")"
PREFIX="${PREFIX:-$HOME/.local}"

say() { printf 'install.sh: %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

if ! have cargo; then
  say "cargo is missing: install Rust (https://rustup.rs), then run ./install.sh again"
  exit 1
fi

pg_server_present() {
  have initdb && have postgres && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
if ! pg_server_present || ! have psql; then
  if [ -r /etc/debian_version ] && have apt-get; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    say "installing PostgreSQL (server and psql) for the demo database of 'hoop-broker dev'"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
  else
    say "note: 'hoop-broker dev' needs PostgreSQL server binaries (initdb, postgres) and psql;"
    say "      install them with your package manager (e.g. 'brew install postgresql', 'dnf install postgresql-server')"
  fi
fi

# The SQL guardrails use PostgreSQL's own parser (pg_query), built with libclang.
libclang_present() {
  if have dpkg; then dpkg -s libclang-dev >/dev/null 2>&1; return; fi
  compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || compgen -G "/usr/lib*/libclang.so*" >/dev/null
}
if ! libclang_present; then
  if [ -r /etc/debian_version ] && have apt-get; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    say "installing libclang-dev (needed to build PostgreSQL's SQL parser into hoop-broker)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null
  else
    say "note: building hoop-broker needs libclang (e.g. 'dnf install clang-devel', 'brew install llvm')"
  fi
fi

if [ -n "${HOOP_INSTALL_FROM:-}" ]; then
  BIN_FROM="$HOOP_INSTALL_FROM"
  say "installing the binaries already built in $BIN_FROM"
else
  say "building release binaries (this takes a few minutes the first time)"
  cargo build --release --locked -p hoopctl -p hoop-broker --quiet
  BIN_FROM=target/release
fi

install -d "$PREFIX/bin"
install -m 0755 "$BIN_FROM/hoopctl" "$BIN_FROM/hoop-broker" "$PREFIX/bin/"
say "installed $PREFIX/bin/hoopctl and $PREFIX/bin/hoop-broker"

install -d "$PREFIX/share/bash-completion/completions" \
           "$PREFIX/share/zsh/site-functions" \
           "$PREFIX/share/fish/vendor_completions.d"
install -m 0644 completions/hoopctl.bash "$PREFIX/share/bash-completion/completions/hoopctl"
install -m 0644 completions/_hoopctl "$PREFIX/share/zsh/site-functions/_hoopctl"
install -m 0644 completions/hoopctl.fish "$PREFIX/share/fish/vendor_completions.d/hoopctl.fish"
say "installed shell completions under $PREFIX/share (bash, zsh, fish)"
say "  zsh: add  fpath=($PREFIX/share/zsh/site-functions \$fpath)  to ~/.zshrc if it is not there"
say "  PowerShell: hoopctl completions powershell | Out-String | Invoke-Expression"

next="hoop-broker dev"
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *)
    next="$PREFIX/bin/hoop-broker dev"
    line="export PATH=\"$PREFIX/bin:\$PATH\"  # added by hoop's install.sh"
    if [ "${HOOP_NO_MODIFY_PATH:-0}" = 1 ]; then
      say "note: $PREFIX/bin is not on your PATH; add  $line  to your shell profile"
    else
      for profile in "$HOME/.profile" "$HOME/.bashrc"; do
        grep -qsF "# added by hoop's install.sh" "$profile" || printf '\n%s\n' "$line" >>"$profile"
      done
      say "added $PREFIX/bin to PATH in ~/.profile and ~/.bashrc: new shells find hoopctl"
      say "  (this shell: run  export PATH=\"$PREFIX/bin:\$PATH\"  or open a new terminal)"
    fi
    ;;
esac
say "done. Next: $next"
