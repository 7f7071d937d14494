#!/usr/bin/env bash
# The main job on the embedded default: builds the example rules from source, then runs
# `tagbust demo` (a scripted scenario against the in-memory cache). Extra arguments go to
# `tagbust demo` (e.g. `--json-stats`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "installing the wasm32-wasip2 target (rules are built for it)" >&2
  rustup target add wasm32-wasip2
fi

rules=(published-feeds table-patterns task-controllers user-sessions)
packages=()
components=()
for r in "${rules[@]}"; do
  packages+=(-p "rule-$r")
  components+=("target/guests/wasm32-wasip2/guest/rule_${r//-/_}.wasm")
done
cargo build --locked --quiet --profile guest --target wasm32-wasip2 --target-dir target/guests "${packages[@]}"
exec cargo run --locked --quiet --release -p tagbust -- demo --rules "${components[@]}" "$@"
