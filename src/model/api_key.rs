use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Role;

/// An API key as listed (`GET /api/tokens`): never the key itself, which is
/// shown once at creation and kept only as a hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// At most the owner's role: capped when the owner is demoted.
    pub role: Role,
    /// The key's first characters (`dnp_` and 8 more), to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The owner (an addition to the contract's shape, for the admins' list).
    pub user_id: i64,
    pub username: String,
}

impl ApiKey {
    /// The audit actor for requests made with this key.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.username, self.name)
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}
