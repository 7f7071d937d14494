#!/usr/bin/env bash
# Builds the example rules from source and shows what they would invalidate for a few writes.
# Extra arguments go to `tagbust eval` (e.g. `--format json`).
set -euo pipefail
cd "$(dirname "$0")/.."

rules=(published-feeds table-patterns task-controllers)
# shellcheck source=scripts/build-rules.sh
source scripts/build-rules.sh
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh

args=(--format text)
[ "$#" -gt 0 ] && args=("$@")
exec "$tagbust" eval \
  --rules "${components[@]}" \
  --config task-controllers@lab=examples/config/task-controllers.json \
  --event examples/events/writes.json \
  "${args[@]}"
