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
    let stack = Compose::up("prot", &(service("db", "    labels:\n      docknap.protect: \"true\"\n") + &service("web", "")));
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
        .post("/api/schedules", &op, json!({"target_type": "container", "target_id": db, "action": "pause", "cron": "0 3 * * *"}))
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
    let (st, _) = s.call(Method::POST, &format!("/api/stacks/{}/start?force=true", stack.project), Some(&viewer), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

/// A service whose health check always fails, a second after each start.
fn sick(name: &str, label: &str) -> String {
    let labels = if label.is_empty() { String::new() } else { format!("    labels:\n      {label}: \"true\"\n") };
    service(
        name,
        &format!("{labels}    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      timeout: 1s\n      retries: 1\n"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_autoheal_container_is_restarted_three_times_an_hour_each_audited() {
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_for("the engine", Duration::from_secs(10), || async { (s.get("/api/containers", &t).await.0 == StatusCode::OK).then_some(()) }).await;
    // docker-autoheal's label, DockNap's own, and none.
    let stack = Compose::new("heal", &(sick("theirs", "autoheal") + &sick("ours", "docknap.autoheal") + &sick("none", "")));
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
