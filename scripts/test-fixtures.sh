#!/usr/bin/env bash
# Runs every example rule's fixtures with `tagbust test` (the built binary and components;
# run scripts/test.sh and scripts/build-python-rules.sh first): each Rust rule on its own
# rules-examples/<name>/fixtures, the Python twin of task-controllers on its own fixtures
# and on the Rust rule's. Extra arguments go to each `tagbust test` (e.g. --format junit).
# Exits non-zero if any case fails or any fixture is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/tagbust
guests=target/guests/wasm32-wasip2/guest
[[ -x $bin ]] || { echo "error: $bin is missing: run scripts/test.sh first" >&2; exit 1; }
status=0
run() { "$bin" --cache-dir target/tagbust-artifacts test "$@" || status=1; }
for dir in rules-examples/*/; do
  name=$(basename "$dir")
  run --rules "$guests/rule_${name//-/_}.wasm" "$dir/fixtures" "${@}"
done
for dir in rules-examples-py/*/; do
  name=$(basename "$dir")
  wasm=target/guests/python/${name//-/_}.wasm
  [[ -f $wasm ]] || { echo "error: $wasm is missing: run scripts/build-python-rules.sh" >&2; exit 1; }
  twin=()
  [[ -d rules-examples/$name/fixtures ]] && twin=("rules-examples/$name/fixtures")
  run --rules "$wasm" "$dir/fixtures" "${twin[@]}" "${@}"
done
exit $status
