#!/usr/bin/env bash
# Sourced by demo.sh and example.sh: builds the `tagbust` binary with the same command line
# as the test suite (`--workspace`, tests included), so cargo resolves the same features and
# one build of wasmtime serves the demo, the CLI and the tests. A narrower build (`cargo run
# -p tagbust`) unifies other features for wasmtime's proc-macro dependencies and tokio, and
# compiles wasmtime a second time. Leaves the binary's path in $tagbust.
cargo build --locked --quiet --release --workspace --bins --tests
tagbust=target/release/tagbust
