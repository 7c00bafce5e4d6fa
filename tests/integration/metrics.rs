//! `GET /metrics`, read by the reference parser (PyPI `prometheus_client`,
//! installed by scripts/test-env.sh next to compose in the venv).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

/// The venv's python: beside `DOCKNAP_COMPOSE`, else the repository's .venv.
fn python() -> PathBuf {
    std::env::var_os("DOCKNAP_COMPOSE")
        .map(PathBuf::from)
        .and_then(|c| Some(c.parent()?.join("python")))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;

/// Families by name (`{type, samples: [[name, labels, value]]}`); panics when
/// the reference parser refuses the text.
fn parse(text: &str) -> BTreeMap<String, Value> {
    let mut child = Command::new(python())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the venv's python (scripts/test-env.sh installs prometheus_client)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused /metrics: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` whose labels include `labels` (0 when absent).
fn sample(families: &BTreeMap<String, Value>, name: &str, labels: Value) -> f64 {
    let wanted = labels.as_object().unwrap();
    families
        .values()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .filter(|s| s[0] == name && wanted.iter().all(|(k, v)| s[1][k] == *v))
        .map(|s| s[2].as_f64().unwrap())
        .sum()
}

async fn scrape(s: &Server, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = s.http.get(s.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (r.status(), ct, r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_need_a_token_or_api_key_unless_public_and_parse_with_every_family() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let viewer = s.user_token(&admin, "viewer").await;
    let (st, _, body) = scrape(&s, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    let (st, _, _) = scrape(&s, Some("dnp_not-a-key")).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let key = crate::api_keys::make_key(&s, &viewer, json!({"name": "prometheus"})).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    for token in [&viewer, &key] {
        let (st, ct, text) = scrape(&s, Some(token)).await;
        assert_eq!((st, ct.as_str()), (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8"));
        let families = parse(&text);
        for (name, kind) in [
            ("docknap_schedule_runs", "counter"),
            ("docknap_schedule_lateness_seconds", "histogram"),
            ("docknap_action_duration_seconds", "histogram"),
            ("docknap_containers", "gauge"),
            ("docknap_stacks", "gauge"),
            ("docknap_host_up", "gauge"),
            ("docknap_window_desired_up", "gauge"),
            ("docknap_notifications", "counter"),
            ("docknap_login_failures", "counter"),
        ] {
            assert_eq!(families.get(name).map(|f| f["type"].as_str()), Some(Some(kind)), "{name} in {text}");
        }
        assert_eq!(sample(&families, "docknap_host_up", json!({"host": "local"})), 0.0, "the engine is unreachable");
        assert_eq!(sample(&families, "docknap_notifications_total", json!({"ok": "true"})), 0.0);
    }

    // The example dashboard uses only families that exist.
    let dashboard =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana/docknap.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let families = parse(&scrape(&s, Some(&key)).await.2);
    let mut used = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("docknap_"))
            {
                let family = ["_bucket", "_total"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
                assert!(families.contains_key(family), "the dashboard's {name} (in {expr}) is not exported");
                used += 1;
            }
        }
    }
    assert!(used >= 9, "{used}");

    let login =
        |pw: &str| s.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "admin", "password": pw})));
    let before = sample(&parse(&scrape(&s, Some(&key)).await.2), "docknap_login_failures_total", json!({}));
    assert_eq!(login("wrong-password").await.0, StatusCode::UNAUTHORIZED);
    let after = sample(&parse(&scrape(&s, Some(&key)).await.2), "docknap_login_failures_total", json!({}));
    assert_eq!(after, before + 1.0, "a failed login counts");

    let public = Server::start_with(&[NO_ENGINE, ("DOCKNAP_METRICS", "public")]);
    let (st, _, text) = scrape(&public, None).await;
    assert_eq!(st, StatusCode::OK);
    parse(&text);
    let off = Server::start_with(&[NO_ENGINE, ("DOCKNAP_METRICS", "off")]);
    let token = off.admin_token().await;
    let (st, _, _) = scrape(&off, Some(&token)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Containers by state and stacks by status on `local`, from the API.
async fn view_counts(s: &Server, t: &str) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let count = |list: Value, field: &str| {
        let mut counts = BTreeMap::new();
        for item in list.as_array().unwrap().iter().filter(|i| i["host"] == "local") {
            *counts.entry(item[field].as_str().unwrap().to_string()).or_insert(0.0) += 1.0;
        }
        counts
    };
    (count(s.get("/api/containers", t).await.1, "state"), count(s.get("/api/stacks", t).await.1, "status"))
}

fn second_ahead(secs: i64) -> DateTime<Utc> {
    (Utc::now() + chrono::Duration::seconds(secs) + chrono::Duration::milliseconds(999)).with_nanosecond(0).unwrap()
}

#[tokio::test]
async fn counters_and_gauges_move_when_a_schedule_fires_and_an_action_runs() {
    let stack = Compose::up("metrics", &(service("a", "") + &service("b", "")));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &stack.project, "running").await;
    let metrics = || async { parse(&scrape(&s, Some(&t)).await.2) };

    let m = metrics().await;
    assert_eq!(sample(&m, "docknap_host_up", json!({"host": "local"})), 1.0);
    assert!(sample(&m, "docknap_stacks", json!({"host": "local", "status": "running"})) >= 1.0);
    assert!(sample(&m, "docknap_containers", json!({"host": "local", "state": "running"})) >= 2.0);
    let runs =
        |m: &BTreeMap<String, Value>| sample(m, "docknap_schedule_runs_total", json!({"action": "stop", "ok": "true"}));
    let late = |m: &BTreeMap<String, Value>| sample(m, "docknap_schedule_lateness_seconds_count", json!({}));
    let stack_stops = |m: &BTreeMap<String, Value>| {
        sample(m, "docknap_action_duration_seconds_count", json!({"target_type": "stack", "action": "stop"}))
    };
    let (runs0, late0, stops0) = (runs(&m), late(&m), stack_stops(&m));

    // A window over the stack that wants it up all the time.
    let (st, w) = s
        .post(
            "/api/windows",
            &t,
            json!({"target_type": "stack", "target_id": stack.project, "spec": "always", "enforce": "down_only"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{w}");
    let m = metrics().await;
    let labels = json!({"host": "local", "target_type": "stack", "target_id": stack.project});
    assert_eq!(sample(&m, "docknap_window_desired_up", labels), 1.0);
    s.call(Method::DELETE, &format!("/api/windows/{}", w["id"]), Some(&t), None).await;

    let due = second_ahead(2);
    let cron = format!("{} {} {} * * *", due.second(), due.minute(), due.hour());
    let (st, v) = s.post("/api/schedules", &t, json!({"target_type": "stack", "target_id": stack.project, "action": "stop", "cron": cron, "timezone": "UTC"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let m = s
        .wait_for("the fire to be counted", Duration::from_secs(15), || async {
            let m = metrics().await;
            (runs(&m) == runs0 + 1.0).then_some(m)
        })
        .await;
    assert_eq!(late(&m), late0 + 1.0, "its lateness observed");
    assert!(
        sample(&m, "docknap_schedule_lateness_seconds_bucket", json!({"le": "5"})) >= 1.0,
        "fired within 5 s of due"
    );
    assert_eq!(stack_stops(&m), stops0 + 1.0, "the stop's duration observed");
    // The gauges are the views' counts (other tests share this engine: compared
    // with the API's lists read just before and after the scrape).
    s.wait_stack(&t, &stack.project, "stopped").await;
    s.wait_for("the gauges to match the lists", Duration::from_secs(10), || async {
        let before = view_counts(&s, &t).await;
        let m = metrics().await;
        let after = view_counts(&s, &t).await;
        let matches = |(family, label): (&str, &str), counts: &BTreeMap<String, f64>| {
            counts.iter().all(|(v, n)| sample(&m, family, json!({"host": "local", label: v})) == *n)
        };
        (before == after
            && matches(("docknap_containers", "state"), &before.0)
            && matches(("docknap_stacks", "status"), &before.1))
        .then_some(())
    })
    .await;

    // A manual action is timed too.
    let name = stack.container("a");
    let starts = |m: &BTreeMap<String, Value>| {
        sample(m, "docknap_action_duration_seconds_count", json!({"target_type": "container", "action": "start"}))
    };
    let before = starts(&metrics().await);
    let (st, v) = s.post(&format!("/api/containers/{name}/start"), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(starts(&metrics().await), before + 1.0);
}
