#!/usr/bin/env python3
"""`GET /metrics` render time at METRICS_CONTAINERS (default 200) containers
in 40 compose-labelled projects, METRICS_SCHEDULES (default 1,000) schedules
and 50 windows: the server's CPU and the wall time per scrape, and the
body's size. Figures for docs/PERFORMANCE.md, printed, never asserted:

    python3 scripts/bench/metrics_render.py [BINARY]     (default: $DOCKNAP_BIN)

Creates busybox containers labelled docknap.bench=metrics (`docker run -d
--network none`) and removes them by that label at the end. Talks only to
127.0.0.1 and the local engine.
"""

import concurrent.futures
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402
from wire import cpu_ns  # noqa: E402

LABEL = "docknap.bench=metrics"
SCRAPES = int(os.environ.get("METRICS_SCRAPES", "300"))


def create_containers(n, projects=40):
    def one(i):
        project, service = f"metricsbench{i % projects}", f"svc{i // projects}"
        labels = ["--label", LABEL, "--label", f"com.docker.compose.project={project}",
                  "--label", f"com.docker.compose.service={service}", "--label", "com.docker.compose.oneoff=False"]
        bench.run(["docker", "run", "-d", "--network", "none", "--log-driver", "none", *labels,
                   "--name", f"{project}-{service}-1", bench.TEST_IMAGE, "sleep", "3600"])
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(one, range(n)))


def main():
    bench.BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else bench.BIN)
    if not bench.BIN or not os.path.exists(bench.BIN):
        sys.exit(__doc__)
    n = int(os.environ.get("METRICS_CONTAINERS", "200"))
    n_sched = int(os.environ.get("METRICS_SCHEDULES", "1000"))
    bench.BENCH_LABEL = LABEL
    s = bench.Server()
    try:
        t = time.perf_counter()
        create_containers(n)
        print(f"{n} containers created in {time.perf_counter() - t:.1f} s")
        s.start()
        s.ensure_token()
        bench.wait_for(lambda: sum(1 for c in s.req("GET", "/api/containers")[1] if c["labels"].get("docknap.bench") == "metrics") >= n,
                       60, f"{n} containers in the view")
        actions = ["stop", "start", "restart"]
        items = [{"target_type": "stack", "target_id": f"metricsbench{i % 40}", "action": actions[i % 3],
                  "cron": f"{i % 60} {i % 24} * * *", "timezone": "UTC"} for i in range(n_sched)]
        t = time.perf_counter()
        bench.create_schedules(s, items)
        print(f"{n_sched} schedules created in {time.perf_counter() - t:.1f} s")
        for i in range(50):
            st, body = s.req("POST", "/api/windows", {"target_type": "container", "target_id": f"metricsbench{i % 40}-svc{i // 40}-1",
                                                      "spec": "Mon-Fri 07:00-19:00", "enforce": "down_only"})
            assert st == 201, (st, body)
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        headers = {"Authorization": f"Bearer {s.token}"}

        def scrape():
            conn.request("GET", "/metrics", headers=headers)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, r.status
            return body
        body = scrape()
        walls = []
        before = cpu_ns(s.pid)
        for _ in range(SCRAPES):
            t = time.perf_counter()
            scrape()
            walls.append(time.perf_counter() - t)
        cpu_us = (cpu_ns(s.pid) - before) / SCRAPES / 1000
        walls.sort()
        series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        print(f"binary {bench.BIN} ({os.path.getsize(bench.BIN)} bytes); load average (1 min) {os.getloadavg()[0]:.2f}")
        print(f"  GET /metrics x{SCRAPES}: {len(body)} B, {series} samples; server CPU {cpu_us:.0f} µs/scrape; "
              f"wall p50 {bench.pct(walls, 50) * 1e3:.2f} ms, p99 {bench.pct(walls, 99) * 1e3:.2f} ms")
    finally:
        s.cleanup()
        bench.bench_containers_cleanup()
        left = bench.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"], check=False).split()
        print(f"bench containers removed ({len(left)} left)")


if __name__ == "__main__":
    main()
