//! Lifecycle actions and schedules against the real engine: depends_on
//! order, healthy-wait, idempotency, per-target serialisation, scheduled
//! runs, the delete/disable race, crash recovery, and self-protection with
//! DockNap's own binary in a FROM scratch container. Two tests only measure
//! (fire lateness, a 20-container stack next to compose) and print.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

// ---- helpers ----

async fn act(s: &Server, t: &str, kind: &str, name: &str, action: &str) -> (StatusCode, Value) {
    let resp = s.http.post(s.url(&format!("/api/{kind}/{name}/{action}"))).bearer_auth(t).send().await;
    let resp = resp.unwrap_or_else(|e| panic!("{action} {kind}/{name}: {e}; server log:\n{}", s.log_text()));
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// An action that must succeed for every container.
async fn act_ok(s: &Server, t: &str, kind: &str, name: &str, action: &str) -> Value {
    let (st, v) = act(s, t, kind, name, action).await;
    assert_eq!(st, StatusCode::OK, "{action} {kind}/{name}: {v}");
    assert_eq!(v["ok"], true, "{action} {kind}/{name}: {v}");
    v
}

fn inspect(container: &str, field: &str) -> String {
    docker(&["inspect", "-f", &format!("{{{{{field}}}}}"), container])
}

fn time_of(container: &str, field: &str) -> DateTime<Utc> {
    let raw = inspect(container, field);
    DateTime::parse_from_rfc3339(&raw).unwrap_or_else(|e| panic!("{container} {field} = {raw}: {e}")).to_utc()
}

async fn create_schedule(s: &Server, t: &str, body: Value) -> Value {
    let (st, v) = s.post("/api/schedules", t, body.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{body}: {v}");
    v
}

async fn schedule(s: &Server, t: &str, id: &Value) -> Value {
    let (st, v) = s.get(&format!("/api/schedules/{id}"), t).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn wait_last_run(s: &Server, t: &str, id: &Value, timeout: Duration) -> Value {
    s.wait_for(&format!("schedule {id} to run"), timeout, || async {
        let v = schedule(s, t, id).await;
        (!v["last_run"].is_null()).then_some(v)
    })
    .await
}

/// Audit entries (newest first) matching `query`, e.g. `target_id=x`.
async fn audit(s: &Server, t: &str, query: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/api/audit?limit=500&{query}"), t).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["entries"].as_array().unwrap().clone()
}

fn scheduled_runs_of(entries: &[Value], schedule_id: &Value) -> usize {
    entries
        .iter()
        .filter(|e| e["details"]["trigger"] == "scheduled" && &e["details"]["schedule_id"] == schedule_id)
        .count()
}

/// A six-field cron that fires once a day at `at`'s second, in UTC.
fn cron_at(at: DateTime<Utc>) -> String {
    format!("{} {} {} * * *", at.second(), at.minute(), at.hour())
}

/// A whole second at least `secs` from now.
fn second_ahead(secs: i64) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::seconds(secs) + chrono::Duration::milliseconds(999);
    t.with_nanosecond(0).unwrap()
}

async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// `due` and `late_ms` of every "schedule fired" line in a server log.
fn fires(log: &str) -> Vec<(DateTime<Utc>, i64)> {
    let field = |line: &str, name: &str| Some(line.split(name).nth(1)?.split_whitespace().next()?.to_string());
    log.lines()
        .filter(|l| l.contains("schedule fired"))
        .filter_map(|l| Some((field(l, " due=")?.parse().ok()?, field(l, " late_ms=")?.parse().ok()?)))
        .collect()
}

fn fire_lateness(log: &str) -> Vec<i64> {
    fires(log).into_iter().map(|(_, late)| late).collect()
}

/// A busybox service that ignores SIGTERM (a shell as PID 1 without a
/// trap), so a stop takes its whole grace period.
fn slow_stop_service(name: &str, grace: &str) -> String {
    format!(
        "  {name}:\n    image: {}\n    command: [\"sh\", \"-c\", \"while :; do sleep 1; done\"]\n    stop_grace_period: {grace}\n",
        test_image()
    )
}

fn depends(on: &[&str]) -> String {
    let list: Vec<String> = on.iter().map(|d| format!("      {d}:\n        condition: service_started\n")).collect();
    format!("    depends_on:\n{}", list.concat())
}

// ---- actions ----

#[tokio::test]
async fn stack_stops_dependents_first_starts_dependencies_first_and_restart_does_both() {
    // db <- api <- web, and worker beside api on db.
    let yaml = service("db", "")
        + &service("api", &depends(&["db"]))
        + &service("worker", &depends(&["db"]))
        + &service("web", &depends(&["api", "worker"]));
    let proj = Compose::up("order", &yaml);
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;
    let c = |svc: &str| proj.container(svc);

    let v = act_ok(&s, &t, "stacks", &proj.project, "stop").await;
    assert_eq!(v["results"].as_array().unwrap().len(), 4, "{v}");
    let fin = |svc: &str| time_of(&c(svc), ".State.FinishedAt");
    assert!(fin("web") < fin("api") && fin("web") < fin("worker"), "web stops before what it needs");
    assert!(fin("api") < fin("db") && fin("worker") < fin("db"), "db stops last");
    s.wait_stack(&t, &proj.project, "stopped").await;

    act_ok(&s, &t, "stacks", &proj.project, "start").await;
    let st = |svc: &str| time_of(&c(svc), ".State.StartedAt");
    assert!(st("db") < st("api") && st("db") < st("worker"), "db starts first");
    assert!(st("api") < st("web") && st("worker") < st("web"), "web starts last");
    s.wait_stack(&t, &proj.project, "running").await;

    // Restart: the whole ordered stop, then the whole ordered start.
    let before = Utc::now();
    let v = act_ok(&s, &t, "stacks", &proj.project, "restart").await;
    assert_eq!(v["action"], "restart");
    assert!(fin("web") > before && fin("web") < fin("api") && fin("api") < fin("db"), "restart stops in order");
    assert!(fin("db") < st("db"), "nothing starts before everything stopped");
    assert!(st("db") < st("api") && st("api") < st("web"), "restart starts in order");
    s.wait_stack(&t, &proj.project, "running").await;
}

#[tokio::test]
async fn start_waits_for_healthy_dependencies_and_names_the_unhealthy_one() {
    // db becomes healthy about 1 s after each start; app needs it healthy.
    let check = "    healthcheck:\n      test: [\"CMD\", \"sh\", \"-c\", \"test -f /tmp/ok\"]\n      interval: 500ms\n      retries: 30\n";
    let db = format!(
        "  db:\n    image: {}\n    command: [\"sh\", \"-c\", \"rm -f /tmp/ok; (sleep 1; touch /tmp/ok) & trap 'exit 0' TERM; while :; do sleep 0.2; done\"]\n{check}",
        test_image()
    );
    let healthy_dep = "    depends_on:\n      db:\n        condition: service_healthy\n";
    let good = Compose::up("healthy", &(db + &service("app", healthy_dep)));

    // bad is healthy the first time (so compose can bring the stack up) and
    // unhealthy at every later start, on its first probe (retries: 1).
    let bad_cmd = "if [ -f /tmp/ran ]; then rm -f /tmp/ok; else touch /tmp/ran /tmp/ok; fi; trap 'exit 0' TERM; while :; do sleep 0.2; done";
    let bad = format!(
        concat!(
            "  db:\n    image: {}\n    command: [\"sh\", \"-c\", \"{}\"]\n",
            "    healthcheck:\n      test: [\"CMD\", \"sh\", \"-c\", \"test -f /tmp/ok\"]\n      interval: 300ms\n      retries: 1\n",
        ),
        test_image(),
        bad_cmd
    );
    let broken = Compose::up("unhealthy", &(bad + &service("app", healthy_dep)));

    let s = Server::start();
    let t = s.admin_token().await;
    for p in [&good, &broken] {
        s.wait_stack(&t, &p.project, "running").await;
        act_ok(&s, &t, "stacks", &p.project, "stop").await;
    }

    act_ok(&s, &t, "stacks", &good.project, "start").await;
    let db_started = time_of(&good.container("db"), ".State.StartedAt");
    let app_started = time_of(&good.container("app"), ".State.StartedAt");
    assert_eq!(inspect(&good.container("db"), ".State.Health.Status"), "healthy");
    // The probe that turned db healthy ended before app started.
    let health: Value = serde_json::from_str(&inspect(&good.container("db"), "json .State.Health")).unwrap();
    let turned_healthy = health["Log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ExitCode"] == 0)
        .filter_map(|p| DateTime::parse_from_rfc3339(p["End"].as_str()?).ok())
        .map(|t| t.to_utc())
        .filter(|t| *t > db_started)
        .min()
        .expect("a passing probe in the health log");
    assert!(app_started >= turned_healthy, "app started {app_started}, db healthy at {turned_healthy}");
    assert!(app_started - db_started >= chrono::Duration::milliseconds(900), "app waited for db's health");

    let begun = Instant::now();
    let (st, v) = act(&s, &t, "stacks", &broken.project, "start").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(begun.elapsed() < Duration::from_secs(20), "an unhealthy dependency fails fast");
    assert_eq!(v["ok"], false, "{v}");
    let result =
        |c: String| v["results"].as_array().unwrap().iter().find(|r| r["container"] == c.as_str()).cloned().unwrap();
    let db = result(broken.container("db"));
    assert_eq!(db["ok"], false);
    assert!(db["error"].as_str().unwrap().contains("unhealthy"), "{db}");
    let app = result(broken.container("app"));
    assert_eq!(app["ok"], false);
    assert!(app["error"].as_str().unwrap().contains("dependency 'db' is not healthy"), "{app}");
    assert_eq!(broken.state("app"), "exited", "a dependent of an unhealthy service is not started");
}

#[tokio::test]
async fn start_waits_for_one_shot_dependencies_to_exit_0() {
    let one_shot = |script: &str| {
        format!("  migrate:\n    image: {}\n    command: [\"sh\", \"-c\", \"{script}\"]\n", test_image())
    };
    let after_it = "    depends_on:\n      migrate:\n        condition: service_completed_successfully\n";
    let good = Compose::up("oneshot", &(one_shot("sleep 1; exit 0") + &service("app", after_it)));
    // Succeeds the first time (so compose can bring it up), fails later.
    let flaky = "if [ -f /tmp/ran ]; then exit 3; fi; touch /tmp/ran";
    let broken = Compose::up("oneshotbad", &(one_shot(flaky) + &service("app", after_it)));

    let s = Server::start();
    let t = s.admin_token().await;
    for p in [&good, &broken] {
        s.wait_stack(&t, &p.project, "partial").await; // migrate has exited
        act_ok(&s, &t, "stacks", &p.project, "stop").await;
    }

    act_ok(&s, &t, "stacks", &good.project, "start").await;
    let migrated = time_of(&good.container("migrate"), ".State.FinishedAt");
    let app_started = time_of(&good.container("app"), ".State.StartedAt");
    assert!(app_started >= migrated, "app started {app_started}, before migrate finished at {migrated}");
    assert_eq!(good.state("app"), "running");

    let (st, v) = act(&s, &t, "stacks", &broken.project, "start").await;
    assert_eq!((st, &v["ok"]), (StatusCode::OK, &Value::Bool(false)), "{v}");
    let error = |c: String| {
        v["results"].as_array().unwrap().iter().find(|r| r["container"] == c.as_str()).unwrap()["error"].clone()
    };
    assert_eq!(error(broken.container("migrate")), "exited with code 3");
    assert_eq!(error(broken.container("app")), "not started: dependency 'migrate' did not complete successfully");
    assert_eq!(broken.state("app"), "exited");
}

#[tokio::test]
async fn actions_are_idempotent_do_what_was_meant_and_are_audited() {
    let proj = Compose::up("idem", &(service("a", "") + &service("b", "")));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;
    let (a, stack) = (proj.container("a"), proj.project.clone());

    let v = act_ok(&s, &t, "stacks", &stack, "start").await;
    assert_eq!(
        v,
        json!({"host": "local", "target_type": "stack", "target_id": stack, "action": "start", "ok": true, "results": [
            {"container": a, "ok": true, "error": null},
            {"container": proj.container("b"), "ok": true, "error": null},
        ]}),
        "starting a running stack is success, in the contract's shape"
    );
    act_ok(&s, &t, "stacks", &stack, "stop").await;
    s.wait_stack(&t, &stack, "stopped").await;
    act_ok(&s, &t, "stacks", &stack, "stop").await;
    act_ok(&s, &t, "containers", &a, "unpause").await;
    act_ok(&s, &t, "stacks", &stack, "start").await;
    s.wait_stack(&t, &stack, "running").await;

    act_ok(&s, &t, "containers", &a, "pause").await;
    assert_eq!(proj.state("a"), "paused");
    act_ok(&s, &t, "containers", &a, "pause").await;
    act_ok(&s, &t, "containers", &a, "start").await;
    assert_eq!(proj.state("a"), "running", "start of a paused container unpauses it");
    act_ok(&s, &t, "containers", &a, "pause").await;
    act_ok(&s, &t, "containers", &a, "stop").await;
    assert_eq!(proj.state("a"), "exited", "a paused container can be stopped");
    act_ok(&s, &t, "containers", &a, "restart").await;
    assert_eq!(proj.state("a"), "running", "restart of a stopped container starts it");

    let (st, v) = act(&s, &t, "stacks", &stack, "explode").await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_action")));
    let (st, v) = act(&s, &t, "stacks", "no-such-stack-xyz", "stop").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    // The manual stop of the paused container, as audited.
    let entries = audit(&s, &t, &format!("target_id={a}&action=stop")).await;
    let e = &entries[0];
    assert_eq!(
        (e["actor"].as_str(), e["target_type"].as_str(), e["ok"].as_bool()),
        (Some("admin"), Some("container"), Some(true))
    );
    assert_eq!(e["details"]["trigger"], "manual");
    assert_eq!(e["details"]["results"], json!([{"container": a, "ok": true, "error": null}]));
    assert!(e["details"]["duration_ms"].is_u64(), "{e}");
    assert_eq!(e["client_addr"], "127.0.0.1");
    let stack_entries = audit(&s, &t, &format!("target_type=stack&target_id={stack}")).await;
    assert_eq!(stack_entries.len(), 4, "every stack action is audited: {stack_entries:?}");
}

#[tokio::test]
async fn one_action_at_a_time_per_stack_and_other_stacks_are_not_held_up() {
    let slow = Compose::up("slow", &slow_stop_service("s", "3s"));
    let other = Compose::up("other", &service("o", ""));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &slow.project, "running").await;
    s.wait_stack(&t, &other.project, "running").await;

    let t0 = Instant::now();
    let (sr, tr) = (&s, t.as_str());
    let timed = move |action: &'static str, name: String| async move {
        act_ok(sr, tr, "stacks", &name, action).await;
        t0.elapsed()
    };
    let stop = timed("stop", slow.project.clone());
    let start = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        timed("start", slow.project.clone()).await
    };
    let unrelated = async {
        tokio::time::sleep(Duration::from_millis(900)).await;
        timed("stop", other.project.clone()).await
    };
    let (stop_done, start_done, other_done) = tokio::join!(stop, start, unrelated);
    println!("slow stop done at {stop_done:?}, start at {start_done:?}, other stack's stop at {other_done:?}");

    assert!(stop_done >= Duration::from_millis(2500), "the stop took its grace period: {stop_done:?}");
    assert!(other_done < stop_done, "another stack's action is not held up by a slow one");
    assert!(start_done > stop_done, "the start waited for the stop");
    assert_eq!(slow.state("s"), "running", "the last action wins, no interleaving");
    assert_eq!(other.state("o"), "exited");
    let entries = audit(&s, &t, &format!("target_id={}", slow.project)).await;
    let actions: Vec<&str> = entries.iter().rev().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["stop", "start"]);
}

// ---- schedules ----

#[tokio::test]
async fn schedules_fire_on_time_fail_loudly_and_never_after_delete_or_disable() {
    let target = Compose::up("sched", &(service("a", "") + &service("b", "")));
    let spared = Compose::up("spared", &service("a", ""));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &target.project, "running").await;
    s.wait_stack(&t, &spared.project, "running").await;

    let due = second_ahead(3);
    let body = |target_type: &str, target_id: &str| json!({"target_type": target_type, "target_id": target_id, "action": "stop", "cron": cron_at(due), "timezone": "UTC"});
    let stops = create_schedule(&s, &t, body("stack", &target.project)).await;
    assert_eq!(stops["next_run"], json!(due));
    let missing = unique("no-such-stack");
    let fails = create_schedule(&s, &t, body("stack", &missing)).await;
    let deleted = create_schedule(&s, &t, body("stack", &spared.project)).await;
    let disabled = create_schedule(&s, &t, body("container", &spared.container("a"))).await;

    let (st, _) = s.call(Method::DELETE, &format!("/api/schedules/{}", deleted["id"]), Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Disabled at the last moment, when the engine is already asleep until `due`.
    sleep_until(due - chrono::Duration::milliseconds(150)).await;
    let (st, v) = s
        .call(Method::PUT, &format!("/api/schedules/{}", disabled["id"]), Some(&t), Some(json!({"enabled": false})))
        .await;
    assert_eq!((st, &v["next_run"]), (StatusCode::OK, &Value::Null), "{v}");

    // The stack is stopped by the schedule, and the run recorded.
    let v = wait_last_run(&s, &t, &stops["id"], Duration::from_secs(10)).await;
    let run = &v["last_run"];
    assert_eq!((run["at"].clone(), run["ok"].clone()), (json!(due), json!(true)), "{v}");
    assert!(run["message"].as_str().unwrap().contains("2 container(s) ok"), "{run}");
    assert_eq!(v["next_run"], json!(due + chrono::Duration::days(1)));
    s.wait_stack(&t, &target.project, "stopped").await;
    let entries = audit(&s, &t, &format!("target_id={}&actor=scheduler", target.project)).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (e["action"].as_str(), e["target_type"].as_str(), e["ok"].as_bool()),
        (Some("stop"), Some("stack"), Some(true))
    );
    assert_eq!((&e["details"]["trigger"], &e["details"]["schedule_id"]), (&json!("scheduled"), &stops["id"]));
    assert_eq!(e["details"]["results"].as_array().unwrap().len(), 2, "{e}");
    assert!(e["details"]["results"].as_array().unwrap().iter().all(|r| r["ok"] == true));
    assert!(e["details"]["duration_ms"].is_u64(), "{e}");
    let late = fire_lateness(&s.log_text());
    assert!(!late.is_empty() && late.iter().all(|l| (0..1000).contains(l)), "fired within 1 s: {late:?}");

    // A missing target: the run fails, says why, and the schedule stays on.
    let v = wait_last_run(&s, &t, &fails["id"], Duration::from_secs(5)).await;
    assert_eq!(v["last_run"]["ok"], false, "{v}");
    assert!(v["last_run"]["message"].as_str().unwrap().contains(&format!("no stack named '{missing}'")), "{v}");
    assert_eq!((v["enabled"].as_bool(), v["next_run"].is_null()), (Some(true), false), "{v}");
    let entries = audit(&s, &t, &format!("target_id={missing}&actor=scheduler")).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["ok"], false);
    assert!(entries[0]["message"].as_str().unwrap().contains("no stack named"), "{}", entries[0]);

    // Deleted and disabled: never fired, even well past the due time.
    sleep_until(due + chrono::Duration::seconds(2)).await;
    assert_eq!(spared.state("a"), "running");
    let all = audit(&s, &t, "actor=scheduler").await;
    assert_eq!(scheduled_runs_of(&all, &deleted["id"]) + scheduled_runs_of(&all, &disabled["id"]), 0, "{all:?}");
    assert_eq!(scheduled_runs_of(&all, &stops["id"]), 1, "one fire, once");
    assert!(schedule(&s, &t, &disabled["id"]).await["last_run"].is_null());
}

#[tokio::test]
async fn schedule_crud_preview_upcoming_and_run_now() {
    let proj = Compose::up("crud", &service("a", ""));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;

    let v = create_schedule(
        &s,
        &t,
        json!({"target_type": "stack", "target_id": proj.project, "action": "restart", "cron": "0 7 * * MON-FRI"}),
    )
    .await;
    let id = v["id"].clone();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "action",
            "at",
            "conflicts",
            "created_at",
            "cron",
            "enabled",
            "error",
            "host",
            "id",
            "last_run",
            "next_run",
            "origin",
            "source",
            "target_id",
            "target_type",
            "timezone",
            "updated_at"
        ]
    );
    assert_eq!(
        (v["timezone"].as_str(), v["enabled"].as_bool(), &v["last_run"]),
        (Some("UTC"), Some(true), &Value::Null)
    );
    assert!(v["next_run"].as_str().unwrap().ends_with("T07:00:00Z"), "{v}");

    for (body, code) in [
        (json!({"target_type": "stack", "target_id": "x", "action": "stop", "cron": "61 * * * *"}), "invalid_cron"),
        (
            json!({"target_type": "stack", "target_id": "x", "action": "stop", "cron": "* * * * *", "timezone": "Mars/Base"}),
            "invalid_timezone",
        ),
        (json!({"target_type": "stack", "target_id": "x", "action": "explode", "cron": "* * * * *"}), "invalid_action"),
        (json!({"target_type": "vm", "target_id": "x", "action": "stop", "cron": "* * * * *"}), "invalid_target"),
        (json!({"target_type": "stack", "target_id": "", "action": "stop", "cron": "* * * * *"}), "invalid_target"),
        (json!({"target_type": "stack", "target_id": "x", "action": "stop"}), "missing_field"),
    ] {
        let (st, e) = s.post("/api/schedules", &t, body.clone()).await;
        assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}: {e}");
    }
    let (_, e) = s
        .post(
            "/api/schedules",
            &t,
            json!({"target_type": "stack", "target_id": "x", "action": "stop", "cron": "61 * * * *"}),
        )
        .await;
    assert!(e["error"]["message"].as_str().unwrap().contains("minute"), "the message says what is wrong: {e}");

    // Edits: next_run follows, disabling clears it, the audit has each change.
    let path = format!("/api/schedules/{id}");
    let (st, v) =
        s.call(Method::PUT, &path, Some(&t), Some(json!({"cron": "30 6 * * *", "timezone": "Europe/Berlin"}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["cron"].as_str(), v["timezone"].as_str(), v["action"].as_str()),
        (Some("30 6 * * *"), Some("Europe/Berlin"), Some("restart"))
    );
    let (_, off) = s.call(Method::PUT, &path, Some(&t), Some(json!({"enabled": false}))).await;
    assert_eq!((&off["enabled"], &off["next_run"]), (&json!(false), &Value::Null));
    let (st, e) = s.call(Method::PUT, "/api/schedules/999999", Some(&t), Some(json!({"enabled": false}))).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    // Upcoming: enabled schedules only, merged soonest first.
    let hourly = create_schedule(
        &s,
        &t,
        json!({"target_type": "container", "target_id": proj.container("a"), "action": "start", "cron": "@hourly"}),
    )
    .await;
    let half = create_schedule(
        &s,
        &t,
        json!({"target_type": "stack", "target_id": proj.project, "action": "start", "cron": "30 * * * *"}),
    )
    .await;
    let (st, up) = s.get("/api/schedules/upcoming?limit=4", &t).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    let up = up.as_array().unwrap();
    assert_eq!(up.len(), 4);
    let times: Vec<DateTime<Utc>> = up.iter().map(|u| serde_json::from_value(u["at"].clone()).unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    assert!(up.iter().all(|u| u["schedule_id"] == hourly["id"] || u["schedule_id"] == half["id"]), "{up:?}");
    assert_eq!(
        up[0]["at"],
        if up[0]["schedule_id"] == hourly["id"] { hourly["next_run"].clone() } else { half["next_run"].clone() }
    );
    let (_, capped) = s.get("/api/schedules/upcoming?limit=10&per_schedule=1", &t).await;
    let ids: Vec<&Value> = capped.as_array().unwrap().iter().map(|u| &u["schedule_id"]).collect();
    assert_eq!(ids.len(), 2, "one fire of each: {capped}");
    assert!(ids.contains(&&hourly["id"]) && ids.contains(&&half["id"]), "{capped}");

    // Preview, across Berlin's spring-forward night.
    let (st, p) = s
        .post("/api/cron/preview", &t, json!({"cron": "0 7 * * MON-FRI", "timezone": "Europe/Berlin", "count": 3, "after": "2026-03-27T00:00:00Z"}))
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["next"], json!(["2026-03-27T06:00:00Z", "2026-03-30T05:00:00Z", "2026-03-31T05:00:00Z"]));
    let (_, p) = s.post("/api/cron/preview", &t, json!({"cron": "*/20 * * * * *"})).await;
    assert_eq!(p["next"].as_array().unwrap().len(), 5, "five by default: {p}");
    for body in [
        json!({"cron": "* * *"}),
        json!({"cron": "* * * * *", "count": 101}),
        json!({"cron": "* * * * *", "timezone": "Nowhere"}),
    ] {
        let (st, e) = s.post("/api/cron/preview", &t, body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {e}");
    }

    // Run now: the action, audited as a test run by the person; last_run untouched.
    let (st, r) = s.call(Method::POST, &format!("/api/schedules/{}/run", hourly["id"]), Some(&t), None).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!((&r["target_type"], &r["action"], &r["ok"]), (&json!("container"), &json!("start"), &json!(true)));
    let entries = audit(&s, &t, &format!("target_id={}&action=start", proj.container("a"))).await;
    assert_eq!((entries[0]["actor"].as_str(), &entries[0]["details"]["trigger"]), (Some("admin"), &json!("test_run")));
    assert_eq!(entries[0]["details"]["schedule_id"], hourly["id"]);
    assert!(schedule(&s, &t, &hourly["id"]).await["last_run"].is_null());

    let (st, _) = s.call(Method::DELETE, &path, Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&path, &t).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::DELETE, &path, Some(&t), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/schedules/not-a-number", &t).await.0, StatusCode::NOT_FOUND);
    let (_, list) = s.get("/api/schedules", &t).await;
    assert_eq!(api_made(&list).len(), 2);
    let changes: Vec<String> = audit(&s, &t, "target_type=schedule")
        .await
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        changes,
        [
            "schedule_create",
            "schedule_update",
            "schedule_update",
            "schedule_create",
            "schedule_create",
            "schedule_delete"
        ]
    );
}

#[tokio::test]
async fn kill_9_keeps_every_schedule_audits_missed_runs_and_catches_up_once() {
    let proj = Compose::up("crash", &service("a", ""));
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[]);
    s.spawn();
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;

    let every3 = create_schedule(
        &s,
        &t,
        json!({"target_type": "stack", "target_id": proj.project, "action": "start", "cron": "*/3 * * * * *", "timezone": "UTC"}),
    )
    .await;
    create_schedule(
        &s,
        &t,
        json!({"target_type": "container", "target_id": proj.container("a"), "action": "stop", "cron": "0 23 * * MON-FRI", "timezone": "Europe/Berlin"}),
    )
    .await;
    create_schedule(
        &s,
        &t,
        json!({"target_type": "stack", "target_id": "later", "action": "pause", "cron": "@daily", "enabled": false}),
    )
    .await;
    let (_, before) = s.get("/api/schedules", &t).await;
    wait_last_run(&s, &t, &every3["id"], Duration::from_secs(5)).await;

    s.kill();
    // Down across at least two fires of */3.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let log_before = s.log_text().len();
    let restarted = Utc::now();
    s.spawn();
    let t = s.admin_token().await;

    let (_, after) = s.get("/api/schedules", &t).await;
    // This server's own schedules: label-defined ones come from whatever
    // labelled containers other tests run on the same engine meanwhile.
    let strip = |v: &Value| {
        let mut v = v.clone();
        let list = v.as_array_mut().unwrap();
        list.retain(|s| s["source"] == "api");
        for s in list {
            let o = s.as_object_mut().unwrap();
            o.remove("next_run");
            o.remove("last_run");
        }
        v
    };
    assert_eq!(strip(&after), strip(&before), "every schedule survives a crash unchanged");

    // The latest missed fire runs once, late; the others are audited as missed.
    let due_while_down = || -> Vec<i64> {
        fires(&s.log_text()[log_before..])
            .into_iter()
            .filter(|(due, _)| *due < restarted)
            .map(|(_, late)| late)
            .collect()
    };
    s.wait_for("the catch-up run", Duration::from_secs(10), || async { due_while_down().first().copied() }).await;
    let runs: Vec<Value> = audit(&s, &t, &format!("target_id={}&actor=scheduler&action=start", proj.project)).await;
    let first_after = runs
        .iter()
        .rev()
        .find(|e| serde_json::from_value::<DateTime<Utc>>(e["timestamp"].clone()).is_ok_and(|ts| ts > restarted));
    assert_eq!(first_after.map(|e| &e["ok"]), Some(&json!(true)), "{runs:?}");
    let missed: Vec<Value> = audit(&s, &t, "action=missed")
        .await
        .into_iter()
        .filter(|e| e["details"]["schedule_id"] == every3["id"])
        .collect();
    assert_eq!(missed.len(), 1, "one entry for the whole gap: {missed:?}");
    let missed_total = missed[0]["details"]["missed_total"].as_u64().unwrap();
    assert!(missed_total >= 1, "{}", missed[0]);
    assert_eq!((missed[0]["actor"].as_str(), missed[0]["ok"].as_bool()), (Some("scheduler"), Some(false)));

    // No burst: exactly one late fire, then back on the grid.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let all = fires(&s.log_text()[log_before..]);
    assert_eq!(due_while_down().len(), 1, "one catch-up run, no burst: {all:?}");
    assert!(all.iter().any(|(due, late)| *due > restarted && *late < 1000), "regular fires resumed: {all:?}");
}

// ---- self-protection ----

struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// The static binary `make test` builds, as `DOCKNAP_BIN`.
fn static_binary() -> PathBuf {
    let bin = std::env::var_os("DOCKNAP_BIN").map(PathBuf::from).expect(
        "DOCKNAP_BIN must name the static release binary (make test sets it; by hand: \
         RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu)",
    );
    assert!(bin.is_absolute() && bin.is_file(), "DOCKNAP_BIN={} is not an absolute path to a file", bin.display());
    bin
}

#[tokio::test]
async fn docknap_in_a_container_refuses_to_stop_itself_for_people_and_schedules() {
    require_docker();
    let bin = static_binary();
    let image = unique("docknap-selftest");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, ctx.path().join("docknap")).unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY docknap /docknap\nENTRYPOINT [\"/docknap\"]\n")
        .unwrap();
    let built = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &image])
        .arg(ctx.path())
        .output()
        .unwrap();
    let _image = RemoveImage(image.clone());
    assert!(built.status.success(), "docker build: {}", String::from_utf8_lossy(&built.stderr));

    // Declared after the image guard, so the containers go first.
    let me = format!(
        "  docknap:
    image: {image}
    environment:
      DOCKNAP_ADMIN_PASSWORD: {ADMIN_PASSWORD}
      DOCKNAP_LISTEN: 0.0.0.0:8080
      DOCKNAP_DATA_DIR: /data
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
    ports:
      - \"127.0.0.1::8080\"
"
    );
    let proj = Compose::up("selfprot", &(me + &service("sibling", "")));
    let own = proj.container("docknap");
    let addr = docker(&["port", &own, "8080/tcp"]);
    let addr = addr.lines().next().unwrap();
    let mut s = Server::configure(ctx.path().join("unused"), &[]);
    s.base = format!("http://{addr}");
    let logs =
        || Command::new("docker").args(["logs", &own]).output().map(|o| String::from_utf8_lossy(&o.stderr).to_string());
    let t = s
        .wait_for("the containerised server", Duration::from_secs(20), || async {
            let ok = s.http.get(s.url("/healthz")).send().await.ok()?.json::<Value>().await.ok()?;
            if ok["docker"] != "ok" {
                return None;
            }
            let r = s
                .http
                .post(s.url("/api/auth/login"))
                .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
                .send()
                .await
                .ok()?;
            r.json::<Value>().await.ok()?["token"].as_str().map(String::from)
        })
        .await;
    s.wait_stack(&t, &proj.project, "running").await;

    for action in ["stop", "pause", "restart"] {
        let (st, v) = act(&s, &t, "containers", &own, action).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("self_protection")),
            "{action}: {v}\n{:?}",
            logs()
        );
        let (st, v) = act(&s, &t, "stacks", &proj.project, action).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("self_protection")),
            "{action} stack: {v}"
        );
    }
    act_ok(&s, &t, "stacks", &proj.project, "start").await;
    act_ok(&s, &t, "containers", &own, "unpause").await;
    act_ok(&s, &t, "containers", &proj.container("sibling"), "stop").await;
    assert_eq!(proj.state("sibling"), "exited");
    act_ok(&s, &t, "containers", &proj.container("sibling"), "start").await;

    let sched = create_schedule(
        &s,
        &t,
        json!({"target_type": "stack", "target_id": proj.project, "action": "stop", "cron": "* * * * * *", "timezone": "UTC"}),
    )
    .await;
    let v = wait_last_run(&s, &t, &sched["id"], Duration::from_secs(5)).await;
    let (st, _) = s.call(Method::DELETE, &format!("/api/schedules/{}", sched["id"]), Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(v["last_run"]["ok"], false, "{v}");
    assert!(v["last_run"]["message"].as_str().unwrap().contains("DockNap's own container"), "{v}");
    assert_eq!(v["enabled"], true);
    assert_eq!(proj.state("docknap"), "running");
    assert_eq!(proj.state("sibling"), "running");
}

// ---- measurements (printed, not asserted) ----

fn median_and_worst(mut v: Vec<i64>) -> (i64, i64) {
    v.sort_unstable();
    (v[v.len() / 2], *v.last().unwrap())
}

/// Fire lateness of a `* * * * * *` schedule over DOCKNAP_LATENESS_FIRES
/// fires (default 30): from the engine's own `late_ms`, and to the audit
/// entry (which includes the action itself, a no-op start).
#[tokio::test]
async fn measure_fire_lateness() {
    let n: usize = std::env::var("DOCKNAP_LATENESS_FIRES").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let proj = Compose::up("late", &service("a", ""));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;
    let sched = create_schedule(
        &s,
        &t,
        json!({"target_type": "stack", "target_id": proj.project, "action": "start", "cron": "* * * * * *", "timezone": "UTC"}),
    )
    .await;
    s.wait_for("the fires", Duration::from_secs(n as u64 + 15), || async {
        (fire_lateness(&s.log_text()).len() >= n).then_some(())
    })
    .await;
    let (st, _) = s.call(Method::DELETE, &format!("/api/schedules/{}", sched["id"]), Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let late = fire_lateness(&s.log_text());
    let entries = audit(&s, &t, "actor=scheduler").await;
    let done: Vec<i64> = entries
        .iter()
        .filter_map(|e| {
            let ts: DateTime<Utc> = serde_json::from_value(e["timestamp"].clone()).ok()?;
            Some((ts - ts.with_nanosecond(0)?).num_milliseconds())
        })
        .collect();
    let (m, w) = median_and_worst(late.clone());
    let (dm, dw) = median_and_worst(done);
    println!(
        "LATENESS fires={} start_late_ms median={m} worst={w}; audited_after_ms median={dm} worst={dw}",
        late.len()
    );
    assert!(late.len() >= n);
}

/// Stops and starts a 20-container, 3-level stack through DockNap and then
/// with `docker compose stop` / `start`, and prints the wall times.
#[tokio::test]
async fn measure_twenty_container_stack_against_compose() {
    let mut yaml = service("db1", "") + &service("db2", "");
    for i in 1..=6 {
        yaml += &service(&format!("mid{i}"), &depends(&["db1", "db2"]));
    }
    for i in 1..=12 {
        yaml += &service(&format!("web{i}"), &depends(&[&format!("mid{}", (i - 1) / 2 + 1)]));
    }
    let proj = Compose::up("twenty", &yaml);
    let s = Server::start();
    let t = s.admin_token().await;
    let stack = s.wait_stack(&t, &proj.project, "running").await;
    assert_eq!(stack["containers"].as_array().unwrap().len(), 20);

    let timed = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let mut docknap = Vec::new();
    for action in ["stop", "start"] {
        let begun = Instant::now();
        let v = act_ok(&s, &t, "stacks", &proj.project, action).await;
        docknap.push(begun.elapsed());
        assert_eq!(v["results"].as_array().unwrap().len(), 20);
    }
    let compose_stop = timed(&|| {
        proj.run(&["stop"]);
    });
    let compose_start = timed(&|| {
        proj.run(&["start"]);
    });
    println!(
        "STACK20 docknap stop={:?} start={:?}; docker compose stop={compose_stop:?} start={compose_start:?}",
        docknap[0], docknap[1]
    );
}
