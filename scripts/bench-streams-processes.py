#!/usr/bin/env python3
"""Redis Streams intake across processes: N entries drained by one `tagbust serve` process,
then by two processes of one consumer group, interleaved over several rounds on a private
redis-server (port 6410), each round on a fresh stream. Prints events/s per round, the
medians and the ratio (does a second process add throughput?). In-memory backend; the
published-feeds rule. Not part of CI.

    python3 scripts/bench-streams-processes.py [--entries 200000] [--rounds 3]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAGBUST = os.path.join(ROOT, "target/release/tagbust")
RULE = os.path.join(ROOT, "target/guests/wasm32-wasip2/guest/rule_published_feeds.wasm")
PORT = 6410


def cli(*args):
    return subprocess.run(["redis-cli", "-p", str(PORT), *args], capture_output=True,
                          text=True, check=True).stdout.strip()


def produce(stream, n):
    subprocess.run(["redis-cli", "-p", str(PORT), "--pipe"], input=redis_protocol(stream, n),
                   capture_output=True, check=True)


def redis_protocol(stream, n):
    out = bytearray()
    for i in range(n):
        event = ('{"tenant":"acme","resource":"posts","operation":"update","ids":["%d"]}' % i)
        parts = [b"XADD", stream.encode(), b"*", b"event", event.encode()]
        out += b"*%d\r\n" % len(parts)
        for p in parts:
            out += b"$%d\r\n%s\r\n" % (len(p), p)
    return bytes(out)


def drained(stream, n):
    info = cli("XINFO", "GROUPS", stream).split("\n")
    fields = dict(zip(info[0::2], info[1::2]))
    return int(fields.get("entries-read", 0) or 0) >= n and int(fields.get("pending", 1)) == 0


def run_round(work, stream, n, processes):
    produce(stream, n)
    config = os.path.join(work, f"{stream}.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:0"\n[[source.redis_stream]]\nurl = "redis://127.0.0.1:{PORT}/0"\n'
                f'stream = "{stream}"\ngroup = "g"\nblock_ms = 100\n')
    start = time.time()
    daemons = [subprocess.Popen([TAGBUST, "serve", "--rules", RULE, "--config", config],
                                env={**os.environ, "TAGBUST_CONSUMER": f"c{i}", "TAGBUST_LOG": "error"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for i in range(processes)]
    try:
        while True:
            try:
                if drained(stream, n):
                    break
            except (subprocess.CalledProcessError, ValueError):
                pass
            time.sleep(0.02)
        return n / (time.time() - start)
    finally:
        for d in daemons:
            d.terminate()
        for d in daemons:
            d.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tagbust-streams-bench-")
    server = subprocess.Popen(["redis-server", "--port", str(PORT), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", work],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if cli("PING") == "PONG":
                    break
            except subprocess.CalledProcessError:
                time.sleep(0.05)
        results = {1: [], 2: []}
        for r in range(args.rounds):
            for processes in (1, 2):
                rate = run_round(work, f"s{r}p{processes}", args.entries, processes)
                results[processes].append(rate)
                print(f"round {r}: {processes} process(es) {rate:,.0f} events/s", flush=True)
                cli("FLUSHALL")
        one, two = statistics.median(results[1]), statistics.median(results[2])
        print(f"median: 1 process {one:,.0f} events/s, 2 processes {two:,.0f} events/s, "
              f"ratio {two / one:.2f} (process start-up included)")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
