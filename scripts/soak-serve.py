#!/usr/bin/env python3
"""Soak `tagbust serve`: a steady rate of events for a while, resident memory sampled every
10 s, and the slope of a least-squares line through the samples (KiB per minute). A flat
slope is what passes; a leak shows as a steady climb. Not part of CI.

    python3 scripts/soak-serve.py --minutes 10 --rate 2000 [--batch 10] -- \\
        target/release/tagbust serve --rules target/guests/wasm32-wasip2/guest/ --listen 127.0.0.1:0
"""
import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slope(samples):
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(r for _, r in samples) / n
    den = sum((t - mx) ** 2 for t, _ in samples) or 1.0
    return sum((t - mx) * (r - my) for t, r in samples) / den


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    parser.add_argument("--batch", type=int, default=10, help="events per request")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    daemon = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = daemon.stdout.readline().strip()
    url = line.removeprefix("tagbust serve: listening on ")
    stop = time.time() + args.minutes * 60
    sent = [0, 0]  # requests, failures

    def load():
        interval = args.batch / args.rate
        i = 0
        next_at = time.time()
        while time.time() < stop:
            events = [{"tenant": f"t{i % 50}", "resource": "posts", "operation": "update",
                       "ids": [str(i + k)]} for k in range(args.batch)]
            i += args.batch
            req = urllib.request.Request(url + "/v1/events", data=json.dumps(events).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except Exception:
                sent[1] += 1
            sent[0] += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.time()))

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    samples = []
    start = time.time()
    while time.time() < stop:
        samples.append(((time.time() - start) / 60, rss_kib(daemon.pid)))
        print(f"t={samples[-1][0]:5.2f} min  rss={samples[-1][1]} KiB  requests={sent[0]}  failed={sent[1]}", flush=True)
        time.sleep(10)
    worker.join()
    daemon.terminate()
    daemon.wait(timeout=30)
    # Skip the first minute: allocator and caches warm up.
    steady = [s for s in samples if s[0] >= 1.0] or samples
    print(f"samples={len(samples)}  rss first={samples[0][1]} last={samples[-1][1]} KiB  "
          f"slope after warm-up={slope(steady):.1f} KiB/min  requests={sent[0]} failed={sent[1]}")


if __name__ == "__main__":
    sys.exit(main())
