#!/usr/bin/env python3
"""Windows at scale: 1,000 windows over 200 one-container stacks (200 on the
stacks, 200 on their containers, 600 on targets that do not exist yet).
Measures the reconciler's quiet pass (from its debug log line), RSS, idle
CPU and how often it wakes while nothing is due. Part of `make bench`.
Talks only to 127.0.0.1 and the local engine; figures are printed, never
asserted.
"""

import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

N_WINDOWS = 200 if bench.QUICK else 1000
N_STACKS = 40 if bench.QUICK else 200
IDLE = 10 if bench.QUICK else 60
# Up on weekdays in office hours: every window is already where it should
# be after the first pass, and no boundary falls due while we watch (unless
# the bench runs across 07:00 or 19:00 in one of these zones).
SPECS = ["Mon-Fri 07:00-19:00", "Sat-Sun 10:00-14:00, Mon 08:00-09:00", "always", "Fri 22:00-06:00"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


def passes(s):
    return [int(m) for m in re.findall(r"reconcile pass pass_us=(\d+)", s.log_text())]


def bench_windows():
    s = bench.Server()
    s.env["DOCKNAP_LOG"] = "info,docknap::window=debug"
    try:
        s.start()
        s.ensure_token()
        bench.log(f"creating {N_STACKS} one-container stacks and {N_WINDOWS} windows")
        bench.create_containers(N_STACKS, N_STACKS)
        bench.wait_for(lambda: len(s.req("GET", "/api/stacks")[1]) >= N_STACKS, 60, "the stacks")
        stacks = sorted(st["name"] for st in s.req("GET", "/api/stacks")[1] if st["name"].startswith("bench"))[:N_STACKS]
        containers = [st["containers"][0]["name"] for st in s.req("GET", "/api/stacks")[1] if st["name"] in stacks]
        targets = [("stack", n) for n in stacks] + [("container", n) for n in containers]
        targets += [("stack", f"bench-later-{i}") for i in range(N_WINDOWS - len(targets))]
        items = [{
            "target_type": kind, "target_id": name, "spec": SPECS[i % len(SPECS)], "timezone": ZONES[i % len(ZONES)],
            # Nothing is stopped: the figures are of deciding, not of the engine.
            "enabled": kind == "stack" and name.startswith("bench-later"),
        } for i, (kind, name) in enumerate(targets)]
        for item in items:
            status, body = s.req("POST", "/api/windows", item)
            if status != 201:
                raise RuntimeError(f"create window: {status} {body}")
        # Enable the real ones in a state they already are in: "always" up.
        for w in s.req("GET", "/api/windows")[1]:
            if not w["enabled"]:
                s.req("PUT", f"/api/windows/{w['id']}", {"spec": "always", "enabled": True})
        time.sleep(3)
        seen = len(passes(s))
        for _ in range(20):
            s.req("POST", "/api/windows/preview", {"spec": "always"})  # no wake-up
        c0 = bench.cpu_seconds(s.pid)
        time.sleep(IDLE)
        cpu = bench.cpu_seconds(s.pid) - c0
        idle_passes = len(passes(s)) - seen
        # Quiet passes on demand: an override that changes nothing (up, on an "always" window).
        first = s.req("GET", "/api/windows")[1][0]["id"]
        for _ in range(20):
            s.req("POST", f"/api/windows/{first}/override", {"desired": "up", "reason": "bench"})
        time.sleep(1)
        quiet = passes(s)[seen + idle_passes:]
        bench.record("windows_pass_ms", f"{N_WINDOWS} windows over {N_STACKS} stacks: a quiet reconcile pass (median of {len(quiet)})",
                     statistics.median(quiet) / 1000 if quiet else float("nan"), "ms", aim="< 5 ms",
                     note=f"worst {max(quiet) / 1000:.2f} ms" if quiet else "")
        bench.record("windows_rss_mib", f"{N_WINDOWS} windows, {N_STACKS} stacks: RSS", bench.rss_mib(s.pid), "MiB", aim="< 20 MB")
        bench.record("windows_idle_cpu_s", f"{N_WINDOWS} windows: CPU over {IDLE} idle seconds", cpu, "CPU s",
                     note=f"{idle_passes} reconcile passes while nothing was due")
    finally:
        s.cleanup()
        bench.bench_containers_cleanup()


if __name__ == "__main__":
    bench.BIN = os.path.abspath(sys.argv[1])
    bench_windows()
    for row in bench.results:
        print(row)
