//! The DockNap image (`DOCKNAP_IMAGE`, default `docknap:latest`, built by
//! `make image`) on the real Docker Engine: the socket mounted, a named volume
//! at /data, a published loopback port. No engine or no image is a failure,
//! never a skip. Every container, volume and compose project a test makes is
//! removed by a Drop guard, also when the test fails.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const PASSWORD: &str = "image-test-password-1";

// ---- the engine and the image ----

fn image() -> String {
    std::env::var("DOCKNAP_IMAGE").unwrap_or_else(|_| "docknap:latest".into())
}

/// Panics, naming what is missing, when the engine or the image is not there.
fn require_image() -> String {
    if let Err(e) = docker_try(&["info", "--format", "{{.ServerVersion}}"]) {
        panic!("the Docker Engine is required for the image tests (bash scripts/test-env.sh starts it): {e}");
    }
    let image = image();
    if let Err(e) = docker_try(&["image", "inspect", "--format", "{{.Id}}", &image]) {
        panic!("the image {image} (DOCKNAP_IMAGE) is required; build it with `make image`: {e}");
    }
    image
}

/// Removes containers and volumes, in that order, when dropped.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            if std::thread::panicking() {
                // The log of a container that took part in a failure helps.
                if let Ok(log) = Command::new("docker").args(["logs", "--tail", "40", c]).output() {
                    eprintln!(
                        "--- docker logs {c} ---\n{}{}",
                        String::from_utf8_lossy(&log.stdout),
                        String::from_utf8_lossy(&log.stderr)
                    );
                }
            }
            let _ =
                Command::new("docker").args(["rm", "-f", "-v", c]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        for v in &self.volumes {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", v])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A compose v2 project of test-image services, torn down when dropped.
fn state(container: &str) -> String {
    docker(&["inspect", "-f", "{{.State.Status}}", container])
}

// ---- DockNap in a container ----

struct Instance {
    name: String,
    base: String,
    http: reqwest::Client,
}

/// `docker run -d` of the image with the socket, `volume` at /data and a
/// loopback port; waits until /healthz answers 200.
fn run_docknap(cleanup: &mut Cleanup, volume: &str, extra: &[&str]) -> Instance {
    let image = require_image();
    let name = unique("docknap-image-test");
    let mount = format!("{volume}:/data");
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &mount,
        "-p",
        "127.0.0.1::8080",
        "--health-interval",
        "1s",
        "--health-timeout",
        "3s",
        "-e",
        "DOCKNAP_LOG=info",
    ];
    args.extend_from_slice(extra);
    args.push(&image);
    docker(&args);
    cleanup.containers.push(name.clone());
    let base = format!("http://{}", host_port(&name));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let inst = Instance { name, base, http };
    inst.wait_healthz();
    inst
}

/// The loopback address Docker published 8080/tcp on.
fn host_port(container: &str) -> String {
    let out = docker(&["port", container, "8080/tcp"]);
    let line = out.lines().find(|l| l.starts_with("127.0.0.1:")).unwrap_or_else(|| panic!("no loopback port: {out}"));
    line.trim().to_string()
}

impl Instance {
    fn wait_healthz(&self) -> Value {
        // Generous: on a loaded CI machine `docker run` alone can take seconds.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match block(async { self.http.get(format!("{}/healthz", self.base)).send().await }) {
                Ok(r) if r.status() == StatusCode::OK => return block(async { r.json::<Value>().await }).unwrap(),
                _ if Instant::now() > deadline => {
                    panic!("{} did not answer /healthz within 30 s; state {}", self.name, state(&self.name))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn wait_docker_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let h = docker(&["inspect", "-f", "{{.State.Health.Status}}", &self.name]);
            if h == "healthy" {
                return;
            }
            assert!(
                h != "unhealthy",
                "{} became unhealthy: {}",
                self.name,
                docker(&["inspect", "-f", "{{json .State.Health}}", &self.name])
            );
            assert!(Instant::now() < deadline, "{} not healthy within 20 s (status {h})", self.name);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn login(&self, username: &str, password: &str) -> String {
        let (status, body) =
            self.call(None, Method::POST, "/api/auth/login", Some(json!({"username": username, "password": password})));
        assert_eq!(status, StatusCode::OK, "login as {username}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    fn call(&self, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = block(async { req.send().await }).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let text = block(async { resp.text().await }).unwrap_or_default();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }
}

/// The tests are plain #[test]s: the docker CLI is blocking anyway, and a
/// small current-thread runtime (one per test thread) drives each HTTP call.
/// Pass an `async {}` block: reqwest needs the runtime already when a request
/// future is created.
fn block<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    }
    RT.with(|rt| rt.block_on(f))
}

/// `docker stop -t 5`: the time from SIGTERM to the process's exit (the
/// engine's `State.FinishedAt`; same host clock), and the exit code it left.
/// Measured to the exit rather than to the CLI's return, so that a loaded
/// machine's CLI and API overhead around the exit does not count.
fn stop_timed(container: &str) -> (Duration, i64) {
    let sent = chrono::Utc::now();
    let t = Instant::now();
    docker(&["stop", "-t", "5", container]);
    let cli = t.elapsed();
    let out = docker(&["inspect", "-f", "{{.State.ExitCode}} {{.State.FinishedAt}}", container]);
    let (code, finished) = out.split_once(' ').unwrap();
    let finished =
        chrono::DateTime::parse_from_rfc3339(finished).unwrap_or_else(|e| panic!("FinishedAt {finished:?}: {e}"));
    let finished = finished.with_timezone(&chrono::Utc);
    // From the moment DockNap got the signal (its "shutting down" log line)
    // when it logged one, so the engine's own delay in delivering it does not count.
    let logs = Command::new("docker").args(["logs", container]).output().expect("docker logs");
    let logs = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
    let got_signal = logs
        .lines()
        .filter(|l| l.contains("shutting down"))
        .filter_map(|l| chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .rfind(|t| *t >= sent - chrono::Duration::milliseconds(50));
    let from = got_signal.unwrap_or(sent);
    let took = (finished - from).to_std().unwrap_or(Duration::ZERO);
    println!(
        "  docker stop: signal delivered {} ms after the request, exit {} ms after the signal (CLI returned after {} ms)",
        got_signal.map_or("?".to_string(), |g| (g - sent).num_milliseconds().to_string()),
        took.as_millis(),
        cli.as_millis()
    );
    (took, code.parse().unwrap())
}

// ---- the tests ----

#[test]
fn image_is_scratch_small_and_described() {
    let image = require_image();
    let cfg: Value = serde_json::from_str(&docker(&["image", "inspect", &image])).unwrap();
    let cfg = &cfg[0];
    let size = cfg["Size"].as_u64().unwrap();
    println!("image {image}: {:.2} MB ({size} bytes); aim < 10 MB", size as f64 / 1e6);
    assert!(size < 50_000_000, "image is {size} bytes, over the 50 MB limit");

    let c = &cfg["Config"];
    let health: Vec<&str> =
        c["Healthcheck"]["Test"].as_array().expect("a HEALTHCHECK").iter().filter_map(Value::as_str).collect();
    assert_eq!(health, ["CMD", "/usr/local/bin/docknap", "healthcheck"], "HEALTHCHECK uses the binary itself");
    assert!(c["ExposedPorts"].get("8080/tcp").is_some(), "EXPOSE 8080: {}", c["ExposedPorts"]);
    assert!(c["Volumes"].get("/data").is_some(), "VOLUME /data: {}", c["Volumes"]);
    let env: Vec<&str> = c["Env"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(env.contains(&"DOCKNAP_DATA_DIR=/data"), "env: {env:?}");
    for label in ["title", "version", "revision", "created", "licenses", "description"] {
        let key = format!("org.opencontainers.image.{label}");
        assert!(
            c["Labels"].get(&key).and_then(Value::as_str).is_some_and(|v| !v.is_empty()),
            "label {key}: {}",
            c["Labels"]
        );
    }
    // One layer: the scratch image is the binary and two empty folders.
    assert_eq!(cfg["RootFS"]["Layers"].as_array().unwrap().len(), 1, "layers: {}", cfg["RootFS"]);

    // The binary runs with nothing around it, and there is no shell.
    let version = docker(&["run", "--rm", "--network", "none", &image, "--version"]);
    assert!(version.starts_with("docknap "), "--version printed {version:?}");
    let label = c["Labels"]["org.opencontainers.image.version"].as_str().unwrap();
    assert!(version.ends_with(label), "--version {version:?} vs label {label}");
    let shell = docker_try(&["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", &image, "-c", "true"]);
    assert!(shell.is_err(), "the image has a shell");
}

/// Log in, drive a compose stack, refuse to stop itself, stop on SIGTERM in
/// time, and keep users, schedules and audit in the volume across a
/// re-creation of the container and a SIGKILL.
#[test]
fn container_runs_acts_and_keeps_its_data() {
    let mut cleanup = Cleanup::default();
    let volume = unique("docknap-image-test-data");
    docker(&["volume", "create", &volume]);
    cleanup.volumes.push(volume.clone());
    // DockNap itself inside a compose project, as `docker compose up` would label it.
    let own_project = unique("docknap-image-self");
    let project_label = format!("com.docker.compose.project={own_project}");
    let password_env = format!("DOCKNAP_ADMIN_PASSWORD={PASSWORD}");
    let labels = ["--label", &project_label, "--label", "com.docker.compose.service=docknap"];

    // 1. Up, healthy (also per Docker's own HEALTHCHECK), reaching the engine.
    let mut extra = vec!["-e", &password_env];
    extra.extend_from_slice(&labels);
    let started = Instant::now();
    let dn = run_docknap(&mut cleanup, &volume, &extra);
    println!("container to /healthz 200: {} ms", started.elapsed().as_millis());
    let health = dn.wait_healthz();
    assert_eq!(health["status"], "ok", "{health}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while dn.wait_healthz()["docker"] != "ok" {
        assert!(
            Instant::now() < deadline,
            "DockNap in the image does not reach the engine through the socket: {}",
            dn.wait_healthz()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    dn.wait_docker_healthy();
    let token = dn.login("admin", PASSWORD);
    let t = Some(token.as_str());

    // 2. A compose stack stopped and started through it (depends_on order).
    let stack = Compose::up(
        "docknap-image-stack",
        &format!("{}{}", service("db", ""), service("web", "    depends_on: [db]\n")),
    );
    let path = format!("/api/stacks/{}", stack.project);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, body) = dn.call(t, Method::GET, &path, None);
        if s == StatusCode::OK
            && body["status"] == "running"
            && body["containers"].as_array().is_some_and(|c| c.len() == 2)
        {
            break;
        }
        assert!(Instant::now() < deadline, "stack not seen running: {s} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (s, body) = dn.call(t, Method::POST, &format!("{path}/stop"), None);
    assert_eq!(s, StatusCode::OK, "stack stop: {body}");
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(state(&stack.container("db")), "exited");
    assert_eq!(state(&stack.container("web")), "exited");
    let (s, body) = dn.call(t, Method::POST, &format!("{path}/start"), None);
    assert_eq!(s, StatusCode::OK, "stack start: {body}");
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(state(&stack.container("db")), "running");
    assert_eq!(state(&stack.container("web")), "running");

    // 3. Self-protection: its own container, and the stack that holds it.
    for action in ["stop", "pause", "restart"] {
        let (s, body) = dn.call(t, Method::POST, &format!("/api/containers/{}/{action}", dn.name), None);
        assert_eq!(s, StatusCode::CONFLICT, "{action} own container: {body}");
        assert_eq!(body["error"]["code"], "self_protection", "{body}");
    }
    let (s, body) = dn.call(t, Method::POST, &format!("/api/stacks/{own_project}/stop"), None);
    assert_eq!(s, StatusCode::CONFLICT, "stop own stack: {body}");
    assert_eq!(body["error"]["code"], "self_protection", "{body}");
    assert_eq!(state(&dn.name), "running");

    // 4. Data to keep: a user and a schedule.
    let (s, body) = dn.call(
        t,
        Method::POST,
        "/api/users",
        Some(json!({"username": "ops", "password": "ops-password-1", "role": "operator"})),
    );
    assert_eq!(s, StatusCode::CREATED, "create user: {body}");
    let (s, body) = dn.call(
        t,
        Method::POST,
        "/api/schedules",
        Some(json!({"target_type": "stack", "target_id": stack.project, "action": "stop", "cron": "30 2 * * *", "timezone": "Europe/Berlin"})),
    );
    assert_eq!(s, StatusCode::CREATED, "create schedule: {body}");
    let schedule_a = body["id"].clone();

    // 5. SIGTERM (docker stop) with a live SSE client: exit 0 within 2 s.
    let sse = block(async { dn.http.get(format!("{}/api/events", dn.base)).bearer_auth(&token).send().await })
        .expect("GET /api/events");
    assert_eq!(sse.status(), StatusCode::OK);
    let (took, code) = stop_timed(&dn.name);
    drop(sse);
    println!("docker stop (SIGTERM) with an SSE client open: {} ms, exit code {code}", took.as_millis());
    assert_eq!(code, 0, "exit code after SIGTERM");
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?} (limit 2 s)");
    let log = docker(&["logs", &dn.name]);
    assert!(!log.contains("panicked"), "log: {log}");

    // 6. A new container on the same volume, without DOCKNAP_ADMIN_PASSWORD:
    //    the users come from the volume, not from a new bootstrap.
    docker(&["rm", &dn.name]);
    let dn2 = run_docknap(&mut cleanup, &volume, &labels);
    let token = dn2.login("admin", PASSWORD);
    let t = Some(token.as_str());
    dn2.login("ops", "ops-password-1");
    let (s, users) = dn2.call(t, Method::GET, "/api/users", None);
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = users.as_array().unwrap().iter().filter_map(|u| u["username"].as_str()).collect();
    assert!(names.contains(&"admin") && names.contains(&"ops"), "users after re-creation: {users}");
    let (s, schedule) = dn2.call(t, Method::GET, &format!("/api/schedules/{schedule_a}"), None);
    assert_eq!(s, StatusCode::OK, "schedule after re-creation: {schedule}");
    assert_eq!(schedule["target_id"], stack.project.as_str());
    assert_eq!(schedule["timezone"], "Europe/Berlin");
    assert!(schedule["next_run"].is_string(), "{schedule}");
    let (s, audit) = dn2.call(t, Method::GET, "/api/audit?limit=500", None);
    assert_eq!(s, StatusCode::OK);
    let entries = audit["entries"].as_array().unwrap();
    let has = |action: &str, target: &str| {
        entries.iter().any(|e| e["action"] == action && e["target_id"] == target && e["actor"] == "admin")
    };
    assert!(
        has("stop", &stack.project) && has("start", &stack.project),
        "stack actions kept in the audit log: {audit}"
    );
    assert!(entries.iter().filter(|e| e["action"] == "login" && e["ok"] == true).count() >= 3, "logins kept: {audit}");

    // 7. SIGKILL right after a schedule is committed loses nothing.
    let (s, body) = dn2.call(
        t,
        Method::POST,
        "/api/schedules",
        Some(json!({"target_type": "container", "target_id": stack.container("web"), "action": "start", "cron": "0 7 * * 1-5"})),
    );
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let schedule_b = body["id"].clone();
    docker(&["kill", "-s", "KILL", &dn2.name]);
    docker(&["start", &dn2.name]);
    let dn2 = Instance { base: format!("http://{}", host_port(&dn2.name)), ..dn2 };
    dn2.wait_healthz();
    let token = dn2.login("admin", PASSWORD);
    let (s, list) = dn2.call(Some(&token), Method::GET, "/api/schedules", None);
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&Value> = list.as_array().unwrap().iter().map(|s| &s["id"]).collect();
    assert!(ids.contains(&&schedule_a) && ids.contains(&&schedule_b), "schedules after SIGKILL: {list}");
    let (took, code) = stop_timed(&dn2.name);
    println!("docker stop (SIGTERM) after a SIGKILL restart: {} ms, exit code {code}", took.as_millis());
    assert_eq!(code, 0);
}

/// The socket is optional at start: without it DockNap still serves, says
/// so on /healthz, and stays healthy for Docker (the HEALTHCHECK is about
/// DockNap itself).
#[test]
fn container_without_the_socket_still_serves() {
    let image = require_image();
    let mut cleanup = Cleanup::default();
    let name = unique("docknap-image-nosock");
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::8080",
        "--health-interval",
        "1s",
        "-e",
        &format!("DOCKNAP_ADMIN_PASSWORD={PASSWORD}"),
        &image,
    ]);
    cleanup.containers.push(name.clone());
    let dn = Instance {
        base: format!("http://{}", host_port(&name)),
        name,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
    };
    let health = dn.wait_healthz();
    assert_eq!(health["docker"], "unreachable", "{health}");
    dn.wait_docker_healthy();
    let token = dn.login("admin", PASSWORD);
    let (s, body) = dn.call(Some(&token), Method::GET, "/api/stacks", None);
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (took, code) = stop_timed(&dn.name);
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
}

/// SIGTERM while a stack stop is still running (a service that ignores
/// SIGTERM, so the engine waits out its 4 s grace period): in-flight work
/// gets a bounded grace, and DockNap still exits 0 within 2 s.
#[test]
fn sigterm_during_a_long_action_exits_in_time() {
    let mut cleanup = Cleanup::default();
    let volume = unique("docknap-image-test-data");
    docker(&["volume", "create", &volume]);
    cleanup.volumes.push(volume.clone());
    let password_env = format!("DOCKNAP_ADMIN_PASSWORD={PASSWORD}");
    let dn = run_docknap(&mut cleanup, &volume, &["-e", &password_env]);
    let token = dn.login("admin", PASSWORD);
    // `sleep` as PID 1 has no SIGTERM handler, so it ignores SIGTERM.
    let slow = format!(
        "  slow:\n    image: {}\n    command: [\"sleep\", \"3600\"]\n    stop_grace_period: 4s\n",
        test_image()
    );
    let stack = Compose::up("docknap-image-slow", &slow);
    let deadline = Instant::now() + Duration::from_secs(10);
    while dn.call(Some(&token), Method::GET, &format!("/api/stacks/{}", stack.project), None).0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "stack not seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (base, project, tok) = (dn.base.clone(), stack.project.clone(), token.clone());
    let in_flight = std::thread::spawn(move || {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        block(async {
            http.post(format!("{base}/api/stacks/{project}/stop")).bearer_auth(&tok).send().await.map(|r| r.status())
        })
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(!in_flight.is_finished(), "the stack stop should still be running");
    let (took, code) = stop_timed(&dn.name);
    println!("docker stop (SIGTERM) during a 4 s stack stop: {} ms, exit code {code}", took.as_millis());
    assert_eq!(code, 0, "exit code after SIGTERM with an action in flight");
    assert!(took < Duration::from_secs(2), "SIGTERM with an action in flight took {took:?} (limit 2 s)");
    let answer = in_flight.join().unwrap();
    println!("the in-flight stack stop got: {answer:?}");
    // The action the shutdown cut off is in the audit log, as interrupted.
    docker(&["start", &dn.name]);
    let dn = Instance { base: format!("http://{}", host_port(&dn.name)), ..dn };
    dn.wait_healthz();
    let token = dn.login("admin", PASSWORD);
    let (_, audit) = dn.call(Some(&token), Method::GET, &format!("/api/audit?target_id={}", stack.project), None);
    let entries = audit["entries"].as_array().unwrap_or_else(|| panic!("{audit}"));
    assert!(
        entries.iter().any(|e| e["action"] == "stop"
            && e["ok"] == false
            && e["message"].as_str().is_some_and(|m| m.starts_with("interrupted"))),
        "no interrupted stop in the audit log: {audit}"
    );
}
