//! Engine faults while DockNap runs, on a second dockerd of the test's own
//! (never the machine's engine): restarted (SIGTERM) with actions, a window
//! pass and a schedule fire in flight; killed with SIGKILL and started again;
//! an events stream that goes silent behind a proxy that stops forwarding
//! without closing. Each prints its figures (see docs/RELIABILITY.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engines::SecondEngine;
use crate::harness::*;

/// A shell as PID 1 without a trap ignores SIGTERM: a stop takes the
/// container's whole stop timeout.
const STUBBORN: &str = "while :; do sleep 1; done";
const POLITE: &str = "trap 'exit 0' TERM; while :; do sleep 0.2; done";

/// What the events-stream recheck is set to in these tests.
const RECHECK: Duration = Duration::from_secs(2);
/// discovery's PROBE_TIMEOUT: a recheck on a silent pooled connection gives up after this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A container as compose would make it for `service` of stack `project`.
fn run_member(engine: &SecondEngine, project: &str, service: &str, cmd: &str, stop_timeout: u32) -> String {
    let name = format!("{project}-{service}-1");
    let (project_label, service_label) =
        (format!("com.docker.compose.project={project}"), format!("com.docker.compose.service={service}"));
    let timeout = stop_timeout.to_string();
    run_container(
        engine,
        &name,
        &["--stop-timeout", &timeout, "--label", &project_label, "--label", &service_label],
        cmd,
    );
    name
}

fn run_container(engine: &SecondEngine, name: &str, extra: &[&str], cmd: &str) {
    let image = test_image();
    let mut all = vec!["run", "-d", "--name", name, "--network", "none"];
    all.extend_from_slice(extra);
    all.extend_from_slice(&[image.as_str(), "sh", "-c", cmd]);
    engine.docker(&all);
}

async fn create_schedule(s: &Server, t: &str, body: Value) -> Value {
    let (st, v) = s.post("/api/schedules", t, body.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}: {v}");
    v
}

/// `(schedule id, due, late_ms)` of every "schedule fired" line in the log.
fn fires(log: &str) -> Vec<(i64, DateTime<Utc>, i64)> {
    let field = |line: &str, name: &str| Some(line.split(name).nth(1)?.split_whitespace().next()?.to_string());
    log.lines()
        .filter(|l| l.contains("schedule fired"))
        .filter_map(|l| {
            Some((
                field(l, " schedule=")?.parse().ok()?,
                field(l, " due=")?.parse().ok()?,
                field(l, " late_ms=")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Waits for the first fire of `schedule` due at or after `after`; returns (due, late_ms).
async fn first_fire_after(s: &Server, schedule: i64, after: DateTime<Utc>) -> (DateTime<Utc>, i64) {
    s.wait_for("a fire due after recovery", Duration::from_secs(20), || async {
        fires(&s.log_text())
            .into_iter()
            .find(|(id, due, _)| *id == schedule && *due >= after)
            .map(|(_, due, late)| (due, late))
    })
    .await
}

/// Polls `/healthz` every 50 ms and keeps each change of its `docker` field.
struct HealthWatch {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HealthWatch {
    fn start(s: &Server) -> HealthWatch {
        let url = s.url("/healthz");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        let seen = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
        let kept = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let docker = match http.get(&url).send().await {
                    Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["docker"].as_str().map(String::from)),
                    Err(_) => None,
                }
                .unwrap_or_else(|| "no answer".into());
                {
                    let mut all = kept.lock().unwrap();
                    if all.last().map(|(_, d)| d) != Some(&docker) {
                        all.push((Instant::now(), docker));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        HealthWatch { seen, task }
    }

    /// When `/healthz` first said `docker: what` at or after `after`.
    fn first(&self, what: &str, after: Instant) -> Option<Instant> {
        self.seen.lock().unwrap().iter().find(|(t, d)| *t >= after && d == what).map(|(t, _)| *t)
    }

    fn now(&self) -> String {
        self.seen.lock().unwrap().last().map(|(_, d)| d.clone()).unwrap_or_default()
    }

    fn changes(&self, since: Instant) -> Vec<String> {
        let all = self.seen.lock().unwrap();
        all.iter().map(|(t, d)| format!("{d}@{}ms", t.saturating_duration_since(since).as_millis())).collect()
    }
}

impl Drop for HealthWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until `/healthz` says docker ok and DockNap's view shows each
/// container in the state the engine has (a fresh list, not a stale view).
async fn wait_recovered(s: &Server, t: &str, expected: &[(String, String)], timeout: Duration) {
    s.wait_for("healthz docker ok and the view re-listed", timeout, || async {
        let (_, h) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
        if h["docker"] != "ok" {
            return None;
        }
        for (name, state) in expected {
            let (st, v) = s.get(&format!("/api/containers/{name}"), t).await;
            if st != StatusCode::OK || v["state"] != state.as_str() {
                return None;
            }
        }
        Some(())
    })
    .await;
}

fn engine_states(engine: &SecondEngine, names: &[&str]) -> Vec<(String, String)> {
    names.iter().map(|n| (n.to_string(), engine.state(n))).collect()
}

/// A 6-field cron expression (UTC) that fires once a day at `at` (whole second).
fn cron_at(at: DateTime<Utc>) -> String {
    format!("{} {} {} * * *", at.second(), at.minute(), at.hour())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_restart_mid_action_ends_every_action_audits_it_and_the_next_runs_are_on_time() {
    let mut engine = SecondEngine::start();
    let win = run_member(&engine, "slowwin", "app", STUBBORN, 8);
    let sched = run_member(&engine, "slowsched", "app", STUBBORN, 8);
    run_container(&engine, "tick", &[], POLITE);
    let s = Server::start_with(&[("DOCKER_HOST", &engine.host())]);
    let t = s.admin_token().await;
    s.wait_stack(&t, "slowwin", "running").await;
    s.wait_stack(&t, "slowsched", "running").await;
    let health = HealthWatch::start(&s);

    // Every 5 s, start `tick` (a no-op while it runs): the runs that must be on time after the restart.
    let tick = create_schedule(&s, &t, json!({"target_type": "container", "target_id": "tick", "action": "start", "cron": "*/5 * * * * *", "timezone": "UTC"})).await;
    let tick = tick["id"].as_i64().unwrap();
    // A scheduled stop of a stack whose container takes 8 s to stop...
    let due = (Utc::now() + chrono::Duration::seconds(3)).with_nanosecond(0).unwrap();
    let stop = create_schedule(&s, &t, json!({"target_type": "stack", "target_id": "slowsched", "action": "stop", "cron": cron_at(due), "timezone": "UTC"})).await;
    let stop_id = stop["id"].as_i64().unwrap();
    // ...and a window pass stopping another one.
    let (st, w) = s
        .post(
            "/api/windows",
            &t,
            json!({"target_type": "stack", "target_id": "slowwin", "spec": "never", "grace": "0"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{w}");
    s.wait_for("the scheduled stop to fire", Duration::from_secs(10), || async {
        fires(&s.log_text()).iter().any(|(id, _, _)| *id == stop_id).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        (engine.state(&win), engine.state(&sched)),
        ("running".into(), "running".into()),
        "both stops are in flight"
    );

    // The engine restarts (SIGTERM by pid, then the same engine again) under them.
    let began = Instant::now();
    let restart = tokio::task::spawn_blocking(move || {
        engine.stop();
        let down = Instant::now();
        engine.start_again();
        (engine, down, Instant::now())
    });
    // Both actions end, with a result, within a bound.
    let bound = Duration::from_secs(60);
    let (mut sched_done, mut win_done) = (None, None);
    while began.elapsed() < bound && (sched_done.is_none() || win_done.is_none()) {
        if sched_done.is_none() {
            let (_, v) = s.get(&format!("/api/schedules/{stop_id}"), &t).await;
            if !v["last_run"].is_null() {
                sched_done = Some((began.elapsed(), v["last_run"].clone()));
            }
        }
        if win_done.is_none() {
            let (_, page) = s.get("/api/audit?actor=window&action=stop&limit=5", &t).await;
            if let Some(e) = page["entries"].as_array().and_then(|e| e.first()) {
                win_done = Some((began.elapsed(), e.clone()));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sched_took, last_run) =
        sched_done.unwrap_or_else(|| panic!("the scheduled stop hung past {bound:?}:\n{}", s.log_text()));
    let (win_took, win_entry) =
        win_done.unwrap_or_else(|| panic!("the window's stop hung past {bound:?}:\n{}", s.log_text()));
    println!(
        "engine restart: scheduled stack stop ended {} ms after the restart began: ok={} {}",
        sched_took.as_millis(),
        last_run["ok"],
        last_run["message"]
    );
    println!(
        "engine restart: window stop ended {} ms after the restart began: ok={} {}",
        win_took.as_millis(),
        win_entry["ok"],
        win_entry["message"]
    );
    assert!(last_run["message"].as_str().is_some_and(|m| !m.is_empty()), "{last_run}");
    let (_, page) = s.get("/api/audit?target_id=slowsched&action=stop&limit=5", &t).await;
    let audited = page["entries"].as_array().unwrap();
    assert!(audited.iter().any(|e| e["details"]["schedule_id"] == stop_id), "the scheduled stop is audited: {page}");

    let (engine, down, back) = restart.await.unwrap();
    println!(
        "engine restart: engine stopped in {} ms, answering again {} ms after the restart began",
        (down - began).as_millis(),
        (back - began).as_millis()
    );
    let expected = engine_states(&engine, &[&win, &sched]);
    wait_recovered(&s, &t, &expected, Duration::from_secs(20)).await;
    let recovered = Instant::now();
    let recovered_at = Utc::now();
    println!(
        "engine restart: recovery (engine back → /healthz ok and the view re-listed) {} ms",
        (recovered - back).as_millis()
    );
    let unreachable = health.first("unreachable", began);
    assert!(unreachable.is_some(), "/healthz said unreachable during the restart: {:?}", health.changes(began));
    let unreachable = unreachable.unwrap();
    s.wait_for("/healthz ok after unreachable", Duration::from_secs(2), || async { health.first("ok", unreachable) })
        .await;
    println!("engine restart: /healthz changes {:?}", health.changes(began));
    assert!(recovered - back < Duration::from_secs(5), "recovered within the reconnect backoff");

    // The next due run is on time.
    let (due, late) = first_fire_after(&s, tick, recovered_at).await;
    println!("engine restart: first `*/5 s` fire due after recovery ({due}) ran {late} ms late");
    assert!(late < 1000, "{late} ms late");
    assert_eq!(health.now(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_killed_with_sigkill_is_reported_unreachable_and_recovered_when_it_is_back() {
    let mut engine = SecondEngine::start();
    run_container(&engine, "tick", &[], POLITE);
    run_container(&engine, "idle", &["--restart", "always"], POLITE);
    let slow = run_member(&engine, "slowkill", "app", STUBBORN, 10);
    let s = Server::start_with(&[("DOCKER_HOST", &engine.host())]);
    let t = s.admin_token().await;
    s.wait_for("the engine's containers", Duration::from_secs(10), || async {
        let (st, v) = s.get("/api/containers/idle", &t).await;
        (st == StatusCode::OK && v["state"] == "running").then_some(())
    })
    .await;
    let tick = create_schedule(&s, &t, json!({"target_type": "container", "target_id": "tick", "action": "start", "cron": "*/5 * * * * *", "timezone": "UTC"})).await;
    let tick = tick["id"].as_i64().unwrap();
    let health = HealthWatch::start(&s);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A stack stop that would take 10 s is in flight when the engine dies.
    let stop = {
        let (http, url, t) = (s.http.clone(), s.url("/api/stacks/slowkill/stop"), t.clone());
        tokio::spawn(async move {
            let r = http.post(url).bearer_auth(t).json(&json!({})).send().await.expect("an answer");
            (r.status(), r.json::<Value>().await.unwrap_or_default(), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(engine.state(&slow), "running", "the stop is in flight");

    let pid = engine.pid();
    let began = Instant::now();
    let mut engine = tokio::task::spawn_blocking(move || {
        engine.kill9();
        engine
    })
    .await
    .unwrap();
    s.wait_for("/healthz to say unreachable", Duration::from_secs(10), || async { health.first("unreachable", began) })
        .await;
    let noticed = health.first("unreachable", began).unwrap() - began;
    println!("engine SIGKILL (pid {pid}): /healthz unreachable {} ms later", noticed.as_millis());
    let (status, result, ended) =
        tokio::time::timeout(Duration::from_secs(10), stop).await.expect("the stop hung").unwrap();
    println!(
        "engine SIGKILL: the stack stop in flight ended {} ms after the kill: {status} {result}",
        (ended - began).as_millis()
    );
    let failed = (status == StatusCode::OK && result["ok"] == false) || status == StatusCode::SERVICE_UNAVAILABLE;
    assert!(failed, "a clear failure: {status} {result}");
    let (_, page) = s.get("/api/audit?target_id=slowkill&action=stop&limit=5", &t).await;
    assert_eq!(page["entries"][0]["ok"], false, "audited as failed: {page}");
    // Down for a while: it stays reported unreachable, and the API says so.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(health.now(), "unreachable", "{:?}", health.changes(began));
    let (st, v) = s.get("/api/containers", &t).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");

    let restarted = Instant::now();
    let (engine, back) = tokio::task::spawn_blocking(move || {
        engine.start_again();
        (engine, Instant::now())
    })
    .await
    .unwrap();
    let expected = engine_states(&engine, &["idle", &slow]);
    wait_recovered(&s, &t, &expected, Duration::from_secs(20)).await;
    let recovered = Instant::now();
    println!(
        "engine SIGKILL: engine answering {} ms after it was started again; recovery (→ /healthz ok, view re-listed) {} ms",
        (back - restarted).as_millis(),
        (recovered - back).as_millis()
    );
    assert!(recovered - back < Duration::from_secs(5));
    let (due, late) = first_fire_after(&s, tick, Utc::now()).await;
    println!("engine SIGKILL: first `*/5 s` fire due after recovery ({due}) ran {late} ms late");
    println!("engine SIGKILL: /healthz changes {:?}", health.changes(began));
    assert!(late < 1000, "{late} ms late");
    drop(engine);
}

/// A unix-socket forwarder of the test's own, on its own thread and runtime.
/// `freeze` makes every connection open so far stop forwarding bytes in
/// either direction without closing (a proxy that hangs); new connections
/// go through. `freeze_all` freezes new ones too, until `thaw`.
struct Proxy {
    path: PathBuf,
    accepted: Arc<AtomicU64>,
    frozen_up_to: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: &Path, path: PathBuf) -> Proxy {
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (accepted, frozen_up_to) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (n, frozen, upstream) = (accepted.clone(), frozen_up_to.clone(), upstream.to_path_buf());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let mut conns = tokio::task::JoinSet::new();
                tokio::pin!(stopped);
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((down, _)) = accepted else { continue };
                            let id = n.fetch_add(1, Ordering::SeqCst) + 1;
                            let (frozen, upstream) = (frozen.clone(), upstream.clone());
                            conns.spawn(async move {
                                let Ok(up) = tokio::net::UnixStream::connect(&upstream).await else { return };
                                let ((dr, dw), (ur, uw)) = (down.into_split(), up.into_split());
                                let is_frozen = move || id <= frozen.load(Ordering::SeqCst);
                                tokio::join!(pipe(dr, uw, is_frozen.clone()), pipe(ur, dw, is_frozen));
                            });
                        }
                    }
                }
                conns.abort_all();
            });
        });
        Proxy { path, accepted, frozen_up_to, stop: Some(stop), thread: Some(thread) }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn freeze(&self) {
        self.frozen_up_to.store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn freeze_all(&self) {
        self.frozen_up_to.store(u64::MAX, Ordering::SeqCst);
    }

    /// New connections go through again; frozen ones stay frozen.
    fn thaw(&self) {
        self.freeze();
    }
}

/// Copies one direction; once frozen, holds what it read (and the socket) forever.
async fn pipe(
    mut from: tokio::net::unix::OwnedReadHalf,
    mut to: tokio::net::unix::OwnedWriteHalf,
    frozen: impl Fn() -> bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await;
        if frozen() {
            std::future::pending::<()>().await;
        }
        let Ok(n) = n else { return };
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_events_stream_is_noticed_within_the_recheck_bound() {
    let engine = SecondEngine::start();
    run_container(&engine, "quiet", &[], POLITE);
    let proxy = Proxy::start(&engine.socket(), PathBuf::from(format!("/tmp/dn-prx-{}.sock", std::process::id())));
    let recheck = format!("{}s", RECHECK.as_secs());
    let s = Server::start_with(&[("DOCKER_HOST", &proxy.host()), ("DOCKNAP_ENGINE_RECHECK", &recheck)]);
    let t = s.admin_token().await;
    let state_is = |want: &'static str| {
        let (s, t) = (&s, &t);
        move || async move {
            let (st, v) = s.get("/api/containers/quiet", t).await;
            (st == StatusCode::OK && v["state"] == want).then_some(())
        }
    };
    s.wait_for("quiet running", Duration::from_secs(10), state_is("running")).await;

    // Through a working proxy, a change arrives with its event.
    let begun = Instant::now();
    engine.docker(&["stop", "-t", "1", "quiet"]);
    s.wait_for("quiet exited", Duration::from_secs(5), state_is("exited")).await;
    println!("silent stream: baseline, a stop seen through the events stream in {} ms", begun.elapsed().as_millis());
    engine.docker(&["start", "quiet"]);
    s.wait_for("quiet running", Duration::from_secs(5), state_is("running")).await;

    // The proxy stops forwarding on every open connection, closing none; the
    // container stops behind DockNap's back (straight on the engine's socket).
    proxy.freeze();
    let begun = Instant::now();
    engine.docker(&["stop", "-t", "1", "quiet"]);
    let bound = RECHECK + PROBE_TIMEOUT + Duration::from_secs(3);
    s.wait_for("DockNap to notice the stop", bound, state_is("exited")).await;
    let noticed = begun.elapsed();
    println!(
        "silent stream: time to notice a change behind a silent events stream {} ms (DOCKNAP_ENGINE_RECHECK={recheck}; bound {} ms)",
        noticed.as_millis(),
        bound.as_millis()
    );
    // It follows on fresh connections: the next change comes with its event.
    let begun = Instant::now();
    engine.docker(&["start", "quiet"]);
    s.wait_for("quiet running", Duration::from_secs(2), state_is("running")).await;
    println!("silent stream: after reconnecting, a start seen in {} ms", begun.elapsed().as_millis());
    let (_, h) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(h["docker"], "ok");

    // A proxy that hangs every connection, new ones too: reported unreachable
    // within the recheck plus two probe timeouts, and back once it forwards.
    let health = HealthWatch::start(&s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let begun = Instant::now();
    proxy.freeze_all();
    let bound = RECHECK + PROBE_TIMEOUT * 2 + Duration::from_secs(3);
    s.wait_for("/healthz to say unreachable", bound, || async { health.first("unreachable", begun) }).await;
    println!(
        "hung proxy: /healthz unreachable {} ms after every connection hung",
        (health.first("unreachable", begun).unwrap() - begun).as_millis()
    );
    let begun = Instant::now();
    proxy.thaw();
    s.wait_for("/healthz to say ok", Duration::from_secs(10), || async { health.first("ok", begun) }).await;
    println!(
        "hung proxy: /healthz ok {} ms after the proxy forwarded again",
        (health.first("ok", begun).unwrap() - begun).as_millis()
    );
    s.wait_for("quiet running", Duration::from_secs(2), state_is("running")).await;
}
