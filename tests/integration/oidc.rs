//! Single sign-on against a real, certified OpenID provider (panva's
//! `oidc-provider`, tests/oidc/provider.mjs) on a loopback port: the whole
//! authorization-code flow with PKCE, driven like a browser (cookies and
//! redirects by hand, the provider's login form filled in).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");
const SECRET: &str = "docknap-test-secret";

/// The provider: killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start(redirect_uri: &str, groups_file: &Path) -> Provider {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "tests/oidc is not installed: run scripts/test-env.sh"
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("REDIRECT_URI", redirect_uri)
            .env("CLIENT_SECRET", SECRET)
            .env("GROUPS_FILE", groups_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is required for the OIDC tests");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // Drained, not closed: the provider's notices on a closed pipe would kill it.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .to_string();
        Provider { child, issuer }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// DockNap with SSO, and its provider.
fn start(extra: &[(&str, &str)]) -> (Server, Provider, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let provider =
        Provider::start(&format!("http://127.0.0.1:{port}/api/auth/oidc/callback"), &dir.path().join("groups.json"));
    let listen = format!("127.0.0.1:{port}");
    let mut env = vec![
        NO_ENGINE,
        ("DOCKNAP_LISTEN", listen.as_str()),
        ("DOCKNAP_OIDC_ISSUER", provider.issuer.as_str()),
        ("DOCKNAP_OIDC_CLIENT_ID", "docknap"),
        ("DOCKNAP_OIDC_CLIENT_SECRET", SECRET),
        ("DOCKNAP_OIDC_NAME", "Test ID"),
        ("DOCKNAP_OIDC_ADMIN_GROUPS", "docknap-admins"),
        ("DOCKNAP_OIDC_OPERATOR_GROUPS", "docknap-operators"),
        ("DOCKNAP_OIDC_VIEWER_GROUPS", "staff,docknap-viewers"),
    ];
    env.extend_from_slice(extra);
    (Server::start_with(&env), provider, dir)
}

/// Cookies and redirects by hand: one jar for both servers (cookies ignore
/// ports, as a browser's do).
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Browser { http, cookies: HashMap::new() }
    }

    async fn send(&mut self, method: Method, url: &str, form: Option<&[(&str, &str)]>) -> reqwest::Response {
        let jar = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut req = self.http.request(method, url).header("cookie", jar);
        if let Some(form) = form {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(form).unwrap());
        }
        let resp = req.send().await.unwrap();
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            let gone = v.is_empty() || attrs.to_ascii_lowercase().contains("max-age=0") || attrs.contains("1970");
            if gone {
                self.cookies.remove(k.trim())
            } else {
                self.cookies.insert(k.trim().into(), v.into())
            };
        }
        resp
    }

    /// From DockNap's SSO button to the provider's redirect back to the
    /// callback (not yet followed): the callback URL.
    async fn callback_url(&mut self, s: &Server, user: &str) -> String {
        let mut url = s.url("/api/auth/oidc/login");
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..20 {
            let owned: Option<Vec<(&str, &str)>> =
                form.as_ref().map(|f| f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect());
            let method = if form.is_some() { Method::POST } else { Method::GET };
            let resp = self.send(method, &url, owned.as_deref()).await;
            form = None;
            let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
            if resp.status().is_redirection() {
                let loc = resp.headers()["location"].to_str().unwrap().to_string();
                url = if loc.starts_with('/') { format!("{origin}{loc}") } else { loc };
                if url.starts_with(&s.url("/api/auth/oidc/callback")) || url.starts_with(&s.url("/login")) {
                    return url;
                }
                continue;
            }
            let status = resp.status();
            let page = resp.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{url}: {page}");
            // The provider's login form: any password will do.
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("no form at {url}: {page}"));
            assert!(page.contains("name=\"login\""), "{page}");
            url = if action.starts_with('/') { format!("{origin}{action}") } else { action.to_string() };
            form = Some(vec![
                ("prompt".into(), "login".into()),
                ("login".into(), user.into()),
                ("password".into(), "any".into()),
            ]);
        }
        panic!("the sign-in did not come back to DockNap");
    }

    /// Follows the callback: where DockNap sends the browser.
    async fn finish(&mut self, callback: &str) -> String {
        let resp = self.send(Method::GET, callback, None).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{callback}");
        resp.headers()["location"].to_str().unwrap().to_string()
    }

    /// The whole sign-in: where DockNap finally sends the browser.
    async fn sign_in(&mut self, s: &Server, user: &str) -> String {
        let url = self.callback_url(s, user).await;
        match url.strip_prefix(&s.base) {
            Some(refused) if refused.starts_with("/login") => refused.to_string(),
            _ => self.finish(&url).await,
        }
    }

    async fn me(&mut self, s: &Server) -> (StatusCode, Value) {
        let resp = self.send(Method::GET, &s.url("/api/auth/me"), None).await;
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn sign_in_maps_groups_to_roles_and_refuses_users_without_one() {
    let (s, _provider, dir) = start(&[]);
    let (st, providers) = s.call(Method::GET, "/api/auth/providers", None, None).await;
    assert_eq!(
        (st, providers),
        (StatusCode::OK, json!({"password": true, "oidc": {"name": "Test ID", "login_url": "/api/auth/oidc/login"}}))
    );
    let admin = s.admin_token().await;
    // A local account already named carol: the provider's carol must not get it.
    s.post("/api/users", &admin, json!({"username": "carol", "password": "password-123", "role": "admin"})).await;

    for (user, name, role) in [("alice", "alice", "admin"), ("bob", "bob", "operator"), ("carol", "carol-2", "viewer")]
    {
        let mut b = Browser::new();
        assert_eq!(b.sign_in(&s, user).await, "/", "{user}");
        assert!(b.cookies.contains_key("docknap_session"));
        assert!(!b.cookies.contains_key("docknap_oidc_state"), "the flow's cookie is cleared");
        let (st, me) = b.me(&s).await;
        assert_eq!(
            (st, me["username"].as_str(), me["role"].as_str()),
            (StatusCode::OK, Some(name), Some(role)),
            "{user}"
        );
    }

    let mut mallory = Browser::new();
    assert_eq!(mallory.sign_in(&s, "mallory").await, "/login?error=no_role");
    assert!(!mallory.cookies.contains_key("docknap_session"));

    // The role follows the claim at each sign-in, and the old sessions end.
    let mut bob = Browser::new();
    bob.sign_in(&s, "bob").await;
    std::fs::write(dir.path().join("groups.json"), r#"{"bob": ["staff"]}"#).unwrap();
    let mut bob_again = Browser::new();
    assert_eq!(bob_again.sign_in(&s, "bob").await, "/");
    assert_eq!(bob_again.me(&s).await.1["role"], "viewer");
    assert_eq!(bob.me(&s).await.0, StatusCode::UNAUTHORIZED, "a role change ends the user's other sessions");
    std::fs::write(dir.path().join("groups.json"), r#"{"bob": []}"#).unwrap();
    assert_eq!(Browser::new().sign_in(&s, "bob").await, "/login?error=no_role");

    let (_, users) = s.get("/api/users", &admin).await;
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "alice", "bob", "carol", "carol-2"], "one user per subject, created once");

    // A provider's user has no DockNap password.
    let (st, _) =
        s.call(Method::POST, "/api/auth/login", None, Some(json!({"username": "alice", "password": "!sso"}))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let mut alice = Browser::new();
    alice.sign_in(&s, "alice").await;
    let token = alice.cookies["docknap_session"].clone();
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/auth/password",
            Some(&token),
            Some(json!({"current_password": "!sso", "new_password": "password-789"})),
        )
        .await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("sso_account")));

    // Logout ends the DockNap session.
    assert_eq!(s.call(Method::POST, "/api/auth/logout", Some(&token), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(alice.me(&s).await.0, StatusCode::UNAUTHORIZED);

    let (_, page) = s.get("/api/audit?action=login&limit=500", &admin).await;
    let entries = page["entries"].as_array().unwrap();
    let sso = |actor: &str, ok: bool| {
        entries.iter().any(|e| e["actor"] == actor && e["ok"] == ok && e["details"]["method"] == "oidc")
    };
    assert!(sso("alice", true) && sso("carol-2", true) && sso("mallory", false), "{page}");
    assert!(!page.to_string().contains(SECRET));
    assert!(!s.log_text().contains(SECRET), "the client secret never reaches the log");
}

#[tokio::test]
async fn a_tampered_replayed_or_foreign_state_is_refused() {
    let (s, _provider, _dir) = start(&[]);
    let mut b = Browser::new();
    let callback = b.callback_url(&s, "alice").await;
    let state = callback.split("state=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let tampered = callback.replace(&format!("state={state}"), &format!("state={state}x"));
    assert_eq!(b.finish(&tampered).await, "/login?error=oidc_state");

    // Another browser (no flow cookie) cannot finish someone's sign-in.
    let callback = b.callback_url(&s, "alice").await;
    assert_eq!(Browser::new().finish(&callback).await, "/login?error=oidc_state");
    // Nor can the flow be finished afterwards: a state works once.
    assert_eq!(b.finish(&callback).await, "/login?error=oidc_state");

    let callback = b.callback_url(&s, "alice").await;
    assert_eq!(b.finish(&callback).await, "/");
    b.cookies.insert("docknap_oidc_state".into(), state);
    assert_eq!(b.finish(&callback).await, "/login?error=oidc_state", "replayed");
    assert_eq!(b.finish(&s.url("/api/auth/oidc/callback?error=access_denied")).await, "/login?error=oidc_denied");
    assert_eq!(b.finish(&s.url("/api/auth/oidc/callback")).await, "/login?error=oidc_state");
}

#[tokio::test]
async fn a_provider_that_is_down_leaves_password_login_working() {
    // Down from the start: DockNap starts anyway.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (s, provider, _dir) = start(&[]);
    let down = Server::start_with(&[
        NO_ENGINE,
        ("DOCKNAP_OIDC_ISSUER", closed.as_str()),
        ("DOCKNAP_OIDC_CLIENT_ID", "docknap"),
        ("DOCKNAP_OIDC_CLIENT_SECRET", SECRET),
        ("DOCKNAP_OIDC_VIEWER_GROUPS", "staff"),
    ]);
    assert_eq!(Browser::new().sign_in(&down, "alice").await, "/login?error=provider_unavailable");
    down.admin_token().await;

    // Down after a first sign-in: password logins go on.
    assert_eq!(Browser::new().sign_in(&s, "alice").await, "/");
    drop(provider);
    let (_, providers) = s.call(Method::GET, "/api/auth/providers", None, None).await;
    assert_eq!(providers["oidc"]["name"], "Test ID", "the button stays; its errors say what is wrong");
    s.admin_token().await;
}
