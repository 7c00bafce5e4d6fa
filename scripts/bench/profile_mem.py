#!/usr/bin/env python3
"""Where DockNap's memory goes: RSS against the number of SSE clients and
against large JSON responses, with glibc malloc's defaults and with its
tunables (arena count, trim threshold), to tell live data from allocator
retention. Not part of `make bench`; run by hand:

    python3 scripts/bench/profile_mem.py

Uses the binary at DOCKNAP_BIN (default: the one inside DOCKNAP_IMAGE), a fresh
data dir per configuration, and only 127.0.0.1.
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

CONFIGS = [
    ("glibc defaults", {}),
    ("GLIBC_TUNABLES arena_max=1", {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}),
    ("arena_max=2, trim_threshold=128K", {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=131072"}),
]
STEPS = [0, 250, 500, 1000]


def sse_clients(s, n):
    req = (f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.token}\r\n\r\n").encode()
    out = []
    for _ in range(n):
        sk = socket.create_connection(("127.0.0.1", s.port))
        sk.sendall(req)
        out.append(sk)
    for sk in out:
        sk.settimeout(10)
        if not sk.recv(4096).startswith(b"HTTP/1.1 200"):
            raise RuntimeError("SSE refused")
    return out


def main():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bench.resolve_bin()
    for label, env in CONFIGS:
        s = bench.Server()
        s.env.update(env)
        try:
            s.start()
            s.ensure_token()
            time.sleep(1)
            row = [f"idle {bench.rss_mib(s.pid):.1f}"]
            socks = []
            prev = 0
            for n in STEPS[1:]:
                socks += sse_clients(s, n - prev)
                prev = n
                time.sleep(1)
                row.append(f"{n} SSE {bench.rss_mib(s.pid):.1f}")
            for sk in socks:
                sk.close()
            time.sleep(2)
            row.append(f"closed {bench.rss_mib(s.pid):.1f}")
            # 200 large responses (the schedules list, ~1 MB with 4000 schedules).
            bench.create_schedules(s, [
                {"target_type": "stack", "target_id": f"p{i}", "action": "stop", "cron": f"{i % 60} {i % 24} * * *"}
                for i in range(4000)
            ])
            time.sleep(1)
            row.append(f"4000 schedules {bench.rss_mib(s.pid):.1f}")
            for _ in range(20):
                s.req("GET", "/api/schedules", raw_body=True)
                s.req("GET", "/api/schedules/upcoming?limit=1000", raw_body=True)
            time.sleep(1)
            row.append(f"after 20 list+upcoming reads {bench.rss_mib(s.pid):.1f} (peak {bench.hwm_mib(s.pid):.1f})")
            print(f"{label:36s} " + " | ".join(row) + "  MiB", flush=True)
        finally:
            s.cleanup()


if __name__ == "__main__":
    main()
