#!/usr/bin/env bash
# Runs the whole test suite: unit tests, example rules built from source for wasm32-wasip2,
# the limits checklist with hostile guests, and the CLI end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "installing the wasm32-wasip2 target (rules are built for it)" >&2
  rustup target add wasm32-wasip2
fi

# The Python example rule is built from source too (installs the pinned componentize-py with
# pip when missing; does nothing when its inputs are unchanged): tests/build.rs only picks it up.
scripts/build-python-rules.sh

# One optimised build serves the tests, the CLI and the benchmarks: wasmtime is compiled once
# (the benchmarks, package tagbust-bench, rebuild only tokio and its dependents: see README).
exec cargo test --locked --release --workspace "$@"
