//! Live logs and resource figures against the real engine: tail, streams,
//! follow, a reader that stops reading, stats under load, and no stats
//! calls to the engine while nobody looks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

fn compose(prefix: &str, services: &[(&str, &str)]) -> Compose {
    let body: String = services
        .iter()
        .map(|(name, script)| {
            format!(
                "  {name}:\n    image: {}\n    network_mode: none\n    stop_grace_period: 1s\n    command: [\"sh\", \"-c\", {}]\n",
                test_image(),
                serde_json::to_string(script).unwrap()
            )
        })
        .collect();
    Compose::up(prefix, &body)
}

fn texts(v: &Value) -> Vec<String> {
    v["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_log_tail_marks_stderr_and_carries_timestamps_and_a_stack_merges_its_containers() {
    let c = compose(
        "logs",
        &[
            (
                "talker",
                "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; trap 'exit 0' TERM; while :; do sleep 0.2; done",
            ),
            ("other", "echo from-the-other; trap 'exit 0' TERM; while :; do sleep 0.2; done"),
        ],
    );
    let s = Server::start();
    let admin = s.admin_token().await;
    s.wait_stack(&admin, &c.project, "running").await;
    let name = c.container("talker");

    let (st, v) = s.get(&format!("/api/containers/{name}/logs?tail=2"), &admin).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(texts(&v), ["two", "three"], "the last two lines: {v}");
    let lines = v["lines"].as_array().unwrap();
    assert_eq!((lines[0]["stream"].as_str(), lines[1]["stream"].as_str()), (Some("stderr"), Some("stdout")));
    assert!(
        lines.iter().all(|l| l["at"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())),
        "{v}"
    );
    assert!(lines.iter().all(|l| l.get("container").is_none()), "one container's lines do not repeat its name");

    let (st, v) = s.get(&format!("/api/stacks/{}/logs", c.project), &admin).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let all = texts(&v);
    for want in ["one", "two", "three", "from-the-other"] {
        assert!(all.iter().any(|t| t == want), "{want} in the stack's log: {v}");
    }
    let other = v["lines"].as_array().unwrap().iter().find(|l| l["text"] == "from-the-other").unwrap();
    assert_eq!(other["container"], c.container("other"));

    // Logs are operators' (they often hold secrets); a bad query is a clear 400.
    let viewer = s.user_token(&admin, "viewer").await;
    assert_eq!(s.get(&format!("/api/containers/{name}/logs"), &viewer).await.0, StatusCode::FORBIDDEN);
    let (st, v) = s.get(&format!("/api/containers/{name}/logs?since=yesterday"), &admin).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{v}");
    let (st, v) = s.get("/api/containers/no-such-container/logs", &admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn following_a_log_receives_a_line_printed_after_the_stream_opened() {
    let c = compose(
        "follow",
        &[(
            "waiter",
            "echo ready; trap 'exit 0' TERM; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo printed-after-open; while :; do sleep 0.2; done",
        )],
    );
    let s = Server::start();
    let admin = s.admin_token().await;
    s.wait_stack(&admin, &c.project, "running").await;
    let resp = s
        .http
        .get(s.url(&format!("/api/containers/{}/logs?follow=true&tail=10", c.container("waiter"))))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let mut touched = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.contains("printed-after-open") {
        assert!(Instant::now() < deadline, "no new line on the stream; got:\n{seen}");
        if seen.contains("\"ready\"") && !touched {
            docker(&["exec", &c.container("waiter"), "touch", "/tmp/go"]);
            touched = true;
        }
        if let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_millis(500), body.next()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }
    assert!(touched, "the tail came first");
    let line = seen.lines().find(|l| l.contains("printed-after-open")).unwrap();
    let data: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
    assert_eq!((data["stream"].as_str(), data["text"].as_str()), (Some("stdout"), Some("printed-after-open")));
    assert!(seen.contains("event: line"), "{seen}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_reader_that_stops_reading_a_fast_log_keeps_docknaps_memory_bounded() {
    // About 10 MB/s of 100-byte lines; the engine keeps at most 3 × 10 MB of it.
    let script = "trap 'exit 0' TERM; while :; do head -c 1000000 /dev/zero | tr '\\0' a | fold -w 99; sleep 0.1; done";
    let body = format!(
        "  flood:\n    image: {}\n    network_mode: none\n    stop_grace_period: 1s\n    logging:\n      options: {{max-size: 10m, max-file: \"3\"}}\n    command: [\"sh\", \"-c\", {}]\n",
        test_image(),
        serde_json::to_string(script).unwrap()
    );
    let c = Compose::up("flood", &body);
    let s = Server::start();
    let admin = s.admin_token().await;
    s.wait_stack(&admin, &c.project, "running").await;
    let pid = s.pid();
    let before = rss_kib(pid);

    // A client that sends the request, reads the headers, and then nothing.
    let mut conn = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://")).await.unwrap();
    let request = format!(
        "GET /api/containers/{}/logs?follow=true&tail=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\r\n",
        c.container("flood")
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 512];
    let n = conn.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..n]));
    let mut peak = before;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(rss_kib(pid));
    }
    println!(
        "log flood, reader not reading: DockNap RSS {} → peak {} KiB over 10 s (~100 MB written by the container)",
        before, peak
    );
    assert!(peak < before + 30 * 1024, "RSS grew from {before} to {peak} KiB");
    drop(conn);
    // The server still answers, and the stream's slot was freed.
    assert_eq!(s.get("/api/containers", &admin).await.0, StatusCode::OK);
}

#[tokio::test]
async fn stats_of_a_busy_container_show_cpu_and_a_stack_sums_its_members() {
    let c = compose(
        "stats",
        &[
            ("busy", "trap 'exit 0' TERM; while :; do :; done"),
            ("idle", "trap 'exit 0' TERM; while :; do sleep 0.2; done"),
        ],
    );
    let s = Server::start();
    let admin = s.admin_token().await;
    s.wait_stack(&admin, &c.project, "running").await;
    let viewer = s.user_token(&admin, "viewer").await;
    let busy = s
        .wait_for("CPU above 0 for the busy container", Duration::from_secs(20), || async {
            let (st, v) = s.get(&format!("/api/containers/{}/stats", c.container("busy")), &viewer).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            (v["cpu_percent"].as_f64().unwrap() > 0.0).then_some(v)
        })
        .await;
    println!("stats of a busy loop: {busy}");
    assert!(busy["memory_bytes"].as_u64().unwrap() > 0 && busy["memory_limit_bytes"].as_u64().unwrap() > 0, "{busy}");
    for key in ["net_rx_bytes", "net_tx_bytes", "block_read_bytes", "block_write_bytes"] {
        assert!(busy[key].is_u64(), "{key} in {busy}");
    }
    let (st, stack) = s.get(&format!("/api/stacks/{}/stats", c.project), &viewer).await;
    assert_eq!(st, StatusCode::OK, "{stack}");
    assert!(stack["cpu_percent"].as_f64().unwrap() > 0.0, "{stack}");
    let (_, idle) = s.get(&format!("/api/containers/{}/stats", c.container("idle")), &viewer).await;
    let members = busy["memory_limit_bytes"].as_u64().unwrap() + idle["memory_limit_bytes"].as_u64().unwrap();
    assert_eq!(stack["memory_limit_bytes"].as_u64().unwrap(), members, "the stack's limit is its members' sum");

    c.run(&["stop", "idle"]);
    s.wait_stack(&admin, &c.project, "partial").await;
    let (_, stopped) = s.get(&format!("/api/containers/{}/stats", c.container("idle")), &viewer).await;
    assert_eq!((stopped["cpu_percent"].as_f64(), stopped["memory_bytes"].as_u64()), (Some(0.0), Some(0)), "{stopped}");
}

/// A unix-socket forwarder that keeps every request line DockNap sends.
struct Recorder {
    path: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    fn start(dir: &Path) -> Recorder {
        let path = dir.join("recorded.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(up) = tokio::net::UnixStream::connect("/var/run/docker.sock").await else { return };
                    let ((mut dr, mut dw), (mut ur, mut uw)) = (down.into_split(), up.into_split());
                    let to_engine = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = dr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            // Request lines only: DockNap's request bodies are small JSON.
                            let text = String::from_utf8_lossy(&buf[..n]).to_string();
                            seen.lock()
                                .unwrap()
                                .extend(text.lines().filter(|l| l.contains(" HTTP/1.1")).map(String::from));
                            if uw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let _ = tokio::join!(to_engine, tokio::io::copy(&mut ur, &mut dw));
                });
            }
        });
        Recorder { path, requests, task }
    }

    fn stats_calls(&self) -> usize {
        self.requests.lock().unwrap().iter().filter(|l| l.contains("/stats")).count()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_is_asked_for_stats_only_while_someone_looks() {
    let c = compose(
        "nostats",
        &[
            ("a", "trap 'exit 0' TERM; while :; do sleep 0.2; done"),
            ("b", "trap 'exit 0' TERM; while :; do sleep 0.2; done"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(dir.path());
    let s = Server::start_with(&[("DOCKER_HOST", &format!("unix://{}", recorder.path.display()))]);
    let admin = s.admin_token().await;
    s.wait_stack(&admin, &c.project, "running").await;
    // The dashboard's reads, and time passing: no stats call.
    for path in ["/api/containers", "/api/stacks", &format!("/api/stacks/{}", c.project)] {
        assert_eq!(s.get(path, &admin).await.0, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!recorder.requests.lock().unwrap().is_empty(), "the recorder sees DockNap's calls");
    assert_eq!(recorder.stats_calls(), 0, "{:?}", recorder.requests.lock().unwrap());

    // Someone opens the stack's figures: one stream per running member, kept
    // open across repeated reads rather than asked anew each time.
    for _ in 0..3 {
        let (st, v) = s.get(&format!("/api/stacks/{}/stats", c.project), &admin).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    assert_eq!(recorder.stats_calls(), 2, "{:?}", recorder.requests.lock().unwrap());
}
