use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::vocabulary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    // Declared in ascending order of power: `role >= Role::Operator` reads naturally.
    Viewer,
    Operator,
    Admin,
}

vocabulary!(Role, Role, { Viewer => "viewer", Operator => "operator", Admin => "admin" });

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}
