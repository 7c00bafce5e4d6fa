//! Many hosts against real engines: the machine's (`local`) and second and
//! third `dockerd`s of the test's own. The same stack name on two hosts,
//! actions with `?host=`, hosts added through the API, a host killed (its
//! runs fail and are audited, the other host's schedule fires on time) and
//! brought back (discovery catches up).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::engines::SecondEngine;
use crate::harness::*;

/// Runs a compose-labelled container of `project`/`service` (no network)
/// through `docker` (one engine's CLI); returns its name. It exits at once
/// on SIGTERM, so a stop or restart takes milliseconds.
fn member(docker: impl Fn(&[&str]) -> String, project: &str, service: &str) -> String {
    let name = format!("{project}-{service}-1");
    let labels = [format!("com.docker.compose.project={project}"), format!("com.docker.compose.service={service}")];
    let image = test_image();
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--label",
        &labels[0],
        "--label",
        &labels[1],
        &image,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 0.2; done",
    ]);
    name
}

fn on_local(args: &[&str]) -> String {
    docker(args)
}

/// A container on the machine's own engine, removed when the test ends,
/// also when it fails (a second engine's go with its data root).
struct LocalMember(String);

impl LocalMember {
    fn run(project: &str, service: &str) -> LocalMember {
        LocalMember(member(on_local, project, service))
    }
}

impl Drop for LocalMember {
    fn drop(&mut self) {
        let _ = docker_try(&["rm", "-f", &self.0]);
    }
}

async fn hosts(s: &Server, t: &str) -> Vec<Value> {
    let (st, v) = s.get("/api/hosts", t).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

async fn wait_host(s: &Server, t: &str, name: &str, status: &str, within: Duration) -> Value {
    s.wait_for(&format!("host {name} {status}"), within, || async {
        hosts(s, t).await.into_iter().find(|h| h["name"] == name && h["status"] == status)
    })
    .await
}

async fn audit_of(s: &Server, t: &str, query: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/api/audit?limit=200&{query}"), t).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn one_stack_name_on_two_hosts_each_acted_on_by_its_host() {
    let second = SecondEngine::start();
    let project = unique("twin");
    let local = LocalMember::run(&project, "web");
    let local_web = &local.0;
    let remote_web = member(|a| second.docker(a), &project, "web");
    let hosts_env = format!("second@lab={}", second.host());
    let s = Server::start_with(&[("DOCKNAP_HOSTS", &hosts_env)]);
    let t = s.admin_token().await;

    let second_host = wait_host(&s, &t, "second", "ok", Duration::from_secs(20)).await;
    assert_eq!((second_host["group"].as_str(), second_host["source"].as_str()), (Some("lab"), Some("env")));
    assert!(second_host["version"].is_string() && second_host["containers"].as_u64() >= Some(1), "{second_host}");
    assert!(second_host.get("tls_key").is_none() && second_host["tls"] == false);
    let (_, health) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (health["hosts"]["local"].as_str(), health["hosts"]["second"].as_str()),
        (Some("ok"), Some("ok")),
        "{health}"
    );

    // Both stacks are listed, each with its host; ?host= filters.
    let twins = s
        .wait_for("the stack on both hosts", Duration::from_secs(10), || async {
            let (_, v) = s.get("/api/stacks", &t).await;
            let twins: Vec<Value> = v.as_array()?.iter().filter(|st| st["name"] == project.as_str()).cloned().collect();
            (twins.len() == 2).then_some(twins)
        })
        .await;
    let mut on: Vec<&str> = twins.iter().map(|st| st["host"].as_str().unwrap()).collect();
    on.sort();
    assert_eq!(on, ["local", "second"]);
    assert_eq!(twins.iter().find(|st| st["host"] == "second").unwrap()["containers"][0]["host"], "second");
    let (_, only) = s.get("/api/stacks?host=second", &t).await;
    assert!(only.as_array().unwrap().iter().all(|st| st["host"] == "second"), "{only}");
    let (_, local_only) = s.get("/api/containers?host=local", &t).await;
    assert!(local_only.as_array().unwrap().iter().all(|c| c["host"] == "local"));

    // A stop on the second host's stack leaves the local one running.
    let (st, r) = s.post(&format!("/api/stacks/{project}/stop?host=second"), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!((r["host"].as_str(), r["ok"].as_bool()), (Some("second"), Some(true)), "{r}");
    assert_eq!(second.state(&remote_web), "exited");
    assert_eq!(docker(&["inspect", "-f", "{{.State.Status}}", local_web]), "running");
    let (st, one) = s.get(&format!("/api/stacks/{project}?host=second"), &t).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(one["host"], "second");
    // Without ?host it is the local one.
    let (_, local) = s.get(&format!("/api/stacks/{project}"), &t).await;
    assert_eq!(local["host"], "local");

    // The audit entry names the host; the audit filters by it.
    let entries = audit_of(&s, &t, "host=second&action=stop").await;
    assert!(entries.iter().any(|e| e["target_id"] == project.as_str() && e["host"] == "second"), "{entries:?}");
    assert!(audit_of(&s, &t, "host=local&action=stop").await.iter().all(|e| e["target_id"] != project.as_str()));

    // Unknown hosts are refused by name.
    let (st, e) = s.get(&format!("/api/stacks/{project}?host=nope"), &t).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_host")), "{e}");
    let body =
        json!({"host": "nope", "target_type": "stack", "target_id": project, "action": "stop", "cron": "0 3 * * *"});
    let (st, e) = s.post("/api/schedules", &t, body).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_host")), "{e}");

    // A bulk action on a group reaches every stack of its hosts, and only those.
    let (st, r) = s.post("/api/bulk", &t, json!({"action": "start", "group": "lab"})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let results = r["results"].as_array().unwrap();
    assert!(results.iter().all(|x| x["host"] == "second"), "{r}");
    assert!(results.iter().any(|x| x["target_id"] == project.as_str() && x["ok"] == true), "{r}");
    assert_eq!(second.state(&remote_web), "running");

    // A schedule on the group stops every stack of its hosts, each audited on its host.
    let body = json!({"target_type": "group", "target_id": "lab", "action": "stop", "cron": "*/2 * * * * *"});
    let (st, sched) = s.post("/api/schedules", &t, body).await;
    assert_eq!((st, sched["host"].as_str()), (StatusCode::CREATED, Some("*")), "{sched}");
    s.wait_for("the group schedule's stop", Duration::from_secs(10), || async {
        (second.state(&remote_web) == "exited").then_some(())
    })
    .await;
    assert_eq!(docker(&["inspect", "-f", "{{.State.Status}}", local_web]), "running");
    let (st, _) = s.call(Method::DELETE, &format!("/api/schedules/{}", sched["id"]), Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let entries = audit_of(&s, &t, "host=second&actor=scheduler").await;
    assert!(entries.iter().any(|e| e["target_id"] == project.as_str() && e["ok"] == true), "{entries:?}");
}

#[tokio::test]
async fn a_dead_host_fails_its_due_runs_while_the_other_host_fires_on_time_then_catches_up() {
    let mut second = SecondEngine::start();
    let project = unique("dead");
    let _local = LocalMember::run(&project, "box");
    let remote_box = member(|a| second.docker(a), &project, "box");
    let hosts_env = format!("second={}", second.host());
    let s = Server::start_with(&[("DOCKNAP_HOSTS", &hosts_env), ("DOCKNAP_ENGINE_RECHECK", "2s")]);
    let t = s.admin_token().await;
    wait_host(&s, &t, "second", "ok", Duration::from_secs(20)).await;

    // Every 5 seconds: restart each host's container.
    for host in ["local", "second"] {
        let body = json!({"host": host, "target_type": "stack", "target_id": project, "action": "restart", "cron": "*/5 * * * * *"});
        let (st, v) = s.post("/api/schedules", &t, body).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(v["host"], host);
    }

    second.kill9();
    let killed = Instant::now();
    let gone = wait_host(&s, &t, "second", "unreachable", Duration::from_secs(15)).await;
    println!("host unreachable {} ms after SIGKILL: {}", killed.elapsed().as_millis(), gone["error"]);
    assert!(gone["error"].is_string(), "{gone}");
    let (_, health) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((health["docker"].as_str(), health["hosts"]["second"].as_str()), (Some("ok"), Some("unreachable")));
    // The local host's lists answer as ever; an action on the dead host is 503.
    let (st, _) = s.get("/api/stacks", &t).await;
    assert_eq!(st, StatusCode::OK);
    let (st, e) = s.post(&format!("/api/stacks/{project}/stop?host=second"), &t, json!({})).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("docker_unavailable")), "{e}");

    // The dead host's runs fail (after their bounded wait for the engine) and
    // are audited; meanwhile the local schedule fires on time.
    let failed = s
        .wait_for("a failed run on the dead host", Duration::from_secs(40), || async {
            let entries = audit_of(&s, &t, "host=second&action=restart&ok=false").await;
            entries.into_iter().find(|e| e["actor"] == "scheduler" && e["target_id"] == project.as_str())
        })
        .await;
    assert!(failed["message"].as_str().unwrap().contains("unreachable"), "{failed}");
    let log = s.log_text();
    let local_fires: Vec<i64> = log
        .lines()
        .filter(|l| l.contains("schedule fired") && l.contains(" host=local"))
        .filter_map(|l| l.split(" late_ms=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    println!("local fires while the other host was dead: {} (late ms: {local_fires:?})", local_fires.len());
    assert!(local_fires.len() >= 3, "the local schedule kept firing:\n{log}");
    assert!(local_fires.iter().all(|l| *l < 1000), "on time: {local_fires:?}");
    let ok_local = audit_of(&s, &t, "host=local&action=restart&ok=true").await;
    assert!(ok_local.iter().filter(|e| e["target_id"] == project.as_str()).count() >= 3);

    // Back: the host reconnects by itself and discovery catches up with a
    // change made while DockNap could not see it.
    second.start_again();
    second.docker(&["stop", "-t", "0", &remote_box]);
    let back = Instant::now();
    wait_host(&s, &t, "second", "ok", Duration::from_secs(20)).await;
    println!("host back {} ms after its engine answered", back.elapsed().as_millis());
    s.wait_for("the second host's stack as it is now", Duration::from_secs(20), || async {
        let (st, v) = s.get(&format!("/api/stacks/{project}?host=second"), &t).await;
        (st == StatusCode::OK && v["containers"][0]["name"] == remote_box.as_str()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn hosts_added_through_the_api_are_admin_only_stored_and_refused_while_in_use() {
    let third = SecondEngine::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[]);
    s.spawn();
    let t = s.admin_token().await;
    let viewer = s.user_token(&t, "viewer").await;
    let operator = s.user_token(&t, "operator").await;
    let body = json!({"name": "third", "url": third.host(), "group": "lab"});

    for who in [&viewer, &operator] {
        let (st, _) = s.post("/api/hosts", who, body.clone()).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    for (bad, code) in [
        (json!({"name": "Third", "url": third.host()}), "invalid_host"),
        (json!({"name": "x", "url": "http://10.0.0.1:2375"}), "invalid_url"),
        (json!({"name": "x", "url": "tcp://10.0.0.1"}), "invalid_url"),
        (json!({"name": "x", "url": third.host(), "tls": {"ca": "a", "cert": "b", "key": "c"}}), "invalid_url"),
        (json!({"name": "x"}), "missing_field"),
        (json!({"name": "x", "url": third.host(), "group": "Lab!"}), "invalid_host"),
    ] {
        let (st, e) = s.post("/api/hosts", &t, bad.clone()).await;
        assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{bad}: {e}");
    }
    let (st, h) = s.post("/api/hosts", &t, body.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{h}");
    assert_eq!((h["source"].as_str(), h["group"].as_str()), (Some("api"), Some("lab")));
    let (st, _) = s.post("/api/hosts", &t, body.clone()).await;
    assert_eq!(st, StatusCode::CONFLICT);
    wait_host(&s, &t, "third", "ok", Duration::from_secs(20)).await;
    let (st, v) = s.get("/api/hosts/third", &viewer).await;
    assert_eq!((st, v["name"].as_str()), (StatusCode::OK, Some("third")));

    // local is DOCKER_HOST's: read-only.
    for method in [Method::PUT, Method::DELETE] {
        let (st, e) = s.call(method, "/api/hosts/local", Some(&t), Some(json!({"group": "x"}))).await;
        assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("read_only")), "{e}");
    }

    // A host a schedule targets cannot go.
    let sched = json!({"host": "third", "target_type": "stack", "target_id": "anything", "action": "stop", "cron": "0 3 * * *"});
    let (st, sv) = s.post("/api/schedules", &t, sched).await;
    assert_eq!(st, StatusCode::CREATED, "{sv}");
    let (st, e) = s.call(Method::DELETE, "/api/hosts/third", Some(&t), None).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("in_use")), "{e}");

    // A changed group is kept across a restart, as is the host.
    let (st, v) = s.call(Method::PUT, "/api/hosts/third", Some(&t), Some(json!({"group": "prod"}))).await;
    assert_eq!((st, v["group"].as_str()), (StatusCode::OK, Some("prod")), "{v}");
    s.terminate();
    s.spawn();
    let t = s.admin_token().await;
    let back = wait_host(&s, &t, "third", "ok", Duration::from_secs(20)).await;
    assert_eq!(back["group"], "prod");

    let (st, _) = s.call(Method::DELETE, &format!("/api/schedules/{}", sv["id"]), Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.call(Method::DELETE, "/api/hosts/third", Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(hosts(&s, &t).await.iter().all(|h| h["name"] != "third"));
    let entries = audit_of(&s, &t, "target_type=host").await;
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains(&"host_create") && actions.contains(&"host_update") && actions.contains(&"host_delete"),
        "{actions:?}"
    );
}

/// A host whose engine stops answering without closing anything (SIGSTOP:
/// its socket accepts, nothing replies) delays nothing of another host's:
/// lists answer from memory, local actions run, and the hung host is
/// reported once its recheck gives up.
#[tokio::test]
async fn a_black_holed_host_delays_no_other_host() {
    let second = SecondEngine::start();
    let project = unique("hole");
    let _local = LocalMember::run(&project, "box");
    member(|a| second.docker(a), &project, "box");
    let hosts_env = format!("second={}", second.host());
    let s = Server::start_with(&[("DOCKNAP_HOSTS", &hosts_env), ("DOCKNAP_ENGINE_RECHECK", "2s")]);
    let t = s.admin_token().await;
    wait_host(&s, &t, "second", "ok", Duration::from_secs(20)).await;

    send_signal(second.pid(), "STOP");
    let stopped = Instant::now();
    // An action on the hung host itself gives up when the host is found
    // unreachable, not at the engine call's own timeout (minutes).
    let hung = {
        let (http, url, t) = (s.http.clone(), s.url(&format!("/api/stacks/{project}/restart?host=second")), t.clone());
        tokio::spawn(async move {
            let began = Instant::now();
            let r = http.post(url).bearer_auth(t).json(&json!({})).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap(), began.elapsed())
        })
    };
    let mut slowest = Duration::ZERO;
    for action in ["stop", "start", "restart"] {
        let began = Instant::now();
        let (st, r) = s.post(&format!("/api/stacks/{project}/{action}"), &t, json!({})).await;
        assert_eq!((st, r["ok"].as_bool()), (StatusCode::OK, Some(true)), "{r}");
        let began_list = Instant::now();
        let (st, _) = s.get("/api/stacks", &t).await;
        assert_eq!(st, StatusCode::OK);
        slowest = slowest.max(began.elapsed()).max(began_list.elapsed());
    }
    println!("while the other host was black-holed: slowest local action or list {} ms", slowest.as_millis());
    assert!(slowest < Duration::from_secs(3), "{slowest:?}");
    let gone = wait_host(&s, &t, "second", "unreachable", Duration::from_secs(30)).await;
    println!("black-holed host reported unreachable after {} ms: {}", stopped.elapsed().as_millis(), gone["error"]);
    let (st, r, took) = hung.await.unwrap();
    println!("an action on the black-holed host ended after {} ms: {st} {r}", took.as_millis());
    assert!(r["ok"] == false || st == StatusCode::SERVICE_UNAVAILABLE, "{st} {r}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    send_signal(second.pid(), "CONT");
    wait_host(&s, &t, "second", "ok", Duration::from_secs(30)).await;
}
