//! Windows against the real engine: desired state kept true, drift undone,
//! overrides, grace, and bulk actions.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::engines::SecondEngine;
use crate::harness::*;

async fn create_window(s: &Server, t: &str, body: Value) -> Value {
    let (st, v) = s.post("/api/windows", t, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

/// Waits until the container's engine state is `state`.
async fn wait_state(s: &Server, c: &Compose, service: &str, state: &str, timeout: Duration) -> Duration {
    let begun = Instant::now();
    s.wait_for(&format!("{service} to be {state}"), timeout, || async { (c.state(service) == state).then_some(()) })
        .await;
    begun.elapsed()
}

#[tokio::test]
async fn a_window_keeps_its_stack_down_undoes_drift_and_leaves_excluded_containers_alone() {
    let c = Compose::up(
        "win",
        &format!("{}{}", service("app", ""), service("keep", "    labels:\n      docknap.exclude: \"true\"\n")),
    );
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &c.project, "running").await;

    // Becoming "down" stops the stack within 2 s of the edit.
    let w =
        create_window(&s, &t, json!({"target_type": "stack", "target_id": c.project, "spec": "never", "grace": "0"}))
            .await;
    assert_eq!(w["state"]["desired"], "down");
    assert_eq!(
        (w["down_action"].as_str(), w["enforce"].as_str(), w["source"].as_str()),
        (Some("stop"), Some("both"), Some("api"))
    );
    let took = wait_state(&s, &c, "app", "exited", Duration::from_secs(2)).await;
    println!("window edit → stack stopped: {} ms", took.as_millis());
    assert_eq!(c.state("keep"), "running", "docknap.exclude=true is never touched");

    // A start outside DockNap is drift: undone (grace 0).
    docker(&["start", &c.container("app")]);
    wait_state(&s, &c, "app", "exited", Duration::from_secs(5)).await;

    // An override keeps it up until it is cleared; both are audited.
    let id = w["id"].as_i64().unwrap();
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (st, v) = s
        .post(&format!("/api/windows/{id}/override"), &t, json!({"desired": "up", "until": until, "reason": "demo"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!((v["override"]["desired"].as_str(), v["state"]["desired"].as_str()), (Some("up"), Some("up")));
    wait_state(&s, &c, "app", "running", Duration::from_secs(5)).await;
    let (st, v) = s.call(Method::DELETE, &format!("/api/windows/{id}/override"), Some(&t), None).await;
    assert_eq!((st, &v["override"]), (StatusCode::OK, &Value::Null));
    wait_state(&s, &c, "app", "exited", Duration::from_secs(5)).await;

    // "always": up again; the excluded container was never stopped.
    let (st, _) = s.call(Method::PUT, &format!("/api/windows/{id}"), Some(&t), Some(json!({"spec": "always"}))).await;
    assert_eq!(st, StatusCode::OK);
    wait_state(&s, &c, "app", "running", Duration::from_secs(5)).await;
    let (_, audit) = s.get("/api/audit?actor=window&limit=50", &t).await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["action"] == "stop" && e["details"]["trigger"] == "window"), "{audit}");
    assert!(entries.iter().any(|e| e["action"] == "start" && e["details"]["window_id"] == id), "{audit}");
}

#[tokio::test]
async fn overrides_survive_kill_9_and_docknap_actions_become_overrides() {
    let c = Compose::up("winov", &service("app", ""));
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[]);
    s.spawn();
    let t = s.admin_token().await;
    s.wait_stack(&t, &c.project, "running").await;
    let w = create_window(
        &s,
        &t,
        json!({"target_type": "stack", "target_id": c.project, "spec": "never", "enforce": "down_only", "grace": "0"}),
    )
    .await;
    let id = w["id"].as_i64().unwrap();
    wait_state(&s, &c, "app", "exited", Duration::from_secs(3)).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    s.post(&format!("/api/windows/{id}/override"), &t, json!({"desired": "up", "until": until})).await;
    wait_state(&s, &c, "app", "running", Duration::from_secs(5)).await;

    s.kill();
    s.spawn();
    let t = s.admin_token().await;
    s.wait_stack(&t, &c.project, "running").await;
    let (_, v) = s.get(&format!("/api/windows/{id}"), &t).await;
    assert_eq!(v["override"]["desired"], "up", "the override outlived kill -9: {v}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.state("app"), "running", "and is still honoured");

    // An override ends by itself: a short one, then the window's own state again.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (st, v) = s.post(&format!("/api/windows/{id}/override"), &t, json!({"desired": "up", "until": soon})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let took = wait_state(&s, &c, "app", "exited", Duration::from_secs(6)).await;
    println!("override expired → stack stopped {} ms later", took.as_millis());
    let (_, v) = s.get(&format!("/api/windows/{id}"), &t).await;
    assert_eq!((&v["override"], v["state"]["desired"].as_str()), (&Value::Null, Some("down")), "{v}");
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    s.post(&format!("/api/windows/{id}/override"), &t, json!({"desired": "up", "until": until})).await;
    wait_state(&s, &c, "app", "running", Duration::from_secs(5)).await;

    // A stop through DockNap on a windowed target becomes an override, not drift.
    let (st, r) = s.post(&format!("/api/stacks/{}/stop", c.project), &t, json!({})).await;
    assert_eq!((st, &r["ok"]), (StatusCode::OK, &json!(true)), "{r}");
    let (_, v) = s.get(&format!("/api/windows/{id}"), &t).await;
    assert_eq!(v["override"]["desired"], "down", "{v}");
    assert_eq!(v["override"]["by"], "admin");

    // down_only: at "up" the stack is started, but a stop in up time stays.
    let (st, _) = s.call(Method::PUT, &format!("/api/windows/{id}"), Some(&t), Some(json!({"spec": "always"}))).await;
    assert_eq!(st, StatusCode::OK);
    wait_state(&s, &c, "app", "running", Duration::from_secs(5)).await;
    docker(&["stop", "-t", "1", &c.container("app")]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(c.state("app"), "exited", "down_only leaves a stop during up time alone");
}

#[tokio::test]
async fn a_start_during_down_time_is_left_running_for_its_grace_then_stopped() {
    let c = Compose::up("wingr", &service("app", ""));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &c.project, "running").await;
    create_window(
        &s,
        &t,
        json!({"target_type": "container", "target_id": c.container("app"), "spec": "never", "grace": "3s"}),
    )
    .await;
    wait_state(&s, &c, "app", "exited", Duration::from_secs(3)).await;

    docker(&["start", &c.container("app")]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.state("app"), "running", "within its grace; log:\n{}", s.log_text());
    let took = wait_state(&s, &c, "app", "exited", Duration::from_secs(6)).await;
    println!("drift stopped {} ms after the 1.5 s check (grace 3 s)", took.as_millis());
}

#[tokio::test]
async fn window_validation_conflicts_and_preview() {
    let s = Server::start();
    let t = s.admin_token().await;
    let bad = [
        ("Mon 7-19", "invalid_window"),
        ("Fri 22:00-22:00", "invalid_window"),
        ("Mun 07:00-19:00", "invalid_window"),
        ("Mon 24:30-25:00", "invalid_window"),
    ];
    for (spec, code) in bad {
        let (st, v) = s.post("/api/windows", &t, json!({"target_type": "stack", "target_id": "x", "spec": spec})).await;
        assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{spec}: {v}");
    }
    let (st, v) = s
        .post("/api/windows", &t, json!({"target_type": "stack", "target_id": "x", "spec": "always", "grace": "soon"}))
        .await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_window")), "{v}");
    let (st, v) = s
        .post(
            "/api/windows",
            &t,
            json!({"target_type": "stack", "target_id": "x", "spec": "always", "timezone": "Mars/Base"}),
        )
        .await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_timezone")), "{v}");

    let body = json!({"target_type": "stack", "target_id": "later", "spec": "Mon-Fri 07:00-19:00", "timezone": "Europe/Berlin"});
    let (st, dry) = s.call(Method::POST, "/api/windows?dry_run=true", Some(&t), Some(body.clone())).await;
    assert_eq!((st, dry["id"].as_i64()), (StatusCode::OK, Some(0)), "a dry run stores nothing: {dry}");
    assert_eq!(api_made(&s.get("/api/windows", &t).await.1), Vec::<Value>::new());
    let w = create_window(&s, &t, body.clone()).await;
    assert_eq!((w["grace"].as_str(), w["timezone"].as_str()), (Some("15m"), Some("Europe/Berlin")));
    assert!(w["state"]["next_change"].is_string(), "{w}");
    let (st, v) = s.post("/api/windows", &t, body).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("window_conflict")), "{v}");

    // Conflicts: a schedule that stops the target during the window's up
    // time, and a start in the same minute as that stop.
    let (st, stop) = s.post("/api/schedules", &t, json!({"target_type": "stack", "target_id": "later", "action": "stop", "cron": "0 12 * * 1-5", "timezone": "Europe/Berlin"})).await;
    assert_eq!(st, StatusCode::CREATED, "{stop}");
    assert_eq!(stop["conflicts"][0]["kind"], "against_window", "{stop}");
    assert_eq!(stop["conflicts"][0]["with_id"], w["id"]);
    assert_eq!(stop["host"], "local");
    let start = json!({"target_type": "stack", "target_id": "later", "action": "start", "cron": "0 12 * * 1", "timezone": "Europe/Berlin"});
    let (st, dry) = s.call(Method::POST, "/api/schedules?dry_run=true", Some(&t), Some(start)).await;
    assert_eq!(st, StatusCode::OK, "{dry}");
    assert!(
        dry["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "opposing_schedules" && c["with_id"] == stop["id"]),
        "{dry}"
    );
    assert_eq!(api_made(&s.get("/api/schedules", &t).await.1).len(), 1, "the dry run stored nothing");
    let (_, listed) = s.get(&format!("/api/windows/{}", w["id"]), &t).await;
    assert_eq!(listed["conflicts"][0]["with_id"], stop["id"], "{listed}");

    let (st, p) = s
        .post(
            "/api/windows/preview",
            &t,
            json!({
                "spec": "Fri 22:00-06:00", "timezone": "Europe/Berlin",
                "at": ["2026-12-04T21:30:00Z", "2026-12-05T04:59:00Z", "2026-12-05T05:00:00Z"],
                "after": "2026-12-01T00:00:00Z", "count": 2
            }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(
        p["states"].as_array().unwrap().iter().map(|s| s["desired"].as_str().unwrap()).collect::<Vec<_>>(),
        ["up", "up", "down"]
    );
    assert_eq!(
        p["transitions"],
        json!([
            {"at": "2026-12-04T21:00:00Z", "desired": "up"},
            {"at": "2026-12-05T05:00:00Z", "desired": "down"},
        ])
    );
}

#[tokio::test]
async fn bulk_acts_on_every_good_target_and_reports_the_others() {
    let a = Compose::up("bulka", &service("app", ""));
    let b = Compose::up(
        "bulkb",
        &format!("{}{}", service("app", ""), service("keep", "    labels:\n      docknap.exclude: \"true\"\n")),
    );
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &b.project, "running").await;
    let (st, v) = s
        .post(
            "/api/bulk",
            &t,
            json!({"action": "stop", "targets": [
                {"target_type": "stack", "target_id": a.project},
                {"target_type": "stack", "target_id": b.project},
                {"target_type": "stack", "target_id": "no-such-stack"},
                {"target_type": "volume", "target_id": "x"},
            ]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let results = v["results"].as_array().unwrap();
    let oks: Vec<bool> = results.iter().map(|r| r["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [true, true, false, false], "{v}");
    assert!(results[2]["error"].as_str().unwrap().contains("no stack named"), "{v}");
    assert_eq!((a.state("app"), b.state("app"), b.state("keep")), ("exited".into(), "exited".into(), "running".into()));
    let (_, audit) = s.get(&format!("/api/audit?target_id={}", a.project), &t).await;
    assert_eq!(audit["entries"][0]["action"], "stop", "each target is audited: {audit}");
}

#[tokio::test]
async fn restart_always_containers_the_engine_brings_back_during_down_time_are_stopped_again() {
    let mut engine = SecondEngine::start();
    let busy = "trap 'exit 0' TERM; while :; do sleep 0.2; done";
    engine.docker(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "--network",
        "none",
        &test_image(),
        "sh",
        "-c",
        busy,
    ]);
    let s = Server::start_with(&[("DOCKER_HOST", &engine.host())]);
    let t = s.admin_token().await;
    create_window(&s, &t, json!({"target_type": "container", "target_id": "always", "spec": "never", "grace": "0"}))
        .await;
    s.wait_for("the window's stop", Duration::from_secs(5), || async {
        (engine.state("always") == "exited").then_some(())
    })
    .await;

    // The engine restarts and, per its restart policy, brings the container back.
    engine.restart();
    let begun = Instant::now();
    let stops = || async {
        let (_, page) = s.get("/api/audit?actor=window&action=stop", &t).await;
        let n = page["entries"].as_array().map_or(0, Vec::len);
        (n >= 2 && engine.state("always") == "exited").then_some(())
    };
    s.wait_for("the window to stop it again", Duration::from_secs(30), stops).await;
    println!("engine back → container stopped again in {} ms", begun.elapsed().as_millis());
    let (_, health) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health["docker"], "ok");
}
