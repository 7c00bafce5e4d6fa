//! API keys (`/api/tokens`) from outside: made by a signed-in user, used as
//! a bearer token, capped, revoked and audited.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

/// Makes a key with `body` as the holder of `token`; returns the 201 answer.
pub async fn make_key(s: &Server, token: &str, body: Value) -> Value {
    let (st, v) = s.post("/api/tokens", token, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

/// A new user with `role`: (their login token, their username, their id).
async fn new_user(s: &Server, admin: &str, role: &str) -> (String, String, i64) {
    let name = unique(role).replace('-', "_");
    let (st, v) =
        s.post("/api/users", admin, json!({"username": name, "password": "password-123", "role": role})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (s.login(&name, "password-123").await, name, v["id"].as_i64().unwrap())
}

fn schedule() -> Value {
    json!({"target_type": "stack", "target_id": "web", "action": "stop", "cron": "0 3 * * *"})
}

#[tokio::test]
async fn a_key_is_shown_once_works_like_its_owner_is_audited_by_its_name_and_dies_when_revoked() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (op, name, _) = new_user(&s, &admin, "operator").await;
    let made = make_key(&s, &op, json!({"name": "deploy-bot"})).await;
    let key = made["token"].as_str().unwrap().to_string();
    assert!(key.starts_with("dnp_") && key.len() == 4 + 43, "{key}");
    assert_eq!(made["prefix"].as_str(), Some(&key[..12]));
    assert_eq!(
        (made["name"].as_str(), made["role"].as_str()),
        (Some("deploy-bot"), Some("operator")),
        "the owner's role by default"
    );
    assert!(made["expires_at"].is_null() && made["last_used_at"].is_null() && made["created_at"].is_string(), "{made}");

    let (st, me) = s.get("/api/auth/me", &key).await;
    assert_eq!((st, me["username"].as_str()), (StatusCode::OK, Some(name.as_str())));
    let (st, v) = s.post("/api/schedules", &key, schedule()).await;
    assert_eq!(st, StatusCode::CREATED, "an operator's key acts as an operator: {v}");
    let actor = format!("{name}:deploy-bot");
    let (_, page) = s.get(&format!("/api/audit?actor={actor}&action=schedule_create"), &admin).await;
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(1), "audited as {actor}: {page}");
    let (_, page) = s.get(&format!("/api/audit?actor={name}&action=api_key_create"), &admin).await;
    assert_eq!(page["entries"][0]["target_id"].as_str(), Some(actor.as_str()), "{page}");

    let (st, list) = s.get("/api/tokens", &op).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("token").is_none(), "the key is shown only once: {list}");
    assert!(list[0]["last_used_at"].is_string(), "a use shows before it is written: {list}");

    // Never stored or written anywhere in the clear.
    let (_, audit) = s.get("/api/audit?limit=500", &admin).await;
    assert!(!audit.to_string().contains(&key[4..]), "the key is in the audit");
    assert!(!s.log_text().contains(&key[4..]), "the key is in the log");
    let db = std::fs::read(s.data_dir.join("docknap.db")).unwrap();
    let wal = std::fs::read(s.data_dir.join("docknap.db-wal")).unwrap_or_default();
    let secret = &key.as_bytes()[4..];
    for bytes in [db, wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret), "the key is in the database");
    }

    // Only as a bearer token: a key in the session cookie is no session.
    let r = s.http.get(s.url("/api/auth/me")).header("cookie", format!("docknap_session={key}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let id = list[0]["id"].as_i64().unwrap();
    let (st, _) = s.call(Method::DELETE, &format!("/api/tokens/{id}"), Some(&op), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s.get("/api/auth/me", &key).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
        "revoked at once"
    );
    let (_, page) = s.get(&format!("/api/audit?actor={name}&action=api_key_delete"), &admin).await;
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(1), "{page}");
    let (st, _) = s.call(Method::DELETE, &format!("/api/tokens/{id}"), Some(&op), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_cannot_make_keys_change_passwords_two_factor_or_users_or_log_out() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (_, _, viewer_id) = new_user(&s, &admin, "viewer").await;
    let key = make_key(&s, &admin, json!({"name": "root-bot"})).await["token"].as_str().unwrap().to_string();
    let refused: [(Method, String, Option<Value>); 9] = [
        (Method::POST, "/api/tokens".into(), Some(json!({"name": "child"}))),
        (
            Method::PUT,
            "/api/auth/password".into(),
            Some(json!({"current_password": ADMIN_PASSWORD, "new_password": "new-password-1"})),
        ),
        (Method::POST, "/api/auth/totp/setup".into(), None),
        (Method::POST, "/api/auth/totp/enable".into(), Some(json!({"code": "000000"}))),
        (Method::POST, "/api/auth/totp/disable".into(), Some(json!({"password": ADMIN_PASSWORD, "code": "000000"}))),
        (
            Method::POST,
            "/api/users".into(),
            Some(json!({"username": "sneaky", "password": "password-123", "role": "admin"})),
        ),
        (Method::PUT, format!("/api/users/{viewer_id}"), Some(json!({"password": "password-456"}))),
        (Method::DELETE, format!("/api/users/{viewer_id}"), None),
        (Method::POST, "/api/auth/logout".into(), None),
    ];
    for (method, path, body) in refused {
        let (st, v) = s.call(method.clone(), &path, Some(&key), body).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("api_key_not_allowed")),
            "{method} {path}"
        );
    }
    // Nothing happened: the admin's password, the viewer and the key list are as they were.
    s.login("admin", ADMIN_PASSWORD).await;
    let (_, users) = s.get("/api/users", &key).await;
    assert_eq!(users.as_array().map(Vec::len), Some(2), "an admin key still reads users: {users}");
    let (_, keys) = s.get("/api/tokens", &admin).await;
    assert_eq!(keys.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_keys_role_is_at_most_its_owners_and_is_lowered_when_the_owner_is_demoted() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (op, _, op_id) = new_user(&s, &admin, "operator").await;
    let (st, v) = s.post("/api/tokens", &op, json!({"name": "too-high", "role": "admin"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_role")));
    let (st, v) = s.post("/api/tokens", &op, json!({"name": "bad:name"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_name")));
    let viewer_key =
        make_key(&s, &op, json!({"name": "reader", "role": "viewer"})).await["token"].as_str().unwrap().to_string();
    let (st, _) = s.post("/api/schedules", &viewer_key, schedule()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a viewer key of an operator is a viewer");
    let (st, v) = s.post("/api/tokens", &op, json!({"name": "reader"})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "names are unique per user"
    );
    let key = make_key(&s, &op, json!({"name": "deployer"})).await["token"].as_str().unwrap().to_string();
    assert_eq!(s.post("/api/schedules", &key, schedule()).await.0, StatusCode::CREATED);

    let (st, _) =
        s.call(Method::PUT, &format!("/api/users/{op_id}"), Some(&admin), Some(json!({"role": "viewer"}))).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.post("/api/schedules", &key, schedule()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "capped at once");
    let (_, keys) = s.get("/api/tokens?all=true", &admin).await;
    let roles: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["user_id"] == op_id)
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["viewer", "viewer"], "{keys}");
    // Promotion does not raise them again.
    s.call(Method::PUT, &format!("/api/users/{op_id}"), Some(&admin), Some(json!({"role": "operator"}))).await;
    assert_eq!(s.post("/api/schedules", &key, schedule()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/schedules", &key).await.0, StatusCode::OK, "still a viewer key");
}

#[tokio::test]
async fn deleting_the_owner_deletes_their_keys_and_ends_their_event_streams() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (viewer, _, id) = new_user(&s, &admin, "viewer").await;
    let key = make_key(&s, &viewer, json!({"name": "watcher"})).await["token"].as_str().unwrap().to_string();
    let mut events = s.http.get(s.url("/api/events")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK, "keys can follow events");
    let (st, _) = s.call(Method::DELETE, &format!("/api/users/{id}"), Some(&admin), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let drained = async { while events.chunk().await.map(|c| c.is_some()).unwrap_or(false) {} };
    assert!(tokio::time::timeout(Duration::from_secs(2), drained).await.is_ok(), "the key's stream outlived its owner");
    assert_eq!(s.get("/api/auth/me", &key).await.0, StatusCode::UNAUTHORIZED);
    let (_, keys) = s.get("/api/tokens?all=true", &admin).await;
    assert_eq!(keys, json!([]));
}

#[tokio::test]
async fn a_key_stops_working_when_it_expires_and_cannot_be_made_already_expired() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let (st, v) = s.post("/api/tokens", &admin, json!({"name": "old", "expires_at": past})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_expiry")));
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let made = make_key(&s, &admin, json!({"name": "brief", "role": "viewer", "expires_at": soon.to_rfc3339()})).await;
    let key = made["token"].as_str().unwrap();
    assert!(made["expires_at"].is_string());
    assert_eq!(s.get("/api/auth/me", key).await.0, StatusCode::OK);
    tokio::time::sleep((soon - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(200)).await;
    assert_eq!(s.get("/api/auth/me", key).await.0, StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn admins_see_and_revoke_everyones_keys_others_only_their_own() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (viewer, vname, _) = new_user(&s, &admin, "viewer").await;
    let admin_key = make_key(&s, &admin, json!({"name": "a"})).await;
    let viewer_key = make_key(&s, &viewer, json!({"name": "v"})).await;
    let (st, v) = s.get("/api/tokens?all=true", &viewer).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (_, mine) = s.get("/api/tokens", &admin).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "without all=true an admin sees their own: {mine}");
    let (_, all) = s.get("/api/tokens?all=true", &admin).await;
    let owners: Vec<&str> = all.as_array().unwrap().iter().map(|k| k["username"].as_str().unwrap()).collect();
    assert_eq!(owners, ["admin", vname.as_str()]);
    let (st, _) = s.call(Method::DELETE, &format!("/api/tokens/{}", admin_key["id"]), Some(&viewer), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "another user's key does not exist for a viewer");
    let (st, _) = s.call(Method::DELETE, &format!("/api/tokens/{}", viewer_key["id"]), Some(&admin), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/auth/me", viewer_key["token"].as_str().unwrap()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/auth/me", admin_key["token"].as_str().unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn last_used_at_is_written_in_batches_and_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::configure(tmp.path().join("data"), &[NO_ENGINE]);
    s.spawn();
    let admin = s.admin_token().await;
    let key = make_key(&s, &admin, json!({"name": "ci"})).await["token"].as_str().unwrap().to_string();
    for _ in 0..50 {
        assert_eq!(s.get("/api/auth/me", &key).await.0, StatusCode::OK);
    }
    let (_, before) = s.get("/api/tokens", &admin).await;
    let used = before[0]["last_used_at"].as_str().expect("shown before it is written").to_string();
    let (status, _) = s.terminate();
    assert!(status.success());
    s.spawn();
    let (_, after) = s.get("/api/tokens", &s.admin_token().await).await;
    assert_eq!(after[0]["last_used_at"].as_str(), Some(used.as_str()), "written at shutdown: {after}");
}
