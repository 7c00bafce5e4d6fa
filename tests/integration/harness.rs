//! Test bench: the real `docknap` binary on a loopback port, the real Docker
//! Engine, and compose v2 projects with unique names that are torn down even
//! when a test fails. No engine is a failure, never a skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "test-admin-password-1";

pub fn test_image() -> String {
    std::env::var("DOCKNAP_TEST_IMAGE").unwrap_or_else(|_| "docknap-test-busybox:latest".into())
}

fn compose_bin() -> PathBuf {
    std::env::var_os("DOCKNAP_COMPOSE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/docker-compose"))
}

/// Panics (fails the test) when the engine is not there.
pub fn require_docker() {
    let out = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("the Docker Engine is required for this test: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("the docker CLI is required for this test: {e}"),
    }
}

/// Runs the docker CLI; `Err(stderr)` when it fails.
pub fn docker_try(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("the docker CLI is required for the image tests: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

pub fn docker(args: &[&str]) -> String {
    docker_try(args).unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A busybox service that stops at once on SIGTERM.
pub fn service(name: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    image: {}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.2; done\"]\n{extra}",
        test_image()
    )
}

pub struct Compose {
    pub project: String,
    dir: tempfile::TempDir,
}

impl Compose {
    /// `services` is the YAML body under `services:` (see [`service`]).
    pub fn up(prefix: &str, services: &str) -> Compose {
        Compose::up_named(unique(prefix), services)
    }

    /// [`Compose::up`] with a project name chosen before (for labels that name it).
    pub fn up_named(project: String, services: &str) -> Compose {
        let c = Compose::named(project, services);
        c.run(&["up", "-d", "--wait"]);
        c
    }

    /// Writes the project's compose file and starts nothing.
    pub fn new(prefix: &str, services: &str) -> Compose {
        Compose::named(unique(prefix), services)
    }

    fn named(project: String, services: &str) -> Compose {
        require_docker();
        let c = Compose { project, dir: tempfile::tempdir().unwrap() };
        c.write(services);
        c
    }

    /// Replaces the compose file (the next `up` applies it).
    pub fn write(&self, services: &str) {
        std::fs::write(self.dir.path().join("compose.yml"), format!("services:\n{services}")).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new(compose_bin())
            .args(["-p", &self.project, "-f"])
            .arg(self.dir.path().join("compose.yml"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", compose_bin().display()));
        assert!(out.status.success(), "compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The container name compose gives a service's first replica.
    pub fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.project)
    }

    pub fn state(&self, service: &str) -> String {
        docker(&["inspect", "-f", "{{.State.Status}}", &self.container(service)])
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = Command::new(compose_bin())
            .args(["-p", &self.project, "-f"])
            .arg(self.dir.path().join("compose.yml"))
            .args(["down", "-t", "0", "-v", "--remove-orphans"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn new_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    env: HashMap<String, String>,
    child: Option<Child>,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut s = Server::configure(data_dir, env);
        s._tmp = Some(tmp);
        s.spawn();
        s
    }

    pub fn configure(data_dir: PathBuf, env: &[(&str, &str)]) -> Server {
        // A test that sets its own DOCKNAP_LISTEN is reached on that port (over IPv4 loopback).
        let given_port =
            env.iter().find(|(k, _)| *k == "DOCKNAP_LISTEN").and_then(|(_, v)| v.rsplit(':').next()?.parse().ok());
        let port = given_port.unwrap_or_else(free_port);
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DOCKNAP_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("DOCKNAP_DATA_DIR".into(), data_dir.display().to_string()),
            ("DOCKNAP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("DOCKNAP_LOG".into(), "info".into()),
        ]);
        for (k, v) in env {
            vars.insert(k.to_string(), v.to_string());
        }
        let log = data_dir.with_extension("log");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
            _tmp: None,
            env: vars,
            child: None,
            log,
            http: new_client(),
        }
    }

    /// Starts without `DOCKNAP_ADMIN_PASSWORD`, so a password is generated.
    pub fn spawn_without_password(&mut self) {
        self.env.remove("DOCKNAP_ADMIN_PASSWORD");
        self.spawn();
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_docknap"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn docknap");
        self.child = Some(child);
        // Pooled connections to a previous process on this port are dead.
        self.http = new_client();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.base.trim_start_matches("http://")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docknap did not start; log:\n{}", self.log_text());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; returns the exit status and how long the exit took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let mut c = self.child.take().expect("running");
        let t = Instant::now();
        send_signal(c.id(), "TERM");
        let status = c.wait().unwrap();
        (status, t.elapsed())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (st, v) = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(serde_json::json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "login {username}: {v}");
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` and returns a token for them.
    pub async fn user_token(&self, admin: &str, role: &str) -> String {
        let name = unique(role).replace('-', "_");
        let (st, v) = self
            .post("/api/users", admin, serde_json::json!({"username": name, "password": "password-123", "role": role}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        self.login(&name, "password-123").await
    }

    /// Polls `f` until it returns Some, or panics after `timeout`.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, timeout: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; server log:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the server sees the engine and the given stack.
    pub async fn wait_stack(&self, token: &str, name: &str, status: &str) -> Value {
        self.wait_for(&format!("stack {name} to be {status}"), Duration::from_secs(10), || async {
            let (st, v) = self.get(&format!("/api/stacks/{name}"), token).await;
            (st == StatusCode::OK && v["status"] == status).then_some(v)
        })
        .await
    }
}

/// The objects of a list made through the API: label-defined ones come from
/// whatever labelled containers other tests run on the shared engine.
pub fn api_made(list: &Value) -> Vec<Value> {
    list.as_array().expect("a list").iter().filter(|o| o["source"] == "api").cloned().collect()
}

pub fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
