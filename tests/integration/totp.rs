//! Two-factor sign-in, the password policy and user administration, from
//! outside: codes are computed here (RFC 6238 by hand), not asked of the server.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");
const PASSWORD: &str = "tessellate-quartz-9";

fn now_step() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 30
}

/// RFC 6238 (HMAC-SHA1, 6 digits) for a base32 secret at a time step.
fn code(secret_b32: &str, step: u64) -> String {
    let key = data_encoding::BASE32_NOPAD.decode(secret_b32.as_bytes()).unwrap();
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&key).unwrap();
    mac.update(&step.to_be_bytes());
    let d = mac.finalize().into_bytes();
    let o = (d[19] & 0xf) as usize;
    let n = u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]) & 0x7fff_ffff;
    format!("{:06}", n % 1_000_000)
}

async fn login_with(s: &Server, user: &str, password: &str, totp: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({"username": user, "password": password});
    if let Some(t) = totp {
        body["totp"] = json!(t);
    }
    s.call(Method::POST, "/api/auth/login", None, Some(body)).await
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// Creates `name` with `role` and returns their id and a token.
async fn new_user(s: &Server, admin: &str, name: &str, role: &str) -> (i64, String) {
    let (st, v) = s.post("/api/users", admin, json!({"username": name, "password": PASSWORD, "role": role})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (v["id"].as_i64().unwrap(), s.login(name, PASSWORD).await)
}

/// Sets up and enables TOTP for the token's user: the secret, the step of
/// the enabling code, and the recovery codes.
async fn enrol(s: &Server, token: &str) -> (String, u64, Vec<String>) {
    let (st, v) = s.call(Method::POST, "/api/auth/totp/setup", Some(token), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    let url = v["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/DockNap:") && url.contains(&format!("secret={secret}")), "{url}");

    let (st, v) = s.post("/api/auth/totp/enable", token, json!({"code": "000000"})).await;
    let wrong = code(&secret, now_step()) != "000000";
    if wrong {
        assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_totp"), "{v}");
    }
    let step = now_step();
    let (st, v) = s.post("/api/auth/totp/enable", token, json!({"code": code(&secret, step)})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let codes: Vec<String> =
        v["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10);
    (secret, step, codes)
}

#[tokio::test]
async fn enrol_login_replay_recovery_and_disable() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (_, token) = new_user(&s, &admin, "tina", "operator").await;
    let (secret, step, recovery) = enrol(&s, &token).await;
    let (_, me) = s.get("/api/auth/me", &token).await;
    assert_eq!((me["totp_enabled"].as_bool(), me["totp_required_setup"].as_bool()), (Some(true), Some(false)), "{me}");

    let (st, v) = login_with(&s, "tina", PASSWORD, None).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNAUTHORIZED, "totp_required"), "{v}");
    let (st, v) = login_with(&s, "tina", PASSWORD, Some(&code(&secret, step))).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNAUTHORIZED, "invalid_totp"), "the enabling code is used up: {v}");

    let next = code(&secret, step + 1);
    let (st, v) = login_with(&s, "tina", PASSWORD, Some(&next)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["token"].is_string());
    let (st, v) = login_with(&s, "tina", PASSWORD, Some(&next)).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNAUTHORIZED, "invalid_totp"), "replayed: {v}");

    // A recovery code works once, typed in any case.
    let (st, v) = login_with(&s, "tina", PASSWORD, Some(&recovery[0].to_uppercase())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = login_with(&s, "tina", PASSWORD, Some(&recovery[0])).await;
    assert_eq!((st, error_code(&v)), (StatusCode::UNAUTHORIZED, "invalid_totp"), "{v}");

    // Turning it off needs the password and a code. (Four failures so far:
    // one more is allowed before the limit.)
    let (st, v) =
        s.post("/api/auth/totp/disable", &token, json!({"password": "not-the-password", "code": recovery[1]})).await;
    assert_eq!((st, error_code(&v)), (StatusCode::FORBIDDEN, "invalid_credentials"), "{v}");
    let (st, v) = s.post("/api/auth/totp/disable", &token, json!({"password": PASSWORD, "code": recovery[1]})).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v) = login_with(&s, "tina", PASSWORD, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Audited without codes or secrets.
    let (_, page) = s.get("/api/audit?target_id=tina&limit=100", &admin).await;
    let text = page.to_string();
    for action in ["totp_enable", "totp_recovery_code", "totp_disable"] {
        assert!(text.contains(action), "{action} missing: {text}");
    }
    assert!(!text.contains(&secret) && !text.contains(&recovery[0]) && !text.contains(&next), "{text}");
    assert!(!s.log_text().contains(&secret));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data_dir.join("totp.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn wrong_codes_count_against_the_login_limits() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (_, token) = new_user(&s, &admin, "wendy", "viewer").await;
    let (secret, step, _) = enrol(&s, &token).await;
    let right = code(&secret, step + 1);
    let wrong = if right == "123456" { "654321" } else { "123456" };
    for i in 0..5 {
        let (st, v) = login_with(&s, "wendy", PASSWORD, Some(wrong)).await;
        assert_eq!((st, error_code(&v)), (StatusCode::UNAUTHORIZED, "invalid_totp"), "attempt {i}: {v}");
    }
    // A request without a code is not a failure, but does not lift the block either.
    let (st, v) = login_with(&s, "wendy", PASSWORD, Some(&right)).await;
    assert_eq!((st, error_code(&v)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{v}");
}

#[tokio::test]
async fn admins_reset_two_factor_and_user_changes_mean_what_they_say() {
    let s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    let (id, token) = new_user(&s, &admin, "rita", "viewer").await;
    enrol(&s, &token).await;
    let path = format!("/api/users/{id}");
    let put = |body: Value| s.call(Method::PUT, &path, Some(&admin), Some(body));

    let (st, v) = put(json!({})).await;
    assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "empty_change"), "{v}");
    let (st, v) = put(json!({"reset_totp": false})).await;
    assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "empty_change"), "{v}");
    let (st, v) = put(json!({"rol": "operator"})).await;
    assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "unknown_field"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("rol"));

    // The role the user has: done, nothing revoked, nothing audited.
    let (st, v) = put(json!({"role": "viewer"})).await;
    assert_eq!((st, v["totp_enabled"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    assert_eq!(s.get("/api/auth/me", &token).await.0, StatusCode::OK, "a no-op change signs nobody out");

    let (st, v) = put(json!({"reset_totp": true})).await;
    assert_eq!((st, v["totp_enabled"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    assert_eq!(s.get("/api/auth/me", &token).await.0, StatusCode::UNAUTHORIZED, "a real change signs the user out");
    let (st, v) = login_with(&s, "rita", PASSWORD, None).await;
    assert_eq!(st, StatusCode::OK, "no code needed after the reset: {v}");
    let (_, users) = s.get("/api/users", &admin).await;
    assert!(users.as_array().unwrap().iter().all(|u| u["totp_enabled"] == false), "{users}");

    let (_, page) = s.get("/api/audit?action=user_update&limit=100", &admin).await;
    let messages: Vec<&str> =
        page["entries"].as_array().unwrap().iter().filter_map(|e| e["message"].as_str()).collect();
    assert_eq!(messages.len(), 1, "only the real change is audited: {page}");
    assert!(messages[0].contains("two-factor sign-in reset"), "{messages:?}");
}

#[tokio::test]
async fn required_enrolment_opens_only_the_set_up_routes() {
    let s = Server::start_with(&[NO_ENGINE, ("DOCKNAP_REQUIRE_2FA", "all")]);
    // The admin can sign in without a code and is sent to set one up.
    let admin = s.admin_token().await;
    let (_, me) = s.get("/api/auth/me", &admin).await;
    assert_eq!(me["totp_required_setup"], true, "{me}");
    let (st, v) = s.get("/api/users", &admin).await;
    assert_eq!((st, error_code(&v)), (StatusCode::FORBIDDEN, "totp_enrolment_required"), "{v}");
    let (st, v) = s.get("/api/containers", &admin).await;
    assert_eq!((st, error_code(&v)), (StatusCode::FORBIDDEN, "totp_enrolment_required"), "{v}");

    let (secret, step, _) = enrol(&s, &admin).await;
    let (_, me) = s.get("/api/auth/me", &admin).await;
    assert_eq!(me["totp_required_setup"], false, "{me}");
    assert_eq!(s.get("/api/users", &admin).await.0, StatusCode::OK, "the same session goes on, enrolled");
    let (st, _) = login_with(&s, "admin", ADMIN_PASSWORD, Some(&code(&secret, step + 1))).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.call(Method::POST, "/api/auth/logout", Some(&admin), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_password_policy_applies_to_new_passwords_only() {
    let mut first = Server::start_with(&[NO_ENGINE, ("DOCKNAP_PASSWORD_MIN_LENGTH", "8")]);
    let s = &first;
    let admin = s.admin_token().await;
    let (st, v) =
        s.post("/api/users", &admin, json!({"username": "old", "password": "tr0ub4dor", "role": "viewer"})).await;
    assert_eq!(st, StatusCode::CREATED, "9 characters pass a minimum of 8: {v}");
    let (st, v) =
        s.post("/api/users", &admin, json!({"username": "lazy", "password": "password", "role": "viewer"})).await;
    assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_password"), "{v}");
    first.kill();

    // Restarted with the default minimum of 12: the old password still works.
    let mut s = Server::configure(first.data_dir.clone(), &[NO_ENGINE]);
    s.spawn();
    let old = s.login("old", "tr0ub4dor").await;
    let admin = s.admin_token().await;
    for (password, why) in [("short-pass1", "at least 12"), ("Password1234", "commonly used")] {
        let (st, v) =
            s.post("/api/users", &admin, json!({"username": "new", "password": password, "role": "viewer"})).await;
        assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_password"), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{v}");
        let body = json!({"current_password": "tr0ub4dor", "new_password": password});
        let (st, v) = s.call(Method::PUT, "/api/auth/password", Some(&old), Some(body)).await;
        assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_password"), "{v}");
        let (_, users) = s.get("/api/users", &admin).await;
        let id = users.as_array().unwrap().iter().find(|u| u["username"] == "old").unwrap()["id"].as_i64().unwrap();
        let (st, v) =
            s.call(Method::PUT, &format!("/api/users/{id}"), Some(&admin), Some(json!({"password": password}))).await;
        assert_eq!((st, error_code(&v)), (StatusCode::BAD_REQUEST, "invalid_password"), "{v}");
    }
    let body = json!({"current_password": "tr0ub4dor", "new_password": "a much longer passphrase"});
    assert_eq!(s.call(Method::PUT, "/api/auth/password", Some(&old), Some(body)).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn reset_2fa_cli_lets_a_locked_out_admin_back_in() {
    let mut s = Server::start_with(&[NO_ENGINE]);
    let admin = s.admin_token().await;
    enrol(&s, &admin).await;
    s.kill();
    let cli = |user: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_docknap"))
            .args(["reset-2fa", user])
            .env("DOCKNAP_DATA_DIR", &s.data_dir)
            .output()
            .unwrap()
    };
    let out = cli("admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!cli("nobody").status.success());
    s.spawn();
    let (st, v) = login_with(&s, "admin", ADMIN_PASSWORD, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, page) = s.get("/api/audit?actor=cli", v["token"].as_str().unwrap()).await;
    assert!(page.to_string().contains("two-factor sign-in reset from the command line"), "{page}");
}
