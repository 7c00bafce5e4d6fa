//! HTTP limits from outside: raw sockets on loopback against the spawned
//! binary (no engine needed). Every test holds a bounded number of sockets
//! and ends by itself.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Waits until the server closes `sock` (EOF or reset); the time it took,
/// or `None` if it is still open after `bound`. Anything the server sends
/// first is read and ignored.
async fn closed_within(sock: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = bound.checked_sub(t.elapsed())?;
        match tokio::time::timeout(left, sock.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// One response off a keep-alive socket: (status, body).
async fn read_response(sock: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .expect("content-length");
            if data.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, String::from_utf8_lossy(&data[end + 4..end + 4 + len]).to_string());
            }
        }
        let n = sock.read(&mut buf).await.expect("read response");
        assert!(n > 0, "connection closed mid-response: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
    }
}

async fn get_healthz(sock: &mut TcpStream) -> u16 {
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    read_response(sock).await.0
}

#[tokio::test]
async fn half_headers_are_closed_after_the_header_timeout() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_HEADER_TIMEOUT", "1s")]);
    let start = Instant::now();
    let mut half = TcpStream::connect(addr(&s)).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut silent = TcpStream::connect(addr(&s)).await.unwrap();
    let mut trickle = TcpStream::connect(addr(&s)).await.unwrap();
    let trickler = tokio::spawn(async move {
        // One byte every 200 ms keeps bytes coming but never ends the head:
        // the clock runs from the first byte, not the last.
        let t = Instant::now();
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if trickle.write_all(&[*b]).await.is_err() {
                return Some(t.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    });
    for (what, sock) in [("half a header", &mut half), ("nothing at all", &mut silent)] {
        closed_within(sock, Duration::from_secs(5)).await.unwrap_or_else(|| panic!("{what}: still open after 5 s"));
        let took = start.elapsed();
        println!("{what}: closed after {} ms", took.as_millis());
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{what}: {took:?}");
    }
    let took = trickler.await.unwrap().expect("the trickling client was never cut off");
    assert!(took < Duration::from_secs(4), "trickle: {took:?}");
    // A well-behaved client is unaffected.
    let mut ok = TcpStream::connect(addr(&s)).await.unwrap();
    assert_eq!(get_healthz(&mut ok).await, 200);
}

#[tokio::test]
async fn idle_keep_alive_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_HEADER_TIMEOUT", "1s"), ("DOCKNAP_IDLE_TIMEOUT", "3s")]);
    let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
    assert_eq!(get_healthz(&mut sock).await, 200);
    // Idle past the header timeout: still open, and serves the next request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(get_healthz(&mut sock).await, 200);
    let took = closed_within(&mut sock, Duration::from_secs(8)).await.expect("idle connection still open after 8 s");
    println!("idle keep-alive closed after {} ms", took.as_millis());
    assert!(took >= Duration::from_millis(2500) && took < Duration::from_secs(5), "{took:?}");
}

/// When every slot holds a request in flight (here, event streams), a new
/// connection waits for one to free.
#[tokio::test]
async fn a_full_server_of_busy_connections_serves_a_new_one_once_one_closes() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_MAX_CONNECTIONS", "4")]);
    let token = s.admin_token().await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        let c = reqwest::Client::new();
        let r = c.get(s.url("/api/events")).bearer_auth(&token).send().await.expect("events");
        assert_eq!(r.status(), StatusCode::OK);
        streams.push((c, r));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a = addr(&s);
    let waiting = tokio::spawn(async move {
        let mut sock = TcpStream::connect(a).await.unwrap();
        get_healthz(&mut sock).await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "a fifth connection was served while four requests were in flight");
    let freed = Instant::now();
    drop(streams.pop());
    let status =
        tokio::time::timeout(Duration::from_secs(3), waiting).await.expect("served once a slot freed").unwrap();
    assert_eq!(status, 200);
    println!("waiting request served {} ms after a slot freed", freed.elapsed().as_millis());
}

/// When the slots are held by clients that send no request (slowloris), a
/// new connection takes the slot of the one that has waited longest: a
/// flood of slow clients cannot lock a well-behaved one out.
#[tokio::test]
async fn a_full_server_closes_the_longest_waiting_idle_connection_for_a_new_one() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_MAX_CONNECTIONS", "4"), ("DOCKNAP_HEADER_TIMEOUT", "30s")]);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
        sock.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(sock);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = Instant::now();
    let resp = s.http.get(s.url("/healthz")).timeout(Duration::from_secs(10)).send().await.expect("healthz");
    assert_eq!(resp.status(), StatusCode::OK);
    let took = t.elapsed();
    println!("healthz behind 4 held slots answered after {} ms", took.as_millis());
    assert!(took < Duration::from_secs(2), "it took the oldest waiter's slot, not the header timeout: {took:?}");
    assert!(closed_within(&mut held[0], Duration::from_secs(2)).await.is_some(), "the oldest waiter was closed");
}

async fn open_stream(s: &Server, token: &str) -> Result<reqwest::Response, (StatusCode, Value)> {
    let resp = s.http.get(s.url("/api/events")).bearer_auth(token).send().await.expect("events");
    if resp.status() == StatusCode::OK {
        return Ok(resp);
    }
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").is_some();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(retry_after || status != StatusCode::TOO_MANY_REQUESTS, "429 without Retry-After");
    Err((status, body))
}

fn assert_too_many(r: Result<reqwest::Response, (StatusCode, Value)>, what: &str) {
    match r {
        Ok(_) => panic!("{what}: a stream opened past the cap"),
        Err((st, v)) => {
            assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{what}: {v}");
            assert_eq!(v["error"]["code"], "too_many_streams", "{what}: {v}");
            assert!(v["error"]["message"].is_string(), "{v}");
        }
    }
}

#[tokio::test]
async fn event_streams_are_capped_per_user_and_in_total() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_MAX_STREAMS", "3"), ("DOCKNAP_MAX_STREAMS_PER_USER", "2")]);
    let admin = s.admin_token().await;
    let viewer = s.user_token(&admin, "viewer").await;

    let a1 = open_stream(&s, &admin).await.expect("first stream");
    let _a2 = open_stream(&s, &admin).await.expect("second stream");
    assert_too_many(open_stream(&s, &admin).await, "a third stream of one user");
    let _v1 = open_stream(&s, &viewer).await.expect("another user's first stream");
    assert_too_many(open_stream(&s, &viewer).await, "a fourth stream in total");
    // Other requests are not affected by the stream cap.
    let (st, _) = s.get("/api/auth/me", &viewer).await;
    assert_eq!(st, StatusCode::OK);

    // A client that goes away frees its slot.
    drop(a1);
    let v2 = s
        .wait_for("a stream slot to free after its client disconnected", Duration::from_secs(5), || async {
            open_stream(&s, &viewer).await.ok()
        })
        .await;
    assert_eq!(v2.headers()["content-type"], "text/event-stream");
    assert_too_many(open_stream(&s, &admin).await, "still full");
    // No token: 401 before any cap.
    let resp = s.http.get(s.url("/api/events")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// A request body that trickles in past the body timeout gets 408.
#[tokio::test]
async fn a_slow_body_gets_408_after_the_body_timeout() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_BODY_TIMEOUT", "1s")]);
    let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
    let t = Instant::now();
    sock.write_all(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user")
        .await
        .unwrap();
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(5), read_response(&mut sock)).await.expect("an answer within 5 s");
    let took = t.elapsed();
    assert_eq!(status, 408, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "body_timeout", "{v}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    // The rest of that body will never be read: the connection ends.
    assert!(closed_within(&mut sock, Duration::from_secs(3)).await.is_some(), "connection left open after 408");
}

/// 200 slowloris connections (half headers, a byte now and then) do not
/// stop /healthz from answering promptly.
#[tokio::test]
async fn healthz_answers_during_a_slowloris_flood() {
    let s = Server::start_with(&[NO_ENGINE]);
    let mut flood = Vec::new();
    for _ in 0..200 {
        let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
        sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        flood.push(sock);
    }
    let mut worst = Duration::ZERO;
    for round in 0..10 {
        for sock in flood.iter_mut() {
            let _ = sock.write_all(b"X").await;
        }
        let t = Instant::now();
        let resp = s
            .http
            .get(s.url("/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("healthz during the flood");
        assert_eq!(resp.status(), StatusCode::OK, "round {round}");
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("healthz during 200 slowloris connections: worst {} ms", worst.as_millis());
    assert!(worst < Duration::from_secs(2), "{worst:?}");
}

/// A request head over 64 KiB is refused with 431; one under it is served.
#[tokio::test]
async fn oversized_heads_get_431() {
    let s = Server::start_with(&[NO_ENGINE]);
    let mut ok = TcpStream::connect(addr(&s)).await.unwrap();
    let big = "a".repeat(40 * 1024);
    ok.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut ok).await.0, 200);
    let mut huge = TcpStream::connect(addr(&s)).await.unwrap();
    let big = "a".repeat(70 * 1024);
    let _ = huge.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes()).await;
    let mut head = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), huge.read_to_end(&mut head)).await;
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
}
