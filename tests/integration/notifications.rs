//! Notifications from outside: real receivers on loopback (an HTTP server
//! in the test standing in for webhooks and the hosted services, aiosmtpd
//! for smtp://), the real binary, kill -9 and hanging endpoints.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode as AxStatus, Uri};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");
/// The Standard Webhooks specification's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Clone)]
struct Hit {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// How the receiver answers: a status (with `Retry-After`), or never.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16, Option<u64>),
    Hang,
}

/// An HTTP server on loopback that records every request.
struct Receiver {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    async fn on(listener: tokio::net::TcpListener) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(Answer::Status(204, None)));
        let (h, a) = (hits.clone(), answer.clone());
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (hits, answer) = (h.clone(), a.clone());
            async move {
                hits.lock().unwrap().push(Hit {
                    method: method.to_string(),
                    uri: uri.to_string(),
                    headers,
                    body,
                    at: Instant::now(),
                });
                let answer = *answer.lock().unwrap();
                match answer {
                    Answer::Hang => {
                        std::future::pending::<()>().await;
                        unreachable!()
                    }
                    Answer::Status(code, retry_after) => {
                        let mut resp = axum::response::Response::new(axum::body::Body::from(if code == 200 {
                            "{\"ok\":true}"
                        } else {
                            ""
                        }));
                        *resp.status_mut() = AxStatus::from_u16(code).unwrap();
                        if let Some(s) = retry_after {
                            resp.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
                        }
                        resp
                    }
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, hits, answer }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    async fn wait_hits(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {n} requests, got {}", hits.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn channel(s: &Server, t: &str, body: Value) -> Value {
    let (st, v) = s.post("/api/notifications", t, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn deliveries(s: &Server, t: &str, id: &Value) -> Vec<Value> {
    let (st, v) = s.get(&format!("/api/notifications/{id}/deliveries"), t).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

/// A direct action that fails (no such container, or no engine): audited as failed.
async fn fail_an_action(s: &Server, t: &str, name: &str) {
    let (st, _) = s.post(&format!("/api/containers/{name}/stop"), t, json!({})).await;
    assert!(st.is_client_error() || st.is_server_error(), "{st}");
}

/// Standard Webhooks, computed here independently of DockNap's code.
fn expected_signature(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Nothing secret in a response, the log or the audit.
async fn assert_never_shown(s: &Server, t: &str, secrets: &[&str]) {
    let (_, list) = s.get("/api/notifications", t).await;
    let (_, audit) = s.get("/api/audit?limit=500", t).await;
    let texts = [("the channel list", list.to_string()), ("the audit", audit.to_string()), ("the log", s.log_text())];
    for (what, text) in texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{what} shows {secret}: {text}");
        }
    }
}

#[tokio::test]
async fn a_failed_action_reaches_a_signed_webhook_with_the_contract_body_and_the_url_never_comes_back() {
    let r = Receiver::start().await;
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_PUBLIC_URL", "https://docknap.example.com")]);
    let t = s.admin_token().await;
    let url = format!("generic+{}/hooks/path-token-5ecret?k=query-5ecret", r.base());
    let c = channel(&s, &t, json!({"name": "ops hook", "url": url, "secret": SECRET})).await;
    assert_eq!(c["url"], format!("generic+http://{}", r.addr));
    assert_eq!(c["source"], "api");
    assert_eq!(c["has_secret"], true);
    assert_eq!(
        c["events"],
        json!([
            "action.failed",
            "run.missed",
            "host.unreachable",
            "host.recovered",
            "container.unhealthy",
            "container.died"
        ])
    );

    fail_an_action(&s, &t, "ghost-web").await;
    let hit = r.wait_hits(1, Duration::from_secs(15)).await.remove(0);
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.uri, "/hooks/path-token-5ecret?k=query-5ecret");
    assert_eq!(hit.header("content-type"), "application/json");
    let body = hit.json();
    assert_eq!(body["event"], "action.failed");
    assert_eq!(
        (body["host"].as_str(), body["target_type"].as_str(), body["target_id"].as_str()),
        (Some("local"), Some("container"), Some("ghost-web"))
    );
    assert_eq!((body["action"].as_str(), body["ok"].as_bool()), (Some("stop"), Some(false)));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["at"].as_str().is_some_and(|a| chrono::DateTime::parse_from_rfc3339(a).is_ok()), "{body}");
    assert_eq!(body["details"]["url"], "https://docknap.example.com/audit");
    let (id, ts) = (hit.header("webhook-id"), hit.header("webhook-timestamp"));
    assert!(
        !id.is_empty() && ts.parse::<i64>().is_ok_and(|t| (t - chrono::Utc::now().timestamp()).abs() < 60),
        "{id} {ts}"
    );
    assert_eq!(hit.header("webhook-signature"), expected_signature(SECRET, id, ts, &hit.body));

    let d = s
        .wait_for("the delivery recorded", Duration::from_secs(5), || async {
            deliveries(&s, &t, &c["id"]).await.into_iter().find(|d| d["ok"] == true)
        })
        .await;
    assert_eq!(
        (d["event"].as_str(), d["attempts"].as_i64(), d["status"].as_u64()),
        (Some("action.failed"), Some(1), Some(204))
    );
    assert_never_shown(&s, &t, &["path-token-5ecret", "query-5ecret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).await;
    let (_, one) = s.get(&format!("/api/notifications/{}", c["id"]), &t).await;
    assert!(!one.to_string().contains("5ecret"), "{one}");
}

#[tokio::test]
async fn thirty_failures_of_one_bulk_request_are_one_message_per_channel() {
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    for r in [&a, &b] {
        channel(&s, &t, json!({"name": "bulk", "url": format!("generic+{}/in", r.base())})).await;
    }
    let targets: Vec<Value> =
        (0..30).map(|i| json!({"target_type": "container", "target_id": format!("ghost-{i}")})).collect();
    let (st, v) = s.post("/api/bulk", &t, json!({"action": "stop", "targets": targets})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for r in [&a, &b] {
        let hit = r.wait_hits(1, Duration::from_secs(15)).await.remove(0);
        let body = hit.json();
        assert_eq!(body["event"], "action.failed");
        assert_eq!(body["details"]["count"], 30, "{body}");
        assert_eq!(body["details"]["notices"].as_array().unwrap().len(), 30);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!((a.hits().len(), b.hits().len()), (1, 1), "one message per channel");
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_and_gets_the_message_later_and_a_404_is_not_retried() {
    let r = Receiver::start().await;
    r.set(Answer::Status(503, None));
    let gone = Receiver::start().await;
    gone.set(Answer::Status(404, None));
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    let c = channel(&s, &t, json!({"name": "flaky", "url": format!("generic+{}/in", r.base())})).await;
    let g = channel(&s, &t, json!({"name": "gone", "url": format!("generic+{}/in", gone.base())})).await;
    fail_an_action(&s, &t, "ghost").await;
    let first = r.wait_hits(1, Duration::from_secs(15)).await.remove(0);
    r.set(Answer::Status(200, None));
    let second = r.wait_hits(2, Duration::from_secs(15)).await.remove(1);
    let gap = second.at - first.at;
    assert!(gap >= Duration::from_secs(3) && gap <= Duration::from_secs(8), "retried after {gap:?} (about 5 s)");
    assert_eq!(first.header("webhook-id"), "", "no secret, no signature headers");
    assert_eq!(first.body, second.body, "the same message");
    let d = s
        .wait_for("the retried delivery", Duration::from_secs(5), || async {
            deliveries(&s, &t, &c["id"]).await.into_iter().find(|d| d["ok"] == true)
        })
        .await;
    assert_eq!(d["attempts"], 2);

    let d = s
        .wait_for("the refused delivery", Duration::from_secs(5), || async {
            deliveries(&s, &t, &g["id"]).await.into_iter().find(|d| d["ok"] == false)
        })
        .await;
    assert_eq!((d["attempts"].as_i64(), d["status"].as_u64()), (Some(1), Some(404)));
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(gone.hits().len(), 1, "a 404 is not retried");
    // The dashboard's list of failures shows it.
    let (st, failures) = s.get("/api/notifications/failures", &t).await;
    assert_eq!(st, StatusCode::OK);
    assert!(failures.as_array().unwrap().iter().any(|f| f["channel_id"] == g["id"]), "{failures}");
}

#[tokio::test]
async fn a_longer_retry_after_is_honoured() {
    let r = Receiver::start().await;
    r.set(Answer::Status(429, Some(9)));
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    channel(&s, &t, json!({"name": "limited", "url": format!("generic+{}/in", r.base())})).await;
    fail_an_action(&s, &t, "ghost").await;
    let first = r.wait_hits(1, Duration::from_secs(15)).await.remove(0);
    r.set(Answer::Status(204, None));
    let second = r.wait_hits(2, Duration::from_secs(20)).await.remove(1);
    let gap = second.at - first.at;
    assert!(gap >= Duration::from_millis(8500), "retried after {gap:?}, before Retry-After's 9 s");
}

#[tokio::test]
async fn pending_deliveries_are_sent_after_a_kill_9_and_a_delivered_one_is_not_sent_again() {
    let r = Receiver::start().await;
    r.set(Answer::Hang);
    let mut s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    // Not host.unreachable: with no engine, each start would send one.
    let c = channel(
        &s,
        &t,
        json!({"name": "hangs", "url": format!("generic+{}/in", r.base()), "events": ["action.failed"]}),
    )
    .await;
    fail_an_action(&s, &t, "ghost-1").await;
    // The attempt is under way (the receiver holds it) when the process dies.
    r.wait_hits(1, Duration::from_secs(15)).await;
    s.kill();
    r.set(Answer::Status(204, None));
    s.spawn();
    let t = s.admin_token().await;
    let hits = r.wait_hits(2, Duration::from_secs(10)).await;
    assert_eq!(hits[0].body, hits[1].body, "the cut-off message is sent again after the restart");
    s.wait_for("the delivery recorded", Duration::from_secs(5), || async {
        deliveries(&s, &t, &c["id"]).await.into_iter().find(|d| d["ok"] == true && d["attempts"] == 2)
    })
    .await;
    // Delivered and recorded: a second kill -9 and restart sends nothing more.
    s.kill();
    s.spawn();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(r.hits().len(), 2, "{:?}", r.hits().iter().map(|h| h.uri.clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn env_channels_are_listed_redacted_and_read_only() {
    let r = Receiver::start().await;
    let urls = format!("generic+{}/env-5ecret  ntfy://user:pa55word@ntfy.example.com/topic-5ecret", r.base());
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_NOTIFY_URLS", &urls)]);
    let t = s.admin_token().await;
    let (_, list) = s.get("/api/notifications", &t).await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|c| c["source"] == "env"));
    assert_eq!(list[1]["url"], "ntfy://ntfy.example.com");
    assert_eq!(list[0]["events"].as_array().unwrap().len(), 8, "env channels get every event");
    let id = &list[0]["id"];
    let (st, v) =
        s.call(reqwest::Method::PUT, &format!("/api/notifications/{id}"), Some(&t), Some(json!({"name": "x"}))).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("read_only")));
    let (st, v) = s.call(reqwest::Method::DELETE, &format!("/api/notifications/{id}"), Some(&t), None).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("read_only")));
    let (st, v) = s.post(&format!("/api/notifications/{id}/test"), &t, json!({})).await;
    assert_eq!((st, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    // The engine is unreachable from the start: that is news to env channels too.
    let events: Vec<Value> =
        r.wait_hits(2, Duration::from_secs(10)).await.iter().map(|h| h.json()["event"].clone()).collect();
    assert!(events.contains(&json!("test")) && events.contains(&json!("host.unreachable")), "{events:?}");
    assert_never_shown(&s, &t, &["5ecret", "pa55word"]).await;

    // A bad env URL stops start-up with one line naming the variable, and not the secret.
    let out = Command::new(env!("CARGO_BIN_EXE_docknap"))
        .env_clear()
        .env("DOCKNAP_DATA_DIR", tempfile::tempdir().unwrap().path())
        .env("DOCKNAP_LISTEN", "127.0.0.1:0")
        .env("DOCKNAP_NOTIFY_URLS", "discord://only-a-5ecret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DOCKNAP_NOTIFY_URLS") && !stderr.contains("5ecret"), "{stderr}");
}

#[tokio::test]
async fn channels_are_validated_and_edited_without_resending_their_secrets() {
    let r = Receiver::start().await;
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    for (body, code) in [
        (json!({"url": "ntfy://h/t"}), "missing_field"),
        (json!({"name": "x", "url": "ftp://h/t"}), "invalid_url"),
        (json!({"name": "x", "url": "ntfy://h/t", "events": ["nope"]}), "invalid_event"),
        (json!({"name": "x", "url": "ntfy://h/t", "secret": SECRET}), "invalid_secret"),
        (json!({"name": "x", "url": "generic+https://h/t", "secret": "plain"}), "invalid_secret"),
    ] {
        let (st, v) = s.post("/api/notifications", &t, body.clone()).await;
        assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}: {v}");
    }
    // A pasted Discord webhook address becomes discord://.
    let d = channel(&s, &t, json!({"name": "d", "url": "https://discord.com/api/webhooks/123/tok-5ecret"})).await;
    assert_eq!(d["url"], "discord://");
    let c =
        channel(&s, &t, json!({"name": "w", "url": format!("generic+{}/w", r.base()), "events": ["action.succeeded"]}))
            .await;
    let path = format!("/api/notifications/{}", c["id"]);
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            &path,
            Some(&t),
            Some(json!({"name": "renamed", "events": ["host.unreachable"], "enabled": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["enabled"].as_bool(), v["events"].clone()),
        (Some("renamed"), Some(false), json!(["host.unreachable"]))
    );
    let (_, v) = s.post(&format!("{path}/test"), &t, json!({})).await;
    assert_eq!(v["ok"], true, "the URL was kept: {v}");
    let (st, _) = s.call(reqwest::Method::DELETE, &path, Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&path, &t).await.0, StatusCode::NOT_FOUND);
}

/// The hosted services, each against a loopback stand-in for its host:
/// method, path, headers and body as their APIs document them.
#[tokio::test]
async fn each_hosted_service_gets_the_request_its_api_documents() {
    let r = Receiver::start().await;
    r.set(Answer::Status(200, None));
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_NOTIFY_TEST_BASE_URL", &r.base())]);
    let t = s.admin_token().await;
    let port = r.addr.port();
    let cases = [
        ("discord://dtok-5ecret@1234567890", "/api/webhooks/1234567890/dtok-5ecret", "application/json"),
        (
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXX5",
            "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXX5",
            "application/json",
        ),
        ("slack://xoxb:111-222-bot5ecret@C0123456", "/api/chat.postMessage", "application/json; charset=utf-8"),
        ("telegram://123456:tg-5ecret@telegram?chats=@ops", "/bot123456:tg-5ecret/sendMessage", "application/json"),
        (
            "pushover://shoutrrr:po-5ecret@uKey5ecret/?devices=phone",
            "/1/messages.json",
            "application/x-www-form-urlencoded",
        ),
        (&*format!("ntfy://alice:nt-5ecret@127.0.0.1:{port}/alerts?scheme=http"), "/", "application/json"),
        (&*format!("gotify://127.0.0.1:{port}/gt-5ecret?disabletls=yes"), "/message", "application/json"),
    ];
    for (i, (url, path, content_type)) in cases.iter().enumerate() {
        let c = channel(&s, &t, json!({"name": format!("svc {i}"), "url": url})).await;
        let (st, v) = s.post(&format!("/api/notifications/{}/test", c["id"]), &t, json!({})).await;
        assert_eq!(
            (st, v["ok"].as_bool(), v["status"].as_u64()),
            (StatusCode::OK, Some(true), Some(200)),
            "{url}: {v}"
        );
        let hit = r.wait_hits(i + 1, Duration::from_secs(5)).await.remove(i);
        assert_eq!(
            (hit.method.as_str(), hit.uri.as_str(), hit.header("content-type")),
            ("POST", *path, *content_type),
            "{url}"
        );
        let text = String::from_utf8_lossy(&hit.body).replace('+', " ");
        assert!(text.contains("test notification"), "{url}: {text}");
        match i {
            0 => assert!(hit.json()["content"].as_str().unwrap().starts_with("**DockNap: test notification**")),
            1 => assert!(hit.json()["text"].is_string()),
            2 => {
                assert_eq!(hit.header("authorization"), "Bearer xoxb-111-222-bot5ecret");
                assert_eq!(hit.json()["channel"], "C0123456");
            }
            3 => assert_eq!(hit.json()["chat_id"], "@ops"),
            4 => {
                let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&hit.body).unwrap();
                let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                assert_eq!(
                    (get("token"), get("user"), get("device")),
                    (Some("po-5ecret".into()), Some("uKey5ecret".into()), Some("phone".into()))
                );
                assert!(get("message").is_some() && get("title").is_some());
            }
            5 => {
                assert_eq!(hit.header("authorization"), "Basic YWxpY2U6bnQtNWVjcmV0");
                let b = hit.json();
                assert_eq!(
                    (b["topic"].as_str(), b["title"].as_str()),
                    (Some("alerts"), Some("DockNap: test notification"))
                );
            }
            6 => {
                assert_eq!(hit.header("x-gotify-key"), "gt-5ecret");
                assert!(hit.json()["priority"].is_number());
            }
            _ => unreachable!(),
        }
    }
    assert_never_shown(&s, &t, &["5ecret", "XXXXXXXXXXXXXXXXXXXXXXX5", "bot5ecret"]).await;
}

/// aiosmtpd, started by the test (`.venv`, installed by scripts/test-env.sh).
struct Smtp {
    child: Child,
    /// Held open: the receiver must not see its stdout closed.
    _stdout: std::process::ChildStdout,
    port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    fn start(mode: &str, tls: Option<(&std::path::Path, &std::path::Path)>, login: Option<(&str, &str)>) -> Smtp {
        let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        let python = if python.exists() { python } else { "/work/main/.venv/bin/python".into() };
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/smtp_receiver.py");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args: Vec<String> =
            vec![script.display().to_string(), dir.path().display().to_string(), port.to_string(), mode.into()];
        if let Some((cert, key)) = tls {
            args.extend([cert.display().to_string(), key.display().to_string()]);
        }
        if let Some((u, p)) = login {
            args.extend([u.to_string(), p.to_string()]);
        }
        let mut child = Command::new(python)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aiosmtpd (scripts/test-env.sh installs it)");
        let mut out = child.stdout.take().unwrap();
        let mut ready = [0u8; 5];
        std::io::Read::read_exact(&mut out, &mut ready).expect("the SMTP receiver did not start");
        Smtp { child, _stdout: out, port, dir }
    }

    async fn wait_mail(&self, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(text) = std::fs::read_to_string(self.dir.path().join("0.json")) {
                return serde_json::from_str(&text).unwrap();
            }
            assert!(Instant::now() < deadline, "no mail within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a certificate for 127.0.0.1 signed by it.
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test]
async fn smtp_delivers_in_plain_text_with_starttls_and_login_and_over_implicit_tls() {
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(pki.path());
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_NOTIFY_CA_FILE", ca.to_str().unwrap())]);
    let t = s.admin_token().await;

    let plain = Smtp::start("plain", None, None);
    let starttls = Smtp::start("starttls", Some((&cert, &key)), Some(("mailer", "sm-5ecret")));
    let implicit = Smtp::start("implicit", Some((&cert, &key)), None);
    let cases = [
        (
            &plain,
            format!("smtp://127.0.0.1:{}/?from=docknap@example.com&to=ops@example.com&usestarttls=no", plain.port),
            false,
            false,
        ),
        (
            &starttls,
            format!(
                "smtp://mailer:sm-5ecret@127.0.0.1:{}/?from=docknap@example.com&to=ops@example.com,oncall@example.com&encryption=explicittls",
                starttls.port
            ),
            true,
            true,
        ),
        (
            &implicit,
            format!(
                "smtp://127.0.0.1:{}/?from=docknap@example.com&to=ops@example.com&encryption=implicittls",
                implicit.port
            ),
            true,
            false,
        ),
    ];
    for (smtp, url, tls, authenticated) in cases {
        let c = channel(&s, &t, json!({"name": "mail", "url": url})).await;
        assert_eq!(c["url"], format!("smtp://127.0.0.1:{}", smtp.port));
        let (st, v) = s.post(&format!("/api/notifications/{}/test", c["id"]), &t, json!({})).await;
        assert_eq!((st, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{url}: {v}");
        let mail = smtp.wait_mail(Duration::from_secs(5)).await;
        assert_eq!(mail["from"], "docknap@example.com");
        assert_eq!(
            (mail["tls"].as_bool(), mail["authenticated"].as_bool()),
            (Some(tls), Some(authenticated)),
            "{mail}"
        );
        let data = mail["data"].as_str().unwrap();
        assert!(data.contains("Subject: DockNap: test notification"), "{data}");
        assert!(data.contains("Content-Transfer-Encoding: base64"), "{data}");
        if authenticated {
            assert_eq!(mail["to"], json!(["ops@example.com", "oncall@example.com"]));
        }
    }
    // A refused login is a failure the Test button shows, with the server's code.
    let c = channel(
        &s,
        &t,
        json!({"name": "bad", "url": format!("smtp://mailer:wrong-5ecret@127.0.0.1:{}/?from=a@example.com&to=b@example.com", starttls.port)}),
    )
    .await;
    let (_, v) = s.post(&format!("/api/notifications/{}/test", c["id"]), &t, json!({})).await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("535"), "{v}");
    assert_never_shown(&s, &t, &["sm-5ecret", "wrong-5ecret"]).await;
}

#[tokio::test]
async fn a_hanging_endpoint_delays_neither_a_schedule_nor_another_channel() {
    require_docker();
    let hangs = Receiver::start().await;
    hangs.set(Answer::Hang);
    let fine = Receiver::start().await;
    let s = Server::start();
    let t = s.admin_token().await;
    let events = json!(["action.failed", "action.succeeded"]);
    channel(&s, &t, json!({"name": "hangs", "url": format!("generic+{}/in", hangs.base()), "events": events})).await;
    channel(&s, &t, json!({"name": "fine", "url": format!("generic+{}/in", fine.base()), "events": events})).await;
    // Keep the hanging channel busy with more than it can take at once (4
    // attempts): failures of one kind gather into one message, so five kinds.
    for action in ["stop", "start", "restart", "pause", "unpause"] {
        let (st, _) = s.post(&format!("/api/containers/{}/{action}", unique("ghost")), &t, json!({})).await;
        assert!(st.is_client_error(), "{st}");
    }
    let name = unique("nap-ghost");
    let (st, sched) = s
        .post(
            "/api/schedules",
            &t,
            json!({"cron": "*/3 * * * * *", "action": "stop", "target_type": "container", "target_id": name}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{sched}");
    let entries = s
        .wait_for("three fires of the schedule", Duration::from_secs(30), || async {
            let (_, v) = s.get(&format!("/api/audit?actor=scheduler&target_id={name}"), &t).await;
            v["entries"].as_array().filter(|e| e.len() >= 3).cloned()
        })
        .await;
    for entry in &entries {
        let due = chrono::DateTime::parse_from_rfc3339(entry["details"]["due"].as_str().unwrap()).unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(entry["timestamp"].as_str().unwrap()).unwrap();
        assert!((at - due).num_milliseconds() < 1500, "fired {} ms late", (at - due).num_milliseconds());
    }
    // The fires' failures are one message (one schedule's failures gather
    // while they keep coming, 3 s after the last, 30 s at most): stop the
    // fires so it closes, then the other channel gets it while the first
    // channel's attempts still hang (each for the 10 s HTTP timeout).
    let id = sched["id"].as_i64().unwrap();
    let (st, v) = s.call(reqwest::Method::DELETE, &format!("/api/schedules/{id}"), Some(&t), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    s.wait_for("the fires' notice on the other channel", Duration::from_secs(10), || async {
        fine.hits().into_iter().find(|h| h.body.windows(name.len()).any(|w| w == name.as_bytes()))
    })
    .await;
    assert!(hangs.hits().len() >= 4, "the hanging channel holds as many attempts as it may: {}", hangs.hits().len());
}

#[tokio::test]
async fn a_container_that_dies_on_its_own_or_turns_unhealthy_is_reported_and_one_docknap_stops_is_not() {
    require_docker();
    let r = Receiver::start().await;
    let s = Server::start();
    let t = s.admin_token().await;
    channel(&s, &t, json!({"name": "trouble", "url": format!("generic+{}/in", r.base()), "events": ["container.died", "container.unhealthy"]}))
        .await;
    let image = test_image();
    let (crash, calm, sick) = (unique("nap-crash"), unique("nap-calm"), unique("nap-sick"));
    let _cleanup = Cleanup(vec![crash.clone(), calm.clone(), sick.clone()]);
    docker(&["run", "-d", "--name", &calm, "--network", "none", &image, "sh", "-c", "while :; do sleep 1; done"]);
    s.wait_for("the container listed", Duration::from_secs(10), || async {
        (s.get(&format!("/api/containers/{calm}"), &t).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    // sh ignores SIGTERM as PID 1: DockNap's stop ends in SIGKILL, exit 137, asked for.
    let (st, v) = s.post(&format!("/api/containers/{calm}/stop"), &t, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    docker(&["run", "-d", "--name", &crash, "--network", "none", &image, "sh", "-c", "sleep 1; exit 3"]);
    docker(&[
        "run",
        "-d",
        "--name",
        &sick,
        "--network",
        "none",
        "--health-cmd",
        "exit 1",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        &image,
        "sh",
        "-c",
        "while :; do sleep 1; done",
    ]);
    let hits = r.wait_hits(2, Duration::from_secs(20)).await;
    let bodies: Vec<Value> = hits.iter().map(Hit::json).collect();
    let died = bodies.iter().find(|b| b["event"] == "container.died").unwrap_or_else(|| panic!("{bodies:?}"));
    assert_eq!(
        (died["target_id"].as_str(), died["details"]["exit_code"].as_i64()),
        (Some(crash.as_str()), Some(3)),
        "{died}"
    );
    let unhealthy = bodies.iter().find(|b| b["event"] == "container.unhealthy").unwrap_or_else(|| panic!("{bodies:?}"));
    assert_eq!((unhealthy["host"].as_str(), unhealthy["target_id"].as_str()), (Some("local"), Some(sick.as_str())));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let late: Vec<Value> = r.hits().iter().skip(2).map(Hit::json).collect();
    assert!(late.is_empty(), "the stop DockNap asked for is not a death: {late:?}");
}

struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = docker_try(&["rm", "-f", name]);
        }
    }
}

#[tokio::test]
async fn a_host_whose_engine_dies_is_reported_unreachable_then_recovered() {
    let mut second = crate::engines::SecondEngine::start();
    let r = Receiver::start().await;
    let hosts = format!("second={}", second.host());
    let s = Server::start_with(&[("DOCKNAP_HOSTS", &hosts), ("DOCKNAP_ENGINE_RECHECK", "2s")]);
    let t = s.admin_token().await;
    s.wait_for("host second ok", Duration::from_secs(20), || async {
        let (_, v) = s.get("/api/hosts/second", &t).await;
        (v["status"] == "ok").then_some(())
    })
    .await;
    channel(&s, &t, json!({"name": "hosts", "url": format!("generic+{}/in", r.base()), "events": ["host.unreachable", "host.recovered"]})).await;
    // SIGTERM: a kill -9'd dockerd leaves its containerd behind and is slow to come back.
    second.stop();
    let down = r.wait_hits(1, Duration::from_secs(20)).await.remove(0).json();
    assert_eq!(
        (down["event"].as_str(), down["host"].as_str(), down["ok"].as_bool()),
        (Some("host.unreachable"), Some("second"), Some(false)),
        "{down}"
    );
    second.start_again();
    let up = r.wait_hits(2, Duration::from_secs(30)).await.remove(1).json();
    assert_eq!(
        (up["event"].as_str(), up["host"].as_str(), up["ok"].as_bool()),
        (Some("host.recovered"), Some("second"), Some(true)),
        "{up}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(r.hits().len(), 2, "one message each way");
}
