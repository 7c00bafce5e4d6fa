//! Everything at once, then the books must balance: 200 containers, 100
//! schedules firing every minute, 500 slow clients, one engine restart and
//! one kill -9 of DockNap within a few minutes. Afterwards every due run is
//! done once or audited as missed, no schedule is lost, and the database is
//! intact. Loopback and a second engine of the test's own only; bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::engines::SecondEngine;
use crate::harness::*;

const CONTAINERS: usize = 200;
const STACKS: usize = 20;
const SCHEDULES: usize = 100;
const SLOW_CLIENTS: usize = 500;

fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap()
}

/// Sleeps until `seconds` past the next minute boundary after now.
async fn until_past_next_minute(seconds: i64) -> DateTime<Utc> {
    let boundary = minute_of(Utc::now()) + TimeDelta::minutes(1);
    let at = boundary + TimeDelta::seconds(seconds);
    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
    boundary
}

async fn all_audit(s: &Server, t: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let (st, page) = s.get(&format!("/api/audit?limit=500{before}"), t).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_i64() {
            Some(id) => before = format!("&before={id}"),
            None => return out,
        }
    }
}

#[tokio::test]
async fn engine_restart_kill_9_and_slow_clients_lose_no_run_and_double_none() {
    let mut engine = SecondEngine::start();
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let engine = &engine;
            scope.spawn(move || {
                for i in (worker..CONTAINERS).step_by(8) {
                    let (project, service) = (
                        format!("com.docker.compose.project=chaos{}", i % STACKS),
                        format!("com.docker.compose.service=s{i}"),
                    );
                    engine.docker(&[
                        "run",
                        "-d",
                        "--network",
                        "none",
                        "--log-driver",
                        "none",
                        "--label",
                        &project,
                        "--label",
                        &service,
                        // Ends at once on SIGTERM: the engine restart stops 200 of them.
                        "--name",
                        &format!("chaos-{i}"),
                        &test_image(),
                        "sh",
                        "-c",
                        "trap 'exit 0' TERM; while :; do sleep 1; done",
                    ]);
                }
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[("DOCKER_HOST", &engine.host())]);
    s.spawn();
    let t = s.admin_token().await;
    s.wait_for("every stack", Duration::from_secs(30), || async {
        let (_, stacks) = s.get("/api/stacks", &t).await;
        (stacks.as_array().map_or(0, Vec::len) >= STACKS).then_some(())
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..SCHEDULES {
        let (st, v) = s.post("/api/schedules", &t, json!({
            "target_type": "stack", "target_id": format!("chaos{}", i % STACKS), "action": "start", "cron": "* * * * *"
        })).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let created: DateTime<Utc> = v["created_at"].as_str().unwrap().parse().unwrap();
        ids.push((v["id"].as_i64().unwrap(), created));
    }

    // 500 clients that send half a request and then nothing.
    let addr = s.url("").trim_start_matches("http://").trim_end_matches('/').to_string();
    let slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .filter_map(|_| {
            let mut c = TcpStream::connect(&addr).ok()?;
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: chaos\r\n").ok()?;
            Some(c)
        })
        .collect();
    println!("chaos: {} slow clients connected", slow.len());

    // Minute 1 fires; 20 s later the engine restarts (SIGTERM by pid, then up again).
    let first = until_past_next_minute(20).await;
    engine.restart();
    // Minute 2 fires with the engine back; 20 s later DockNap is killed -9 and started again.
    until_past_next_minute(20).await;
    s.kill();
    s.spawn();
    let t = s.admin_token().await;
    let (st, health) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(st, StatusCode::OK, "answers under slow clients: {health}");
    // Minute 3 fires; give its runs time to finish.
    let last = until_past_next_minute(30).await;
    drop(slow);

    // The books: each schedule's due minutes from its creation to the last
    // are each run exactly once or audited missed.
    let entries = all_audit(&s, &t).await;
    let mut runs: BTreeMap<i64, Vec<DateTime<Utc>>> = BTreeMap::new();
    let mut missed: BTreeMap<i64, BTreeSet<DateTime<Utc>>> = BTreeMap::new();
    for e in &entries {
        let d = &e["details"];
        let Some(id) = d["schedule_id"].as_i64() else { continue };
        if d["trigger"] == "scheduled" {
            runs.entry(id).or_default().push(minute_of(d["due"].as_str().unwrap().parse().unwrap()));
        } else if e["action"] == "missed" {
            assert!(d["missed_total"].as_u64().unwrap() <= 20, "a few minutes miss at most a few fires: {e}");
            for m in d["missed"].as_array().unwrap() {
                missed.entry(id).or_default().insert(minute_of(m.as_str().unwrap().parse().unwrap()));
            }
        }
    }
    // Each schedule owes every minute after its creation, up to the last.
    let owed = |created: DateTime<Utc>| {
        let mut minutes = BTreeSet::new();
        let mut m = minute_of(created) + TimeDelta::minutes(1);
        while m <= last {
            minutes.insert(m);
            m += TimeDelta::minutes(1);
        }
        minutes
    };
    let mut failed_runs = 0;
    let mut due_runs = 0;
    for (id, created) in &ids {
        let expected = owed(*created);
        assert!(expected.len() >= 3 && expected.contains(&first), "{expected:?}");
        due_runs += expected.len();
        let done = runs.remove(id).unwrap_or_default();
        let once: BTreeSet<DateTime<Utc>> = done.iter().copied().collect();
        assert_eq!(once.len(), done.len(), "schedule {id} ran a due minute twice: {done:?}");
        let skipped = missed.remove(id).unwrap_or_default();
        assert!(once.is_disjoint(&skipped), "schedule {id}: a minute both run and missed");
        let covered: BTreeSet<DateTime<Utc>> = once.union(&skipped).copied().collect();
        assert_eq!(covered, expected, "schedule {id}: run {once:?}, missed {skipped:?}");
        failed_runs += entries
            .iter()
            .filter(|e| {
                e["details"]["schedule_id"] == *id && e["details"]["trigger"] == "scheduled" && e["ok"] == false
            })
            .count();
    }
    println!("chaos: {due_runs} due runs; {failed_runs} failed while the engine restarted");
    let (_, listed) = s.get("/api/schedules", &t).await;
    assert_eq!(listed.as_array().unwrap().len(), SCHEDULES, "no schedule lost");
    let db = rusqlite::Connection::open(tmp.path().join("data/docknap.db")).unwrap();
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}
