#!/usr/bin/env bash
# Builds the example rules from source and shows what they would invalidate for a few writes.
# Extra arguments go to `tagbust eval` (e.g. `--format json`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "installing the wasm32-wasip2 target (rules are built for it)" >&2
  rustup target add wasm32-wasip2
fi

rules=(published-feeds table-patterns task-controllers)
packages=()
components=()
for r in "${rules[@]}"; do
  packages+=(-p "rule-$r")
  components+=("target/guests/wasm32-wasip2/guest/rule_${r//-/_}.wasm")
done
cargo build --locked --quiet --profile guest --target wasm32-wasip2 --target-dir target/guests "${packages[@]}"

args=(--format text)
[ "$#" -gt 0 ] && args=("$@")
exec cargo run --locked --quiet --release -p tagbust -- eval \
  --rules "${components[@]}" \
  --config task-controllers@lab=examples/config/task-controllers.json \
  --event examples/events/writes.json \
  "${args[@]}"
