#!/usr/bin/env bash
# HTTP intake of `tagbust serve` on the in-memory backend, measured with wrk (installed from
# Debian's packages when missing): events per second and latency percentiles for 1 and 100
# events per request at 1, 2, 4 and 8 connections, 10 s each. Prints wrk's summary lines;
# the figure to quote is the highest events/s whose p99 stays at or under 5 ms.
# Not part of CI (it measures, it does not check).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
rules=(published-feeds)
# shellcheck source=scripts/build-rules.sh
source scripts/build-rules.sh
# shellcheck source=scripts/build-cli.sh
source scripts/build-cli.sh
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$tagbust" serve --rules "${components[@]}" --listen 127.0.0.1:0 > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/out" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^tagbust serve: listening on //p' "$work/out")
one='{"tenant":"acme","resource":"posts","operation":"update","ids":["7"],"changes":[{"field":"status","old":"draft","new":"published"}]}'
hundred="[$(for i in $(seq 1 100); do printf '%s{"tenant":"acme","resource":"posts","operation":"update","ids":["%d"]}' "$([ "$i" -gt 1 ] && echo ,)" "$i"; done)]"
for batch in 1 100; do
  body=$one
  [ "$batch" = 100 ] && body=$hundred
  cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
  for conns in 1 2 4 8; do
    printf '\n== %s event(s) per request, %s connection(s)\n' "$batch" "$conns"
    wrk -t "$(( conns < 2 ? conns : 2 ))" -c "$conns" -d 10s --latency -s "$work/post.lua" "$url/v1/events" \
      | grep -E "Requests/sec|Latency  |  50%|  99%"
    echo "events/s = requests/s x $batch"
  done
done
