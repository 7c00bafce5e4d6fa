//! Swarm services on a real engine: a second dockerd of the test's own made
//! a single-node Swarm manager (never the machine's engine, which may be in
//! a swarm of its own), driven through `BollardEngine` and the service
//! action logic.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use docknap::actions::{Remember, ServiceTarget, act_on_services};
use docknap::docker::{BollardEngine, Engine, SwarmService};
use docknap::model::{Action, ServiceMode};

use crate::engines::SecondEngine;
use crate::harness::{free_port, test_image};

/// Leaves the swarm when dropped (also when the test fails), so the engine
/// stops cleanly and its containers can be removed.
struct Manager<'a>(&'a SecondEngine);

impl SecondEngine {
    /// Makes this engine a single-node Swarm manager on a port of its own
    /// (not 2377, which another swarm on this machine may hold).
    fn init_swarm(&self) -> Manager<'_> {
        let listen = format!("127.0.0.1:{}", free_port());
        self.docker(&["swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", &listen]);
        Manager(self)
    }

    /// A busybox service that sleeps; no image resolution (no registry is reachable).
    fn create_service(&self, name: &str, extra: &[&str]) {
        let image = test_image();
        let args = [
            &["service", "create", "--detach", "--no-resolve-image", "--name", name],
            extra,
            &[image.as_str(), "sleep", "3600"],
        ];
        self.docker(&args.concat());
    }

    /// The ids of the service's tasks that are running now.
    fn running_tasks(&self, service: &str) -> BTreeSet<String> {
        let out = self.docker(&["service", "ps", "-q", "--filter", "desired-state=running", service]);
        let ids: BTreeSet<String> = out.lines().map(str::to_string).collect();
        ids.into_iter().filter(|id| self.docker(&["inspect", "-f", "{{.Status.State}}", id]) == "running").collect()
    }
}

impl Drop for Manager<'_> {
    fn drop(&mut self) {
        let host = self.0.host();
        let _ = std::process::Command::new("docker").args(["-H", &host, "swarm", "leave", "--force"]).output();
    }
}

fn engine_of(second: &SecondEngine) -> BollardEngine {
    BollardEngine::new(&second.host())
}

async fn service(engine: &BollardEngine, name: &str) -> SwarmService {
    let all = engine.swarm_services().await.unwrap().expect("a manager lists its services");
    all.into_iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no service {name}"))
}

/// Polls the engine until `done` holds for the service, for at most a minute.
async fn wait_service(
    engine: &BollardEngine,
    name: &str,
    what: &str,
    done: impl Fn(&SwarmService) -> bool,
) -> SwarmService {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = service(engine, name).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{name} never {what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_services_are_listed_scaled_and_force_updated_on_a_real_manager() {
    let second = SecondEngine::start();
    let engine = engine_of(&second);
    assert_eq!(engine.swarm_services().await.unwrap(), None, "not in a swarm: not a manager");
    let main_is_manager = crate::harness::docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"]) == "true";
    let main =
        BollardEngine::new(&std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into()));
    assert_eq!(main.swarm_services().await.unwrap().is_some(), main_is_manager, "the machine's engine");

    let _manager = second.init_swarm();
    assert_eq!(engine.swarm_services().await.unwrap(), Some(vec![]), "a manager with no services");
    second.create_service("web", &["--replicas", "2", "--label", "com.docker.stack.namespace=shop"]);
    second.create_service("agent", &["--mode", "global"]);

    let web = wait_service(&engine, "web", "ran 2 tasks", |s| s.running == 2).await;
    assert_eq!((web.mode, web.desired, web.stack.as_deref()), (ServiceMode::Replicated, 2, Some("shop")));
    let agent = wait_service(&engine, "agent", "ran its task", |s| s.running == 1).await;
    assert_eq!((agent.mode, agent.desired, agent.stack), (ServiceMode::Global, 1, None));

    engine.scale_service(&web.id, 0).await.unwrap();
    assert_eq!(service(&engine, "web").await.desired, 0, "the spec changes at once");
    wait_service(&engine, "web", "went down", |s| s.running == 0).await;
    engine.scale_service(&web.id, 2).await.unwrap();
    wait_service(&engine, "web", "came back", |s| s.running == 2 && s.desired == 2).await;
    let e = engine.scale_service(&agent.id, 0).await.unwrap_err();
    assert!(matches!(e, docknap::docker::DockerError::Conflict(_)), "{e}");

    let force_update = || second.docker(&["service", "inspect", "-f", "{{.Spec.TaskTemplate.ForceUpdate}}", "web"]);
    let (before_counter, before_tasks) = (force_update(), second.running_tasks("web"));
    assert_eq!(before_tasks.len(), 2);
    engine.force_update_service(&web.id).await.unwrap();
    assert_eq!(force_update().parse::<u64>().unwrap(), before_counter.parse::<u64>().unwrap() + 1);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = second.running_tasks("web");
        if now.len() == 2 && now.is_disjoint(&before_tasks) {
            break;
        }
        assert!(Instant::now() < deadline, "tasks not replaced: before {before_tasks:?}, now {now:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let labels = second.docker(&["service", "inspect", "-f", "{{json .Spec.Labels}}", "web"]);
    assert_eq!(labels, r#"{"com.docker.stack.namespace":"shop"}"#, "the rest of the spec went back unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn swarm_stack_stop_remembers_replicas_and_start_brings_them_back() {
    let second = SecondEngine::start();
    let engine = engine_of(&second);
    let _manager = second.init_swarm();
    second.create_service("shop_web", &["--replicas", "2", "--label", "com.docker.stack.namespace=shop"]);
    second.create_service("shop_agent", &["--mode", "global", "--label", "com.docker.stack.namespace=shop"]);
    wait_service(&engine, "shop_web", "ran 2 tasks", |s| s.running == 2).await;

    let stop = act_on_services(&engine, ServiceTarget::Stack("shop"), Action::Stop, &HashMap::new()).await.unwrap();
    let summary: Vec<(&str, bool, Remember)> = stop.iter().map(|o| (o.service(), o.result.ok, o.remember)).collect();
    assert_eq!(summary, vec![("shop_agent", false, Remember::Unchanged), ("shop_web", true, Remember::Save(2))]);
    wait_service(&engine, "shop_web", "went down", |s| s.running == 0 && s.desired == 0).await;
    assert_eq!(service(&engine, "shop_agent").await.desired, 1, "the global service was left running");

    let saved = HashMap::from([("shop_web".to_string(), 2)]);
    let start = act_on_services(&engine, ServiceTarget::Service("shop_web"), Action::Start, &saved).await.unwrap();
    assert_eq!((start[0].result.ok, start[0].remember), (true, Remember::Forget), "{start:?}");
    wait_service(&engine, "shop_web", "came back to 2", |s| s.running == 2 && s.desired == 2).await;

    let again =
        act_on_services(&engine, ServiceTarget::Service("shop_web"), Action::Start, &HashMap::new()).await.unwrap();
    assert_eq!((again[0].result.ok, again[0].remember), (true, Remember::Unchanged), "already up: nothing to do");
    assert_eq!(service(&engine, "shop_web").await.desired, 2);
}

/// Through DockNap's API: a Swarm manager added as a host lists its services;
/// stop remembers the replicas across a DockNap restart, start brings them
/// back, restart replaces the tasks; pause and a global stop are refused, at
/// once and when a schedule is saved.
#[tokio::test(flavor = "multi_thread")]
async fn services_through_the_api_remember_replicas_across_a_docknap_restart() {
    use reqwest::StatusCode;
    use serde_json::json;
    let second = SecondEngine::start();
    let _manager = second.init_swarm();
    second.create_service("api", &["--replicas", "2", "--label", "com.docker.stack.namespace=shop"]);
    second.create_service("node", &["--mode", "global"]);
    let hosts = format!("sw={}", second.host());
    let tmp = tempfile::tempdir().unwrap();
    let mut s = crate::harness::Server::configure(tmp.path().join("data"), &[("DOCKNAP_HOSTS", &hosts)]);
    s.spawn();
    let t = s.admin_token().await;

    async fn listed(s: &crate::harness::Server, t: String) -> Vec<serde_json::Value> {
        let (st, v) = s.get("/api/services?host=sw", &t).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v.as_array().unwrap().clone()
    }
    let api = s
        .wait_for("the service with 2 replicas running", Duration::from_secs(60), || async {
            listed(&s, t.clone()).await.into_iter().find(|v| v["name"] == "api" && v["replicas"] == 2)
        })
        .await;
    assert_eq!(
        (api["host"].as_str(), api["stack"].as_str(), api["mode"].as_str()),
        (Some("sw"), Some("shop"), Some("replicated"))
    );
    assert_eq!((api["desired_replicas"].as_u64(), api["saved_replicas"].as_u64()), (Some(2), None));
    let (_, h) = s.get("/api/hosts/sw", &t).await;
    assert_eq!(h["swarm_manager"], true, "{h}");

    // Refused: pause (now and in a schedule), a global stop.
    let (st, e) = s.post("/api/services/api/pause?host=sw", &t, json!({})).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_action")), "{e}");
    let body =
        json!({"host": "sw", "target_type": "service", "target_id": "api", "action": "pause", "cron": "0 3 * * *"});
    let (st, e) = s.post("/api/schedules", &t, body).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_action")), "{e}");
    let (st, e) = s.post("/api/services/node/stop?host=sw", &t, json!({})).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("unsupported")), "{e}");

    // Stop the Swarm stack: scaled to 0, 2 remembered, even after a restart of DockNap.
    let (st, r) = s.post("/api/swarm-stacks/shop/stop?host=sw", &t, json!({})).await;
    assert_eq!((st, r["ok"].as_bool()), (StatusCode::OK, Some(true)), "{r}");
    wait_service(&engine_of(&second), "api", "scaled to 0", |x| x.desired == 0 && x.running == 0).await;
    s.terminate();
    s.spawn();
    let t = s.admin_token().await;
    let stopped = s
        .wait_for("the stopped service listed again", Duration::from_secs(30), || async {
            listed(&s, t.clone()).await.into_iter().find(|v| v["name"] == "api")
        })
        .await;
    assert_eq!(
        (stopped["desired_replicas"].as_u64(), stopped["saved_replicas"].as_u64()),
        (Some(0), Some(2)),
        "{stopped}"
    );

    // Start: back to 2; restart: new tasks.
    let (st, r) = s.post("/api/services/api/start?host=sw", &t, json!({})).await;
    assert_eq!((st, r["ok"].as_bool()), (StatusCode::OK, Some(true)), "{r}");
    wait_service(&engine_of(&second), "api", "back to 2", |x| x.desired == 2 && x.running == 2).await;
    let before = second.running_tasks("api");
    let (st, r) = s.post("/api/services/api/restart?host=sw", &t, json!({})).await;
    assert_eq!((st, r["ok"].as_bool()), (StatusCode::OK, Some(true)), "{r}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while second.running_tasks("api").intersection(&before).next().is_some() || second.running_tasks("api").len() < 2 {
        assert!(Instant::now() < deadline, "the restart did not replace the tasks");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, entries) = s.get("/api/audit?host=sw&action=stop", &t).await;
    assert!(
        entries["entries"].as_array().unwrap().iter().any(|e| e["target_type"] == "swarm_stack" && e["ok"] == true),
        "{entries}"
    );
}

/// A window on a Swarm service keeps it scaled to 0 while down (remembering
/// its replicas) and brings the replicas back when an override says up.
#[tokio::test(flavor = "multi_thread")]
async fn a_window_keeps_a_swarm_service_down_and_an_override_brings_it_back() {
    use reqwest::StatusCode;
    use serde_json::json;
    let second = SecondEngine::start();
    let _manager = second.init_swarm();
    second.create_service("night", &["--replicas", "2"]);
    let engine = engine_of(&second);
    wait_service(&engine, "night", "running 2", |x| x.running == 2).await;
    let hosts = format!("sw={}", second.host());
    let s = crate::harness::Server::start_with(&[("DOCKNAP_HOSTS", &hosts)]);
    let t = s.admin_token().await;
    s.wait_for("the manager's services", Duration::from_secs(30), || async {
        let (_, v) = s.get("/api/services?host=sw", &t).await;
        v.as_array().is_some_and(|a| !a.is_empty()).then_some(())
    })
    .await;

    let body = json!({"host": "sw", "target_type": "service", "target_id": "night", "spec": "never", "grace": "0", "down_action": "pause"});
    let (st, e) = s.post("/api/windows", &t, body).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_window")),
        "pause is not for services: {e}"
    );
    let body = json!({"host": "sw", "target_type": "service", "target_id": "night", "spec": "never", "grace": "0"});
    let (st, w) = s.post("/api/windows", &t, body).await;
    assert_eq!(st, StatusCode::CREATED, "{w}");
    let began = Instant::now();
    wait_service(&engine, "night", "scaled to 0 by the window", |x| x.desired == 0).await;
    println!("window scaled the service to 0 in {} ms", began.elapsed().as_millis());

    let (st, v) = s
        .post(
            &format!("/api/windows/{}/override", w["id"]),
            &t,
            json!({"desired": "up", "until": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    wait_service(&engine, "night", "back to its 2 replicas", |x| x.desired == 2).await;
    let (_, entries) = s.get("/api/audit?host=sw&actor=window", &t).await;
    let actions: Vec<&str> =
        entries["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"stop") && actions.contains(&"start"), "{actions:?}");
}
