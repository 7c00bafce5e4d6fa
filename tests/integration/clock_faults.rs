//! The wall clock stepped under the real binary: Debian's libfaketime
//! preloaded into the (dynamically linked) test build, its offset changed
//! while DockNap runs through a timestamp file. The monotonic clock is left
//! alone, as an NTP step leaves it. The machine's own clock is never touched.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// `due` of every "schedule fired" line in the log, in order.
fn dues(log: &str) -> Vec<DateTime<Utc>> {
    let field = |line: &str, name: &str| Some(line.split(name).nth(1)?.split_whitespace().next()?.to_string());
    log.lines().filter(|l| l.contains("schedule fired")).filter_map(|l| field(l, " due=")?.parse().ok()).collect()
}

/// `HH:MM` of `t` (UTC).
fn hhmm(t: DateTime<Utc>) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// How many window actions of `action` the audit log holds.
async fn window_acts(s: &Server, action: &str) -> usize {
    let t = s.admin_token().await;
    let (_, page) = s.get(&format!("/api/audit?actor=window&action={action}&limit=50"), &t).await;
    page["entries"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn the_wall_clock_stepped_forward_and_back_under_the_real_binary_runs_nothing_twice() {
    let stack = Compose::up("ftwin", &service("app", ""));
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "Debian's libfaketime is required (scripts/test-env.sh installs `faketime`)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let rc = tmp.path().join("faketime.rc");
    std::fs::write(&rc, "+0\n").unwrap();
    let rc_path = rc.display().to_string();
    let s = Server::start_with(&[
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", &rc_path),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("DOCKNAP_TZ", "UTC"),
    ]);
    let t = s.admin_token().await;
    // Every 2 s, an action on a container that does not exist: each run
    // fails at once, touches nothing, and is logged with its due time.
    let target = unique("no-such-container");
    let (st, v) = s
        .post(
            "/api/schedules",
            &t,
            json!({"target_type": "container", "target_id": target, "action": "start", "cron": "*/2 * * * * *"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // A window up from 10 minutes ago to 30 minutes from now (wall clock):
    // an hour ahead, the stack is outside it.
    let now = Utc::now();
    let spec =
        format!("Mon-Sun {}-{}", hhmm(now - chrono::Duration::minutes(10)), hhmm(now + chrono::Duration::minutes(30)));
    let (st, w) = s
        .post(
            "/api/windows",
            &t,
            json!({"target_type": "stack", "target_id": stack.project, "spec": spec, "timezone": "UTC", "grace": "0"}),
        )
        .await;
    assert_eq!((st, w["state"]["desired"].as_str()), (StatusCode::CREATED, Some("up")), "{w}");
    s.wait_for("two fires", Duration::from_secs(10), || async { (dues(&s.log_text()).len() >= 2).then_some(()) }).await;

    // Forward an hour.
    let before = dues(&s.log_text());
    let stepped = Instant::now();
    let real = Utc::now();
    std::fs::write(&rc, "+1h\n").unwrap();
    let first_after = s
        .wait_for("a fire on the stepped clock", Duration::from_secs(10), || async {
            dues(&s.log_text()).into_iter().find(|d| *d > real + chrono::Duration::minutes(50))
        })
        .await;
    println!(
        "faketime +1h: first fire on the new time {} ms after the step, due {first_after}",
        stepped.elapsed().as_millis()
    );
    let all = dues(&s.log_text());
    let during: Vec<_> = all[before.len()..].iter().filter(|d| **d <= first_after).collect();
    assert!(
        during.iter().all(|d| **d > real + chrono::Duration::minutes(50) || **d <= real + chrono::Duration::seconds(2)),
        "no burst of catch-up runs from the skipped hour: {during:?}"
    );
    let t = s.admin_token().await;
    let (_, page) = s.get("/api/audit?action=missed&limit=10", &t).await;
    let missed = page["entries"].as_array().unwrap();
    let total: i64 = missed.iter().filter_map(|e| e["details"]["missed_total"].as_i64()).sum();
    println!("faketime +1h: {} missed entr(ies), {total} fires audited as missed", missed.len());
    assert!((1700..=1800).contains(&total), "the skipped hour's fires are audited as missed: {page}");
    // The step crossed the window's end: the stack goes down, once, within the reconciler's minute.
    s.wait_for("the window to stop the stack", Duration::from_secs(75), || async {
        (stack.state("app") == "exited").then_some(())
    })
    .await;
    println!("faketime +1h: the window stopped its stack {} ms after the step", stepped.elapsed().as_millis());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(window_acts(&s, "stop").await, 1);

    // Back an hour: every wall-clock time up to the furthest reached has run; none runs again.
    let before = dues(&s.log_text());
    let stepped = Instant::now();
    std::fs::write(&rc, "+0\n").unwrap();
    // The window is read on the wall clock: inside it again, the stack comes back up, once.
    s.wait_for("the window to start the stack", Duration::from_secs(75), || async {
        (stack.state("app") == "running").then_some(())
    })
    .await;
    println!("faketime back to +0: the window started its stack {} ms after the step", stepped.elapsed().as_millis());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!((window_acts(&s, "stop").await, window_acts(&s, "start").await), (1, 1));
    let after = dues(&s.log_text());
    println!(
        "faketime back to +0: {} fires in the {} s after the step (each wall-clock time already ran)",
        after.len() - before.len(),
        stepped.elapsed().as_secs()
    );
    assert_eq!(after.len(), before.len(), "nothing fired again: {:?}", &after[before.len()..]);
    assert!(after.windows(2).all(|w| w[0] < w[1]), "every due time fired once, in order: {after:?}");
    let (st, h) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!((st, h["status"].as_str()), (StatusCode::OK, Some("ok")));
}
