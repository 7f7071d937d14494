#!/usr/bin/env bash
# The published-feeds rule in tagbust against the same rule as an Extism plugin (issue 14,
# target 8), per event at batch 256, interleaved: each round runs tagbust's `evaluate` bench in
# its peer mode (which writes the events and tagbust's answers), then the Extism host, which
# refuses to time anything unless the plugin's answers equal tagbust's.
#
# Not in CI: the `extism` crate compiles its own wasmtime (many minutes cold), in its own
# workspace (tests/peers/extism) and target dir (target/peers/extism).
#
# Usage: scripts/bench-extism.sh            ROUNDS=5 SAMPLES=31 by default
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
samples=${SAMPLES:-31}
root=$PWD
plugin=$root/target/peers/extism/wasm32-unknown-unknown/plugin/extism_peer_plugin.wasm
host=$root/target/peers/extism/release/extism-peer-host

echo "building the Extism host and plugin (tests/peers/extism)..." >&2
(
  cd tests/peers/extism
  nice -n 19 cargo build --locked --release -p extism-peer-host
  nice -n 19 cargo build --locked --profile plugin --target wasm32-unknown-unknown -p extism-peer-plugin
) >&2
echo "building tagbust's evaluate bench..." >&2
bench=$(nice -n 19 cargo bench --locked -p tagbust-bench --bench evaluate --no-run \
  --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "evaluate" and m.get("executable"):
        print(m["executable"])')
[ -x "$bench" ] || { echo "bench-extism: no evaluate bench binary" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

echo "published-feeds, batch 256, $rounds rounds x $samples samples, medians per event"
printf '%-6s %14s %16s %16s\n' round tagbust extism-reused extism-fresh
for r in $(seq 1 "$rounds"); do
  TAGBUST_BENCH_PEER=$work/peer.json TAGBUST_BENCH_SAMPLES=$samples "$bench" >"$work/t.out"
  "$host" "$plugin" "$work/peer.json" "$samples" >"$work/e.out"
  t=$(value tagbust-ns-per-event "$work/t.out")
  er=$(value extism-reused-ns-per-event "$work/e.out")
  ef=$(value extism-fresh-ns-per-event "$work/e.out")
  [ -n "$t" ] && [ -n "$er" ] && [ -n "$ef" ] || { cat "$work/t.out" "$work/e.out" >&2; exit 1; }
  printf '%-6s %11s ns %13s ns %13s ns\n' "$r" "$t" "$er" "$ef"
  echo "$t $er $ef" >>"$work/all"
done
head -n1 "$work/e.out"
python3 - "$work/all" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
t, er, ef = (statistics.median(c) for c in zip(*rows))
print(f"median  tagbust {t:.0f} ns/event   extism reused {er:.0f} ns/event   extism fresh {ef:.0f} ns/event")
print(f"ratio   extism reused / tagbust {er / t:.2f}x   extism fresh / tagbust {ef / t:.2f}x")
EOF
