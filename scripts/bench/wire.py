#!/usr/bin/env python3
"""Bytes on the wire and their CPU cost: the UI's first load (index.html +
its script + its stylesheet) without and with `Accept-Encoding`, the
`GET /api/containers` and `/api/stacks` bodies at 200 containers, and the
server's CPU per request for each variant (and for a 304). Figures for
docs/PERFORMANCE.md, printed, never asserted:

    python3 scripts/bench/wire.py BINARY [BINARY...]

Creates WIRE_CONTAINERS (default 200) busybox containers labelled
docknap.bench=wire (`docker run -d --network none`) in 40 projects, with the
labels compose v2 gives its containers (a container's JSON is then about
800 bytes, as on a real host), and removes them by that label at the end.
Each binary (say, before and after a change) is measured in turn against
the same containers. Talks only to 127.0.0.1 and the local engine.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

REQUESTS = 500
LABEL = "docknap.bench=wire"
BROWSER = "gzip, deflate, br, zstd"


def create_containers(n, stacks=40):
    image = bench.run(["docker", "image", "inspect", "-f", "{{.Id}}", bench.TEST_IMAGE])

    def one(i):
        project, service = f"wirebench{i % stacks}", f"svc{i // stacks}"
        labels = {
            "docknap.bench": "wire",
            "com.docker.compose.config-hash": hashlib.sha256(f"{project}/{service}".encode()).hexdigest(),
            "com.docker.compose.container-number": "1",
            "com.docker.compose.depends_on": "",
            "com.docker.compose.image": image,
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.project": project,
            "com.docker.compose.project.config_files": f"/srv/{project}/compose.yml",
            "com.docker.compose.project.working_dir": f"/srv/{project}",
            "com.docker.compose.service": service,
            "com.docker.compose.version": "2.29.7",
        }
        args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        bench.run(["docker", "run", "-d", "--network", "none", "--log-driver", "none", *args,
                   "--name", f"{project}-{service}-1", bench.TEST_IMAGE, "sleep", "3600"])
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(one, range(n)))
    return time.perf_counter() - t


def cpu_ns(pid):
    """On-CPU time of all the server's threads, in ns (schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total


class Client:
    def __init__(self, s):
        self.s = s
        self.c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)

    def get(self, path, accept=None, inm=None, token=True):
        h = {}
        if accept:
            h["Accept-Encoding"] = accept
        if inm:
            h["If-None-Match"] = inm
        if token:
            h["Authorization"] = f"Bearer {self.s.token}"
        self.c.request("GET", path, headers=h)
        r = self.c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def first_load(c, accept):
    """Body bytes (and header bytes) of index.html, its JS and CSS."""
    st, h, index = c.get("/", accept, token=False)
    assert st == 200, st
    # The page as the browser sees it: decode only to find the links.
    plain = index if "content-encoding" not in h else None
    if plain is None:
        _, _, plain = c.get("/", None, token=False)
    links = re.findall(rb'(?:src|href)="(/assets/[^"]+\.(?:js|css))"', plain)
    total, parts = len(index), [("index.html", len(index), h.get("content-encoding", "identity"))]
    for link in links:
        st, h, body = c.get(link.decode(), accept, token=False)
        assert st == 200, (link, st)
        total += len(body)
        parts.append((link.decode().rsplit("/", 1)[1], len(body), h.get("content-encoding", "identity")))
    return total, parts


def cpu_per_request(s, c, path, accept=None, inm=None, token=True, n=REQUESTS):
    c.get(path, accept, inm, token)  # warm
    before_ns, before_ticks, t0 = cpu_ns(s.pid), bench.cpu_seconds(s.pid), time.perf_counter()
    size = 0
    for _ in range(n):
        st, h, body = c.get(path, accept, inm, token)
        size = len(body)
    wall = time.perf_counter() - t0
    used_ns, used_ticks = cpu_ns(s.pid) - before_ns, bench.cpu_seconds(s.pid) - before_ticks
    return {
        "status": st, "bytes": size, "encoding": h.get("content-encoding", "identity"),
        "cpu_us": used_ns / n / 1000, "cpu_ticks_s": used_ticks, "wall_ms": wall * 1000 / n,
    }


def row(label, r):
    print(f"  {label:<44} {r['status']} {r['encoding']:<9} {r['bytes']:>8} B  "
          f"server CPU {r['cpu_us']:8.1f} µs/req (ticks: {r['cpu_ticks_s']:.2f} s / {REQUESTS})  wall {r['wall_ms']:.2f} ms")


def measure(binary, n):
    bench.BIN = os.path.abspath(binary)
    s = bench.Server()
    try:
        print(f"\n=== {binary}: {os.path.getsize(binary)} bytes")
        s.start()
        s.ensure_token()
        c = Client(s)

        def ours():
            st, _, body = c.get("/api/containers")
            return st == 200 and body.count(b'"docknap.bench":"wire"') >= n
        bench.wait_for(ours, 60, f"{n} containers in the view")
        total = len(json.loads(c.get("/api/containers")[2]))
        print(f"containers in the view: {total} ({n} of the bench); load average (1 min) {os.getloadavg()[0]:.2f}")

        print("First load of the UI (index.html + JS + CSS, body bytes):")
        for label, accept in [("no Accept-Encoding", None), ("gzip", "gzip"), ("browser (gzip, deflate, br, zstd)", BROWSER)]:
            tot, parts = first_load(c, accept)
            detail = ", ".join(f"{p} {b} B {e}" for p, b, e in parts)
            print(f"  {label:<36} {tot:>8} B  ({detail})")

        print(f"Server CPU per request, {REQUESTS} sequential requests on one keep-alive connection:")
        _, _, index = c.get("/", token=False)
        js = re.search(rb'src="(/assets/[^"]+\.js)"', index).group(1).decode()
        for path in ["/api/containers", "/api/stacks"]:
            row(f"GET {path}", cpu_per_request(s, c, path))
            row(f"GET {path} (gzip)", cpu_per_request(s, c, path, "gzip"))
            row(f"GET {path} (browser)", cpu_per_request(s, c, path, BROWSER))
            _, h, _ = c.get(path, BROWSER)
            if "etag" in h:
                row(f"GET {path} If-None-Match (304)", cpu_per_request(s, c, path, BROWSER, h["etag"]))
        row("GET / (index.html)", cpu_per_request(s, c, "/", token=False))
        row("GET / (browser)", cpu_per_request(s, c, "/", BROWSER, token=False))
        row("GET JS bundle", cpu_per_request(s, c, js, token=False))
        row("GET JS bundle (browser)", cpu_per_request(s, c, js, BROWSER, token=False))
    finally:
        s.cleanup()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    n = int(os.environ.get("WIRE_CONTAINERS", "200"))
    bench.BENCH_LABEL = LABEL
    try:
        print(f"{n} containers created in {create_containers(n):.1f} s")
        for binary in sys.argv[1:]:
            measure(binary, n)
    finally:
        bench.bench_containers_cleanup()
        left = bench.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"], check=False).split()
        print(f"\nbench containers removed ({len(left)} left)")


if __name__ == "__main__":
    main()
