//! Audit entries: who did what to which target, and whether it worked.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub timestamp: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    /// The host of the target; `None` for entries without one (logins, users).
    pub host: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ok: bool,
    pub message: String,
    pub client_addr: Option<String>,
    pub details: Option<serde_json::Value>,
    /// SHA-256 chained to the previous entry (tamper evidence).
    pub hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub host: Option<String>,
    pub actor: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ok: bool,
    pub message: String,
    pub client_addr: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// Longest actor or target kept: names come from requests (a failed login's
/// username, an action's path), and the log must not grow by what a client sends.
const MAX_NAME: usize = 256;
const MAX_MESSAGE: usize = 4096;

/// `s`, cut to `max` characters with an ellipsis when longer.
fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

impl NewAuditEntry {
    pub fn new(actor: &str, action: &str, ok: bool, message: impl Into<String>) -> Self {
        NewAuditEntry {
            actor: bounded(actor, MAX_NAME),
            action: action.to_string(),
            host: None,
            target_type: None,
            target_id: None,
            ok,
            message: bounded(&message.into(), MAX_MESSAGE),
            client_addr: None,
            details: None,
        }
    }

    pub fn target(mut self, target_type: &str, target_id: &str) -> Self {
        self.target_type = Some(target_type.to_string());
        self.target_id = Some(bounded(target_id, MAX_NAME));
        self
    }

    /// A target on a host.
    pub fn on(self, target: &super::Target) -> Self {
        let mut e = self.target(target.target_type.as_str(), &target.target_id);
        e.host = Some(target.host.clone());
        e
    }

    pub fn client(mut self, addr: IpAddr) -> Self {
        self.client_addr = Some(addr.to_string());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub limit: i64,
    pub before: Option<i64>,
    pub actor: Option<String>,
    pub host: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub ok: Option<bool>,
}
