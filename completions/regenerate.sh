#!/usr/bin/env bash
# Regenerates the shell completion scripts in this directory from hoopctl's
# clap definition (cli/src/cli.rs). `cargo test -p hoopctl --test completions`
# fails when these files are stale; run this script, then commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p hoopctl
gen() { cargo run --quiet -p hoopctl -- completions "$1" > "completions/$2"; }
gen bash hoopctl.bash
gen zsh _hoopctl
gen fish hoopctl.fish
gen powershell _hoopctl.ps1
echo "regenerated: completions/{hoopctl.bash,_hoopctl,hoopctl.fish,_hoopctl.ps1}"
