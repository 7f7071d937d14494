#!/usr/bin/env bash
# The main job on the embedded default: builds the example rules from source, then runs
# `tagbust demo` (a scripted scenario against the in-memory cache). Extra arguments go to
# `tagbust demo` (e.g. `--json-stats`).
set -euo pipefail
cd "$(dirname "$0")/.."

rules=(published-feeds table-patterns task-controllers user-sessions)
# shellcheck source=scripts/build-rules.sh
source scripts/build-rules.sh
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
exec "$tagbust" demo --rules "${components[@]}" "$@"
