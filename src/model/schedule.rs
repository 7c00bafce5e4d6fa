//! Schedules: a cron expression that fires an action on a target.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Action, Conflict, LabelOrigin, Source, Target, TargetType};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LastRun {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub message: String,
}

/// What a user sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleFields {
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub action: Action,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
}

impl ScheduleFields {
    pub fn target(&self) -> Target {
        Target::new(&self.host, self.target_type, &self.target_id)
    }
}

/// A stored schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub id: i64,
    pub fields: ScheduleFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_run: Option<LastRun>,
    pub checked_until: Option<DateTime<Utc>>,
    /// The due time of a run under way (see the store).
    pub running_due: Option<DateTime<Utc>>,
    /// Set when container labels define it (`source: label`).
    pub label: Option<LabelOrigin>,
}

/// The contract's schedule shape.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleView {
    pub id: i64,
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub action: Action,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub source: Source,
    /// For `source: label`: the compose service(s) or container that define it.
    pub origin: Option<String>,
    /// For `source: label`: what is wrong with its labels (it never runs).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<LastRun>,
    /// Clashes over the next 7 days (filled in by the windows service, which
    /// sees both schedules and windows).
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Upcoming {
    pub schedule_id: i64,
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub action: Action,
    pub at: DateTime<Utc>,
}
