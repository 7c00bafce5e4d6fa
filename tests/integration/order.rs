//! Order across stacks (`docknap.depends_on`, `docknap.settle`) against the
//! real engine: a bulk start goes db → app → proxy with the settle time
//! observed, a bulk stop in reverse, and a cycle is reported, not acted on.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// A one-service stack with a quick health check and these labels.
fn stack(project: &str, labels: &[(&str, &str)]) -> Compose {
    let labels: String = labels.iter().map(|(k, v)| format!("      {k}: \"{v}\"\n")).collect();
    let extra = format!(
        "    network_mode: none\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 1s\n      start_period: 1s\n    labels:\n{labels}"
    );
    Compose::up_named(project.to_string(), &service("svc", &extra))
}

fn times(c: &Compose) -> (DateTime<Utc>, DateTime<Utc>) {
    let both = docker(&["inspect", "-f", "{{.State.StartedAt}} {{.State.FinishedAt}}", &c.container("svc")]);
    let (a, b) = both.split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

async fn bulk(s: &Server, t: &str, action: &str, stacks: &[&Compose]) -> Vec<Value> {
    let targets: Vec<Value> = stacks.iter().map(|c| json!({"target_type": "stack", "target_id": c.project})).collect();
    let (st, v) = s.post("/api/bulk", t, json!({"action": action, "targets": targets})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_bulk_start_follows_depends_on_with_the_settle_time_and_a_stop_goes_in_reverse() {
    let (db_name, app_name, proxy_name) = (unique("db"), unique("app"), unique("proxy"));
    let db = stack(&db_name, &[("docknap.settle", "2s")]);
    let app = stack(&app_name, &[("docknap.depends_on", &db_name)]);
    let proxy = stack(&proxy_name, &[("docknap.depends_on", &app_name)]);
    let s = Server::start();
    let t = s.admin_token().await;
    for c in [&db, &app, &proxy] {
        s.wait_stack(&t, &c.project, "running").await;
    }

    // Given in the wrong order on purpose.
    let results = bulk(&s, &t, "stop", &[&db, &app, &proxy]).await;
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
    let (db_stop, app_stop, proxy_stop) = (times(&db).1, times(&app).1, times(&proxy).1);
    assert!(proxy_stop <= app_stop && app_stop <= db_stop, "stopped proxy {proxy_stop}, app {app_stop}, db {db_stop}");

    let results = bulk(&s, &t, "start", &[&proxy, &app, &db]).await;
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
    assert_eq!(results[0]["target_id"], proxy.project, "results in the order given");
    let (db_start, app_start, proxy_start) = (times(&db).0, times(&app).0, times(&proxy).0);
    println!(
        "bulk start: db {db_start}, app {app_start} (+{} ms), proxy {proxy_start} (+{} ms)",
        (app_start - db_start).num_milliseconds(),
        (proxy_start - app_start).num_milliseconds()
    );
    assert!(
        app_start - db_start >= chrono::Duration::seconds(2),
        "db's 2 s settle before app: db {db_start}, app {app_start}"
    );
    assert!(proxy_start > app_start, "app before proxy");
}

#[tokio::test]
async fn a_depends_on_cycle_is_reported_on_its_stacks_and_the_others_still_act() {
    let (x_name, y_name) = (unique("cyc-x"), unique("cyc-y"));
    let x = stack(&x_name, &[("docknap.depends_on", &y_name)]);
    let y = stack(&y_name, &[("docknap.depends_on", &x_name)]);
    let free = stack(&unique("free"), &[("docknap.settle", "0s")]);
    let s = Server::start();
    let t = s.admin_token().await;
    for c in [&x, &y, &free] {
        s.wait_stack(&t, &c.project, "running").await;
    }
    let results = bulk(&s, &t, "restart", &[&x, &y, &free]).await;
    for r in &results[..2] {
        let error = r["error"].as_str().unwrap_or_default();
        assert!(r["ok"] == false && error.contains("docknap.depends_on has a cycle"), "{r}");
    }
    assert_eq!(results[2]["ok"], true, "{}", results[2]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((x.state("svc"), y.state("svc")), ("running".into(), "running".into()), "left alone");
}

#[tokio::test]
async fn a_window_pass_that_brings_up_several_stacks_starts_dependencies_first() {
    let (db_name, app_name) = (unique("wdb"), unique("wapp"));
    let db = stack(&db_name, &[("docknap.settle", "1s")]);
    let app = stack(&app_name, &[("docknap.depends_on", &db_name)]);
    let mut s = Server::start();
    let t = s.admin_token().await;
    // The app's window first: created in that order, a pass would meet it first.
    for c in [&app, &db] {
        s.wait_stack(&t, &c.project, "running").await;
        let body = json!({"target_type": "stack", "target_id": c.project, "spec": "always"});
        assert_eq!(s.post("/api/windows", &t, body).await.0, StatusCode::CREATED);
    }
    // Both down while DockNap is away (killed: a container that exited 0
    // with no restart policy would be a finished one-shot job, left down):
    // its first pass brings both up at once.
    s.terminate();
    for c in [&app, &db] {
        docker(&["kill", &c.container("svc")]);
    }
    s.spawn();
    let t = s.admin_token().await;
    for c in [&db, &app] {
        s.wait_for(&format!("{} up again", c.project), Duration::from_secs(30), || async {
            (c.state("svc") == "running").then_some(())
        })
        .await;
    }
    let (db_start, app_start) = (times(&db).0, times(&app).0);
    println!("window pass: db {db_start}, app {app_start} (+{} ms)", (app_start - db_start).num_milliseconds());
    assert!(
        app_start - db_start >= chrono::Duration::seconds(1),
        "db healthy and settled before app: db {db_start}, app {app_start}"
    );
    drop(t);
}
