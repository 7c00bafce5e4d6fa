#!/usr/bin/env python3
"""10,000 slow clients: connections that send half a request head and then
nothing, opened as fast as they connect; meanwhile /healthz is asked on new
connections. Prints the server's RSS and the /healthz latency. Part of
`make bench`; alone: python3 scripts/bench/slow_clients.py BINARY.
Loopback only; bounded in count and time; figures printed, never asserted.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

N_SLOW = 2_000 if bench.QUICK else 10_000
N_PROBES = 200


def healthz_ms(port):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        while c.recv(4096):
            pass
    return (time.perf_counter() - t) * 1000


def bench_slow_clients(s=None):
    own = s is None
    if own:
        s = bench.Server()
        s.env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
        s.start()
    try:
        rss_before = bench.rss_mib(s.pid)
        slow, refused = [], 0
        deadline = time.monotonic() + 60
        for i in range(N_SLOW):
            if time.monotonic() > deadline:
                break
            try:
                c = socket.create_connection(("127.0.0.1", s.port), timeout=2)
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
                slow.append(c)
            except OSError:
                refused += 1
        lat = []
        for _ in range(N_PROBES):
            try:
                lat.append(healthz_ms(s.port))
            except OSError:
                lat.append(float("inf"))
        rss = bench.rss_mib(s.pid)
        peak = bench.hwm_mib(s.pid)
        for c in slow:
            c.close()
        ok = [x for x in lat if x != float("inf")]
        bench.record("slow10k_rss_mib", f"RSS with {len(slow)} slow clients opened (half a request head each)", rss, "MiB",
                     aim="< 64 MiB", note=f"peak {peak:.1f} MiB; before {rss_before:.1f} MiB; {refused} connects failed")
        bench.record("slow10k_healthz_p99_ms", f"/healthz on a new connection during that flood: p99 of {N_PROBES}",
                     bench.pct(ok, 99) if ok else float("nan"), "ms", aim="< 50 ms",
                     note=f"p50 {bench.pct(ok, 50):.2f} ms; {len(lat) - len(ok)} failed" if ok else "all failed")
    finally:
        if own:
            s.cleanup()


if __name__ == "__main__":
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bench.BIN = os.path.abspath(sys.argv[1])
    bench_slow_clients()
