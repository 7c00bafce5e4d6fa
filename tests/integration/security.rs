//! Authentication and authorisation from outside, over HTTP.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Need {
    Viewer,
    Operator,
    Admin,
}

/// Every authenticated route, with the least role the contract gives it.
/// Bodies and ids are chosen so an allowed call has no side effect.
fn routes() -> Vec<(Method, &'static str, Option<Value>, Need)> {
    use Need::*;
    let m = |s: &str| Method::from_bytes(s.as_bytes()).unwrap();
    vec![
        (m("GET"), "/api/auth/me", None, Viewer),
        (m("PUT"), "/api/auth/password", Some(json!({})), Viewer),
        // Set-up stores an unconfirmed secret only: nothing changes at login.
        (m("POST"), "/api/auth/totp/setup", None, Viewer),
        (m("POST"), "/api/auth/totp/enable", Some(json!({})), Viewer),
        (m("POST"), "/api/auth/totp/disable", Some(json!({})), Viewer),
        (m("GET"), "/api/containers", None, Viewer),
        (m("GET"), "/api/containers/x", None, Viewer),
        (m("GET"), "/api/stacks", None, Viewer),
        (m("GET"), "/api/stacks/x", None, Viewer),
        (m("GET"), "/api/containers/x/stats", None, Viewer),
        (m("GET"), "/api/stacks/x/stats", None, Viewer),
        (m("GET"), "/api/containers/x/logs", None, Operator),
        (m("GET"), "/api/stacks/x/logs", None, Operator),
        (m("GET"), "/api/schedules", None, Viewer),
        (m("GET"), "/api/schedules/999999", None, Viewer),
        (m("GET"), "/api/schedules/upcoming", None, Viewer),
        (m("POST"), "/api/cron/preview", Some(json!({"cron": "* * * * *"})), Viewer),
        (m("GET"), "/api/audit", None, Viewer),
        (m("GET"), "/api/windows", None, Viewer),
        (m("GET"), "/api/windows/999999", None, Viewer),
        (m("POST"), "/api/windows/preview", Some(json!({"spec": "Mon-Fri 07:00-19:00"})), Viewer),
        (m("POST"), "/api/windows", Some(json!({})), Operator),
        (m("PUT"), "/api/windows/999999", Some(json!({})), Operator),
        (m("DELETE"), "/api/windows/999999", None, Operator),
        (m("POST"), "/api/windows/999999/override", Some(json!({"desired": "up"})), Operator),
        (m("DELETE"), "/api/windows/999999/override", None, Operator),
        (m("POST"), "/api/bulk", Some(json!({"action": "start", "targets": []})), Operator),
        (m("POST"), "/api/containers/x/stop", Some(json!({})), Operator),
        (m("POST"), "/api/containers/x/start", Some(json!({})), Operator),
        (m("POST"), "/api/stacks/x/restart", Some(json!({})), Operator),
        (m("POST"), "/api/stacks/x/pause", Some(json!({})), Operator),
        (m("POST"), "/api/schedules", Some(json!({})), Operator),
        (m("PUT"), "/api/schedules/999999", Some(json!({})), Operator),
        (m("DELETE"), "/api/schedules/999999", None, Operator),
        (m("POST"), "/api/schedules/999999/run", Some(json!({})), Operator),
        (m("GET"), "/api/hosts", None, Viewer),
        (m("GET"), "/api/services", None, Viewer),
        (m("GET"), "/api/hosts/local", None, Viewer),
        (m("POST"), "/api/services/x/stop", Some(json!({})), Operator),
        (m("POST"), "/api/swarm-stacks/x/start", Some(json!({})), Operator),
        (m("POST"), "/api/hosts", Some(json!({})), Admin),
        (m("PUT"), "/api/hosts/999999", Some(json!({})), Admin),
        (m("DELETE"), "/api/hosts/999999", None, Admin),
        (m("GET"), "/api/audit/verify", None, Admin),
        (m("GET"), "/api/notifications", None, Admin),
        (m("POST"), "/api/notifications", Some(json!({})), Admin),
        (m("GET"), "/api/notifications/failures", None, Admin),
        (m("GET"), "/api/notifications/999999", None, Admin),
        (m("PUT"), "/api/notifications/999999", Some(json!({})), Admin),
        (m("DELETE"), "/api/notifications/999999", None, Admin),
        (m("POST"), "/api/notifications/999999/test", Some(json!({})), Admin),
        (m("GET"), "/api/notifications/999999/deliveries", None, Admin),
        (m("GET"), "/api/export", None, Admin),
        (m("POST"), "/api/import?dry_run=true", Some(json!({"document": {"version": 2}, "mode": "merge"})), Admin),
        (m("GET"), "/api/users", None, Admin),
        (m("POST"), "/api/users", Some(json!({})), Admin),
        (m("PUT"), "/api/users/999999", Some(json!({})), Admin),
        (m("DELETE"), "/api/users/999999", None, Admin),
        (m("GET"), "/api/tokens", None, Viewer),
        (m("POST"), "/api/tokens", Some(json!({})), Viewer),
        (m("DELETE"), "/api/tokens/999999", None, Viewer),
        // Outside /api, but signed in unless DOCKNAP_METRICS=public (tests/integration/metrics.rs).
        (m("GET"), "/metrics", None, Viewer),
    ]
}

/// The routes of [`routes`] open to login sessions only: an API key gets 403
/// `api_key_not_allowed` there (docs/API-KEYS.md).
const SESSION_ONLY: &[(&str, &str)] = &[
    ("PUT", "/api/auth/password"),
    ("POST", "/api/auth/totp/setup"),
    ("POST", "/api/auth/totp/enable"),
    ("POST", "/api/auth/totp/disable"),
    ("POST", "/api/users"),
    ("PUT", "/api/users/999999"),
    ("DELETE", "/api/users/999999"),
    ("POST", "/api/tokens"),
];

#[tokio::test]
async fn every_route_against_every_role() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let operator = s.user_token(&admin, "operator").await;
    let viewer = s.user_token(&admin, "viewer").await;
    // And an API key of each role, made by an admin (a key's role is its own).
    let mut keys = Vec::new();
    for role in ["viewer", "operator", "admin"] {
        let made = crate::api_keys::make_key(&s, &admin, json!({"name": format!("matrix-{role}"), "role": role})).await;
        keys.push(made["token"].as_str().unwrap().to_string());
    }
    let callers = [
        (None, None, false),
        (Some(&viewer), Some(Need::Viewer), false),
        (Some(&operator), Some(Need::Operator), false),
        (Some(&admin), Some(Need::Admin), false),
        (Some(&keys[0]), Some(Need::Viewer), true),
        (Some(&keys[1]), Some(Need::Operator), true),
        (Some(&keys[2]), Some(Need::Admin), true),
    ];
    let mut checked = 0;
    for (method, path, body, need) in routes() {
        let session_only = SESSION_ONLY.contains(&(method.as_str(), path));
        for (token, role, is_key) in &callers {
            let (st, v) = s.call(method.clone(), path, token.map(|t| t.as_str()), body.clone()).await;
            let code = v["error"]["code"].as_str().unwrap_or("");
            match role {
                None => assert_eq!(
                    (st, code),
                    (StatusCode::UNAUTHORIZED, "unauthenticated"),
                    "{method} {path} without token"
                ),
                Some(r) if *r >= need && *is_key && session_only => {
                    assert_eq!((st, code), (StatusCode::FORBIDDEN, "api_key_not_allowed"), "{method} {path} with a key")
                }
                Some(r) if *r >= need => assert!(
                    st != StatusCode::FORBIDDEN && code != "unauthenticated",
                    "{method} {path} should be allowed: {st} {v}"
                ),
                Some(_) => assert_eq!((st, code), (StatusCode::FORBIDDEN, "forbidden"), "{method} {path}"),
            }
            checked += 1;
        }
    }
    // SSE: authenticated viewers only.
    let r = s.http.get(s.url("/api/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s.http.get(s.url("/api/events")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.http.get(s.url("/api/events")).bearer_auth(&keys[0]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "API keys too");
    assert!(checked >= 90, "{checked}");
    // The only public routes.
    assert_eq!(s.call(Method::GET, "/healthz", None, None).await.0, StatusCode::OK);
    // The API's description (src/api/openapi.rs): public, it holds no data.
    let (st, doc) = s.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert!(doc["paths"]["/api/schedules"]["post"].is_object());
    assert_eq!(
        s.call(Method::GET, "/api/auth/providers", None, None).await,
        (StatusCode::OK, json!({"password": true, "oidc": null}))
    );
    // The single sign-on flow's two ends (tests/integration/oidc.rs): public, absent without SSO.
    for path in ["/api/auth/oidc/login", "/api/auth/oidc/callback"] {
        assert_eq!(s.call(Method::GET, path, None, None).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

#[tokio::test]
async fn forged_tampered_expired_and_none_tokens_are_refused() {
    let s = Server::start_with(&[NO_ENGINE]);
    let good = s.admin_token().await;
    assert_eq!(s.get("/api/auth/me", &good).await.0, StatusCode::OK);

    let parts: Vec<&str> = good.split('.').collect();
    let claims: Value = serde_json::from_slice(&base64_decode(parts[1])).unwrap();
    let forever = json!({"sub": claims["sub"], "jti": claims["jti"], "iat": 0, "exp": 4_000_000_000u64}).to_string();
    let secret = std::fs::read(s.data_dir.join("jwt.secret")).unwrap();
    let keys = docknap::auth::TokenKeys::from_secret(&secret);
    let past = chrono::Utc::now() - chrono::Duration::hours(2);
    let (expired, _) = keys.sign(1, past, past + chrono::Duration::hours(1));
    let now = chrono::Utc::now();
    // Correctly signed, but its jti was never issued (or was revoked).
    let (unknown_jti, _) = keys.sign(1, now, now + chrono::Duration::hours(1));

    let bad = [
        format!("{}.{}.{}", parts[0], b64(forever.as_bytes()), parts[2]),
        format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]),
        format!("{}.{}.{}", b64(br#"{"alg":"HS512","typ":"JWT"}"#), parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], b64(b"not the signature")),
        expired,
        unknown_jti,
        "garbage".into(),
        String::new(),
    ];
    for t in &bad {
        let (st, v) = s.get("/api/auth/me", t).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "token {t:?}: {v}");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

#[tokio::test]
async fn logout_password_change_role_change_and_deletion_take_effect_at_once() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;

    // Logout revokes that token only.
    let other_admin_session = s.admin_token().await;
    let (st, _) = s.call(Method::POST, "/api/auth/logout", Some(&admin), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/auth/me", &admin).await.0, StatusCode::UNAUTHORIZED);
    let admin = other_admin_session;
    assert_eq!(s.get("/api/auth/me", &admin).await.0, StatusCode::OK);

    // Role change: read from the store on every request.
    let (_, u) =
        s.post("/api/users", &admin, json!({"username": "opal", "password": "password-123", "role": "operator"})).await;
    let id = u["id"].as_i64().unwrap();
    let op = s.login("opal", "password-123").await;
    assert_eq!(s.get("/api/auth/me", &op).await.1["role"], "operator");
    let (st, _) = s.call(Method::PUT, &format!("/api/users/{id}"), Some(&admin), Some(json!({"role": "viewer"}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.get("/api/auth/me", &op).await.0, StatusCode::UNAUTHORIZED, "role change revokes tokens");
    let viewer = s.login("opal", "password-123").await;
    let (st, _) = s.post("/api/schedules", &viewer, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Own password change: other sessions die, this one lives.
    let second = s.login("opal", "password-123").await;
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/auth/password",
            Some(&viewer),
            Some(json!({"current_password": "wrong-one!", "new_password": "another-pass-1"})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_credentials")),
        "a typo is no lost session"
    );
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/auth/password",
            Some(&viewer),
            Some(json!({"current_password": "password-123", "new_password": "short"})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = s
        .call(
            Method::PUT,
            "/api/auth/password",
            Some(&viewer),
            Some(json!({"current_password": "password-123", "new_password": "another-pass-1"})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/auth/me", &viewer).await.0, StatusCode::OK);
    assert_eq!(s.get("/api/auth/me", &second).await.0, StatusCode::UNAUTHORIZED);
    s.login("opal", "another-pass-1").await;

    // Deletion.
    let (st, _) = s.call(Method::DELETE, &format!("/api/users/{id}"), Some(&admin), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/auth/me", &viewer).await.0, StatusCode::UNAUTHORIZED);
}

/// Reads an event stream until the server ends it, for at most `within`.
async fn stream_ends_within(mut events: reqwest::Response, within: Duration) -> bool {
    let drained = async { while events.chunk().await.map(|c| c.is_some()).unwrap_or(false) {} };
    tokio::time::timeout(within, drained).await.is_ok()
}

#[tokio::test]
async fn a_revoked_session_loses_its_event_stream() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let open = |token: String| {
        let req = s.http.get(s.url("/api/events")).bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r
        }
    };
    let kept = open(s.admin_token().await).await;
    let logged_out = open(admin.clone()).await;
    let (st, _) = s.call(Method::POST, "/api/auth/logout", Some(&admin), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(stream_ends_within(logged_out, Duration::from_secs(2)).await, "stream still open after logout");

    let viewer = s.user_token(&s.admin_token().await, "viewer").await;
    let (_, me) = s.get("/api/auth/me", &viewer).await;
    let reset = open(viewer).await;
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/users/{}", me["id"]),
            Some(&s.admin_token().await),
            Some(json!({"password": "new-password-1"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(stream_ends_within(reset, Duration::from_secs(2)).await, "stream still open after a password reset");

    // A session nobody revoked keeps its stream.
    assert!(!stream_ends_within(kept, Duration::from_millis(500)).await, "an unrevoked session's stream ended");
}

#[tokio::test]
async fn users_api_rules() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (_, me) = s.get("/api/auth/me", &admin).await;
    let my_id = me["id"].as_i64().unwrap();
    let (st, v) = s.call(Method::DELETE, &format!("/api/users/{my_id}"), Some(&admin), None).await;
    assert_eq!(st, StatusCode::CONFLICT, "last admin delete: {v}");
    let (st, _) =
        s.call(Method::PUT, &format!("/api/users/{my_id}"), Some(&admin), Some(json!({"role": "operator"}))).await;
    assert_eq!(st, StatusCode::CONFLICT, "last admin demote");
    let body = json!({"username": "dup", "password": "password-123", "role": "viewer"});
    assert_eq!(s.post("/api/users", &admin, body.clone()).await.0, StatusCode::CREATED);
    assert_eq!(s.post("/api/users", &admin, body).await.0, StatusCode::CONFLICT);
    let (st, v) =
        s.post("/api/users", &admin, json!({"username": "r", "password": "password-123", "role": "root"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_role")));
    let (st, _) =
        s.post("/api/users", &admin, json!({"username": "p", "password": "x".repeat(257), "role": "viewer"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = s.post("/api/users", &admin, json!({"username": "p", "role": "viewer"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("missing_field")));
    let (st, list) = s.get("/api/users", &admin).await;
    assert_eq!(st, StatusCode::OK);
    let users = list.as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| u.get("password_hash").is_none() && u["created_at"].is_string()));
    // A 256-character password works end to end and is not truncated.
    let long = "p".repeat(255) + "!";
    assert_eq!(
        s.post("/api/users", &admin, json!({"username": "long", "password": long, "role": "viewer"})).await.0,
        StatusCode::CREATED
    );
    s.login("long", &long).await;
    let (st, _) = s
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username": "long", "password": "p".repeat(255) + "?"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_rate_limits_by_username_and_address() {
    let s = Server::start_with(&[NO_ENGINE]);
    let login = |user: &str, pw: &str| {
        s.call(Method::POST, "/api/auth/login", None, Some(json!({"username": user, "password": pw})))
    };
    for i in 0..5 {
        let (st, v) = login("admin", "wrong-password").await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials")),
            "attempt {i}"
        );
    }
    // Unknown user and wrong password: the same answer.
    let (st, v) = login("nobody-here", "wrong-password").await;
    assert_eq!((st, v["error"]["message"].as_str()), (StatusCode::UNAUTHORIZED, Some("wrong username or password")));

    let resp = s
        .http
        .post(s.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "even with the right password");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((850..=900).contains(&retry), "Retry-After {retry}");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");

    // The address limit: 20 failures from one client across names.
    for i in 0..14 {
        login(&format!("spray{i}"), "wrong-password").await;
    }
    let (st, _) = login("fresh-name", "wrong-password").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "address limit after 20 failures");
}

#[tokio::test]
async fn concurrent_logins_all_succeed_and_concurrent_guesses_cannot_pass_the_limit() {
    let s = Server::start_with(&[NO_ENGINE]);
    // Scripts that log in together are delayed a little, never refused.
    let logins = (0..12).map(|_| {
        s.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "admin", "password": ADMIN_PASSWORD})))
    });
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(logins).await.into_iter().map(|(st, _)| st).collect();
    assert!(statuses.iter().all(|st| *st == StatusCode::OK), "{statuses:?}");
    let guesses = (0..12).map(|_| {
        s.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "admin", "password": "wrong-guess"})))
    });
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(guesses).await.into_iter().map(|(st, _)| st).collect();
    let tried = statuses.iter().filter(|st| **st == StatusCode::UNAUTHORIZED).count();
    assert_eq!(tried, 5, "exactly 5 guesses reach bcrypt, the rest get 429: {statuses:?}");
}

#[tokio::test]
async fn current_password_guesses_count_against_the_login_limit() {
    let s = Server::start_with(&[NO_ENGINE]);
    let viewer = s.user_token(&s.admin_token().await, "viewer").await;
    let guess = || {
        let body = json!({"current_password": "wrong-guess", "new_password": "new-password-1"});
        s.call(Method::PUT, "/api/auth/password", Some(&viewer), Some(body))
    };
    for i in 0..5 {
        assert_eq!(guess().await.0, StatusCode::FORBIDDEN, "guess {i}");
    }
    let (st, v) = guess().await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
}

#[tokio::test]
async fn hostile_login_names_cannot_grow_the_audit_log() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await; // before this address is blocked
    let huge = "n".repeat(300_000);
    let mut statuses = Vec::new();
    for i in 0..40 {
        let (st, _) = s
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"username": format!("{i}-{huge}"), "password": "x"})),
            )
            .await;
        statuses.push(st);
    }
    assert!(statuses[..20].iter().all(|st| *st == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert!(statuses[20..].iter().all(|st| *st == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let (_, page) = s.get("/api/audit?action=login&ok=false&limit=500", &admin).await;
    let entries = page["entries"].as_array().unwrap();
    let rate_limited = entries.iter().filter(|e| e["message"].as_str().unwrap().starts_with("rate limited")).count();
    assert_eq!((entries.len(), rate_limited), (21, 1), "20 failures and the first refusal only");
    for e in entries {
        for field in ["actor", "target_id"] {
            let n = e[field].as_str().unwrap().chars().count();
            assert!(n <= 257, "{field} holds {n} characters");
        }
    }
    let db = std::fs::metadata(s.data_dir.join("docknap.db")).unwrap().len()
        + std::fs::metadata(s.data_dir.join("docknap.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert!(db < 2 << 20, "40 logins with 300 kB names grew the database to {db} bytes");
}

#[tokio::test]
async fn bodies_that_are_not_json_are_refused_and_bad_paths_or_queries_get_json_errors() {
    let s = Server::start_with(&[NO_ENGINE]);
    let creds = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    // A web page can make a browser send these without a CORS preflight.
    for ct in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x")]
    {
        let mut req = s.http.post(s.url("/api/auth/login")).body(creds.clone());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert!(r.headers().get("set-cookie").is_none(), "{ct:?}");
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "unsupported_media_type");
    }
    let r = s
        .http
        .post(s.url("/api/auth/login"))
        .header("content-type", "application/json; charset=utf-8")
        .body(creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "JSON with a charset is JSON");

    let t = s.admin_token().await;
    for (method, path, status, code) in [
        (Method::PUT, "/api/users/abc", StatusCode::NOT_FOUND, "not_found"),
        (Method::DELETE, "/api/users/99999999999999999999", StatusCode::NOT_FOUND, "not_found"),
        (Method::GET, "/api/containers/%FF", StatusCode::NOT_FOUND, "not_found"),
        (Method::GET, "/api/audit?limit=abc", StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::GET, "/api/schedules/upcoming?limit=-1", StatusCode::BAD_REQUEST, "invalid_query"),
    ] {
        let body = (method == Method::PUT).then(|| json!({"role": "viewer"}));
        let (st, v) = s.call(method.clone(), path, Some(&t), body).await;
        assert_eq!((st, v["error"]["code"].as_str()), (status, Some(code)), "{method} {path}: {v}");
    }
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let trusted = Server::start_with(&[NO_ENGINE, ("DOCKNAP_TRUSTED_PROXIES", "127.0.0.0/8")]);
    let untrusted = Server::start_with(&[NO_ENGINE]);
    for s in [&trusted, &untrusted] {
        let r = s
            .http
            .post(s.url("/api/auth/login"))
            .header("x-forwarded-for", "198.51.100.7, 203.0.113.9")
            .json(&json!({"username": "admin", "password": "nope-nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    async fn addr_of_failure(s: &Server) -> String {
        let t = s.admin_token().await;
        let (_, v) = s.get("/api/audit?action=login&ok=false", &t).await;
        v["entries"][0]["client_addr"].as_str().unwrap().to_string()
    }
    assert_eq!(addr_of_failure(&trusted).await, "203.0.113.9");
    assert_eq!(addr_of_failure(&untrusted).await, "127.0.0.1");

    // Proxies that write a port, or an entry we cannot read: never skipped
    // over to believe what the client wrote further left.
    for (header, client) in [
        ("6.6.6.6, 203.0.113.7:51234", "203.0.113.7"),
        ("6.6.6.6, [2001:db8::7]:443", "2001:db8::7"),
        ("6.6.6.6, unknown", "127.0.0.1"),
    ] {
        let r = trusted
            .http
            .post(trusted.url("/api/auth/login"))
            .header("x-forwarded-for", header)
            .json(&json!({"username": "admin", "password": "nope-nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(addr_of_failure(&trusted).await, client, "X-Forwarded-For: {header}");
    }
}

async fn login_cookie(s: &Server, headers: &[(&str, &str)]) -> String {
    let mut req = s.http.post(s.url("/api/auth/login")).json(&json!({"username": "admin", "password": ADMIN_PASSWORD}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()["set-cookie"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn session_cookie_flags_and_foreign_origin_refusal() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_TRUSTED_PROXIES", "127.0.0.1")]);
    let cookie = login_cookie(&s, &[]).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "auto over plain HTTP: {cookie}");
    let https = login_cookie(&s, &[("x-forwarded-proto", "https")]).await;
    assert!(https.contains("; Secure"), "auto behind an HTTPS proxy: {https}");
    let always = Server::start_with(&[NO_ENGINE, ("DOCKNAP_SECURE_COOKIE", "true")]);
    assert!(login_cookie(&always, &[]).await.contains("; Secure"));

    let pair = cookie.split(';').next().unwrap().to_string();
    let host = s.base.trim_start_matches("http://").to_string();
    let send = |origin: Option<&str>, bearer: Option<&str>| {
        let mut req = s.http.post(s.url("/api/schedules")).json(&json!({}));
        req = match bearer {
            Some(t) => req.bearer_auth(t),
            None => req.header("cookie", &pair),
        };
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(send(Some("http://evil.example"), None).await, StatusCode::FORBIDDEN);
    assert_eq!(send(Some("null"), None).await, StatusCode::FORBIDDEN);
    // Same origin and no Origin pass the check (then fail validation: 400).
    assert_eq!(send(Some(&format!("http://{host}")), None).await, StatusCode::BAD_REQUEST);
    assert_eq!(send(None, None).await, StatusCode::BAD_REQUEST);
    // The browser's Sec-Fetch-Site decides when present: a proxy that
    // rewrites Host must not break the UI, and a cross-site page is refused
    // even with a matching Origin.
    let fetch_site = |site: &str, origin: &str| {
        let req = s.http.post(s.url("/api/schedules")).json(&json!({})).header("cookie", &pair);
        req.header("sec-fetch-site", site).header("origin", origin).header("host", "docknap-upstream:8080").send()
    };
    assert_eq!(
        fetch_site("same-origin", "https://docknap.example.com").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    for site in ["cross-site", "same-site"] {
        assert_eq!(
            fetch_site(site, "http://docknap-upstream:8080").await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "{site}"
        );
    }
    // Bearer tokens are not ambient credentials: no Origin check.
    let t = s.admin_token().await;
    assert_eq!(send(Some("http://evil.example"), Some(&t)).await, StatusCode::BAD_REQUEST);
    // A cookie GET is fine from anywhere (reads change nothing).
    let r = s
        .http
        .get(s.url("/api/auth/me"))
        .header("cookie", &pair)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn first_admin_generated_password_is_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[NO_ENGINE, ("DOCKNAP_ADMIN_USERNAME", "boss")]);
    s.spawn_without_password();
    // The first admin is created off the start-up path (a bcrypt round), so
    // a SIGTERM at once must still let it finish and print the password.
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
    let log = s.log_text();
    let pw = log.lines().find_map(|l| l.split("generated password: ").nth(1)).and_then(|l| l.split_whitespace().next());
    let pw = pw.unwrap_or_else(|| panic!("no generated password in the log:\n{log}")).to_string();
    assert!(pw.len() >= 20, "{pw}");
    s.spawn_without_password();
    s.login("boss", &pw).await;
    s.kill();
    s.spawn_without_password();
    assert_eq!(s.log_text().matches("generated password").count(), 1, "printed only at the first start");
    // No default password exists anywhere.
    let (st, _) =
        s.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "boss", "password": "admin"}))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| std::fs::metadata(s.data_dir.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("jwt.secret"), 0o600);
    assert_eq!(mode("docknap.db"), 0o600, "the database holds password hashes");
    assert_eq!(mode(""), 0o700, "the data dir it created");
}

#[tokio::test]
async fn reset_password_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[NO_ENGINE]);
    s.spawn();
    let old = s.admin_token().await;
    s.kill();

    let data_dir = s.data_dir.clone();
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_docknap"))
            .arg("reset-password")
            .args(args)
            .env("DOCKNAP_DATA_DIR", &data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = cli(&["admin"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(generated.len() >= 20);
    assert!(!cli(&["nobody"], None).status.success());
    assert!(!cli(&["admin", "--stdin"], Some("short\n")).status.success(), "policy applies");

    s.spawn();
    s.login("admin", &generated).await;
    assert_eq!(s.get("/api/auth/me", &old).await.0, StatusCode::UNAUTHORIZED, "old sessions revoked");
    let (st, _) = s
        .call(Method::POST, "/api/auth/login", None, Some(json!({"username": "admin", "password": ADMIN_PASSWORD})))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    s.kill();
    assert!(cli(&["admin", "--stdin"], Some("chosen-password-9\n")).status.success());
    s.spawn();
    s.login("admin", "chosen-password-9").await;

    // A data dir without a database (a mistyped volume) is refused, not filled.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_docknap"))
        .args(["reset-password", "admin"])
        .env("DOCKNAP_DATA_DIR", empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no DockNap database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0, "nothing created");
}

#[tokio::test]
async fn audit_records_security_events_newest_first_with_paging() {
    let s = Server::start_with(&[NO_ENGINE]);
    let _ = s
        .call(Method::POST, "/api/auth/login", None, Some(json!({"username": "admin", "password": "bad-password"})))
        .await;
    let admin = s.admin_token().await;
    let (_, u) =
        s.post("/api/users", &admin, json!({"username": "vic", "password": "password-123", "role": "viewer"})).await;
    let id = u["id"].as_i64().unwrap();
    s.call(Method::PUT, &format!("/api/users/{id}"), Some(&admin), Some(json!({"role": "operator"}))).await;
    let vic = s.login("vic", "password-123").await;
    s.call(
        Method::PUT,
        "/api/auth/password",
        Some(&vic),
        Some(json!({"current_password": "password-123", "new_password": "password-456"})),
    )
    .await;
    s.call(Method::POST, "/api/auth/logout", Some(&vic), None).await;
    s.call(Method::DELETE, &format!("/api/users/{id}"), Some(&admin), None).await;

    let (st, page) = s.get("/api/audit?limit=500", &admin).await;
    assert_eq!(st, StatusCode::OK);
    let entries = page["entries"].as_array().unwrap();
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let has = |actor: &str, action: &str, ok: bool| {
        entries.iter().any(|e| e["actor"] == actor && e["action"] == action && e["ok"] == ok)
    };
    assert!(has("admin", "login", false));
    assert!(has("admin", "login", true));
    assert!(has("admin", "user_create", true));
    assert!(has("admin", "user_update", true));
    assert!(has("vic", "password_change", true));
    assert!(has("vic", "logout", true));
    assert!(has("admin", "user_delete", true));
    let failure = entries.iter().find(|e| e["action"] == "login" && e["ok"] == false).unwrap();
    assert_eq!(failure["client_addr"], "127.0.0.1");
    let text = page.to_string();
    for secret in [ADMIN_PASSWORD, "password-123", "password-456", "bad-password", admin.as_str()] {
        assert!(!text.contains(secret), "the audit log must not hold {secret}");
    }

    // Paging: two at a time, no overlap, no gap.
    let (_, p1) = s.get("/api/audit?limit=2", &admin).await;
    let before = p1["next_before"].as_i64().unwrap();
    let (_, p2) = s.get(&format!("/api/audit?limit=2&before={before}"), &admin).await;
    assert_eq!(p2["entries"][0]["id"].as_i64().unwrap(), ids[2]);
    // Append-only: no route changes or deletes entries.
    assert_eq!(s.call(Method::DELETE, "/api/audit", Some(&admin), None).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn security_headers_everywhere_and_body_limits() {
    let s = Server::start_with(&[NO_ENGINE]);
    let t = s.admin_token().await;
    for (path, auth) in
        [("/", false), ("/healthz", false), ("/api/auth/me", true), ("/api/auth/me", false), ("/api/nope", true)]
    {
        let mut req = s.http.get(s.url(path));
        if auth {
            req = req.bearer_auth(&t);
        }
        let r = req.send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.get("server").is_none(), "{path}: no server banner");
        assert!(h.get("x-request-id").is_some(), "{path}");
    }
    // Over 1 MiB: 413 with the JSON error shape.
    let big = json!({"username": "a", "password": "b".repeat(1024 * 1024 + 10)});
    let (st, v) = s.call(Method::POST, "/api/auth/login", None, Some(big)).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")));
    // Malformed JSON.
    let r = s
        .http
        .post(s.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");
}

/// xorshift: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % max;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test]
async fn random_tokens_and_login_bodies_never_break_the_server() {
    let s = Server::start_with(&[NO_ENGINE]);
    let mut rng = Rng(0x5eed_d0c4_0a9f_1234);
    for i in 0..300 {
        let junk = rng.bytes(600);
        // As a bearer token (only header-safe bytes can be sent).
        let token: String = junk.iter().map(|b| (b' ' + b % 94) as char).collect();
        let r =
            s.http.get(s.url("/api/auth/me")).header("authorization", format!("Bearer {token}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "iteration {i}");
        let cookie = format!("docknap_session={}", token.replace(';', ""));
        let r = s.http.get(s.url("/api/auth/me")).header("cookie", cookie).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "iteration {i}");
        // As a login body; every tenth a JSON object with random strings.
        let body = if i % 10 == 0 {
            json!({"username": String::from_utf8_lossy(&rng.bytes(300)), "password": String::from_utf8_lossy(&rng.bytes(300))}).to_string().into_bytes()
        } else {
            junk
        };
        let r = s
            .http
            .post(s.url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "iteration {i}: {}", r.status());
    }
    let (st, _) = s.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(st, StatusCode::OK, "still alive");
}

/// Found by Schemathesis (make test-api): a stack named twice in one bulk
/// request lost an outcome, and the handler's panic ended the server (the
/// release build aborts on panic).
#[tokio::test]
async fn a_bulk_request_naming_a_target_twice_acts_once_and_the_server_lives() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let twice = json!({"action": "run", "targets": [
        {"target_type": "stack", "target_id": "1"}, {"target_type": "stack", "target_id": "1", "host": "local"}
    ]});
    let (st, v) = s.post("/api/bulk", &admin, twice).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(s.get("/api/auth/me", &admin).await.0, StatusCode::OK, "the server still answers");
}
