#!/usr/bin/env python3
"""Notifications (issue 11): how fast 1,000 queued notifications drain, at
what RSS, and whether a hanging endpoint makes schedules fire late.

1. Drain: a webhook channel to a loopback receiver (answers 204 after
   RECEIVER_MS); DockNap is stopped, 1,000 deliveries are written into its
   outbox (the table it fills in the audit writer's transaction), and
   DockNap is started again: time from start to the receiver's 1,000th
   request and to the last one recorded as delivered, RSS before and peak.
2. Hanging endpoint: 10 schedules every 5 s (6-field cron) on containers
   that do not exist fail and notify a channel whose endpoint never answers
   (and a healthy one), for 40 s; their fire lateness (the server's
   `late_ms`) is compared with 40 s of the same schedules without channels.

    DOCKNAP_BIN=target/release/docknap python3 scripts/bench/notify.py

Standard library only; talks only to 127.0.0.1 and the local Docker Engine
(phase 2 needs one: a schedule waits for an unreachable engine). The binary:
DOCKNAP_BIN, else the image's (as `make bench`). Figures are printed and
written to .run/bench/notify.json, never asserted. NOTIFY_QUICK=1 is a short
trial of the script itself (200 deliveries, 10 s phases).
"""

import http.server
import json
import os
import re
import sqlite3
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

QUICK = os.environ.get("NOTIFY_QUICK") == "1"
N = 200 if QUICK else 1000
PHASE_S = 10 if QUICK else 40
RECEIVER_MS = 2  # what a quick real endpoint takes
raw = {}


def log(msg):
    print(f"notify: {msg}", flush=True)


class Receiver:
    """A loopback HTTP server: 204 after `delay_s`, or never (`hang`)."""

    def __init__(self, delay_s=0.0, hang=False):
        self.count = 0
        self.first = self.last = None
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    outer.count += 1
                    now = time.perf_counter()
                    outer.first = outer.first or now
                    outer.last = now
                if hang:
                    time.sleep(3600)
                time.sleep(delay_s)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"generic+http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()


def channel(s, name, url, events=None):
    body = {"name": name, "url": url}
    if events:
        body["events"] = events
    status, c = s.req("POST", "/api/notifications", body)
    if status != 201:
        raise RuntimeError(f"channel: {status} {c}")
    return c["id"]


def drain():
    r = Receiver(delay_s=RECEIVER_MS / 1000)
    s = bench.Server()
    try:
        s.env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
        s.start()
        s.ensure_token()
        cid = channel(s, "bench", r.url)
        s.stop()
        db = sqlite3.connect(os.path.join(s.data_dir, "docknap.db"))
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        notice = {"event": "action.failed", "at": now, "host": "local", "target_type": "container", "target_id": "x",
                  "action": "stop", "ok": False, "message": "bench", "details": {}}
        with db:
            db.executemany(
                "INSERT INTO notify_deliveries (channel_id, event, notices, count, created_at, due_at) VALUES (?, 'action.failed', ?, 1, ?, ?)",
                [(cid, json.dumps([dict(notice, target_id=f"c{i}")]), now, now) for i in range(N)],
            )
        db.close()
        log(f"{N} deliveries queued in the outbox; starting DockNap")
        t0 = time.perf_counter()
        s.start()
        rss_start = bench.rss_mib(s.pid)
        peak = rss_start
        while r.count < N and time.perf_counter() - t0 < 300:
            peak = max(peak, bench.rss_mib(s.pid))
            time.sleep(0.02)
        received_s = time.perf_counter() - t0
        db = sqlite3.connect(os.path.join(s.data_dir, "docknap.db"))
        while time.perf_counter() - t0 < 300:
            pending, = db.execute("SELECT COUNT(*) FROM notify_deliveries WHERE due_at IS NOT NULL OR leased = 1").fetchone()
            if pending == 0:
                break
            time.sleep(0.02)
        recorded_s = time.perf_counter() - t0
        ok, = db.execute("SELECT COUNT(*) FROM notify_deliveries WHERE ok = 1").fetchone()
        db.close()
        raw["drain"] = {
            "n": N, "received": r.count, "delivered_ok": ok, "receiver_ms": RECEIVER_MS,
            "received_s": round(received_s, 2), "recorded_s": round(recorded_s, 2),
            "per_s": round(N / recorded_s, 1), "rss_start_mib": round(rss_start, 1), "rss_peak_mib": round(peak, 1),
            "rss_after_mib": round(bench.rss_mib(s.pid), 1),
        }
        log(f"drain: {r.count}/{N} received in {received_s:.2f} s, all {ok} recorded delivered in {recorded_s:.2f} s "
            f"({N / recorded_s:.0f}/s); RSS {rss_start:.1f} MiB at start, peak {peak:.1f} MiB")
    finally:
        s.cleanup()
        r.close()


LATE = re.compile(r"schedule fired.*?late_ms=(-?\d+)")


def lateness(s, seconds):
    before = len(s.log_text())
    time.sleep(seconds)
    return [int(m) for m in LATE.findall(s.log_text()[before:])]


def hanging():
    hang, fine = Receiver(hang=True), Receiver()
    s = bench.Server()
    try:
        s.start()
        s.ensure_token()
        ids = []
        for i in range(10):
            status, body = s.req("POST", "/api/schedules", {
                "target_type": "container", "target_id": f"docknap-bench-notify-missing-{i}", "action": "stop", "cron": "*/5 * * * * *"})
            if status != 201:
                raise RuntimeError(f"schedule: {status} {body}")
            ids.append(body["id"])
        quiet = lateness(s, PHASE_S)
        events = ["action.failed", "action.succeeded", "run.missed"]
        channel(s, "hangs", hang.url, events)
        channel(s, "fine", fine.url, events)
        loud = lateness(s, PHASE_S)
        for i in ids:
            s.req("DELETE", f"/api/schedules/{i}")
        summary = lambda v: {"fires": len(v), "median_ms": statistics.median(v) if v else None,
                             "p99_ms": bench.pct(v, 99) if v else None, "max_ms": max(v) if v else None}
        raw["hanging"] = {"without_channels": summary(quiet), "with_a_hanging_channel": summary(loud),
                          "hanging_requests": hang.count, "healthy_channel_requests": fine.count}
        log(f"fire lateness without channels: {summary(quiet)}")
        log(f"with a hanging channel ({hang.count} requests held) and a healthy one ({fine.count} delivered): {summary(loud)}")
    finally:
        s.cleanup()
        fine.close()
        hang.close()


def main():
    bench.resolve_bin()
    drain()
    hanging()
    os.makedirs(bench.OUT_DIR, exist_ok=True)
    with open(os.path.join(bench.OUT_DIR, "notify.json"), "w") as f:
        json.dump(raw, f, indent=2)
    log(f"written to {os.path.relpath(os.path.join(bench.OUT_DIR, 'notify.json'), bench.ROOT)}")


if __name__ == "__main__":
    main()
