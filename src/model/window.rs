//! Windows: when a target should be up; outside them, down.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{TargetType, vocabulary};

/// Whether a target should be up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Up,
    Down,
}

impl Desired {
    pub fn from_up(up: bool) -> Desired {
        if up { Desired::Up } else { Desired::Down }
    }
}

vocabulary!(Desired, Desired, { Up => "up", Down => "down" });

/// How a window takes its target down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DownAction {
    Stop,
    Pause,
}

vocabulary!(DownAction, DownAction, { Stop => "stop", Pause => "pause" });

/// Which drift a window undoes: `both` directions, or only starts during down time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Enforce {
    Both,
    DownOnly,
}

vocabulary!(Enforce, Enforce, { Both => "both", DownOnly => "down_only" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Api,
    Label,
}

vocabulary!(Source, Source, { Api => "api", Label => "label" });

/// What a user sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowFields {
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub spec: String,
    pub timezone: String,
    pub down_action: DownAction,
    pub enforce: Enforce,
    pub grace_seconds: u32,
    pub enabled: bool,
}

impl WindowFields {
    pub fn target(&self) -> super::Target {
        super::Target::new(&self.host, self.target_type, &self.target_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Override {
    pub desired: Desired,
    pub until: DateTime<Utc>,
    pub by: String,
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// Where a label-defined object comes from, and what is wrong with its
/// labels (then it is stored disabled and never runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelOrigin {
    /// `host/target_type:target_id/schedule:NAME` or `.../window`: one object per key.
    pub key: String,
    /// The compose service(s), or the standalone container, whose labels define it.
    pub origin: String,
    pub error: Option<String>,
}

/// A stored window.
#[derive(Debug, Clone)]
pub struct Window {
    pub id: i64,
    pub fields: WindowFields,
    pub source: Source,
    /// Set for `source: label`.
    pub label: Option<LabelOrigin>,
    pub override_: Option<Override>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Containers this window stopped and will start at the next "up".
    pub stopped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WindowState {
    pub desired: Desired,
    #[schema(required = true)]
    pub since: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub next_change: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// A clash between what two objects will do to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Conflict {
    pub kind: &'static str,
    pub with_type: &'static str,
    pub with_id: i64,
    pub at: DateTime<Utc>,
    pub message: String,
}

/// The contract's window shape.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    pub id: i64,
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub spec: String,
    pub timezone: String,
    pub down_action: DownAction,
    pub enforce: Enforce,
    pub grace: String,
    pub enabled: bool,
    pub source: Source,
    /// For `source: label`: the compose service(s) or container that define it.
    pub origin: Option<String>,
    /// For `source: label`: what is wrong with its labels (it never runs).
    pub error: Option<String>,
    pub state: WindowState,
    #[serde(rename = "override")]
    #[schema(required = true)]
    pub override_: Option<Override>,
    pub conflicts: Vec<Conflict>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `900` → `15m`: the largest whole unit, as people write durations.
pub fn format_grace(seconds: u32) -> String {
    match seconds {
        0 => "0".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
