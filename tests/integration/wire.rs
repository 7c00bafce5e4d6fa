//! Bytes on the wire: the UI's precompressed files per `Accept-Encoding`,
//! gzip for JSON above 1 KiB (never for the event stream), ETags and 304.
//! `wire_figures` prints the measurements for docs/PERFORMANCE.md.

use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

fn decode(coding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut out).expect("valid gzip");
        }
        Some("br") => {
            brotli_decompressor::Decompressor::new(body, 4096).read_to_end(&mut out).expect("valid brotli");
        }
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    out
}

fn coding(h: &HeaderMap) -> Option<String> {
    h.get("content-encoding").map(|v| v.to_str().unwrap().to_string())
}

/// GET with optional `Accept-Encoding` and token: status, headers, raw body.
async fn fetch(
    s: &Server,
    path: &str,
    accept: Option<&str>,
    token: Option<&str>,
    inm: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = s.http.get(s.url(path));
    if let Some(a) = accept {
        req = req.header("accept-encoding", a);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(tag) = inm {
        req = req.header("if-none-match", tag);
    }
    let r = req.send().await.unwrap();
    let (st, h) = (r.status(), r.headers().clone());
    (st, h, r.bytes().await.unwrap().to_vec())
}

fn assert_security_headers(path: &str, h: &HeaderMap) {
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    assert_eq!(h["x-frame-options"], "DENY", "{path}");
    assert!(h.get("x-request-id").is_some(), "{path}");
}

/// The script and stylesheet index.html links to.
fn linked_assets(index: &str) -> Vec<String> {
    index
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/") && (s.ends_with(".js") || s.ends_with(".css")))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn ui_files_go_out_precompressed_only_when_asked_and_decode_to_the_same_bytes() {
    let s = Server::start_with(&[NO_ENGINE]);
    let (st, h, index) = fetch(&s, "/", None, None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h.get("content-encoding").is_none());
    let index = String::from_utf8(index).unwrap();
    let assets = linked_assets(&index);
    assert!(assets.iter().any(|a| a.ends_with(".js")), "no script in {index}");
    for path in std::iter::once("/".to_string()).chain(assets) {
        let (_, h, identity) = fetch(&s, &path, None, None, None).await;
        assert!(h.get("content-encoding").is_none(), "{path}: no Accept-Encoding, no encoding");
        assert_eq!(h["vary"], "accept-encoding", "{path}");
        assert_security_headers(&path, &h);
        let etag = h["etag"].to_str().unwrap().to_string();
        for (accept, want) in [
            ("gzip, deflate, br, zstd", Some("br")),
            ("gzip", Some("gzip")),
            ("br;q=0, gzip", Some("gzip")),
            ("br;q=0.5, gzip;q=0.9", Some("gzip")),
            ("identity", None),
            ("gzip;q=0, br;q=0", None),
            ("deflate, zstd", None),
        ] {
            let (st, h, body) = fetch(&s, &path, Some(accept), None, None).await;
            assert_eq!(st, StatusCode::OK);
            assert_eq!(coding(&h).as_deref(), want, "{path} with {accept}");
            assert_eq!(decode(want, &body), identity, "{path} with {accept}: decodes to the identity bytes");
            assert_eq!(
                h.get("content-length").map(|v| v.to_str().unwrap().parse::<usize>().unwrap()),
                Some(body.len())
            );
            if let Some(c) = want {
                assert!(body.len() < identity.len(), "{path}: {c} is smaller");
                assert_eq!(
                    h["etag"].to_str().unwrap(),
                    format!("{}-{c}\"", etag.trim_end_matches('"')),
                    "{path}: one tag per coding"
                );
            }
            assert_security_headers(&path, &h);
        }
        // Revalidation: 304 with no body, for the plain tag and a coding's tag.
        let (_, h, _) = fetch(&s, &path, Some("br"), None, None).await;
        for tag in [etag.as_str(), h["etag"].to_str().unwrap()] {
            let (st, h304, body) = fetch(&s, &path, Some("br, gzip"), None, Some(tag)).await;
            assert_eq!(st, StatusCode::NOT_MODIFIED, "{path} If-None-Match {tag}");
            assert!(body.is_empty());
            assert!(h304.get("content-encoding").is_none());
            assert_eq!(h304["etag"], etag.as_str());
            assert_security_headers(&path, &h304);
        }
        let (st, _, _) = fetch(&s, &path, None, None, Some("\"0123\"")).await;
        assert_eq!(st, StatusCode::OK, "{path}: another tag is not a match");
    }
    // The compressed copies are not files of their own.
    let js = linked_assets(&index).into_iter().find(|a| a.ends_with(".js")).unwrap();
    for suffix in [".br", ".gz"] {
        let (st, h, _) = fetch(&s, &format!("{js}{suffix}"), Some("br, gzip"), None, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{js}{suffix}");
        assert!(h.get("content-encoding").is_none());
    }
    // A client route gets index.html, compressed the same way.
    let (st, h, body) = fetch(&s, "/stacks/dev", Some("br"), None, None).await;
    assert_eq!((st, coding(&h).as_deref()), (StatusCode::OK, Some("br")));
    assert_eq!(decode(Some("br"), &body), index.as_bytes());
}

async fn schedule(s: &Server, t: &str, n: usize) -> Value {
    let body = json!({"target_type": "stack", "target_id": format!("wire-{n}"), "action": "stop", "cron": "0 23 * * 1-5", "timezone": "Europe/Berlin"});
    let (st, v) = s.post("/api/schedules", t, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test]
async fn json_above_a_kibibyte_is_gzipped_when_asked_small_json_and_the_event_stream_are_not() {
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    for n in 0..8 {
        schedule(&s, &t, n).await;
    }
    let (_, h, identity) = fetch(&s, "/api/schedules", None, Some(&t), None).await;
    assert!(identity.len() > 1024, "the list is above the threshold: {} bytes", identity.len());
    assert!(h.get("content-encoding").is_none());
    assert_security_headers("/api/schedules", &h);
    for (accept, want) in [
        ("gzip, deflate, br, zstd", Some("gzip")),
        ("gzip", Some("gzip")),
        ("br", None),
        ("gzip;q=0", None),
        ("identity", None),
    ] {
        let (st, h, body) = fetch(&s, "/api/schedules", Some(accept), Some(&t), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(coding(&h).as_deref(), want, "{accept}");
        assert_eq!(h["vary"], "accept-encoding");
        assert_eq!(h["content-type"], "application/json");
        let plain = decode(want, &body);
        assert_eq!(
            serde_json::from_slice::<Value>(&plain).unwrap(),
            serde_json::from_slice::<Value>(&identity).unwrap()
        );
        if want.is_some() {
            assert!(body.len() * 3 < identity.len(), "gzip: {} of {} bytes", body.len(), identity.len());
        }
        assert_security_headers("/api/schedules", &h);
    }
    // Small JSON (and errors) stay as they are.
    for path in ["/api/auth/me", "/api/nope", "/healthz"] {
        let (_, h, body) = fetch(&s, path, Some("gzip, br"), Some(&t), None).await;
        assert!(body.len() < 1024, "{path}: {} bytes", body.len());
        assert!(h.get("content-encoding").is_none(), "{path}");
        serde_json::from_slice::<Value>(&body).unwrap_or_else(|e| panic!("{path}: plain JSON: {e}"));
        assert_security_headers(path, &h);
    }

    // The event stream: never compressed, and each event arrives when it
    // happens (not held in a compressor's buffer).
    let mut events =
        s.http.get(s.url("/api/events")).bearer_auth(&t).header("accept-encoding", "gzip, br").send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert!(events.headers().get("content-encoding").is_none());
    assert_security_headers("/api/events", events.headers());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    let created = schedule(&s, &t, 99).await;
    let id = created["id"].to_string();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(std::str::from_utf8(&chunk).expect("plain text, not compressed"));
            if seen.contains("event: schedule\n") && seen.contains(&format!("\"id\":{id}")) {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the schedule event did not arrive within 2 s; got {seen:?}");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn list_routes_carry_an_etag_and_answer_304_until_the_list_changes() {
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    schedule(&s, &t, 0).await;
    for path in ["/api/schedules", "/api/windows"] {
        let (st, h, body) = fetch(&s, path, Some("gzip"), Some(&t), None).await;
        assert_eq!(st, StatusCode::OK, "{path}");
        let etag = h["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() > 20, "{path}: strong tag {etag}");
        assert_eq!(h["cache-control"], "private, no-cache", "{path}");
        let (st, h304, empty) = fetch(&s, path, Some("gzip"), Some(&t), Some(&etag)).await;
        assert_eq!(st, StatusCode::NOT_MODIFIED, "{path}");
        assert!(empty.is_empty(), "{path}: 304 has no body");
        assert!(h304.get("etag").is_some());
        assert_security_headers(path, &h304);
        // Without a token the tag reveals nothing: 401, never 304.
        let (st, _, _) = fetch(&s, path, None, None, Some(&etag)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{path}");
        assert!(!body.is_empty());
    }
    // A changed list has a new tag; the old one then gets the full body.
    let (_, h, _) = fetch(&s, "/api/schedules", None, Some(&t), None).await;
    let before = h["etag"].to_str().unwrap().to_string();
    schedule(&s, &t, 1).await;
    let (st, h, body) = fetch(&s, "/api/schedules", None, Some(&t), Some(&before)).await;
    assert_eq!(st, StatusCode::OK);
    assert_ne!(h["etag"].to_str().unwrap(), before);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap().as_array().unwrap().len(), 2);
    // Single items and the other routes carry no ETag.
    for path in ["/api/auth/me", "/api/schedules/upcoming"] {
        let (st, h, _) = fetch(&s, path, None, Some(&t), None).await;
        assert_eq!(st, StatusCode::OK, "{path}");
        assert!(h.get("etag").is_none(), "{path}");
    }
}

#[tokio::test]
async fn container_and_stack_lists_carry_an_etag_on_the_real_engine() {
    require_docker();
    let proj = Compose::up("wire", &service("app", ""));
    let s = Server::start();
    let t = s.admin_token().await;
    s.wait_stack(&t, &proj.project, "running").await;
    for path in ["/api/containers", "/api/stacks"] {
        // The engine is shared with other tests: the list may change between
        // two requests, so a few tries may be needed for a 304.
        let mut revalidated = false;
        for _ in 0..5 {
            let (st, h, _) = fetch(&s, path, Some("gzip"), Some(&t), None).await;
            assert_eq!(st, StatusCode::OK);
            let etag = h["etag"].to_str().unwrap().to_string();
            let (st, _, body) = fetch(&s, path, Some("gzip"), Some(&t), Some(&etag)).await;
            if st == StatusCode::NOT_MODIFIED {
                assert!(body.is_empty());
                revalidated = true;
                break;
            }
            assert_eq!(st, StatusCode::OK);
        }
        assert!(revalidated, "{path}: no 304 in 5 tries");
    }
}
