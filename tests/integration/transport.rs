//! Remote engines for real: mutual TLS to a second dockerd listening with
//! `--tlsverify` (certificates from examples/tls/make-certs.sh), and the
//! socket-proxy example (examples/socket-proxy/haproxy.cfg, Debian's
//! haproxy) in front of another one, with the built binary behind it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docknap::docker::{BollardEngine, DockerError, Engine};
use docknap::model::{Action, TlsMaterial};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::engines::SecondEngine;
use crate::harness::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// examples/tls/make-certs.sh into a new folder (2048-bit keys: quicker, and
/// the key size is not what these tests are about).
fn make_certs(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo("examples/tls/make-certs.sh"))
        .arg(dir.path().join("certs"))
        .args(names)
        .env("KEY_BITS", "2048")
        .output()
        .expect("bash");
    assert!(out.status.success(), "make-certs.sh: {}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn certs(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("certs")
}

fn material(dir: &tempfile::TempDir) -> TlsMaterial {
    let read = |name: &str| std::fs::read_to_string(certs(dir).join(name)).unwrap();
    TlsMaterial { ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem") }
}

/// The docker CLI over the engine's TLS port with the script's client certificate.
fn docker_tls(engine: &SecondEngine, dir: &tempfile::TempDir, args: &[&str]) -> String {
    let file = |name: &str| certs(dir).join(name).display().to_string();
    let out = Command::new("docker")
        .args(["-H", &engine.tls_host(), "--tlsverify"])
        .args(["--tlscacert", &file("ca.pem"), "--tlscert", &file("cert.pem"), "--tlskey", &file("key.pem")])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {args:?} over TLS: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_engine_lists_acts_and_streams_events() {
    let dir = make_certs(&["127.0.0.1"]);
    let engine = SecondEngine::start_tls(&certs(&dir));
    // The script's certificates work for the docker CLI too, as its output says.
    let id = docker_tls(
        &engine,
        &dir,
        &["create", "--network", "none", "--stop-timeout", "1", &test_image(), "sleep", "300"],
    );

    let tls = BollardEngine::connect(&engine.tls_host(), Some(&material(&dir))).unwrap();
    let info = tls.info().await.unwrap();
    assert!(!info.version.is_empty(), "{info:?}");
    let listed = tls.list(None).await.unwrap();
    assert!(listed.iter().any(|c| c.id == id && c.state == docknap::model::ContainerState::Created), "{listed:?}");

    let mut events = tls.container_events();
    let t0 = Instant::now();
    tls.act(&id, Action::Start).await.unwrap();
    assert_eq!(engine.state(&id), "running");
    let started = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.next().await {
            let ev = ev.expect("the events stream over TLS");
            if ev.id == id && ev.action == "start" {
                return;
            }
        }
        panic!("the events stream ended");
    });
    started.await.expect("a start event within 10 s");
    println!("mutual TLS: start + its event in {} ms", t0.elapsed().as_millis());
    assert_eq!(tls.health(&id).await.unwrap(), docknap::docker::Health::None);
    tls.act(&id, Action::Stop).await.unwrap();
    assert_eq!(engine.state(&id), "exited");
    assert_eq!(tls.exit_code(&id).await.unwrap(), Some(137), "killed after its 1 s stop timeout");
}

fn unavailable(r: Result<impl std::fmt::Debug, DockerError>) -> String {
    match r {
        Err(DockerError::Unavailable(m)) => m,
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_refuses_a_foreign_ca_a_foreign_client_and_a_wrong_name() {
    let dir = make_certs(&["127.0.0.1"]);
    let stranger = make_certs(&["127.0.0.1"]);
    let engine = SecondEngine::start_tls(&certs(&dir));
    let good = material(&dir);
    let before = engine.docker(&["ps", "-aq"]);

    // (b) A CA that did not sign the engine's certificate: we hang up.
    let m = TlsMaterial { ca: material(&stranger).ca, ..good.clone() };
    let e = unavailable(BollardEngine::connect(&engine.tls_host(), Some(&m)).unwrap().list(None).await);
    assert!(e.contains("the engine's certificate is not signed by the CA in tls.ca"), "{e}");
    println!("foreign CA: {e}");

    // (c) The engine (--tlsverify) refuses a client certificate from another CA...
    let m = TlsMaterial { cert: material(&stranger).cert, key: material(&stranger).key, ..good.clone() };
    let e = unavailable(BollardEngine::connect(&engine.tls_host(), Some(&m)).unwrap().info().await);
    // (TLS 1.3: the refusal comes after our handshake; it reaches us as the
    // engine's alert or, when it closes first, as a connection closed right
    // after the handshake. Both say what to fix.)
    assert!(e.contains("refused our client certificate"), "{e}");
    println!("foreign client certificate: {e}");
    // ...and a client with none at all.
    let alert = without_client_certificate(&engine.tls_host(), &good.ca);
    assert!(
        matches!(
            alert,
            rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired | rustls::AlertDescription::BadCertificate
            )
        ),
        "{alert:?}"
    );

    // (d) The URL's host is not in the engine certificate's SAN (127.0.0.1 only).
    let by_name = engine.tls_host().replace("127.0.0.1", "localhost");
    let e = unavailable(BollardEngine::connect(&by_name, Some(&good)).unwrap().info().await);
    assert!(
        e.contains("the engine's certificate is not valid for localhost (not among its subject alternative names)"),
        "{e}"
    );
    println!("wrong name: {e}");

    // The right material on the same engine works, and nothing was done by the refused ones.
    BollardEngine::connect(&engine.tls_host(), Some(&good)).unwrap().info().await.unwrap();
    assert_eq!(engine.docker(&["ps", "-aq"]), before);
}

/// A TLS client trusting the engine's CA but presenting no certificate:
/// what the engine answers when asked for its version.
fn without_client_certificate(url: &str, ca: &str) -> rustls::Error {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "127.0.0.1".try_into().unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(url.trim_start_matches("tcp://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut answer = Vec::new();
    let r = tls
        .write_all(b"GET /version HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n")
        .and_then(|_| tls.read_to_end(&mut answer));
    let e = r.expect_err(&format!("the engine answered: {}", String::from_utf8_lossy(&answer)));
    e.into_inner().and_then(|i| i.downcast::<rustls::Error>().ok()).map(|b| *b).expect("a TLS error")
}

/// Debian's haproxy with examples/socket-proxy/haproxy.cfg, in front of `socket`
/// on a loopback port; stopped by its pid on drop.
struct Haproxy {
    port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// `bind_options` go after the bind address (TLS, for one).
    fn start(socket: &Path, bind_options: &str) -> Haproxy {
        let example = std::fs::read_to_string(repo("examples/socket-proxy/haproxy.cfg")).unwrap();
        let port = free_port();
        assert!(example.contains("bind :2375") && example.contains("server engine /var/run/docker.sock"));
        let config = example
            .replace("bind :2375", &format!("bind 127.0.0.1:{port} {bind_options}"))
            .replace("/var/run/docker.sock", &socket.display().to_string());
        let dir = tempfile::tempdir().unwrap();
        let (cfg, log) = (dir.path().join("haproxy.cfg"), dir.path().join("haproxy.log"));
        std::fs::write(&cfg, config).unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("haproxy (Debian's; scripts/test-env.sh installs it)");
        let proxy = Haproxy { port, child, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen: {}",
                std::fs::read_to_string(&proxy.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        send_signal(self.child.id(), "TERM");
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_proxy_example_passes_docknaps_calls_and_refuses_the_rest() {
    let engine = SecondEngine::start();
    let image = test_image();
    let polite = "trap 'exit 0' TERM; while :; do sleep 0.2; done";
    engine.docker(&["run", "-d", "--name", "proxied", "--network", "none", &image, "sh", "-c", polite]);
    let id = engine.docker(&["inspect", "-f", "{{.Id}}", "proxied"]);
    let proxy = Haproxy::start(&engine.socket(), "");

    // Outside DockNap's list: 403 from the proxy, whatever the method or version prefix.
    let http = reqwest::Client::new();
    let refused = [
        (Method::POST, "/containers/create".to_string()),
        (Method::POST, format!("/containers/{id}/exec")),
        (Method::POST, format!("/v1.41/containers/{id}/kill")),
        (Method::DELETE, format!("/containers/{id}")),
        (Method::GET, "/images/json".to_string()),
        (Method::GET, "/info".to_string()),
        (Method::GET, format!("/containers/{id}/attach")),
        (Method::POST, "/containers/prune".to_string()),
        (Method::GET, "/containers/x%2F..%2F..%2Fimages/json".to_string()),
        // An API older than 1.24 would take a host config with a start.
        (Method::POST, format!("/v1.23/containers/{id}/start")),
        (Method::POST, format!("/containers/{id}/json")),
        (Method::GET, format!("/containers/{id}/stop")),
    ];
    for (method, path) in &refused {
        let r = http.request(method.clone(), proxy.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert_eq!(engine.state("proxied"), "running", "untouched by the refused calls");
    let (logs, stats) = (format!("/containers/{id}/logs?stdout=1&tail=1"), format!("/containers/{id}/stats?stream=0"));
    for path in ["/version", "/v1.41/containers/json", &format!("/containers/{id}/json"), &logs, &stats] {
        let r = http.get(proxy.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    }

    // DockNap through the proxy only: list, stop and start, events.
    let s = Server::start_with(&[("DOCKER_HOST", &format!("tcp://127.0.0.1:{}", proxy.port))]);
    let t = s.admin_token().await;
    s.wait_for("the container through the proxy", Duration::from_secs(10), || async {
        let (st, v) = s.get("/api/containers/proxied", &t).await;
        (st == StatusCode::OK && v["state"] == "running").then_some(())
    })
    .await;
    for (action, state) in [("stop", "exited"), ("start", "running")] {
        let events = s.http.get(s.url("/api/events")).bearer_auth(&t).send().await.unwrap();
        assert_eq!(events.status(), StatusCode::OK);
        let waiter = tokio::spawn(await_container_state(events, "proxied", state));
        let t0 = Instant::now();
        let (st, v) = s.post(&format!("/api/containers/proxied/{action}"), &t, json!({})).await;
        assert_eq!((st, &v["ok"]), (StatusCode::OK, &json!(true)), "{action}: {v}");
        assert_eq!(engine.state("proxied"), state);
        tokio::time::timeout(Duration::from_secs(10), waiter).await.expect("the state change on /api/events").unwrap();
        println!("socket proxy: {action} → '{state}' on /api/events in {} ms", t0.elapsed().as_millis());
    }
    let (st, h) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((st, &h["docker"]), (StatusCode::OK, &json!("ok")), "{h}");
    let (st, v) = s.get("/api/containers/proxied/logs?tail=5", &t).await;
    assert_eq!(st, StatusCode::OK, "the log through the proxy: {v}");
    assert!(v["lines"].is_array(), "{v}");

    // Both at once, as DEPLOY.md suggests: the proxy terminates mutual TLS.
    let dir = make_certs(&["127.0.0.1"]);
    let pem = certs(&dir).join("haproxy.pem");
    let read = |name: &str| std::fs::read_to_string(certs(&dir).join(name)).unwrap();
    std::fs::write(&pem, read("server-cert.pem") + &read("server-key.pem")).unwrap();
    let ca = certs(&dir).join("ca.pem");
    let tls_proxy = Haproxy::start(
        &engine.socket(),
        &format!("ssl crt {} ca-file {} verify required", pem.display(), ca.display()),
    );
    let url = format!("tcp://127.0.0.1:{}", tls_proxy.port);
    let through = BollardEngine::connect(&url, Some(&material(&dir))).unwrap();
    assert!(through.list(None).await.unwrap().iter().any(|c| c.name == "proxied"));
    through.act(&id, Action::Restart).await.unwrap();
    let alert = without_client_certificate(&url, &material(&dir).ca);
    assert!(matches!(alert, rustls::Error::AlertReceived(_)), "{alert:?}");
}

/// Reads `/api/events` until `name` is reported in `state`.
async fn await_container_state(resp: reqwest::Response, name: &'static str, state: &'static str) {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            if v["name"] == name && v["container"]["state"] == state {
                return;
            }
        }
    }
    panic!("the event stream ended");
}

/// A TLS engine added through `POST /api/hosts`: its containers listed and
/// acted on; bad material refused with the part named; the key never in a
/// response, the log or the audit.
#[tokio::test(flavor = "multi_thread")]
async fn a_tls_host_added_through_the_api_is_managed_and_its_key_never_shown() {
    let dir = make_certs(&["127.0.0.1"]);
    let engine = SecondEngine::start_tls(&certs(&dir));
    let name = unique("tlsbox");
    let image = test_image();
    docker_tls(
        &engine,
        &dir,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.2; done",
        ],
    );
    let s = Server::start();
    let t = s.admin_token().await;
    let tls = material(&dir);
    let key_line = tls.key.lines().nth(1).unwrap().to_string();

    let bad = json!({"name": "bad", "url": engine.tls_host(), "tls": {"ca": "not a certificate", "cert": tls.cert, "key": tls.key}});
    let (st, e) = s.post("/api/hosts", &t, bad).await;
    assert_eq!((st, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_tls")), "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("tls.ca") && !e.to_string().contains("not a certificate"),
        "{e}"
    );

    let body =
        json!({"name": "tls1", "url": engine.tls_host(), "tls": {"ca": tls.ca, "cert": tls.cert, "key": tls.key}});
    let (st, h) = s.post("/api/hosts", &t, body).await;
    assert_eq!(st, StatusCode::CREATED, "{h}");
    assert_eq!(h["tls"], true);
    s.wait_for("the TLS host's container", Duration::from_secs(20), || async {
        let (_, v) = s.get("/api/containers?host=tls1", &t).await;
        v.as_array()?.iter().any(|c| c["name"] == name.as_str() && c["host"] == "tls1").then_some(())
    })
    .await;
    let (st, r) = s.post(&format!("/api/containers/{name}/stop?host=tls1"), &t, json!({})).await;
    assert_eq!((st, r["ok"].as_bool()), (StatusCode::OK, Some(true)), "{r}");
    assert_eq!(docker_tls(&engine, &dir, &["inspect", "-f", "{{.State.Status}}", &name]), "exited");

    let (_, hosts) = s.get("/api/hosts", &t).await;
    let (_, audit) = s.get("/api/audit?limit=500", &t).await;
    for (what, text) in
        [("GET /api/hosts", hosts.to_string()), ("the audit", audit.to_string()), ("the log", s.log_text())]
    {
        assert!(!text.contains(&key_line) && !text.contains("PRIVATE KEY"), "the key is in {what}");
    }
}
