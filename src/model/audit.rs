//! Audit entries: who did what to which target, and whether it worked.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub timestamp: DateTime<Utc>,
    pub actor: String,
    pub action: AuditAction,
    /// The host of the target; `None` for entries without one (logins, users).
    #[schema(required = true)]
    pub host: Option<String>,
    #[schema(required = true)]
    pub target_type: Option<String>,
    #[schema(required = true)]
    pub target_id: Option<String>,
    pub ok: bool,
    pub message: String,
    #[schema(required = true)]
    pub client_addr: Option<String>,
    #[schema(required = true)]
    pub details: Option<serde_json::Value>,
    /// SHA-256 chained to the previous entry (tamper evidence).
    #[schema(required = true)]
    pub hash: Option<String>,
}

/// Declares [`AuditAction`] from one table of (variant, stored name) pairs,
/// plus `Act` for the container, stack and service actions by their own names.
macro_rules! audit_actions {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// What an audit entry records: one closed vocabulary, written and
        /// read back as the same names (stored and listed).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AuditAction {
            $($variant,)+
            /// A container, stack or service action, by its own name (`start`, `stop`...).
            Act(super::Action),
        }

        impl AuditAction {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)+
                    AuditAction::Act(a) => a.as_str(),
                }
            }

            /// Every name an entry can carry.
            pub fn names() -> impl Iterator<Item = &'static str> {
                [$($name),+].into_iter().chain(super::Action::ALL.iter().map(|a| a.as_str()))
            }
        }

        impl std::str::FromStr for AuditAction {
            type Err = super::InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(AuditAction::$variant),)+
                    other => other.parse().map(AuditAction::Act).map_err(|_| super::InvalidValue::AuditAction(s.to_string())),
                }
            }
        }
    };
}

audit_actions! {
    Login => "login",
    Logout => "logout",
    PasswordChange => "password_change",
    PasswordReset => "password_reset",
    UserCreate => "user_create",
    UserUpdate => "user_update",
    UserDelete => "user_delete",
    ApiKeyCreate => "api_key_create",
    ApiKeyDelete => "api_key_delete",
    TotpEnable => "totp_enable",
    TotpDisable => "totp_disable",
    TotpRecoveryCode => "totp_recovery_code",
    HostCreate => "host_create",
    HostUpdate => "host_update",
    HostDelete => "host_delete",
    ScheduleCreate => "schedule_create",
    ScheduleUpdate => "schedule_update",
    ScheduleDelete => "schedule_delete",
    WindowCreate => "window_create",
    WindowUpdate => "window_update",
    WindowDelete => "window_delete",
    WindowOverride => "window_override",
    WindowOverrideClear => "window_override_clear",
    WindowGaveUp => "window_gave_up",
    Missed => "missed",
    Sequence => "sequence",
    AuditPruned => "audit_pruned",
    Export => "export",
    Import => "import",
    NotifyChannelCreate => "notify_channel_create",
    NotifyChannelUpdate => "notify_channel_update",
    NotifyChannelDelete => "notify_channel_delete",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<super::Action> for AuditAction {
    fn from(a: super::Action) -> Self {
        AuditAction::Act(a)
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// In the API document: a string, one of [`AuditAction::names`].
impl utoipa::PartialSchema for AuditAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(AuditAction::names()))
            .into()
    }
}

impl utoipa::ToSchema for AuditAction {}

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub host: Option<String>,
    pub actor: String,
    pub action: AuditAction,
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
    pub fn new(actor: &str, action: impl Into<AuditAction>, ok: bool, message: impl Into<String>) -> Self {
        NewAuditEntry {
            actor: bounded(actor, MAX_NAME),
            action: action.into(),
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

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn every_audit_action_reads_back_as_itself_and_names_are_unique() {
        let names: Vec<&str> = AuditAction::names().collect();
        for name in &names {
            let action: AuditAction = name.parse().unwrap();
            assert_eq!(action.as_str(), *name);
        }
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!("run".parse::<AuditAction>(), Ok(AuditAction::Act(crate::model::Action::Run)));
        assert!("rm -rf".parse::<AuditAction>().is_err());
    }
}
