//! Single sign-on through an OpenID Connect provider: the authorization code
//! flow with PKCE (S256), `state` and `nonce`. The provider's metadata comes
//! from its discovery document, fetched at the first sign-in (never at
//! start-up: a provider that is down must not stop DockNap or its password
//! logins) and kept; its keys are fetched again when a token names a new one.
//!
//! A flow's `state`, `nonce` and PKCE verifier stay in this process's memory
//! (bounded, ten minutes, single use); the browser holds only the `state`, in
//! a cookie the callback must bring back, so a callback URL cannot be replayed
//! or planted in another browser. A restart forgets flows in progress: those
//! users click the button again.

mod http;
mod verify;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::audit::Audit;
use crate::auth::{AuthError, Session, USERNAME_MAX, random_password};
use crate::config::OidcConfig;
use crate::model::{NewAuditEntry, Role};
use crate::store::StoreError;

pub use verify::Keys;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("this sign-in attempt is unknown, expired, already used or from another browser")]
    State,
    #[error("the identity provider refused the sign-in: {0}")]
    Denied(String),
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    #[error("the identity provider's answer is unusable: {0}")]
    Provider(String),
    #[error("the ID token is refused: {0}")]
    IdToken(String),
    #[error("none of the user's groups maps to a DockNap role")]
    NoRole,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// How long a user has at the provider's login page.
const FLOW_TTL: Duration = Duration::from_secs(600);
/// Flows in progress at once; the oldest give way (the login route is public).
const MAX_FLOWS: usize = 4096;

struct Flow {
    nonce: String,
    verifier: String,
    redirect_uri: String,
    started: Instant,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
    access_token: Option<String>,
}

/// Where to send the browser to sign in, and the `state` its cookie holds.
pub struct Begin {
    pub location: String,
    pub state: String,
}

pub struct Oidc {
    config: OidcConfig,
    client: http::ProviderClient,
    discovery: tokio::sync::Mutex<Option<Arc<Discovery>>>,
    keys: Keys,
    flows: Mutex<HashMap<String, Flow>>,
    auth: Arc<crate::auth::Auth>,
    store: Arc<crate::store::Store>,
    audit: Arc<Audit>,
}

impl Oidc {
    pub fn new(
        config: OidcConfig,
        auth: Arc<crate::auth::Auth>,
        store: Arc<crate::store::Store>,
        audit: Arc<Audit>,
    ) -> Result<Oidc, String> {
        let client = http::ProviderClient::new(config.ca_pem.as_deref())?;
        Ok(Oidc {
            config,
            client,
            discovery: Default::default(),
            keys: Keys::default(),
            flows: Default::default(),
            auth,
            store,
            audit,
        })
    }

    /// The name on the login page's button.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    async fn discovery(&self) -> Result<Arc<Discovery>, OidcError> {
        let mut cached = self.discovery.lock().await;
        if let Some(d) = &*cached {
            return Ok(d.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let d: Discovery = self.client.get_json(&url, None).await?;
        // OpenID Connect Discovery 1.0, 4.3: the document must be the issuer's own.
        if d.issuer != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "the discovery document names issuer '{}', not DOCKNAP_OIDC_ISSUER '{}'",
                d.issuer, self.config.issuer
            )));
        }
        let d = Arc::new(d);
        *cached = Some(d.clone());
        Ok(d)
    }

    /// Starts a sign-in; the callback must come back to `redirect_uri`.
    pub async fn begin(&self, redirect_uri: String) -> Result<Begin, OidcError> {
        let d = self.discovery().await?;
        let (state, nonce, verifier) = (random_password(), random_password(), random_password() + &random_password());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", &self.config.client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", &self.config.scopes),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .expect("strings encode");
        let sep = if d.authorization_endpoint.contains('?') { '&' } else { '?' };
        let location = format!("{}{sep}{query}", d.authorization_endpoint);
        let mut flows = crate::store::lock(&self.flows);
        let now = Instant::now();
        flows.retain(|_, f| now.duration_since(f.started) < FLOW_TTL);
        if flows.len() >= MAX_FLOWS {
            let oldest = flows.iter().min_by_key(|(_, f)| f.started).map(|(k, _)| k.clone());
            flows.remove(&oldest.expect("the map is full"));
        }
        flows.insert(state.clone(), Flow { nonce, verifier, redirect_uri, started: now });
        Ok(Begin { location, state })
    }

    /// Ends a sign-in at the callback: the code for tokens, the ID token
    /// checked, the user created or updated, a session issued.
    pub async fn complete(
        &self,
        state: &str,
        cookie_state: Option<&str>,
        code: &str,
        client: IpAddr,
    ) -> Result<Session, OidcError> {
        // Taken out whatever happens next: a state works once.
        let flow = crate::store::lock(&self.flows).remove(state).ok_or(OidcError::State)?;
        if cookie_state != Some(state) || flow.started.elapsed() >= FLOW_TTL {
            return Err(OidcError::State);
        }
        let d = self.discovery().await?;
        let tokens: TokenResponse = self
            .client
            .post_form(
                &d.token_endpoint,
                (&self.config.client_id, &self.config.client_secret),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &flow.redirect_uri),
                    ("code_verifier", &flow.verifier),
                ],
            )
            .await?;
        let mut claims = self
            .keys
            .verify(&self.client, &d.jwks_uri, &self.config, &tokens.id_token, &flow.nonce, self.auth.now())
            .await?;
        if !claims.contains_key(&self.config.roles_claim) {
            // Many providers put groups only in the userinfo answer.
            if let (Some(url), Some(token)) = (&d.userinfo_endpoint, &tokens.access_token) {
                let info: Map<String, Value> = self.client.get_json(url, Some(token)).await?;
                if info.get("sub") != claims.get("sub") {
                    return Err(OidcError::Provider("the userinfo answer is about another subject".into()));
                }
                for (k, v) in info {
                    claims.entry(k).or_insert(v);
                }
            }
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::IdToken("no subject".into()))?
            .to_string();
        let username = username_from(&claims);
        let groups = groups_in(claims.get(&self.config.roles_claim));
        let Some(role) = role_for(&groups, &self.config) else {
            self.audit.record(
                NewAuditEntry::new(
                    &username,
                    crate::model::AuditAction::Login,
                    false,
                    format!("sign-in through {} refused: no group maps to a role", self.config.name),
                )
                .target("user", &username)
                .client(client)
                .details(serde_json::json!({ "method": "oidc", "groups": groups })),
            );
            return Err(OidcError::NoRole);
        };
        self.auth.first_admin_ready().await;
        let (issuer, now) = (self.config.issuer.clone(), self.auth.now());
        let user = self.store.run(move |s| s.oidc_user(&issuer, &subject, &username, role, now)).await?;
        Ok(self.auth.sso_login(&user, &self.config.name, client)?)
    }
}

/// The claim's groups: a list of strings, or one string.
fn groups_in(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The highest role any group grants: admin, then operator, then viewer.
fn role_for(groups: &[String], c: &OidcConfig) -> Option<Role> {
    let any = |wanted: &[String]| groups.iter().any(|g| wanted.contains(g));
    [(Role::Admin, &c.admin_groups), (Role::Operator, &c.operator_groups), (Role::Viewer, &c.viewer_groups)]
        .into_iter()
        .find(|(_, wanted)| any(wanted))
        .map(|(role, _)| role)
}

/// `preferred_username`, else `email`, else `sub`, cut to what a DockNap
/// username may hold (room left for a `-N` suffix).
fn username_from(claims: &Map<String, Value>) -> String {
    let raw = ["preferred_username", "email", "sub"]
        .iter()
        .filter_map(|k| claims.get(*k).and_then(Value::as_str))
        .find(|v| !v.trim().is_empty())
        .unwrap_or("user");
    let name: String = raw
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        .take(USERNAME_MAX - 8)
        .collect();
    if name.is_empty() { "user".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        let v = |s: &[&str]| s.iter().map(|g| g.to_string()).collect();
        OidcConfig {
            issuer: "https://id.example.com".into(),
            client_id: "docknap".into(),
            client_secret: "x".into(),
            roles_claim: "groups".into(),
            admin_groups: v(&["admins"]),
            operator_groups: v(&["ops"]),
            viewer_groups: v(&["staff", "ops"]),
            scopes: "openid".into(),
            name: "Example".into(),
            ca_pem: None,
        }
    }

    #[test]
    fn roles_follow_the_highest_group() {
        let c = config();
        let role = |claim: Value| role_for(&groups_in(Some(&claim)), &c);
        assert_eq!(role(serde_json::json!(["staff", "admins"])), Some(Role::Admin));
        assert_eq!(role(serde_json::json!(["ops"])), Some(Role::Operator));
        assert_eq!(role(serde_json::json!("staff")), Some(Role::Viewer));
        assert_eq!(role(serde_json::json!(["nobody", 3])), None);
        assert_eq!(role(serde_json::json!({"admins": true})), None);
        assert_eq!(role_for(&groups_in(None), &c), None);
    }

    #[test]
    fn usernames_come_from_the_best_claim_and_fit_the_rules() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            username_from(&m(serde_json::json!({"preferred_username": "ann", "email": "a@x", "sub": "1"}))),
            "ann"
        );
        assert_eq!(
            username_from(&m(serde_json::json!({"preferred_username": " ", "email": "a@x.org", "sub": "1"}))),
            "a@x.org"
        );
        assert_eq!(username_from(&m(serde_json::json!({"sub": "Jöhn Doe/1"}))), "JöhnDoe1");
        assert_eq!(username_from(&m(serde_json::json!({"sub": "///"}))), "user");
        let long = username_from(&m(serde_json::json!({"sub": "x".repeat(200)})));
        assert!(crate::auth::validate_username(&format!("{long}-1234")).is_ok());
    }
}
