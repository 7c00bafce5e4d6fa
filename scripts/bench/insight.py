#!/usr/bin/env python3
"""Log followers and stats viewers at 200 containers: 20 clients following
logs (five talkers printing ten lines a second each) and 5 viewers asking a
stack's figures every 3 s, for 30 s. Prints DockNap's RSS and CPU against
the same 30 s with nobody watching, and the lines delivered. Part of
`make bench`; alone: python3 scripts/bench/insight.py BINARY.
Loopback and the local engine only; bounded in count and time; figures
printed, never asserted.
"""

import concurrent.futures
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

FOLLOWERS, VIEWERS, TALKERS = 20, 5, 5
SECONDS = 10 if bench.QUICK else 30


def start_talkers():
    script = "trap 'exit 0' TERM; i=0; while :; do echo line $i of a talker that talks ten times a second; i=$((i+1)); sleep 0.1; done"

    def one(i):
        bench.run(["docker", "run", "-d", "--network", "none", "--label", bench.BENCH_LABEL,
                   "--log-opt", "max-size=5m", "--name", f"docknap-talker-{bench.RUN_ID}-{i}",
                   bench.TEST_IMAGE, "sh", "-c", script])
    with concurrent.futures.ThreadPoolExecutor(TALKERS) as ex:
        list(ex.map(one, range(TALKERS)))
    return [f"docknap-talker-{bench.RUN_ID}-{i}" for i in range(TALKERS)]


def follow(port, token, name, stop, counts, idx):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(f"GET /api/containers/{name}/logs?follow=true&tail=0 HTTP/1.1\r\nHost: bench\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n".encode())
        c.settimeout(0.5)
        while not stop.is_set():
            try:
                data = c.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            counts[idx] += data.count(b"event: line")


def view_stats(s, stack, stop, lat):
    while not stop.is_set():
        t = time.perf_counter()
        st, _ = s.req("GET", f"/api/stacks/{stack}/stats")
        if st == 200:
            lat.append((time.perf_counter() - t) * 1000)
        stop.wait(3)


def bench_insight():
    s = bench.Server()
    s.env.update({"DOCKNAP_MAX_STREAMS_PER_USER": "100"})
    try:
        bench.log(f"insight: {bench.N_CONTAINERS} containers + {TALKERS} talkers")
        bench.create_containers(bench.N_CONTAINERS, bench.N_STACKS)
        talkers = start_talkers()
        s.start()
        s.ensure_token()
        bench.wait_for(lambda: len(s.req("GET", "/api/containers")[1]) >= bench.N_CONTAINERS + TALKERS, 60, "all containers listed")
        time.sleep(2)
        rss0, cpu0 = bench.rss_mib(s.pid), bench.cpu_seconds(s.pid)
        time.sleep(SECONDS)
        idle_cpu, idle_rss = bench.cpu_seconds(s.pid) - cpu0, bench.rss_mib(s.pid)

        stop = threading.Event()
        counts = [0] * FOLLOWERS
        lat = []
        threads = [threading.Thread(target=follow, args=(s.port, s.token, talkers[i % TALKERS], stop, counts, i)) for i in range(FOLLOWERS)]
        threads += [threading.Thread(target=view_stats, args=(s, f"bench{i}", stop, lat)) for i in range(VIEWERS)]
        bench.reset_hwm(s.pid)
        for t in threads:
            t.start()
        time.sleep(2)
        cpu1 = bench.cpu_seconds(s.pid)
        time.sleep(SECONDS)
        busy_cpu, busy_rss, peak = bench.cpu_seconds(s.pid) - cpu1, bench.rss_mib(s.pid), bench.hwm_mib(s.pid)
        stop.set()
        for t in threads:
            t.join(10)
        lines = sum(counts)
        bench.record("insight_rss_mib", f"{FOLLOWERS} log followers + {VIEWERS} stats viewers at {bench.N_CONTAINERS} containers: RSS",
                     busy_rss, "MiB", note=f"peak {peak:.1f} MiB; nobody watching {idle_rss:.1f} MiB (at start {rss0:.1f})")
        bench.record("insight_cpu_pct", f"Same: DockNap CPU over {SECONDS} s",
                     busy_cpu / SECONDS * 100, "% of a core",
                     note=f"nobody watching {idle_cpu / SECONDS * 100:.2f} %; {lines} lines delivered "
                          f"({lines / SECONDS:.0f}/s); stack stats p50 {bench.pct(lat, 50):.1f} ms over {len(lat)} reads")
    finally:
        s.cleanup()
        bench.bench_containers_cleanup()


if __name__ == "__main__":
    bench.BIN = os.path.abspath(sys.argv[1])
    bench_insight()
