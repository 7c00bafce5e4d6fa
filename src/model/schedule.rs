//! Schedules: a cron expression (or one instant) that fires an action on a
//! target, or a sequence of steps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Action, Conflict, LabelOrigin, Source, Target, TargetType, vocabulary};

/// One step of a sequence: an action on a target (on any host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub action: Action,
}

impl Step {
    pub fn target(&self) -> Target {
        Target::new(&self.host, self.target_type, &self.target_id)
    }
}

/// What a sequence does when a step fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The remaining steps are not run.
    #[default]
    Stop,
    Continue,
}

vocabulary!(OnFailure, OnFailure, { Stop => "stop", Continue => "continue" });

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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
    /// Exactly one of `cron` and `at`.
    pub cron: Option<String>,
    /// A one-time schedule's instant: it fires once, then is disabled.
    pub at: Option<DateTime<Utc>>,
    pub timezone: String,
    pub enabled: bool,
    /// How long a `run` (or a sequence's run steps) may take, in seconds.
    pub run_timeout: Option<u32>,
    /// A sequence's steps (`target_type` sequence), in order.
    pub steps: Vec<Step>,
    pub on_failure: OnFailure,
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub id: i64,
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub action: Action,
    #[schema(required = true)]
    pub cron: Option<String>,
    #[schema(required = true)]
    pub at: Option<DateTime<Utc>>,
    pub timezone: String,
    pub enabled: bool,
    /// A run's time limit (`30m`), when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// A sequence's steps and what a failed step does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    pub source: Source,
    /// For `source: label`: the compose service(s) or container that define it.
    pub origin: Option<String>,
    /// For `source: label`: what is wrong with its labels (it never runs).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(required = true)]
    pub next_run: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_run: Option<LastRun>,
    /// Clashes over the next 7 days (filled in by the windows service, which
    /// sees both schedules and windows).
    pub conflicts: Vec<Conflict>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Upcoming {
    pub schedule_id: i64,
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub action: Action,
    pub at: DateTime<Utc>,
}
