#!/usr/bin/env bash
# Sourced by demo.sh and example.sh: makes sure the wasm32-wasip2 target is installed and
# builds the example rules named in $rules, leaving their paths in $components.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "installing the wasm32-wasip2 target (rules are built for it)" >&2
  rustup target add wasm32-wasip2
fi
packages=()
components=()
for r in "${rules[@]}"; do
  packages+=(-p "rule-$r")
  components+=("target/guests/wasm32-wasip2/guest/rule_${r//-/_}.wasm")
done
cargo build --locked --quiet --profile guest --target wasm32-wasip2 --target-dir target/guests "${packages[@]}"
