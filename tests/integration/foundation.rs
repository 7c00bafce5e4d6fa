//! Discovery, stacks, live events, health, configuration errors, and
//! recovery from an engine that goes away.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;

use crate::harness::*;

#[tokio::test]
async fn containers_and_stacks_reflect_the_engine_with_every_status() {
    let proj = Compose::up("disc", &(service("web", "") + &service("db", "")));
    let s = Server::start();
    let t = s.admin_token().await;

    let stack = s.wait_stack(&t, &proj.project, "running").await;
    assert_eq!(stack["name"], proj.project.as_str());
    assert_eq!(stack["services"], serde_json::json!(["db", "web"]));
    assert_eq!(stack["containers"].as_array().unwrap().len(), 2);

    let (st, list) = s.get("/api/containers", &t).await;
    assert_eq!(st, StatusCode::OK);
    let web = list.as_array().unwrap().iter().find(|c| c["name"] == proj.container("web").as_str()).expect("listed");
    assert_eq!(web["stack"], proj.project.as_str());
    assert_eq!(web["service"], "web");
    assert_eq!(web["state"], "running");
    assert_eq!(web["image"], test_image().as_str());
    assert!(web["status"].as_str().unwrap().starts_with("Up"), "{web}");
    assert_eq!(web["labels"]["com.docker.compose.project"], proj.project.as_str());
    assert!(web["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(web["id"].as_str().unwrap().len(), 64);

    // One container by name and by id.
    let (st, one) = s.get(&format!("/api/containers/{}", proj.container("web")), &t).await;
    assert_eq!((st, &one["id"]), (StatusCode::OK, &web["id"]));
    let (st, by_id) = s.get(&format!("/api/containers/{}", web["id"].as_str().unwrap()), &t).await;
    assert_eq!((st, &by_id["name"]), (StatusCode::OK, &web["name"]));
    let (st, e) = s.get("/api/containers/no-such-container-xyz", &t).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (st, _) = s.get("/api/stacks/no-such-stack-xyz", &t).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Every status, driven from outside DockNap.
    docker(&["stop", "-t", "1", &proj.container("db")]);
    s.wait_stack(&t, &proj.project, "partial").await;
    docker(&["stop", "-t", "1", &proj.container("web")]);
    s.wait_stack(&t, &proj.project, "stopped").await;
    proj.run(&["start"]);
    s.wait_stack(&t, &proj.project, "running").await;
    proj.run(&["pause"]);
    s.wait_stack(&t, &proj.project, "paused").await;
    proj.run(&["unpause"]);
    s.wait_stack(&t, &proj.project, "running").await;

    // A finished `docker compose run` container is listed with its project
    // but is no member of the stack (as in compose's own ps/start/stop).
    let one_off = format!("{}-oneoff", proj.project);
    proj.run(&["run", "-d", "--name", &one_off, "web", "true"]);
    let listed = s
        .wait_for("the one-off container, exited", Duration::from_secs(10), || async {
            let (_, c) = s.get(&format!("/api/containers/{one_off}"), &t).await;
            (c["state"] == "exited").then_some(c)
        })
        .await;
    assert_eq!(listed["stack"], proj.project.as_str());
    let stack = s.wait_stack(&t, &proj.project, "running").await;
    assert_eq!(stack["containers"].as_array().unwrap().len(), 2, "{stack}");

    // Standalone containers have null stack and service.
    let (_, list) = s.get("/api/containers", &t).await;
    let all = list.as_array().unwrap();
    let listed = |name: &str| all.iter().any(|c| c["name"] == name);
    assert!(listed(&proj.container("db")));

    // Removed containers leave the view, and the stack with them.
    let path = format!("/api/stacks/{}", proj.project);
    drop(proj);
    s.wait_for("the stack to disappear", Duration::from_secs(10), || async {
        (s.get(&path, &t).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}

#[tokio::test]
async fn standalone_container_has_no_stack() {
    require_docker();
    let name = unique("solo");
    docker(&["run", "-d", "--name", &name, &test_image(), "sleep", "600"]);
    let _cleanup = Remove(name.clone());
    let s = Server::start();
    let t = s.admin_token().await;
    let c = s
        .wait_for("the standalone container", Duration::from_secs(10), || async {
            let (st, v) = s.get(&format!("/api/containers/{name}"), &t).await;
            (st == StatusCode::OK).then_some(v)
        })
        .await;
    assert!(c["stack"].is_null() && c["service"].is_null(), "{c}");
}

/// Removes a container created by a test, even when the test fails.
struct Remove(String);
impl Drop for Remove {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// Reads SSE frames until one satisfies `pred`; returns how long it took.
async fn await_event(resp: reqwest::Response, pred: impl Fn(&str, &serde_json::Value) -> bool) -> Duration {
    let start = Instant::now();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let event = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("");
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            if pred(event, &serde_json::from_str(data).unwrap_or_default()) {
                return start.elapsed();
            }
        }
    }
    panic!("event stream ended");
}

#[tokio::test]
async fn outside_stop_shows_in_view_and_on_events_at_once() {
    let proj = Compose::up("evt", &service("app", ""));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;

    let resp = s.http.get(s.url("/api/events")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let name = proj.container("app");
    let project = proj.project.clone();
    let waiter = tokio::spawn(async move {
        await_event(resp, move |ev, d| {
            ev == "stack" && d["name"] == project.as_str() && d["stack"]["status"] == "stopped"
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    docker(&["kill", &name]);
    // The bound catches a fall back to polling (the idle recheck is 60 s);
    // the latency itself is printed, not asserted: it includes the docker
    // CLI's own run, which other tests' load on the engine can slow.
    let _ = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the event comes from the stream, not a recheck")
        .unwrap();
    println!("outside stop → stack event: {} ms (includes the docker CLI's own run)", t0.elapsed().as_millis());
    let (_, c) = s.get(&format!("/api/containers/{name}"), &t).await;
    assert_eq!(c["state"], "exited");

    // Without a token, no events.
    let r = s.http.get(s.url("/api/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn no_engine_means_503_and_unreachable_health() {
    let s = Server::start_with(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    // `connecting` until the first attempt has finished, then `unreachable`.
    let h = s
        .wait_for("the first attempt to reach the engine", Duration::from_secs(5), || async {
            let (st, h) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
            assert_eq!(st, StatusCode::OK);
            assert!(matches!(h["docker"].as_str(), Some("connecting" | "unreachable")), "{h}");
            (h["docker"] == "unreachable").then_some(h)
        })
        .await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["hosts"], serde_json::json!({"local": "unreachable"}));
    assert!(h["version"].is_string());
    let t = s.admin_token().await;
    for path in ["/api/containers", "/api/stacks", "/api/stacks/x", "/api/containers/x"] {
        let (st, e) = s.get(path, &t).await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(e["error"]["code"], "docker_unavailable");
    }
    let (st, e) = s.post("/api/stacks/x/stop", &t, serde_json::json!({})).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("docker_unavailable")));
}

/// A unix socket that forwards to the real engine and can be taken away.
struct FlakySocket {
    path: PathBuf,
    tasks: Option<JoinSet<()>>,
}

impl FlakySocket {
    fn new(path: PathBuf) -> Self {
        let mut s = FlakySocket { path, tasks: None };
        s.up();
        s
    }

    fn up(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).unwrap();
        let mut set = JoinSet::new();
        set.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut upstream) = UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                });
            }
        });
        self.tasks = Some(set);
    }

    /// Drops every connection and removes the socket, as a stopped engine does.
    fn down(&mut self) {
        self.tasks = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test]
async fn recovers_when_the_engine_goes_away_and_comes_back() {
    let proj = Compose::up("flaky", &service("app", ""));
    let dir = tempfile::tempdir().unwrap();
    let mut sock = FlakySocket::new(dir.path().join("docker.sock"));
    let host = format!("unix://{}", dir.path().join("docker.sock").display());
    let s = Server::start_with(&[("DOCKER_HOST", &host)]);
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;

    let health = |want: &'static str| {
        let s = &s;
        async move {
            s.wait_for(&format!("docker {want}"), Duration::from_secs(10), || async {
                let (_, h) = s.call(reqwest::Method::GET, "/healthz", None, None).await;
                (h["docker"] == want).then_some(())
            })
            .await
        }
    };
    sock.down();
    health("unreachable").await;
    let (st, _) = s.get("/api/stacks", &t).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);

    // Changed while we were blind: a full reload must pick it up.
    docker(&["stop", "-t", "1", &proj.container("app")]);
    sock.up();
    health("ok").await;
    s.wait_stack(&t, &proj.project, "stopped").await;
    // And events flow again after the reconnect.
    proj.run(&["start"]);
    s.wait_stack(&t, &proj.project, "running").await;
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_exits_0_within_two_seconds() {
    let mut s = Server::start_with(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    let t = s.admin_token().await;
    // A live event stream must not hold the shutdown up.
    let events = s.http.get(s.url("/api/events")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let (status, took) = s.terminate();
    assert!(status.success(), "exit status {status:?}; log:\n{}", s.log_text());
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    assert!(s.log_text().contains("shutting down"));
}

#[tokio::test]
async fn docknap_tz_is_the_default_zone_of_new_schedules() {
    let s = Server::start_with(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock"), ("DOCKNAP_TZ", "Europe/Berlin")]);
    let t = s.admin_token().await;
    let (_, me) = s.get("/api/auth/me", &t).await;
    assert_eq!((me["username"].as_str(), me["default_timezone"].as_str()), (Some("admin"), Some("Europe/Berlin")));
    let body =
        serde_json::json!({"target_type": "stack", "target_id": "later", "action": "stop", "cron": "0 23 * * *"});
    let (st, created) = s.post("/api/schedules", &t, body).await;
    assert_eq!((st, created["timezone"].as_str()), (StatusCode::CREATED, Some("Europe/Berlin")), "{created}");
}

fn run_with_env(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_docknap"))
        .env_clear()
        .env("DOCKNAP_DATA_DIR", dir.path())
        .env("DOCKNAP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn bad_configuration_stops_startup_with_exit_2_naming_the_variable() {
    for (var, value) in [
        ("DOCKNAP_TOKEN_TTL", "forever"),
        ("DOCKNAP_TZ", "Mars/Olympus"),
        ("DOCKNAP_LISTEN", "nope"),
        ("DOCKNAP_DATA_DIR", "/proc/docknap-cannot-write-here"),
        ("DOCKNAP_SECURE_COOKIE", "sometimes"),
        ("DOCKNAP_TRUSTED_PROXIES", "not-a-cidr"),
        ("DOCKNAP_ENGINE_RECHECK", "soon"),
    ] {
        let (code, stderr) = run_with_env(&[(var, value)]);
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("docknap")).collect();
        assert_eq!(lines.len(), 1, "{var}: one line, got {stderr:?}");
        assert!(lines[0].contains(var), "{var}: {stderr}");
    }
}

#[tokio::test]
async fn healthcheck_subcommand_asks_the_listen_address_of_any_family() {
    let healthcheck = |listen: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_docknap"))
            .arg("healthcheck")
            .env_clear()
            .env("DOCKNAP_LISTEN", listen)
            .env("DOCKNAP_DATA_DIR", "/nonexistent")
            .output()
            .unwrap();
        out.status.code()
    };
    for host in ["0.0.0.0", "[::]", "127.0.0.1"] {
        let listen = format!("{host}:{}", free_port());
        let s = Server::start_with(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock"), ("DOCKNAP_LISTEN", &listen)]);
        assert_eq!(healthcheck(&listen), Some(0), "{listen}: {}", s.log_text());
        drop(s);
        assert_eq!(healthcheck(&listen), Some(1), "{listen}: nothing listens any more");
    }
}

#[test]
fn version_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_docknap")).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("docknap {}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn ui_is_served_with_spa_fallback_and_api_404s_are_json() {
    let s = Server::start_with(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    for path in ["/", "/stacks/some-stack", "/audit"] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert_eq!(r.headers()["cache-control"], "no-cache");
        assert!(r.text().await.unwrap().to_lowercase().contains("<!doctype html"));
    }
    // A hashed asset an old page still asks for is a 404, not index.html.
    let r = s.http.get(s.url("/assets/index-0ld0ld.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Traversal never leaves the bundle.
    let r = s.http.get(s.url("/..%2f..%2fCargo.toml")).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("[package]"));
    let (st, e) = s.call(reqwest::Method::GET, "/api/nope", None, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(e["error"]["code"], "not_found");
}
