#!/usr/bin/env python3
"""Labels as code and the audit hash chain (issue 13).

1. Label discovery at start-up: 20 compose projects × 10 services (200
   containers, `network_mode: none`: more than ~30 projects with networks
   exhaust the engine's bridge pools), each service labelled with a schedule
   and each project's first service with a window. A fresh DockNap is
   started; measured: spawn → /healthz, spawn → every label object listed
   (200 schedules, 20 windows), the server's own "container labels applied"
   line (ms), then a second start on the same data (objects already stored:
   spawn → listed again, nothing to change), and a live change (one
   project re-created by `compose up` with a new cron: `up` returns → the
   API shows it).
2. Audit append cost with the hash chain: scheduler lateness (10 schedules
   firing every second, 100 fires) idle, then while 200 audit entries a second
   are written (schedule creates and deletes, each an entry); the audit
   writer's drain rate for a burst; `docknap audit-verify` time over the log.

Standard library only; talks to 127.0.0.1 and the local engine:

    DOCKNAP_BIN=target/release/docknap python3 scripts/bench/labels.py

LABELS_QUICK=1 shrinks it (4 projects, 30 fires) to try the script out.
Figures are printed and written to .run/bench/labels.json, never asserted.
Everything it makes (compose projects, temporary directories) is removed at
the end, also on failure.
"""

import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

QUICK = os.environ.get("LABELS_QUICK") == "1"
N_PROJECTS, PER_PROJECT = (4, 10) if QUICK else (20, 10)
FIRES = 30 if QUICK else 100
RUN = os.getpid()
PREFIX = f"lb{RUN}-"
out = {}


def log(msg):
    print(f"labels: {msg}", flush=True)


def compose_file(project, cron="0 23 * * *"):
    cmd = json.dumps(["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 5; done"])
    lines = ["services:"]
    for i in range(PER_PROJECT):
        lines += [
            f"  s{i}:",
            f"    image: {bench.TEST_IMAGE}",
            f"    command: {cmd}",
            "    network_mode: none",
            "    stop_grace_period: 1s",
            "    labels:",
            f"      docknap.schedule.job{i}.cron: \"{cron}\"",
            f"      docknap.schedule.job{i}.action: restart",
        ]
        if i == 0:
            lines += ["      docknap.window: \"always\"", "      docknap.window.grace: \"0\""]
    return "\n".join(lines) + "\n"


def compose(workdir, project, *args):
    path = os.path.join(workdir, project, "compose.yml")
    return bench.run([bench.COMPOSE, "-p", project, "-f", path, *args])


def up(workdir, project, cron="0 23 * * *"):
    os.makedirs(os.path.join(workdir, project), exist_ok=True)
    with open(os.path.join(workdir, project, "compose.yml"), "w") as f:
        f.write(compose_file(project, cron))
    compose(workdir, project, "up", "-d")


def label_counts(s):
    _, scheds = s.req("GET", "/api/schedules")
    _, wins = s.req("GET", "/api/windows")
    mine = lambda xs: [x for x in xs if x.get("source") == "label" and x["target_id"].startswith(PREFIX)]  # noqa: E731
    return mine(scheds), mine(wins)


def start_until_listed(s, n_sched, n_win):
    """ms from spawn to /healthz and to every label object listed."""
    t0 = time.perf_counter()
    healthy_ms = s.start()
    s.ensure_token()
    while time.perf_counter() - t0 < 120:
        sch, win = label_counts(s)
        if len(sch) == n_sched and len(win) == n_win and all(x.get("error") is None for x in sch + win):
            return healthy_ms, (time.perf_counter() - t0) * 1000
        time.sleep(0.02)
    raise RuntimeError(f"label objects not listed within 120 s: {len(sch)}/{n_sched} schedules, {len(win)}/{n_win} windows")


def applied_ms(s, since):
    return [int(m) for m in re.findall(r"container labels applied.*?ms=(\d+)", s.log_text()[since:])]


def bench_discovery(workdir):
    projects = [f"{PREFIX}{i:02d}" for i in range(N_PROJECTS)]
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda p: up(workdir, p), projects))
    log(f"{N_PROJECTS * PER_PROJECT} labelled containers up in {time.perf_counter() - t:.1f} s")
    n_sched, n_win = N_PROJECTS * PER_PROJECT, N_PROJECTS

    s = bench.Server()
    try:
        healthy, listed = start_until_listed(s, n_sched, n_win)
        first_applied = applied_ms(s, 0)
        out["first_start"] = {"healthz_ms": round(healthy), "all_listed_ms": round(listed), "applied_ms": first_applied}
        log(f"first start: /healthz {healthy:.0f} ms, {n_sched} schedules + {n_win} windows listed {listed:.0f} ms "
            f"after spawn (server: applied in {first_applied} ms)")
        s.stop()
        size = len(s.log_text())
        healthy, listed = start_until_listed(s, n_sched, n_win)
        out["second_start"] = {"healthz_ms": round(healthy), "all_listed_ms": round(listed), "applied_ms": applied_ms(s, size)}
        log(f"second start (stored already): /healthz {healthy:.0f} ms, listed {listed:.0f} ms, changes applied: {applied_ms(s, size) or 'none'}")

        # A live change: one project re-created with a new cron.
        target = projects[0]
        t = time.perf_counter()
        up(workdir, target, cron="30 22 * * *")
        up_s = time.perf_counter() - t
        t = time.perf_counter()
        while time.perf_counter() - t < 60:
            sch, _ = label_counts(s)
            mine = [x for x in sch if x["target_id"] == target]
            if len(mine) == PER_PROJECT and all(x["cron"] == "30 22 * * *" for x in mine):
                break
            time.sleep(0.02)
        live = (time.perf_counter() - t) * 1000
        out["live_change"] = {"compose_up_s": round(up_s, 1), "shown_after_up_ms": round(live)}
        log(f"live change: `compose up` with a new cron took {up_s:.1f} s; the API showed it {live:.0f} ms after it returned")
    finally:
        s.cleanup()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda p: compose(workdir, p, "down", "-t", "0"), projects))


class Writer(threading.Thread):
    """Creates and deletes schedules: 200 audit entries a second."""

    def __init__(self, s, per_second=200):
        super().__init__(daemon=True)
        self.s, self.per_second, self.stop = s, per_second, threading.Event()
        self.written = 0

    def run(self):
        interval = 2 / self.per_second
        nxt = time.perf_counter()
        while not self.stop.is_set():
            _, v = self.s.req("POST", "/api/schedules", {"target_type": "stack", "target_id": "audit-load", "action": "stop", "cron": "0 3 * * *"})
            self.s.req("DELETE", f"/api/schedules/{v['id']}")
            self.written += 2
            nxt += interval
            time.sleep(max(0, nxt - time.perf_counter()))


def lateness(s):
    size = len(s.log_text())
    ids = bench.create_schedules(s, [
        {"target_type": "container", "target_id": f"labels-bench-missing-{i}", "action": "start", "cron": "* * * * * *"}
        for i in range(10)
    ], workers=1)
    fired = []
    deadline = time.monotonic() + FIRES / 10 + 15
    while time.monotonic() < deadline:
        fired = re.findall(r"schedule fired.*?late_ms=(-?\d+)", s.log_text()[size:])
        if len(fired) >= FIRES:
            break
        time.sleep(0.5)
    for i in ids:
        s.req("DELETE", f"/api/schedules/{i}")
    late = [int(x) for x in fired[:FIRES]]
    return {"fires": len(late), "p50_ms": statistics.median(late), "p99_ms": bench.pct(late, 99), "max_ms": max(late)}


def bench_audit():
    s = bench.Server()
    try:
        s.start()
        s.ensure_token()
        idle = lateness(s)
        log(f"lateness idle: p50 {idle['p50_ms']} ms, p99 {idle['p99_ms']:.0f} ms, max {idle['max_ms']} ms over {idle['fires']} fires")
        w = Writer(s)
        w.start()
        t = time.perf_counter()
        loaded = lateness(s)
        w.stop.set()
        w.join()
        rate = w.written / (time.perf_counter() - t)
        log(f"lateness with {rate:.0f} audit entries/s: p50 {loaded['p50_ms']} ms, p99 {loaded['p99_ms']:.0f} ms, max {loaded['max_ms']} ms")
        out["lateness"] = {"idle": idle, "under_audit_load": loaded, "audit_entries_per_s": round(rate)}

        # Drain rate: a burst of failing runs of a missing container, each audited.
        _, v = s.req("POST", "/api/schedules", {"target_type": "container", "target_id": "burst", "action": "start", "cron": "0 3 * * *"})
        n = 200 if QUICK else 1000
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda _: s.req("POST", f"/api/schedules/{v['id']}/run"), range(n)))
        sent = time.perf_counter() - t
        log(f"{n} audited runs answered in {sent:.2f} s ({n / sent:.0f}/s, each answered after its entry is queued)")
        s.stop()
        db = os.path.join(s.data_dir, "docknap.db")
        rows = int(bench.run(["python3", "-c", f"import sqlite3;print(sqlite3.connect('{db}').execute('select count(*) from audit').fetchone()[0])"]).strip())
        t = time.perf_counter()
        r = subprocess.run([bench.BIN, "audit-verify"], env={**s.env}, capture_output=True, text=True)
        verify = time.perf_counter() - t
        log(f"docknap audit-verify over {rows} entries: {verify * 1000:.0f} ms (exit {r.returncode}: {r.stdout.strip() or r.stderr.strip()})")
        out["audit"] = {"burst_runs": n, "burst_answered_per_s": round(n / sent), "entries": rows, "verify_ms": round(verify * 1000)}
    finally:
        s.cleanup()


def main():
    if not bench.BIN:
        sys.exit("labels: set DOCKNAP_BIN to the binary to measure")
    copy = tempfile.mkdtemp(prefix="docknap-labels-bin-")
    shutil.copy(bench.BIN, os.path.join(copy, "docknap"))
    bench.BIN = os.path.join(copy, "docknap")
    workdir = tempfile.mkdtemp(prefix="docknap-labels-")
    try:
        bench_discovery(workdir)
        bench_audit()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(copy, ignore_errors=True)
    os.makedirs(bench.OUT_DIR, exist_ok=True)
    with open(os.path.join(bench.OUT_DIR, "labels.json"), "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
