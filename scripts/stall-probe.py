#!/usr/bin/env python3
"""Is this machine's CPU taken away from a process that never yields?

Spins on one core for a few seconds reading the monotonic clock and reports every gap
longer than 1 ms between two readings: time the process did not run. Run it as the
highest-priority real-time task with the kernel's real-time throttling off, so that no other
process and no throttling can be the cause; what remains is the kernel's interrupts and the
hypervisor. Redis's SLOWLOG measures wall time, so a command running across such a gap is
logged as slow whatever it cost (issue 14, target 4).

Usage (as root; restores the throttling afterwards):
    scripts/stall-probe.py [SECONDS] [CORE]      # default 20 s on core 1
"""
import os
import subprocess
import sys
import time

THROTTLE = "/proc/sys/kernel/sched_rt_runtime_us"


def spin(seconds):
    gaps = []
    end = time.perf_counter() + seconds
    last = time.perf_counter()
    while last < end:
        now = time.perf_counter()
        if now - last > 0.001:
            gaps.append(now - last)
        last = now
    return gaps


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--spin":
        gaps = spin(float(sys.argv[2]))
        longest = max(gaps, default=0) * 1000
        print(f"gaps over 1 ms: {len(gaps)}; over 5 ms: {sum(g > 0.005 for g in gaps)}; "
              f"longest {longest:.2f} ms")
        return
    seconds = sys.argv[1] if len(sys.argv) > 1 else "20"
    core = sys.argv[2] if len(sys.argv) > 2 else "1"
    with open(THROTTLE) as f:
        saved = f.read().strip()
    try:
        with open(THROTTLE, "w") as f:
            f.write("-1")
        print(f"{seconds} s on core {core}, SCHED_FIFO 99, real-time throttling off:")
        subprocess.run(["chrt", "-f", "99", "taskset", "-c", core, sys.executable,
                        os.path.abspath(__file__), "--spin", seconds], check=True)
    finally:
        with open(THROTTLE, "w") as f:
            f.write(saved)


if __name__ == "__main__":
    main()
