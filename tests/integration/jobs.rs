//! Jobs against the real engine: `run` (exit codes, log tail, time limit),
//! one-time schedules across a restart, sequences in order and halting.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// A created (not started) container that is removed when the test ends.
struct Job(String);

impl Job {
    fn create(prefix: &str, script: &str) -> Job {
        require_docker();
        let name = unique(prefix);
        docker(&["create", "--name", &name, "--network", "none", &test_image(), "sh", "-c", script]);
        Job(name)
    }

    fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.0])
    }
}

/// When the engine says the container last started and last stopped.
fn run_times(name: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let both = docker(&["inspect", "-f", "{{.State.StartedAt}} {{.State.FinishedAt}}", name]);
    let (a, b) = both.split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = docker_try(&["rm", "-f", &self.0]);
    }
}

async fn wait_listed(s: &Server, t: &str, name: &str) {
    s.wait_for(&format!("{name} listed"), Duration::from_secs(10), || async {
        (s.get(&format!("/api/containers/{name}"), t).await.0 == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn run_reports_the_exit_code_and_the_log_tail_and_fails_on_a_non_zero_exit() {
    let good = Job::create("job-ok", "echo preparing; echo all done");
    let bad = Job::create("job-bad", "echo working; sleep 0.2; echo 'disk full' >&2; exit 3");
    let s = Server::start();
    let t = s.admin_token().await;
    wait_listed(&s, &t, &good.0).await;
    wait_listed(&s, &t, &bad.0).await;

    let (st, r) = s.post(&format!("/api/containers/{}/run", good.0), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!((r["ok"].as_bool(), r["exit_code"].as_i64()), (Some(true), Some(0)), "{r}");
    assert_eq!(r["log_tail"], json!(["preparing", "all done"]), "{r}");
    assert!(r["duration_ms"].as_u64().is_some(), "{r}");

    let (st, r) = s.post(&format!("/api/containers/{}/run", bad.0), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!((r["ok"].as_bool(), r["exit_code"].as_i64()), (Some(false), Some(3)), "{r}");
    assert_eq!(r["results"][0]["error"], "exited with code 3");
    assert_eq!(r["log_tail"], json!(["working", "disk full"]), "{r}");

    // Audited with the code and the tail; a stack has no single exit code.
    let (_, page) = s.get(&format!("/api/audit?action=run&target_id={}", bad.0), &t).await;
    let entry = &page["entries"][0];
    assert_eq!((entry["ok"].as_bool(), entry["details"]["exit_code"].as_i64()), (Some(false), Some(3)), "{page}");
    assert_eq!(entry["details"]["log_tail"][1], "disk full");
    let (st, v) = s.post("/api/stacks/anything/run", &t, json!({})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")), "{v}");
}

#[tokio::test]
async fn a_run_past_its_time_limit_is_stopped_and_fails() {
    let slow = Job::create("job-slow", "trap 'exit 0' TERM; echo started; sleep 60 & wait");
    let s = Server::start();
    let t = s.admin_token().await;
    wait_listed(&s, &t, &slow.0).await;
    let (st, v) = s.post(&format!("/api/containers/{}/run?timeout=soon", slow.0), &t, json!({})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let began = std::time::Instant::now();
    let (st, r) = s.post(&format!("/api/containers/{}/run?timeout=2s", slow.0), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert!(began.elapsed() < Duration::from_secs(20), "{:?}", began.elapsed());
    assert_eq!(r["ok"], false);
    let error = r["results"][0]["error"].as_str().unwrap();
    assert!(error.contains("did not exit within 2s; stopped it"), "{error}");
    assert_eq!(r["exit_code"], Value::Null);
    assert_eq!(slow.inspect("{{.State.Status}}"), "exited");
}

#[tokio::test]
async fn a_one_time_schedule_fires_once_across_a_restart_and_is_then_disabled() {
    let c = Compose::up("once", &service("app", ""));
    let mut s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &c.project, "running").await;
    let at = Utc::now() + chrono::Duration::seconds(6);
    let body = json!({"target_type": "stack", "target_id": c.project, "action": "stop", "at": at.to_rfc3339()});
    let (st, v) = s.post("/api/schedules", &t, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!((v["cron"].as_str(), v["enabled"].as_bool()), (None, Some(true)), "{v}");
    let id = v["id"].as_i64().unwrap();

    // DockNap restarts before the instant; the schedule is in the database.
    s.terminate();
    s.spawn();
    let t = s.admin_token().await;
    let schedule = s
        .wait_for("the one-time stop, then its schedule disabled", Duration::from_secs(20), || async {
            let (_, v) = s.get(&format!("/api/schedules/{id}"), &t).await;
            (v["enabled"] == false).then_some(v)
        })
        .await;
    assert_eq!(schedule["next_run"], Value::Null);
    assert_eq!(schedule["last_run"]["ok"], true, "{schedule}");
    assert_eq!(c.state("app"), "exited");
    let (_, page) = s.get(&format!("/api/audit?action=stop&target_id={}", c.project), &t).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "once: {page}");
}

#[tokio::test]
async fn a_sequence_runs_its_steps_one_after_another_and_stops_at_a_failure() {
    let c = Compose::up("seq", &service("app", ""));
    let backup = Job::create("job-backup", "sleep 1; echo backed up");
    let check = Job::create("job-check", "sleep 1; echo checked");
    let broken = Job::create("job-broken", "echo broken >&2; exit 4");
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &c.project, "running").await;
    for j in [&backup, &check, &broken] {
        wait_listed(&s, &t, &j.0).await;
    }
    let steps = |middle: &str| {
        json!([
            {"target_type": "stack", "target_id": c.project, "action": "stop"},
            {"target_type": "container", "target_id": backup.0, "action": "run"},
            {"target_type": "container", "target_id": middle, "action": "run"},
            {"target_type": "stack", "target_id": c.project, "action": "start"},
        ])
    };
    let body = json!({"target_type": "sequence", "cron": "0 3 * * *", "steps": steps(&check.0), "timeout": "1m"});
    let (st, v) = s.post("/api/schedules", &t, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["on_failure"].as_str(), v["timeout"].as_str(), v["target_type"].as_str()),
        (Some("stop"), Some("1m"), Some("sequence"))
    );
    let (st, r) = s.post(&format!("/api/schedules/{}/run", v["id"]), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    let steps_out = r["steps"].as_array().unwrap();
    assert_eq!(steps_out.len(), 4);
    assert_eq!(steps_out[1]["log_tail"], json!(["backed up"]));

    // The engine's own timestamps: each step began after the previous ended.
    let ((app_started, app_stopped), backup_ran, check_ran) =
        (run_times(&c.container("app")), run_times(&backup.0), run_times(&check.0));
    assert!(
        app_stopped <= backup_ran.0,
        "the app stopped ({app_stopped}) before the backup started ({})",
        backup_ran.0
    );
    assert!(backup_ran.1 <= check_ran.0, "backup ({backup_ran:?}), then check ({check_ran:?})");
    assert!(check_ran.1 <= app_started, "check ({check_ran:?}), then the app started again ({app_started})");
    assert_eq!(c.state("app"), "running");

    // A failing step halts the rest: the app stays stopped.
    let body = json!({"target_type": "sequence", "cron": "0 3 * * *", "steps": steps(&broken.0), "on_failure": "stop"});
    let (_, v) = s.post("/api/schedules", &t, body).await;
    let (st, r) = s.post(&format!("/api/schedules/{}/run", v["id"]), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let ok: Vec<bool> = r["steps"].as_array().unwrap().iter().map(|s| s["ok"].as_bool().unwrap()).collect();
    assert_eq!(ok, [true, true, false, false], "{r}");
    assert_eq!(r["steps"][2]["exit_code"], 4);
    assert!(r["steps"][3]["results"][0]["error"].as_str().unwrap().contains("skipped"), "{r}");
    assert_eq!(c.state("app"), "exited", "the start after the failure never ran");
    let (_, page) = s.get("/api/audit?action=sequence", &t).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2, "{page}");
}
