//! Labels on real compose stacks: `docknap.protect` refusing a person's
//! stop/pause/restart without `?force=true`, and auto-heal restarting a
//! container whose health check fails.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

/// The newest audit entries for a target, newest first.
async fn audit_of(s: &Server, t: &str, target_id: &str) -> Vec<Value> {
    let (_, page) = s.get(&format!("/api/audit?target_id={target_id}&limit=100"), t).await;
    page["entries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protected_container_and_its_stack_are_refused_to_a_person_without_force() {
    let stack =
        Compose::up("prot", &(service("db", "    labels:\n      docknap.protect: \"true\"\n") + &service("web", "")));
    let s = Server::start();
    let t = s.admin_token().await;
    let op = s.user_token(&t, "operator").await;
    s.wait_stack(&t, &stack.project, "running").await;
    let db = stack.container("db");

    for (path, what) in [
        (format!("/api/stacks/{}/stop", stack.project), "stack"),
        (format!("/api/containers/{db}/pause"), "container"),
        (format!("/api/containers/{db}/restart"), "container"),
    ] {
        let (st, v) = s.post(&path, &op, json!(null)).await;
        assert_eq!(st, StatusCode::CONFLICT, "{what}: {v}");
        assert_eq!(v["error"]["code"], "protected");
        assert!(v["error"]["message"].as_str().unwrap().contains(&db), "names the protected container: {v}");
    }
    assert_eq!(stack.state("db"), "running");
    assert_eq!(stack.state("web"), "running");

    // Bulk: all or nothing, the unprotected target is not stopped either.
    let targets = json!([{"target_type": "container", "target_id": stack.container("web")}, {"target_type": "stack", "target_id": stack.project}]);
    let (st, v) = s.post("/api/bulk", &op, json!({"action": "stop", "targets": targets})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("protected")), "{v}");
    assert_eq!(stack.state("web"), "running", "a refused bulk runs nothing");

    // Unprotected container of a protected stack, and starts: allowed.
    let (st, v) = s.post(&format!("/api/containers/{}/restart", stack.container("web")), &op, json!(null)).await;
    assert_eq!((st, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");

    // A schedule is the owner's intent: its fire is not refused.
    let (st, sched) = s
        .post(
            "/api/schedules",
            &op,
            json!({"target_type": "container", "target_id": db, "action": "pause", "cron": "0 3 * * *"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s.post(&format!("/api/schedules/{}/run", sched["id"]), &op, json!(null)).await;
    assert_eq!((st, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    assert_eq!(stack.state("db"), "paused");
    let (st, _) = s.post(&format!("/api/containers/{db}/unpause"), &op, json!(null)).await;
    assert_eq!(st, StatusCode::OK, "unpause is never refused");

    // With force: done, and audited as forced.
    let (st, v) = s.post(&format!("/api/stacks/{}/stop?force=true", stack.project), &op, json!(null)).await;
    assert_eq!((st, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    assert_eq!(stack.state("db"), "exited");
    let entries = audit_of(&s, &t, &stack.project).await;
    let forced = entries.iter().find(|e| e["action"] == "stop" && e["ok"] == true).expect("the forced stop is audited");
    assert_eq!(forced["details"]["force"], true);
    let refused = entries.iter().filter(|e| e["action"] == "stop" && e["ok"] == false).count();
    assert_eq!(refused, 2, "the refused stop and the refused bulk are audited: {entries:?}");
    let refused_pause = audit_of(&s, &t, &db).await.into_iter().find(|e| e["action"] == "pause" && e["ok"] == false);
    assert!(refused_pause.unwrap()["message"].as_str().unwrap().contains("protected"));

    // A viewer still cannot, force or not.
    let viewer = s.user_token(&t, "viewer").await;
    let (st, _) =
        s.call(Method::POST, &format!("/api/stacks/{}/start?force=true", stack.project), Some(&viewer), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// A service whose health check always fails, a second after each start.
fn sick(name: &str, label: &str) -> String {
    let labels = if label.is_empty() { String::new() } else { format!("    labels:\n      {label}: \"true\"\n") };
    service(
        name,
        &format!(
            "{labels}    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      timeout: 1s\n      retries: 1\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_autoheal_container_is_restarted_three_times_an_hour_each_audited() {
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_for("the engine", Duration::from_secs(10), || async {
        (s.get("/api/containers", &t).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    // docker-autoheal's label, DockNap's own, and none.
    let stack =
        Compose::new("heal", &(sick("theirs", "autoheal") + &sick("ours", "docknap.autoheal") + &sick("none", "")));
    stack.run(&["up", "-d"]);

    let heal_entries = |name: String| {
        let (s, t) = (&s, &t);
        async move { audit_of(s, t, &name).await.into_iter().filter(|e| e["actor"] == "autoheal").collect::<Vec<_>>() }
    };
    for svc in ["theirs", "ours"] {
        let name = stack.container(svc);
        let entries = s
            .wait_for(&format!("{name} restarted 3 times, then held back"), Duration::from_secs(60), || async {
                let e = heal_entries(name.clone()).await;
                e.iter().any(|e| e["ok"] == false).then_some(e)
            })
            .await;
        let restarts: Vec<_> = entries.iter().filter(|e| e["ok"] == true).collect();
        assert_eq!(restarts.len(), 3, "{entries:?}");
        assert!(restarts.iter().all(|e| e["action"] == "restart" && e["details"]["trigger"] == "autoheal"));
        let held = entries.iter().find(|e| e["ok"] == false).unwrap();
        assert!(held["message"].as_str().unwrap().contains("3 times in the last hour"), "{held}");
    }
    // Still unhealthy, never restarted again; the unlabelled one never was.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for svc in ["theirs", "ours"] {
        let n = heal_entries(stack.container(svc)).await.iter().filter(|e| e["ok"] == true).count();
        assert_eq!(n, 3, "{svc}: capped at 3");
    }
    assert!(heal_entries(stack.container("none")).await.is_empty());
    assert_eq!(docker(&["inspect", "-f", "{{.State.Health.Status}}", &stack.container("none")]), "unhealthy");
}

/// The label-defined objects of `project`, once `ready` holds for them.
async fn label_objects(
    s: &Server,
    t: &str,
    kind: &str,
    project: &str,
    what: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    s.wait_for(what, Duration::from_secs(20), || async {
        let (_, list) = s.get(&format!("/api/{kind}"), t).await;
        let mine: Vec<Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["source"] == "label" && o["target_id"] == project)
            .cloned()
            .collect();
        ready(&mine).then_some(mine)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_and_windows_from_compose_labels_appear_change_and_disappear_with_their_containers() {
    let s = Server::start();
    let t = s.admin_token().await;
    let op = s.user_token(&t, "operator").await;
    let labels = |cron: &str, window: &str| {
        service(
            "web",
            &format!(
                "    labels:\n      docknap.schedule.nightly.cron: \"{cron}\"\n      docknap.schedule.nightly.action: stop\n      docknap.schedule.nightly.timezone: Europe/Paris\n"
            ),
        ) + &service(
            "db",
            &format!("    labels:\n      docknap.window: \"{window}\"\n      docknap.window.grace: 30s\n"),
        ) + &service("keep", "    labels:\n      docknap.exclude: \"true\"\n")
    };
    let stack = Compose::new("lbl", &labels("0 23 * * *", "always"));
    stack.run(&["up", "-d", "--wait"]);
    let p = stack.project.clone();

    // Added: one schedule (from web) and one window (from db) for the whole stack.
    let scheds = label_objects(&s, &t, "schedules", &p, "the label schedule", |v| v.len() == 1).await;
    let sched = &scheds[0];
    assert_eq!(
        (sched["target_type"].as_str(), sched["action"].as_str(), sched["cron"].as_str()),
        (Some("stack"), Some("stop"), Some("0 23 * * *"))
    );
    assert_eq!(
        (sched["timezone"].as_str(), sched["origin"].as_str(), sched["enabled"].as_bool()),
        (Some("Europe/Paris"), Some("web"), Some(true))
    );
    assert!(sched["error"].is_null() && sched["next_run"].is_string(), "{sched}");
    let windows = label_objects(&s, &t, "windows", &p, "the label window", |v| v.len() == 1).await;
    assert_eq!(
        (windows[0]["spec"].as_str(), windows[0]["grace"].as_str(), windows[0]["origin"].as_str()),
        (Some("always"), Some("30s"), Some("db"))
    );
    let (sid, wid) = (sched["id"].clone(), windows[0]["id"].clone());

    // Read-only in the API; objects made through it say `source: api`.
    for path in [format!("/api/schedules/{sid}"), format!("/api/windows/{wid}")] {
        let (st, v) = s.call(Method::PUT, &path, Some(&op), Some(json!({"enabled": false}))).await;
        assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("read_only")), "{path}: {v}");
        let (st, v) = s.call(Method::DELETE, &path, Some(&op), None).await;
        assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("read_only")), "{path}: {v}");
    }
    let (st, api) = s
        .post(
            "/api/schedules",
            &op,
            json!({"target_type": "stack", "target_id": p, "action": "start", "cron": "0 7 * * *"}),
        )
        .await;
    assert_eq!((st, api["source"].as_str(), api["error"].is_null()), (StatusCode::CREATED, Some("api"), true), "{api}");

    // Changed by `compose up` with new labels: same object, new values; a bad
    // value is an error on the object, which is disabled; a bad schedule too.
    stack.write(&(labels("30 22 * * 1-5", "Mon 9-17")
        + &service("cron", "    labels:\n      docknap.schedule.broken.cron: \"0 1 * * *\"\n      docknap.schedule.broken.action: explode\n      docknap.schedule.later.at: \"2030-01-01T00:00:00Z\"\n      docknap.schedule.later.action: stop\n")));
    stack.run(&["up", "-d", "--wait"]);
    let scheds = label_objects(&s, &t, "schedules", &p, "the changed label schedules", |v| {
        v.len() == 3 && v.iter().any(|o| o["cron"] == "30 22 * * 1-5")
    })
    .await;
    let by = |origin_has: &str, key: &str, val: &str| {
        scheds.iter().find(|o| o["origin"].as_str().unwrap().contains(origin_has) && o[key] == val).cloned()
    };
    let nightly = by("web", "cron", "30 22 * * 1-5").expect("nightly changed");
    assert_eq!(
        (nightly["id"].clone(), nightly["enabled"].as_bool()),
        (sid.clone(), Some(true)),
        "the same schedule, updated"
    );
    let broken = by("cron", "cron", "0 1 * * *").expect("the broken schedule is listed");
    assert!(broken["error"].as_str().unwrap().contains("explode"), "{broken}");
    assert_eq!((broken["enabled"].as_bool(), broken["next_run"].is_null()), (Some(false), true), "never runs");
    // A one-time schedule from labels: enabled until its instant.
    let later = scheds
        .iter()
        .find(|o| o["at"].as_str().is_some_and(|a| a.starts_with("2030-01-01T00:00:00")))
        .cloned()
        .expect("the one-time schedule");
    assert_eq!(
        (later["cron"].is_null(), later["enabled"].as_bool(), later["error"].is_null()),
        (true, Some(true), true),
        "{later}"
    );
    assert_eq!(later["next_run"], later["at"]);
    let windows =
        label_objects(&s, &t, "windows", &p, "the window's error", |v| v.len() == 1 && v[0]["error"].is_string()).await;
    assert_eq!((windows[0]["id"].clone(), windows[0]["enabled"].as_bool()), (wid.clone(), Some(false)));
    assert!(windows[0]["error"].as_str().unwrap().starts_with("docknap.window:"), "{}", windows[0]);

    // docknap.exclude: a bulk stop of the stack leaves that container alone.
    let (st, v) = s
        .post("/api/bulk", &op, json!({"action": "stop", "targets": [{"target_type": "stack", "target_id": p}]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!((stack.state("web"), stack.state("keep")), ("exited".to_string(), "running".to_string()));

    // Removed with the containers (stopped ones still define them).
    let (_, list) = s.get("/api/schedules", &t).await;
    assert_eq!(list.as_array().unwrap().iter().filter(|o| o["source"] == "label" && o["target_id"] == p).count(), 3);
    stack.run(&["down", "-t", "0"]);
    label_objects(&s, &t, "schedules", &p, "the label schedules to go", |v| v.is_empty()).await;
    label_objects(&s, &t, "windows", &p, "the label window to go", |v| v.is_empty()).await;
    let (st, _) = s.get(&format!("/api/schedules/{}", api["id"]), &t).await;
    assert_eq!(st, StatusCode::OK, "the API's own schedule stays");
    let (_, audit) = s.get("/api/audit?actor=labels&limit=100", &t).await;
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in
        ["schedule_create", "schedule_update", "schedule_delete", "window_create", "window_update", "window_delete"]
    {
        assert!(actions.contains(&a), "{a} audited as labels: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn label_objects_of_a_standalone_container_follow_it_on_each_host_and_go_with_a_deleted_host() {
    require_docker();
    let name = unique("lblsolo");
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = docker_try(&["rm", "-f", &self.0]);
        }
    }
    let _gone = Gone(name.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--label",
        "docknap.schedule.nightly.cron=0 1 * * *",
        "--label",
        "docknap.schedule.nightly.action=stop",
        &test_image(),
        "sleep",
        "600",
    ]);
    let s = Server::start();
    let t = s.admin_token().await;
    // The same engine again, as a second host: its containers define their own objects there.
    let (st, v) = s.post("/api/hosts", &t, json!({"name": "again", "url": "unix:///var/run/docker.sock"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let on_hosts = label_objects(&s, &t, "schedules", &name, "one label schedule per host", |v| v.len() == 2).await;
    let mut hosts: Vec<&str> = on_hosts.iter().map(|o| o["host"].as_str().unwrap()).collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["again", "local"]);
    assert!(on_hosts.iter().all(|o| o["target_type"] == "container" && o["origin"] == name.as_str()), "{on_hosts:?}");

    // Label objects do not keep a host in use; they go with it.
    let (st, v) = s.call(Method::DELETE, "/api/hosts/again", Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let left =
        label_objects(&s, &t, "schedules", &name, "the deleted host's label schedule to go", |v| v.len() == 1).await;
    assert_eq!(left[0]["host"], "local");

    // Removing the container removes its object.
    docker(&["rm", "-f", &name]);
    label_objects(&s, &t, "schedules", &name, "the container's label schedule to go", |v| v.is_empty()).await;
}
