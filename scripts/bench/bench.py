#!/usr/bin/env python3
"""DockNap benchmark suite (issue 6). Run through scripts/bench/run.sh.

Talks only to 127.0.0.1 and the local Docker Engine. Standard library only.
Prints every figure as it is measured, writes them to .run/bench/results.json
and rewrites the generated part of docs/PERFORMANCE.md (between the
`bench:begin` / `bench:end` markers; the notes around it are kept).

Figures are printed, never asserted: the aims are beside them in the table.
"""

import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# By default the bench runs the very binary inside the image (copied out of
# it), so that the figures are those of what ships, whatever happened to
# target/release/docknap since `make image`. DOCKNAP_BIN overrides.
BIN = os.environ.get("DOCKNAP_BIN") or ""
IMAGE = os.environ.get("DOCKNAP_IMAGE") or "docknap:latest"
TEST_IMAGE = os.environ.get("DOCKNAP_TEST_IMAGE") or "docknap-test-busybox:latest"
COMPOSE = os.environ.get("DOCKNAP_COMPOSE") or os.path.join(ROOT, ".venv/bin/docker-compose")
OUT_DIR = os.path.join(ROOT, ".run", "bench")
DOC = os.path.join(ROOT, "docs", "PERFORMANCE.md")
PASSWORD = "bench-admin-password-1"
RUN_ID = f"{os.getpid()}-{int(time.time())}"
BENCH_LABEL = f"docknap.bench={RUN_ID}"

# Sizes of the runs; QUICK=1 shrinks the slow ones (for trying the script out).
QUICK = os.environ.get("BENCH_QUICK") == "1"
START_RUNS = 5 if QUICK else 20
IDLE_SECONDS = 10 if QUICK else 60
SSE_CLIENTS = 200 if QUICK else 1000
N_CONTAINERS, N_STACKS = (40, 8) if QUICK else (200, 40)
N_SCHEDULES = 1000 if QUICK else 10_000
WRK_SECONDS = 5 if QUICK else 10

CLK_TCK = os.sysconf("SC_CLK_TCK")
# The engine events DockNap follows (src/docker/bollard_engine.rs).
RELEVANT_EVENTS = {"create", "start", "restart", "stop", "die", "kill", "pause", "unpause", "destroy", "rename", "update", "oom"}
results = []  # rows of the table, in order
raw = {}      # everything, for results.json


def log(msg):
    print(f"bench: {msg}", flush=True)


def record(key, label, value, unit, seed="", aim="", note=""):
    raw[key] = value
    if isinstance(value, float):
        shown = f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    else:
        shown = str(value)
    results.append({"key": key, "label": label, "value": shown, "unit": unit, "seed": seed, "aim": aim, "note": note})
    log(f"{label}: {shown} {unit}" + (f"   (seed {seed}; aim {aim})" if seed or aim else "") + (f"   [{note}]" if note else ""))


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# ---- /proc ----

def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def rss_mib(pid):
    return int(proc_status(pid)["VmRSS"].split()[0]) / 1024


def hwm_mib(pid):
    return int(proc_status(pid)["VmHWM"].split()[0]) / 1024


def reset_hwm(pid):
    # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the comm field: state is [0], utime [11], stime [12]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def ctx_switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            st = proc_status(f"{pid}/task/{tid}")
        except FileNotFoundError:
            continue
        total += int(st.get("voluntary_ctxt_switches", 0)) + int(st.get("nonvoluntary_ctxt_switches", 0))
    return total


def threads(pid):
    return int(proc_status(pid)["Threads"])


# ---- a DockNap process ----

def healthz_once(port):
    """True on a 200 from /healthz; False when refused or anything else."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            head = s.recv(16)
            return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    except OSError:
        return False


class Server:
    def __init__(self, data_dir=None, admin_password=True):
        self.tmp = None
        if data_dir is None:
            self.tmp = tempfile.mkdtemp(prefix="docknap-bench-")
            data_dir = os.path.join(self.tmp, "data")
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DOCKNAP_LISTEN": f"127.0.0.1:{self.port}",
            "DOCKNAP_DATA_DIR": data_dir,
            "DOCKNAP_LOG": "info",
            "DOCKNAP_TZ": "UTC",
        }
        if admin_password:
            self.env["DOCKNAP_ADMIN_PASSWORD"] = PASSWORD
        self.log_path = data_dir.rstrip("/") + ".log"
        self.proc = None
        self.token = None
        self.local = threading.local()

    def start(self, timeout=20.0):
        """Spawns the binary; returns ms from spawn to the first /healthz 200."""
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        logf = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([BIN], env=self.env, stdout=logf, stderr=subprocess.STDOUT)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if healthz_once(self.port):
                ms = (time.perf_counter() - t0) * 1000
                logf.close()
                return ms
            if self.proc.poll() is not None:
                break
            time.sleep(0.0005)
        logf.close()
        raise RuntimeError(f"docknap did not become healthy; log {self.log_path}:\n{self.log_text()[-2000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.local = threading.local()

    def cleanup(self):
        self.stop()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # HTTP: one keep-alive connection per thread.
    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.local.conn = c
        return c

    def req(self, method, path, body=None, token=None, raw_body=False):
        token = token or self.token
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            c = self.conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                payload = r.read()
                break
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        if raw_body:
            return r.status, payload
        try:
            return r.status, json.loads(payload) if payload else None
        except ValueError:
            return r.status, payload.decode(errors="replace")

    def login(self, username="admin", password=PASSWORD):
        status, body = self.req("POST", "/api/auth/login", {"username": username, "password": password}, token="-")
        if status != 200:
            raise RuntimeError(f"login: {status} {body}")
        return body["token"]

    def ensure_token(self):
        self.token = self.login()
        return self.token


# ---- Docker helpers ----

def bench_containers_cleanup():
    ids = run(["docker", "ps", "-aq", "--filter", f"label={BENCH_LABEL}"], check=False).split()
    for i in range(0, len(ids), 50):
        run(["docker", "rm", "-f", "-v", *ids[i:i + 50]], check=False)


def create_containers(n, stacks):
    def one(i):
        run([
            "docker", "run", "-d", "--network", "none", "--log-driver", "none",
            "--label", BENCH_LABEL,
            "--label", f"com.docker.compose.project=bench{i % stacks}",
            "--label", f"com.docker.compose.service=svc{i // stacks}",
            "--name", f"docknap-bench-{RUN_ID}-{i}",
            TEST_IMAGE, "sleep", "3600",
        ])
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(one, range(n)))
    return time.perf_counter() - t


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


# ---- the measurements ----

def bench_start():
    log(f"start-up: {START_RUNS} spawns with a fresh data dir, {START_RUNS} restarts on an existing one")
    fresh, again = [], []
    for _ in range(START_RUNS):
        s = Server()
        try:
            fresh.append(s.start())
        finally:
            s.cleanup()
    s = Server()
    try:
        s.start()
        s.stop()
        for _ in range(START_RUNS):
            again.append(s.start())
            s.stop()
        startup_log = [int(m) for m in re.findall(r"startup_ms=(\d+)", s.log_text())]
    finally:
        s.cleanup()
    record("start_fresh_ms", "Start to first /healthz 200, fresh data dir (median of %d)" % START_RUNS,
           statistics.median(fresh), "ms", "< 500 ms", "< 100 ms",
           f"min {min(fresh):.0f}, max {max(fresh):.0f}; creates the database and its secret (the first admin's bcrypt runs after the listener is up)")
    record("start_existing_ms", "Start to first /healthz 200, existing data dir (median of %d)" % START_RUNS,
           statistics.median(again), "ms", "< 500 ms", "< 100 ms",
           f"min {min(again):.0f}, max {max(again):.0f}; server-reported startup_ms median {statistics.median(startup_log):.0f}" if startup_log else "")


def bench_image_start():
    times = []
    for _ in range(3):
        name = f"docknap-bench-img-{RUN_ID}-{len(times)}"
        port = free_port()
        t0 = time.perf_counter()
        run(["docker", "run", "-d", "--name", name, "--label", BENCH_LABEL, "-p", f"127.0.0.1:{port}:8080",
             "-v", "/var/run/docker.sock:/var/run/docker.sock", "-e", f"DOCKNAP_ADMIN_PASSWORD={PASSWORD}", IMAGE])
        try:
            deadline = t0 + 20
            while time.perf_counter() < deadline and not healthz_once(port):
                time.sleep(0.002)
            times.append((time.perf_counter() - t0) * 1000)
        finally:
            run(["docker", "rm", "-f", "-v", name], check=False)
    record("image_start_ms", "`docker run` of the image to first /healthz 200 (median of 3)", statistics.median(times), "ms",
           "", "", "includes the engine creating the container, its network and a fresh volume")


def bench_sizes():
    size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", IMAGE]))
    record("image_mb", f"Image size ({IMAGE})", size / 1e6, "MB", "< 50 MB", "< 10 MB")
    record("binary_mb", "Binary size (static, stripped, UI inside; the one in the image)", os.path.getsize(BIN) / 1e6, "MB")


def bench_idle_and_containers(s):
    time.sleep(2)
    baseline = len(s.req("GET", "/api/containers")[1])
    record("rss_idle_mib", f"RSS idle ({baseline} containers on the engine)", rss_mib(s.pid), "MiB", "< 50 MB", "< 20 MB",
           f"{threads(s.pid)} threads")
    log(f"creating {N_CONTAINERS} containers in {N_STACKS} stacks")
    took = create_containers(N_CONTAINERS, N_STACKS)
    log(f"  created in {took:.1f} s")
    wait_for(lambda: len(s.req("GET", "/api/containers")[1]) >= baseline + N_CONTAINERS, 60, "the view to hold the containers")
    # A few full reads, as the UI would do, then settle.
    for _ in range(5):
        s.req("GET", "/api/stacks")
        s.req("GET", "/api/containers")
    time.sleep(2)
    total = len(s.req("GET", "/api/containers")[1])
    record("rss_containers_mib", f"RSS with {N_CONTAINERS} containers in {N_STACKS} stacks ({total} in all)", rss_mib(s.pid), "MiB",
           "< 50 MB", "< 20 MB")
    raw["peak_rss_so_far_mib"] = hwm_mib(s.pid)


def bench_login_burst(s, n=50):
    reset_hwm(s.pid)
    before = rss_mib(s.pid)
    lat = []

    def one(_):
        t = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
        c.request("POST", "/api/auth/login", body=json.dumps({"username": "admin", "password": PASSWORD}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        lat.append((time.perf_counter() - t) * 1000)
        return r.status

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        statuses = list(ex.map(one, range(n)))
    wall = time.perf_counter() - t0
    ok = statuses.count(200)
    record("rss_peak_logins_mib", f"Peak RSS during a burst of {n} concurrent logins", hwm_mib(s.pid), "MiB", "< 50 MB", "< 20 MB",
           f"{ok}/{n} ok in {wall:.1f} s (login p50 {pct(lat, 50):.0f} ms, max {max(lat):.0f} ms); RSS before {before:.1f} MiB, after {rss_mib(s.pid):.1f} MiB")


def bench_sse(s, n=SSE_CLIENTS):
    reset_hwm(s.pid)
    before = rss_mib(s.pid)
    sel = selectors.DefaultSelector()
    socks = []
    request = (f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\nAccept: text/event-stream\r\n"
               f"Authorization: Bearer {s.token}\r\n\r\n").encode()
    t0 = time.perf_counter()
    for _ in range(n):
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sk.sendall(request)
        sk.setblocking(False)
        socks.append(sk)
        sel.register(sk, selectors.EVENT_READ, {"buf": b"", "ok": False, "event_at": None})
    # Every client gets its 200 and headers.
    deadline = time.monotonic() + 60
    pending = n
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            d = key.data
            chunk = key.fileobj.recv(65536)
            if not chunk:
                raise RuntimeError("an SSE client was disconnected")
            d["buf"] += chunk
            if not d["ok"] and b"\r\n\r\n" in d["buf"]:
                if not d["buf"].startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"SSE: {d['buf'][:200]!r}")
                d["ok"] = True
                d["buf"] = d["buf"].split(b"\r\n\r\n", 1)[1]
                pending -= 1
    connected = time.perf_counter() - t0
    if pending:
        raise RuntimeError(f"{pending} SSE clients got no answer")
    time.sleep(1)
    rss_connected = rss_mib(s.pid)
    # One state change outside: every client should see it.
    victim = f"docknap-bench-{RUN_ID}-0"
    for key in sel.get_map().values():
        key.data["buf"] = b""
    t1 = time.perf_counter()
    subprocess.Popen(["docker", "pause", victim], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait()
    seen = 0
    fan = []
    deadline = time.monotonic() + 30
    while seen < n and time.monotonic() < deadline:
        for key, _ in sel.select(1):
            d = key.data
            d["buf"] += key.fileobj.recv(65536)
            if d["event_at"] is None and victim.encode() in d["buf"]:
                d["event_at"] = time.perf_counter()
                fan.append((d["event_at"] - t1) * 1000)
                seen += 1
    run(["docker", "unpause", victim], check=False)
    peak = hwm_mib(s.pid)
    for sk in socks:
        sel.unregister(sk)
        sk.close()
    time.sleep(2)
    record("rss_peak_sse_mib", f"Peak RSS with {n} SSE clients on /api/events", peak, "MiB", "< 50 MB", "< 20 MB",
           f"before {before:.1f}, all connected {rss_connected:.1f}, 2 s after they left {rss_mib(s.pid):.1f} MiB; "
           f"{n} connected in {connected:.1f} s; a `docker pause` reached {seen}/{n} clients, last after {max(fan) if fan else float('nan'):.0f} ms "
           f"(includes the engine's own pause time)")


def bench_wrk(s):
    if not shutil.which("wrk"):
        record("stacks_rps", "GET /api/stacks requests/s (wrk)", "n/a", "", note="wrk is not installed")
        return
    n = len(s.req("GET", "/api/containers")[1])
    out = run(["wrk", "-t2", "-c16", f"-d{WRK_SECONDS}s", "--latency", "-H", f"Authorization: Bearer {s.token}",
               f"http://127.0.0.1:{s.port}/api/stacks"])
    raw["wrk_stacks"] = out

    def lat(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    size = len(s.req("GET", "/api/stacks", raw_body=True)[1])
    record("stacks_rps", f"GET /api/stacks, {n} containers: requests/s (wrk, 16 connections, {WRK_SECONDS} s)", rps, "req/s",
           note=f"{size / 1024:.0f} KiB per response; wrk shares the 2 cores" + (f"; NON-2xx: {errors.group(1)}" if errors else ""))
    record("stacks_p50_ms", "GET /api/stacks latency p50 under wrk", lat("50"), "ms")
    record("stacks_p99_ms", "GET /api/stacks latency p99 under wrk", lat("99"), "ms")


def create_schedules(s, items, workers=8):
    ids = []
    lock = threading.Lock()

    def one(item):
        status, body = s.req("POST", "/api/schedules", item)
        if status != 201:
            raise RuntimeError(f"create schedule: {status} {body}")
        with lock:
            ids.append(body["id"])
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, items))
    return ids


def bench_idle_cpu(s):
    ids = create_schedules(s, [
        {"target_type": "stack", "target_id": f"bench{i}", "action": "stop", "cron": f"{i * 5} 12 * * *", "timezone": "UTC"}
        for i in range(10)
    ], workers=1)
    time.sleep(3)
    c0, x0, t0, w0 = cpu_seconds(s.pid), ctx_switches(s.pid), time.monotonic(), int(time.time())
    log(f"idle for {IDLE_SECONDS} s with 10 schedules enabled (none due)")
    time.sleep(IDLE_SECONDS)
    c1, x1, t1, w1 = cpu_seconds(s.pid), ctx_switches(s.pid), time.monotonic(), int(time.time())
    # Container events on the engine in that window (other users of the engine) wake DockNap up, rightly.
    events = run(["docker", "events", "--since", str(w0), "--until", str(w1), "--filter", "type=container",
                  "--format", "{{.Action}}"], check=False).split()
    relevant = [e for e in events if e.split(":")[0] in RELEVANT_EVENTS]
    record("idle_cpu_s", f"CPU used over {IDLE_SECONDS} idle seconds, 10 schedules enabled", c1 - c0, "CPU s", "~0 %", "0",
           f"{(c1 - c0) / (t1 - t0) * 100:.3f} % of one core; {x1 - x0} context switches in all threads; "
           f"{len(relevant)} container events from other users of the engine in the window; resolution 1/{CLK_TCK} s")
    for i in ids:
        s.req("DELETE", f"/api/schedules/{i}")


def bench_lateness(s, n_sched=10, fires=100):
    log_before = len(s.log_text())
    ids = create_schedules(s, [
        {"target_type": "container", "target_id": f"docknap-bench-missing-{i}", "action": "start", "cron": "* * * * * *"}
        for i in range(n_sched)
    ], workers=1)
    fired = []
    line_re = re.compile(r"^(\S+)\s+INFO\s+schedule fired.*?late_ms=(-?\d+)", re.M)
    deadline = time.monotonic() + fires / n_sched + 15
    while time.monotonic() < deadline:
        fired = line_re.findall(s.log_text()[log_before:])
        if len(fired) >= fires:
            break
        time.sleep(0.5)
    for i in ids:
        s.req("DELETE", f"/api/schedules/{i}")
    fired = fired[:fires]
    if not fired:
        record("late_p50_ms", "Scheduler lateness", "n/a", "", note="no 'schedule fired' log lines seen")
        return
    late = [int(ms) for _, ms in fired]
    # Fires due in the same second, in the order the scheduler started them.
    by_due = {}
    for ts, ms in fired:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        by_due.setdefault(round(t - int(ms) / 1000), []).append(int(ms))
    firsts = [min(v) for v in by_due.values()]
    lasts = [max(v) for v in by_due.values() if len(v) == n_sched]
    record("late_p50_ms", f"Scheduler lateness over {len(late)} fires ({n_sched} schedules every second): median", statistics.median(late), "ms",
           note=f"p99 {pct(late, 99):.0f} ms, max {max(late)} ms, min {min(late)} ms; first fire of each second median "
                f"{statistics.median(firsts):.0f} ms, last (10th) median {statistics.median(lasts) if lasts else float('nan'):.0f} ms; "
                f"from the server's late_ms log field")


def stack_compose_file(project_dir):
    svc = []
    cmd = "[\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.2; done\"]"
    for i in range(4):
        svc.append(f"  db{i}:\n    image: {TEST_IMAGE}\n    command: {cmd}\n    network_mode: none\n")
    for i in range(8):
        svc.append(f"  api{i}:\n    image: {TEST_IMAGE}\n    command: {cmd}\n    network_mode: none\n    depends_on: [db{i % 4}]\n")
    for i in range(8):
        svc.append(f"  web{i}:\n    image: {TEST_IMAGE}\n    command: {cmd}\n    network_mode: none\n    depends_on: [api{i}, api{(i + 1) % 8}]\n")
    path = os.path.join(project_dir, "compose.yml")
    with open(path, "w") as f:
        f.write("services:\n" + "".join(svc))
    return path


def bench_stack(s, rounds=3):
    project = f"docknap-bench-stack-{RUN_ID}"
    d = tempfile.mkdtemp(prefix="docknap-bench-stack-")
    path = stack_compose_file(d)
    compose = [COMPOSE, "-p", project, "-f", path]
    try:
        run(compose + ["up", "-d", "--wait"])
        wait_for(lambda: (lambda r: r[0] == 200 and len(r[1]["containers"]) == 20 and r[1]["status"] == "running")(s.req("GET", f"/api/stacks/{project}")),
                 30, "the 20-container stack")
        states = lambda: run(["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}", "--format", "{{.State}}"]).split()
        dn_stop, dn_start, c_stop, c_start = [], [], [], []
        for _ in range(rounds):
            t = time.perf_counter()
            st, body = s.req("POST", f"/api/stacks/{project}/stop")
            dn_stop.append(time.perf_counter() - t)
            assert st == 200 and body["ok"], body
            assert set(states()) == {"exited"}, states()
            t = time.perf_counter()
            st, body = s.req("POST", f"/api/stacks/{project}/start")
            dn_start.append(time.perf_counter() - t)
            assert st == 200 and body["ok"], body
            assert set(states()) == {"running"}, states()
            t = time.perf_counter()
            run(compose + ["stop"])
            c_stop.append(time.perf_counter() - t)
            assert set(states()) == {"exited"}, states()
            t = time.perf_counter()
            run(compose + ["start"])
            c_start.append(time.perf_counter() - t)
            assert set(states()) == {"running"}, states()
            wait_for(lambda: s.req("GET", f"/api/stacks/{project}")[1]["status"] == "running", 10, "the stack running again in the view")
        med = lambda v: statistics.median(v) * 1000
        record("stack_stop_ms", f"Stack stop, 20 containers in 3 depends_on levels (median of {rounds})", med(dn_stop), "ms",
               note=f"`docker compose stop`: {med(c_stop):.0f} ms")
        record("stack_start_ms", f"Stack start, same stack (median of {rounds})", med(dn_start), "ms",
               note=f"`docker compose start`: {med(c_start):.0f} ms")
        raw["compose_stop_ms"], raw["compose_start_ms"] = med(c_stop), med(c_start)
    finally:
        run(compose + ["down", "-t", "0", "-v", "--remove-orphans"], check=False)
        shutil.rmtree(d, ignore_errors=True)


def bench_many_schedules():
    s = Server()
    try:
        s.start()
        s.ensure_token()
        zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
        items = [{
            "target_type": "stack", "target_id": f"bench-missing-{i % 50}", "action": "stop" if i % 2 else "start",
            "cron": f"{i % 60} {(i // 60) % 24} * * {i % 7}", "timezone": zones[i % len(zones)],
        } for i in range(N_SCHEDULES)]
        log(f"creating {N_SCHEDULES} schedules over HTTP (8 clients)")
        t = time.perf_counter()
        create_schedules(s, items)
        took = time.perf_counter() - t
        time.sleep(2)
        rss_live = rss_mib(s.pid)

        def upcoming(limit, n):
            lat = []
            for _ in range(n):
                t = time.perf_counter()
                st, body = s.req("GET", f"/api/schedules/upcoming?limit={limit}", raw_body=True)
                lat.append((time.perf_counter() - t) * 1000)
                assert st == 200, body[:200]
            return lat
        up20 = upcoming(20, 50)
        up1000 = upcoming(1000, 20)
        st, lst = s.req("GET", "/api/schedules", raw_body=True)
        t = time.perf_counter()
        for _ in range(5):
            s.req("GET", "/api/schedules", raw_body=True)
        list_ms = (time.perf_counter() - t) / 5 * 1000
        rss_after_reads = rss_mib(s.pid)
        c0 = cpu_seconds(s.pid)
        time.sleep(30 if not QUICK else 5)
        cpu30 = cpu_seconds(s.pid) - c0
        s.stop()
        starts = []
        for _ in range(5):
            starts.append(s.start())
            if len(starts) < 5:
                s.stop()
        time.sleep(1)
        rss_restart = rss_mib(s.pid)
        record("sched10k_rss_mib", f"{N_SCHEDULES} schedules: RSS after creating them", rss_live, "MiB", "< 50 MB", "< 20 MB",
               f"created at {N_SCHEDULES / took:.0f}/s; after upcoming/list reads {rss_after_reads:.1f} MiB; after a restart {rss_restart:.1f} MiB")
        record("sched10k_start_ms", f"{N_SCHEDULES} schedules: start to first /healthz 200 (median of 5)", statistics.median(starts), "ms",
               "< 500 ms", "< 100 ms")
        record("sched10k_upcoming_ms", f"{N_SCHEDULES} schedules: GET /api/schedules/upcoming (limit 20) p50", statistics.median(up20), "ms",
               note=f"p99 {pct(up20, 99):.1f} ms; limit=1000: p50 {statistics.median(up1000):.1f} ms; GET /api/schedules ({len(lst) / 1e6:.1f} MB) {list_ms:.0f} ms")
        record("sched10k_cpu30_s", f"{N_SCHEDULES} schedules: CPU over 30 s (some due every minute)", cpu30, "CPU s")
    finally:
        s.cleanup()


# ---- the report ----

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "model": model,
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "docker": run(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"], check=False),
        "load": open("/proc/loadavg").read().split()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "version": run([BIN, "--version"], check=False),
        "revision": run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False),
    }


def meets(row, target):
    """'yes' / 'no' / '' for a row against a target like '< 50 MB', '~0 %' or '0'."""
    try:
        value = float(row["value"])
    except ValueError:
        return ""
    if row["key"] == "idle_cpu_s":
        if target == "~0 %":
            return "yes" if value / IDLE_SECONDS < 0.005 else "no"
        if target == "0":
            return "yes" if value <= 1 / CLK_TCK else "no"
    m = re.fullmatch(r"<\s*([\d.]+)\s*(\S+)", target.strip())
    if not m:
        return ""
    limit, unit = float(m.group(1)), m.group(2)
    if row["unit"] == "MiB" and unit == "MB":
        value *= 1.048576
    return "yes" if value < limit else "no"


def write_report(m):
    lines = [
        "<!-- bench:begin (generated by scripts/bench/run.sh; edit outside these markers) -->",
        f"Measured {m['date']} by `make bench` ({m['version']}, commit {m['revision']}{', QUICK run' if QUICK else ''}).",
        "",
        f"Machine: {m['cpus']} × {m['model']}, {m['ram']} RAM, Linux {m['kernel']}, Docker Engine {m['docker']}; "
        f"1-minute load average {m['load']} at the start and {open('/proc/loadavg').read().split()[0]} at the end.",
        "",
        "| what | measured | seed target | aim | meets seed / aim | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        val = f"**{r['value']}** {r['unit']}".strip()
        verdict = " / ".join(v for v in (meets(r, r["seed"]) if r["seed"] else "", meets(r, r["aim"]) if r["aim"] else "") if v)
        lines.append(f"| {r['label']} | {val} | {r['seed']} | {r['aim']} | {verdict} | {r['note']} |")
    lines.append("<!-- bench:end -->")
    block = "\n".join(lines)
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    if os.path.exists(DOC):
        with open(DOC) as f:
            text = f.read()
        if "<!-- bench:begin" in text and "<!-- bench:end -->" in text:
            text = re.sub(r"<!-- bench:begin.*?<!-- bench:end -->", lambda _: block, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    else:
        text = "# Performance\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(DOC, ROOT)}")


def resolve_bin():
    """DOCKNAP_BIN, or the binary copied out of the image."""
    global BIN
    if not BIN:
        BIN = os.path.join(OUT_DIR, "docknap")
        os.makedirs(OUT_DIR, exist_ok=True)
        cid = run(["docker", "create", IMAGE])
        try:
            run(["docker", "cp", f"{cid}:/usr/local/bin/docknap", BIN])
        finally:
            run(["docker", "rm", "-v", cid], check=False)
        log(f"benchmarking the binary from {IMAGE} (copied to {os.path.relpath(BIN, ROOT)})")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"bench: the binary is missing at {BIN}")
    if "Requesting program interpreter" in run(["readelf", "-lW", BIN], check=False):
        log(f"WARNING: {BIN} is dynamically linked, not the static release binary")
    return BIN


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 8192))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < SSE_CLIENTS + 100:
        log(f"warning: only {want} file descriptors allowed; the SSE run may fail")
    os.makedirs(OUT_DIR, exist_ok=True)
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        sys.exit(f"bench: the image {IMAGE} is missing (make image)")
    resolve_bin()
    if subprocess.run(["docker", "image", "inspect", TEST_IMAGE], capture_output=True).returncode:
        sys.exit(f"bench: the test image {TEST_IMAGE} is missing (bash scripts/test-env.sh)")
    m = machine()
    log(f"{m['version']} on {m['cpus']} × {m['model']}, {m['ram']}, load {m['load']}; {'QUICK run' if QUICK else 'full run'}")
    t_all = time.monotonic()
    main_server = None
    try:
        bench_sizes()
        bench_start()
        bench_image_start()
        main_server = Server()
        # 1,000 event streams of one user: above the default caps on purpose.
        main_server.env.update({"DOCKNAP_MAX_STREAMS": "2000", "DOCKNAP_MAX_STREAMS_PER_USER": "2000",
                                "DOCKNAP_MAX_CONNECTIONS": "4096"})
        main_server.start()
        main_server.ensure_token()
        bench_idle_and_containers(main_server)
        bench_login_burst(main_server)
        bench_sse(main_server)
        bench_wrk(main_server)
        storage_load.bench_storage_load(main_server)
        bench_idle_cpu(main_server)
        bench_lateness(main_server)
        log("removing the bench containers")
        bench_containers_cleanup()
        bench_stack(main_server)
        main_server.cleanup()
        main_server = None
        bench_many_schedules()
        windows_load.bench_windows()
        slow_clients.bench_slow_clients()
        insight.bench_insight()
    finally:
        if main_server:
            main_server.cleanup()
        bench_containers_cleanup()
        raw["machine"] = m
        raw["rows"] = results
        with open(os.path.join(OUT_DIR, "results.json"), "w") as f:
            json.dump(raw, f, indent=2, default=str)
    log(f"all done in {time.monotonic() - t_all:.0f} s")
    write_report(m)


if __name__ == "__main__":
    # Scenarios kept in their own files; they use this module's helpers.
    sys.modules.setdefault("bench", sys.modules[__name__])
    import insight  # noqa: E402
    import slow_clients  # noqa: E402
    import storage_load  # noqa: E402
    import windows_load  # noqa: E402

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    main()
