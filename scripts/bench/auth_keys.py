#!/usr/bin/env python3
"""Request overhead of API-key authentication against a login token: the
server's CPU and the wall time per request of `GET /api/auth/me` (a cheap
route, so authentication is most of its cost) with each credential, in
interleaved rounds on one keep-alive connection each. Also an unknown
`dnp_` key (401: a miss reads the database) and no credential at all (401).
Figures for docs/PERFORMANCE.md, printed, never asserted:

    python3 scripts/bench/auth_keys.py [BINARY]     (default: $DOCKNAP_BIN)

No engine needed (DOCKER_HOST points nowhere); talks only to 127.0.0.1.
"""

import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402
from wire import cpu_ns  # noqa: E402

ROUNDS = int(os.environ.get("AUTH_ROUNDS", "10"))
PER_ROUND = int(os.environ.get("AUTH_PER_ROUND", "500"))
PATH = "/api/auth/me"


def timed(s, conn, token, n):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    walls = []
    before = cpu_ns(s.pid)
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", PATH, headers=headers)
        r = conn.getresponse()
        r.read()
        walls.append(time.perf_counter() - t)
    return r.status, (cpu_ns(s.pid) - before) / n / 1000, walls


def main():
    bench.BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else bench.BIN)
    if not bench.BIN or not os.path.exists(bench.BIN):
        sys.exit(__doc__)
    s = bench.Server()
    s.env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    try:
        s.start()
        login = s.ensure_token()
        status, made = s.req("POST", "/api/tokens", {"name": "bench", "role": "viewer"})
        assert status == 201, (status, made)
        creds = {
            "login token (JWT)": login,
            "API key (dnp_)": made["token"],
            "unknown dnp_ key (401)": "dnp_" + "x" * 43,
            "no credential (401)": None,
        }
        conns = {k: http.client.HTTPConnection("127.0.0.1", s.port, timeout=30) for k in creds}
        cpu = {k: [] for k in creds}
        walls = {k: [] for k in creds}
        statuses = {}
        for k, tok in creds.items():  # warm: the first use fills the caches
            timed(s, conns[k], tok, 20)
        for _ in range(ROUNDS):
            for k, tok in creds.items():
                st, us, w = timed(s, conns[k], tok, PER_ROUND)
                statuses[k] = st
                cpu[k].append(us)
                walls[k].extend(w)
        print(f"binary {bench.BIN} ({os.path.getsize(bench.BIN)} bytes); GET {PATH}, "
              f"{ROUNDS} interleaved rounds x {PER_ROUND} requests per credential; "
              f"load average (1 min) {os.getloadavg()[0]:.2f}")
        for k in creds:
            w = sorted(walls[k])
            med_cpu = sorted(cpu[k])[len(cpu[k]) // 2]
            print(f"  {k:<26} {statuses[k]}  server CPU median {med_cpu:7.1f} µs/req "
                  f"(rounds {min(cpu[k]):.1f}–{max(cpu[k]):.1f})  wall p50 {bench.pct(w, 50) * 1e3:6.3f} ms "
                  f"p99 {bench.pct(w, 99) * 1e3:6.3f} ms")
        # last_used_at is written in batches: none per request.
        time.sleep(6)
        status, keys = s.req("GET", "/api/tokens")
        print(f"  key's last_used_at after the run: {keys[0]['last_used_at']}")
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
