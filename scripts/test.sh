#!/usr/bin/env bash
# Runs the whole test suite: unit tests, example rules built from source for wasm32-wasip2,
# the limits checklist with hostile guests, and the CLI end to end.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "installing the wasm32-wasip2 target (rules are built for it)" >&2
  rustup target add wasm32-wasip2
fi

# One optimised build serves the tests, the CLI and the benchmarks: wasmtime is compiled once.
exec cargo test --locked --release --workspace "$@"
