#!/usr/bin/env python3
"""Many hosts (issue 14): 3 engines × 200 containers (20 compose-labelled
stacks × 10 each). DockNap is run twice on the same machine: with `local`
only, then with `local` and two extra dockerd's (h2, h3) through
DOCKNAP_HOSTS. For each run: start to healthy with every host `ok` and every
container listed, RSS, GET /api/stacks latency (gzip, as a browser asks), and
scheduler lateness of 6-field `*/5` schedules; in the three-host run, h3's
dockerd is then black-holed (SIGSTOP by its pid: its socket still accepts,
nothing answers) for 40 s, and the lateness of local's and h2's fires and the
list latency are compared with before.

Run as root (it starts dockerd's and makes bridges), standard library only:

    python3 scripts/bench/hosts.py        # about 5-6 minutes on 2 cores

Needs the Docker Engine, dockerd (Debian's docker.io), iproute2 and the test
image (DOCKNAP_TEST_IMAGE, default docknap-test-busybox:latest; `bash
scripts/test-env.sh`). The binary: DOCKNAP_BIN, else target/release/docknap
(copied first, so a rebuild during the run does not change it). Not part of
`make bench`: it needs root and two more dockerd's. HOSTS_QUICK=1 is a
one-minute trial of the script itself (2 stacks per host, 10 s phases).
Figures are printed and written to .run/bench/hosts.json (the two runs'
DockNap logs beside it, hosts-one.log and hosts-three.log), never asserted.
Everything it makes (the 200 local containers, the two engines with their
data roots, bridges and temporary directories) is removed at the end, also
on failure.
"""

import concurrent.futures
import datetime
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

ROOT = bench.ROOT
TEST_IMAGE = bench.TEST_IMAGE
QUICK = os.environ.get("HOSTS_QUICK") == "1"   # a short trial of the script itself
N_STACKS, PER_STACK = (2, 10) if QUICK else (20, 10)
N_LIST = 20 if QUICK else 200      # sequential GET /api/stacks for p50/p95
BEFORE_S, HOLE_S, AFTER_S = (10, 10, 5) if QUICK else (40, 40, 20)
CRON = "*/5 * * * * *"
RUN = os.getpid()
LABEL = f"docknap.bench.hosts={RUN}"
PREFIX = f"hb{RUN}-"    # compose project names: hb<pid>-00 … hb<pid>-19
N_ID = 10000 + (RUN % 4000) * 2   # dnbr10000…: clear of the tests' dnbr<id> (id < 10000)
raw = {}


def log(msg):
    print(f"hosts: {msg}", flush=True)


# ---- the Docker Engine API over a unix socket (no CLI process per call) ----

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def engine_api(sock_path, method, path, body=None, timeout=120):
    c = UnixConnection(sock_path, timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        r = c.getresponse()
        data = r.read()
        return r.status, data
    finally:
        c.close()


class Engine:
    """`local` (the machine's engine) or an extra dockerd made here."""

    def __init__(self, name, sock_path, extra_n=None):
        self.name = name
        self.sock = sock_path
        self.extra_n = extra_n
        self.proc = None
        self.root = None
        self.bridge = None
        self.stopped = False   # SIGSTOPped
        self.ids = []

    @property
    def url(self):
        return f"unix://{self.sock}"

    def start_dockerd(self):
        n = N_ID + self.extra_n
        self.root = f"/tmp/dn-hb-{n}"       # short: a unix socket path has at most 107 bytes
        self.bridge = f"dnbr{n}"
        self.sock = os.path.join(self.root, "sock")
        shutil.rmtree(self.root, ignore_errors=True)
        os.makedirs(self.root)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        bench.run(["ip", "link", "add", self.bridge, "type", "bridge"])
        bench.run(["ip", "addr", "add", f"10.214.{n % 250}.1/24", "dev", self.bridge])
        bench.run(["ip", "link", "set", self.bridge, "up"])
        d = lambda x: os.path.join(self.root, x)  # noqa: E731
        logf = open(d("log"), "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", d("data"), "--exec-root", d("exec"), "--pidfile", d("pid"),
             "-H", self.url, "--iptables=false", "--bridge", self.bridge],
            stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + 90
        while True:
            try:
                if engine_api(self.sock, "GET", "/_ping", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd {self.name} did not come up; see {d('log')}")
            time.sleep(0.3)
        save = subprocess.Popen(["docker", "save", TEST_IMAGE], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "-H", self.url, "load", "-q"], stdin=save.stdout, capture_output=True, text=True)
        save.wait()
        if load.returncode:
            raise RuntimeError(f"loading the test image into {self.name}: {load.stderr}")

    def create_one(self, stack, idx):
        name = f"{PREFIX}{self.name}-{stack:02d}-{idx}"
        st, body = engine_api(self.sock, "POST", f"/containers/create?name={name}", {
            "Image": TEST_IMAGE, "Cmd": ["sleep", "3600"],
            "Labels": {"docknap.bench.hosts": str(RUN), "com.docker.compose.project": f"{PREFIX}{stack:02d}",
                       "com.docker.compose.service": f"svc{idx}"},
            "HostConfig": {"NetworkMode": "none", "LogConfig": {"Type": "none"}},
        })
        if st != 201:
            raise RuntimeError(f"create {name} on {self.name}: {st} {body[:200]!r}")
        cid = json.loads(body)["Id"]
        self.ids.append(cid)
        st, body = engine_api(self.sock, "POST", f"/containers/{cid}/start")
        if st not in (204, 304):
            raise RuntimeError(f"start {name} on {self.name}: {st} {body[:200]!r}")

    def remove_mine(self):
        """Every container with this run's label (force: the sleeps are killed)."""
        st, body = engine_api(self.sock, "GET", "/containers/json?all=1&filters=" +
                              json.dumps({"label": [LABEL]}).replace(" ", ""), timeout=60)
        ids = [c["Id"] for c in json.loads(body)] if st == 200 else self.ids
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: engine_api(self.sock, "DELETE", f"/containers/{i}?force=1&v=1", timeout=60), ids))
        return len(ids)

    def blackhole(self, on):
        os.kill(self.proc.pid, signal.SIGSTOP if on else signal.SIGCONT)
        self.stopped = on

    def stop_dockerd(self):
        if self.proc:
            if self.stopped:
                self.blackhole(False)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(40)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.root:
            # dockerd bind-mounts its data root onto itself.
            for x in ("exec", "data"):
                subprocess.run(["umount", "-R", os.path.join(self.root, x)], capture_output=True)
            shutil.rmtree(self.root, ignore_errors=True)
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def create_all(engines):
    jobs = [(e, s, i) for s in range(N_STACKS) for i in range(PER_STACK) for e in engines]
    done = [0]
    lock = threading.Lock()

    def one(job):
        e, s, i = job
        e.create_one(s, i)
        with lock:
            done[0] += 1
            if done[0] % 150 == 0:
                log(f"  {done[0]}/{len(jobs)} containers")
    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(one, jobs))
    return time.perf_counter() - t


# ---- DockNap ----

def get(s, path, token, gz=True, timeout=30):
    """One GET on a fresh keep-alive-less connection: (status, ms, wire bytes, decoded body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"}
    if gz:
        headers["Accept-Encoding"] = "gzip"
    t = time.perf_counter()
    try:
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        ms = (time.perf_counter() - t) * 1000
        enc = r.getheader("Content-Encoding")
    finally:
        c.close()
    wire = len(body)
    if enc == "gzip":
        body = gzip.decompress(body)
    return r.status, ms, wire, body


class KeepAlive:
    """A browser-like client: one keep-alive connection, gzip accepted."""

    def __init__(self, port, token):
        self.port, self.token, self.c = port, token, None

    def get(self, path, timeout=30):
        for attempt in range(2):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            t = time.perf_counter()
            try:
                self.c.request("GET", path, headers={"Authorization": f"Bearer {self.token}", "Accept-Encoding": "gzip"})
                r = self.c.getresponse()
                body = r.read()
                return r.status, (time.perf_counter() - t) * 1000, len(body), r.getheader("Content-Encoding")
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = None
                if attempt:
                    raise

    def close(self):
        if self.c:
            self.c.close()


def healthz(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/healthz")
        r = c.getresponse()
        body = r.read()
        c.close()
        return json.loads(body) if r.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None


def spawn(s, hosts_env, log_path):
    if hosts_env:
        s.env["DOCKNAP_HOSTS"] = hosts_env
    else:
        s.env.pop("DOCKNAP_HOSTS", None)
    s.log_path = log_path
    logf = open(log_path, "ab")
    t0 = time.perf_counter()
    s.proc = subprocess.Popen([bench.BIN], env=s.env, stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    return t0


def mine_per_host(containers):
    out = {}
    for c in containers:
        if (c.get("stack") or "").startswith(PREFIX) and c["state"] == "running":
            out[c["host"]] = out.get(c["host"], 0) + 1
    return out


def wait_ready(s, t0, hosts, token, timeout=180):
    """ms from spawn to: first /healthz 200; every host `ok`; all 200 containers of every host listed."""
    deadline = t0 + timeout
    first = hosts_ok = None
    while time.perf_counter() < deadline:
        h = healthz(s.port)
        if h is not None:
            first = first or (time.perf_counter() - t0) * 1000
            if all(h.get("hosts", {}).get(n) == "ok" for n in hosts):
                hosts_ok = (time.perf_counter() - t0) * 1000
                break
        if s.proc.poll() is not None:
            raise RuntimeError(f"docknap exited; log {s.log_path}")
        time.sleep(0.005)
    if hosts_ok is None:
        raise RuntimeError(f"not every host became ok: {healthz(s.port)}")
    while time.perf_counter() < deadline:
        st, _, _, body = get(s, "/api/containers", token)
        if st == 200:
            per = mine_per_host(json.loads(body))
            if all(per.get(n, 0) >= N_STACKS * PER_STACK for n in hosts):
                return first, hosts_ok, (time.perf_counter() - t0) * 1000
        time.sleep(0.02)
    raise RuntimeError("the containers were not all listed in time")


def list_latency(s, token, n=N_LIST):
    ka = KeepAlive(s.port, token)
    lat, wire, enc = [], 0, None
    try:
        for _ in range(n):
            st, ms, wire, enc = ka.get("/api/stacks")
            if st != 200:
                raise RuntimeError(f"GET /api/stacks: {st}")
            lat.append(ms)
    finally:
        ka.close()
    st, _, _, body = get(s, "/api/stacks", token)
    stacks = json.loads(body)
    return {"p50_ms": bench.pct(lat, 50), "p95_ms": bench.pct(lat, 95), "max_ms": max(lat), "n": n,
            "wire_kib": wire / 1024, "encoding": enc or "identity", "json_kib": len(body) / 1024,
            "stacks": len(stacks), "containers": sum(len(x["containers"]) for x in stacks)}


class Sampler(threading.Thread):
    """Sequential GET /api/stacks (and /api/hosts every 2 s) in the background, each tagged with its wall time."""

    def __init__(self, s, token):
        super().__init__(daemon=True)
        self.s, self.token = s, token
        self.samples, self.hosts, self.errors = [], [], []
        self.stop_ev = threading.Event()

    def run(self):
        ka = KeepAlive(self.s.port, self.token)
        last_hosts = 0
        while not self.stop_ev.is_set():
            at = time.time()
            try:
                st, ms, _, _ = ka.get("/api/stacks", timeout=60)
                self.samples.append((at, ms, st))
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                self.errors.append((at, repr(e)))
            if time.monotonic() - last_hosts > 2:
                last_hosts = time.monotonic()
                try:
                    st, _, _, body = get(self.s, "/api/hosts", self.token, timeout=10)
                    if st == 200:
                        self.hosts.append((time.time(), {h["name"]: h["status"] for h in json.loads(body)}))
                except Exception as e:  # noqa: BLE001
                    self.errors.append((time.time(), "hosts " + repr(e)))
            self.stop_ev.wait(0.2)
        ka.close()

    def between(self, a, b):
        return [ms for at, ms, st in self.samples if a <= at < b and st == 200]


ANSI = re.compile(r"\x1b\[[0-9;]*m")
FIRED = re.compile(r"^(\S+)\s.*schedule fired")


def fires(log_path):
    """[(due epoch s, host, late_ms)] from the server's 'schedule fired' lines."""
    out = []
    with open(log_path, errors="replace") as f:
        for line in f:
            line = ANSI.sub("", line)
            m = FIRED.match(line)
            if not m:
                continue
            host = re.search(r"\bhost=(\S+)", line)
            late = re.search(r"\blate_ms=(-?\d+)", line)
            if not (host and late):
                continue
            at = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
            out.append((at - int(late.group(1)) / 1000, host.group(1), int(late.group(1))))
    return out


def late_stats(rows, host, a, b):
    v = [ms for due, h, ms in rows if h == host and a <= due < b]
    if not v:
        return {"n": 0}
    return {"n": len(v), "p50_ms": statistics.median(v), "max_ms": max(v)}


def lat_stats(v):
    if not v:
        return {"n": 0}
    return {"n": len(v), "p50_ms": bench.pct(v, 50), "p95_ms": bench.pct(v, 95), "max_ms": max(v)}


def make_schedules(s, token, hosts):
    s.token = token
    ids = []
    for h in hosts:
        for k in range(2):
            st, body = s.req("POST", "/api/schedules", {"host": h, "target_type": "stack", "target_id": f"{PREFIX}{k:02d}",
                                                        "action": "start", "cron": CRON, "timezone": "UTC"})
            if st != 201:
                raise RuntimeError(f"create schedule on {h}: {st} {body}")
            ids.append(body["id"])
    return ids


def one_run(label, s, token, engines, hole=None):
    hosts = [e.name for e in engines]
    hosts_env = ",".join(f"{e.name}={e.url}" for e in engines if e.name != "local")
    log_path = os.path.join(s.tmp, f"docknap-{label}.log")
    log(f"[{label}] DockNap with {len(hosts)} host(s): {', '.join(hosts)}")
    t0 = spawn(s, hosts_env, log_path)
    first, hosts_ok, listed = wait_ready(s, t0, hosts, token)
    log(f"[{label}] first /healthz {first:.0f} ms, all hosts ok {hosts_ok:.0f} ms, all containers listed {listed:.0f} ms")
    for _ in range(5):
        get(s, "/api/stacks", token)
        get(s, "/api/containers", token)
    time.sleep(5)
    r = {"hosts": hosts, "first_healthz_ms": first, "hosts_ok_ms": hosts_ok, "listed_ms": listed,
         "rss_settled_mib": bench.rss_mib(s.pid), "threads": bench.threads(s.pid)}
    log(f"[{label}] RSS settled {r['rss_settled_mib']:.1f} MiB ({r['threads']} threads)")
    r["list"] = list_latency(s, token)
    L = r["list"]
    log(f"[{label}] GET /api/stacks ({L['stacks']} stacks, {L['containers']} containers): p50 {L['p50_ms']:.1f} ms, "
        f"p95 {L['p95_ms']:.1f} ms; {L['wire_kib']:.0f} KiB {L['encoding']} ({L['json_kib']:.0f} KiB JSON)")
    r["rss_after_lists_mib"] = bench.rss_mib(s.pid)

    sched_hosts = hosts
    ids = make_schedules(s, token, sched_hosts)
    sampler = Sampler(s, token)
    sampler.start()
    t_sched = time.time()
    log(f"[{label}] {len(ids)} schedules `{CRON}` (start on a running stack) on {', '.join(sched_hosts)}; {BEFORE_S} s")
    time.sleep(BEFORE_S)
    phases = {"before": (t_sched + 1, time.time())}
    if hole:
        t_stop = time.time()
        hole.blackhole(True)
        log(f"[{label}] {hole.name}'s dockerd SIGSTOPped (pid {hole.proc.pid}) for {HOLE_S} s")
        try:
            time.sleep(HOLE_S)
        finally:
            hole.blackhole(False)
        t_cont = time.time()
        log(f"[{label}] {hole.name}'s dockerd SIGCONTed; {AFTER_S} s more")
        phases["hole"] = (t_stop, t_cont)
        time.sleep(AFTER_S)
        phases["after"] = (t_cont, time.time() - 1)
    sampler.stop_ev.set()
    sampler.join(70)
    time.sleep(1)
    rows = fires(log_path)
    shutil.copy(log_path, os.path.join(bench.OUT_DIR, f"hosts-{label}.log"))
    t_base = phases["before"][0] - 1
    r["phases_s"] = {ph: (round(a - t_base, 1), round(b - t_base, 1)) for ph, (a, b) in phases.items()}
    r["fires"] = [(round(due - t_base, 1), h, ms) for due, h, ms in rows if due >= t_base]
    r["host_timeline"] = [(round(at - t_base, 1), st) for at, st in sampler.hosts]
    r["late"] = {ph: {h: late_stats(rows, h, a, b) for h in sched_hosts} for ph, (a, b) in phases.items()}
    r["list_bg"] = {ph: lat_stats(sampler.between(a, b)) for ph, (a, b) in phases.items()}
    r["sampler_errors"] = sampler.errors[:5]
    r["sampler_non200"] = [(at, st) for at, _, st in sampler.samples if st != 200][:5]
    r["host_status_seen"] = sorted({f"{n}={st}" for _, m in sampler.hosts for n, st in m.items() if st != "ok"})
    if hole:
        # What became of the black-holed host's own fires, from the audit log.
        a, b = phases["hole"]
        st, body = s.req("GET", f"/api/audit?host={hole.name}&limit=50")
        entries = body.get("entries", []) if isinstance(body, dict) else []
        kept = []
        for e in entries or []:
            ts = datetime.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
            if ts >= a - 1:
                kept.append({"at_s": round(ts - a, 1), "ok": e["ok"], "action": e["action"], "message": e["message"][:160]})
        r["hole_audit"] = sorted(kept, key=lambda x: x["at_s"])
        log(f"[{label}] {hole.name}'s audit since the black hole began (s after SIGSTOP): "
            + "; ".join(f"+{x['at_s']} {x['ok']} {x['message'][:80]}" for x in r["hole_audit"][:14]))
    for ph in phases:
        for h in sched_hosts:
            x = r["late"][ph][h]
            if x["n"]:
                log(f"[{label}] lateness {ph:6} {h:5}: n={x['n']} p50 {x['p50_ms']:.0f} ms, max {x['max_ms']} ms")
            else:
                log(f"[{label}] lateness {ph:6} {h:5}: no fires")
        y = r["list_bg"][ph]
        if y["n"]:
            log(f"[{label}] list latency {ph:6} (background, n={y['n']}): p50 {y['p50_ms']:.1f} ms, p95 {y['p95_ms']:.1f} ms, max {y['max_ms']:.0f} ms")
    if r["host_status_seen"]:
        log(f"[{label}] host statuses other than ok seen: {r['host_status_seen']}")
    if sampler.errors:
        log(f"[{label}] sampler errors: {sampler.errors[:3]}")
    for i in ids:
        s.req("DELETE", f"/api/schedules/{i}")
    r["rss_end_mib"] = bench.rss_mib(s.pid)
    r["hwm_mib"] = bench.hwm_mib(s.pid)
    s.stop()
    return r


def table(res):
    a, b = res.get("one"), res.get("three")
    lines = ["", "| what | 1 host (local, 200 containers) | 3 hosts (600 containers) |", "| --- | --- | --- |"]

    def row(name, f):
        lines.append(f"| {name} | {f(a) if a else 'n/a'} | {f(b) if b else 'n/a'} |")
    row("start: first /healthz 200", lambda r: f"{r['first_healthz_ms']:.0f} ms")
    row("start: every host ok", lambda r: f"{r['hosts_ok_ms']:.0f} ms")
    row("start: every container listed", lambda r: f"{r['listed_ms']:.0f} ms")
    row("RSS settled / after 200 lists / peak", lambda r: f"{r['rss_settled_mib']:.1f} / {r['rss_after_lists_mib']:.1f} / {r['hwm_mib']:.1f} MiB")
    row("GET /api/stacks p50 / p95 (200 sequential)", lambda r: f"{r['list']['p50_ms']:.1f} / {r['list']['p95_ms']:.1f} ms")
    row("GET /api/stacks body (gzip / JSON)", lambda r: f"{r['list']['wire_kib']:.0f} / {r['list']['json_kib']:.0f} KiB ({r['list']['encoding']})")

    def late(r, ph, h):
        x = r["late"].get(ph, {}).get(h)
        return f"{x['p50_ms']:.0f} / {x['max_ms']} ms (n={x['n']})" if x and x["n"] else "–"

    def bg(r, ph):
        y = r["list_bg"].get(ph)
        return f"{y['p50_ms']:.1f} / {y['p95_ms']:.1f} / {y['max_ms']:.0f} ms (n={y['n']})" if y and y["n"] else "–"
    row("lateness local p50 / max, before", lambda r: late(r, "before", "local"))
    row("lateness h2 p50 / max, before", lambda r: late(r, "before", "h2"))
    row("lateness h3 p50 / max, before", lambda r: late(r, "before", "h3"))
    row("lateness local p50 / max, h3 black-holed", lambda r: late(r, "hole", "local"))
    row("lateness h2 p50 / max, h3 black-holed", lambda r: late(r, "hole", "h2"))
    row("lateness h3 p50 / max, h3 black-holed", lambda r: late(r, "hole", "h3"))
    row("lateness local / h2 / h3 p50, after", lambda r: " / ".join(late(r, "after", h).split(" / ")[0] for h in ("local", "h2", "h3")))
    row("list while schedules fire p50 / p95 / max, before", lambda r: bg(r, "before"))
    row("list p50 / p95 / max, h3 black-holed", lambda r: bg(r, "hole"))
    row("list p50 / p95 / max, after", lambda r: bg(r, "after"))
    return "\n".join(lines)


def main():
    if os.geteuid() != 0:
        sys.exit("hosts: run as root (it starts dockerd's and makes bridges)")
    if subprocess.run(["docker", "image", "inspect", TEST_IMAGE], capture_output=True).returncode:
        sys.exit(f"hosts: the test image {TEST_IMAGE} is missing (bash scripts/test-env.sh)")
    tmp = tempfile.mkdtemp(prefix="docknap-hosts-")
    os.makedirs(bench.OUT_DIR, exist_ok=True)
    src = os.environ.get("DOCKNAP_BIN") or os.path.join(ROOT, "target", "release", "docknap")
    bench.BIN = os.path.join(tmp, "docknap")
    shutil.copy2(src, bench.BIN)
    m = {"cpus": os.cpu_count(), "load_start": open("/proc/loadavg").read().split()[0],
         "version": bench.run([bench.BIN, "--version"], check=False),
         "revision": bench.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False),
         "docker": bench.run(["docker", "version", "--format", "{{.Server.Version}}"], check=False),
         "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    log(f"{m['version']} ({src}), {m['cpus']} cores, load {m['load_start']}")
    local = Engine("local", "/var/run/docker.sock")
    extra = [Engine("h2", None, 0), Engine("h3", None, 1)]
    s = None
    res = {}
    t_all = time.monotonic()
    try:
        for e in extra:
            log(f"starting dockerd {e.name}")
            e.start_dockerd()
        engines = [local] + extra
        log(f"creating {N_STACKS} stacks × {PER_STACK} containers on each of {len(engines)} engines (8 at a time)")
        took = create_all(engines)
        raw["create_s"] = took
        log(f"  created {N_STACKS * PER_STACK * len(engines)} in {took:.0f} s")

        s = bench.Server(data_dir=os.path.join(tmp, "data"))
        s.tmp = tmp   # bench's cleanup removes it
        # The first start makes the admin (bcrypt); its session token survives the restarts that follow.
        spawn(s, "", os.path.join(tmp, "docknap-setup.log"))
        bench.wait_for(lambda: healthz(s.port) is not None, 30, "the first /healthz")
        token = s.login()
        s.stop()
        res["one"] = one_run("one", s, token, [local])
        res["three"] = one_run("three", s, token, engines, hole=extra[1])
    finally:
        if s:
            s.stop()
        log("cleaning up")
        for e in extra:
            if e.stopped:
                e.blackhole(False)
        for e in [local] + extra:
            try:
                if e.sock and (e is local or e.proc):
                    n = e.remove_mine()
                    log(f"  removed {n} containers on {e.name}")
            except Exception as ex:  # noqa: BLE001 - the rest of the cleanup must run
                log(f"  removing containers on {e.name}: {ex!r}")
        for e in extra:
            e.stop_dockerd()
        m["load_end"] = open("/proc/loadavg").read().split()[0]
        raw.update({"machine": m, "results": res})
        os.makedirs(bench.OUT_DIR, exist_ok=True)
        with open(os.path.join(bench.OUT_DIR, "hosts.json"), "w") as f:
            json.dump(raw, f, indent=2, default=str)
        if s:
            s.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {time.monotonic() - t_all:.0f} s; load average {m['load_start']} at the start, {m['load_end']} at the end")
    print(table(res))


if __name__ == "__main__":
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    main()
