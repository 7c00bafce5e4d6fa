#!/usr/bin/env python3
"""Reads while the store writes: /healthz and GET /api/stacks latency (wrk)
while 200 audit entries a second are written (100 schedule creates and 100
deletes a second, each a committed write plus its audit entry), and without
that load. Part of `make bench`; alone, for a before/after comparison:

    python3 scripts/bench/storage_load.py BINARY

Talks only to 127.0.0.1. Figures are printed, never asserted.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

WRITES_PER_SECOND = 200
SECONDS = 5 if bench.QUICK else 10


def wrk(s, path):
    out = bench.run(["wrk", "-t1", "-c8", f"-d{SECONDS}s", "--latency", "-H", f"Authorization: Bearer {s.token}",
                     f"http://127.0.0.1:{s.port}{path}"])

    def lat(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
    return lat("50"), lat("99")


class Writer(threading.Thread):
    """Creates and deletes schedules at a steady pace: two audit entries a pair."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s, self.stop, self.done, self.late = s, threading.Event(), 0, 0

    def run(self):
        interval = 2 / WRITES_PER_SECOND
        next_at = time.perf_counter()
        body = {"target_type": "stack", "target_id": "bench-load", "action": "stop", "cron": "0 3 * * *", "timezone": "UTC"}
        while not self.stop.is_set():
            status, created = self.s.req("POST", "/api/schedules", body)
            if status == 201:
                self.s.req("DELETE", f"/api/schedules/{created['id']}")
                self.done += 2
            next_at += interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            else:
                self.late += 1


def measure(s):
    """{(path, loaded): (p50, p99)} and the write rate reached."""
    figures = {}
    for loaded in (False, True):
        writer = Writer(s) if loaded else None
        if writer:
            writer.start()
            time.sleep(1)
        t0 = time.perf_counter()
        for path in ("/healthz", "/api/stacks"):
            figures[(path, loaded)] = wrk(s, path)
        if writer:
            writer.stop.set()
            writer.join()
            rate = writer.done / (time.perf_counter() - t0 + 1)
    return figures, rate


def bench_storage_load(s):
    if not shutil.which("wrk"):
        bench.record("store_load", "reads while writing", "n/a", "", note="wrk is not installed")
        return
    figures, rate = measure(s)
    for path, key in (("/healthz", "healthz"), ("/api/stacks", "stacks")):
        quiet, loaded = figures[(path, False)], figures[(path, True)]
        bench.record(f"{key}_p99_writes_ms", f"{path} p99 while {rate:.0f} audit writes/s go on (wrk, 8 connections)",
                     loaded[1], "ms", note=f"p50 {loaded[0]:.2f} ms; without the writes p99 {quiet[1]:.2f} ms, p50 {quiet[0]:.2f} ms")


def main():
    bench.BIN = os.path.abspath(sys.argv[1])
    s = bench.Server()
    try:
        s.start()
        s.ensure_token()
        figures, rate = measure(s)
        print(f"{bench.BIN}: {rate:.0f} audit writes/s reached")
        for (path, loaded), (p50, p99) in figures.items():
            print(f"  {path:12} {'with writes' if loaded else 'quiet      '}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
