//! Containers and compose stacks as the API shows them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// Set to `True` on `docker compose run` containers.
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
/// `docknap.exclude=true`: windows and bulk actions never touch this container.
pub const LABEL_EXCLUDE: &str = "docknap.exclude";
/// `docknap.protect=true`: a person's stop/pause/restart needs `?force=true`.
pub const LABEL_PROTECT: &str = "docknap.protect";
/// Restart when unhealthy: DockNap's own label and docker-autoheal's.
pub const LABELS_AUTOHEAL: [&str; 2] = ["docknap.autoheal", "autoheal"];

/// A label set to `true` (any case).
fn label_true(labels: &BTreeMap<String, String>, key: &str) -> bool {
    labels.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A container as the API shows it (the contract's shape).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Container {
    /// Set by the host's view: the engine does not know what we call it.
    pub host: String,
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub stack: Option<String>,
    pub service: Option<String>,
    pub created: DateTime<Utc>,
}

impl Container {
    pub fn new(
        id: String,
        name: &str,
        image: String,
        state: String,
        status: String,
        labels: BTreeMap<String, String>,
        created: DateTime<Utc>,
    ) -> Container {
        Container {
            host: super::LOCAL_HOST.to_string(),
            id,
            name: name.trim_start_matches('/').to_string(),
            image,
            state,
            status,
            stack: labels.get(LABEL_PROJECT).cloned(),
            service: labels.get(LABEL_SERVICE).cloned(),
            labels,
            created,
        }
    }

    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// The stack this container is a member of. `docker compose run`
    /// containers carry the project label but are not members, as compose's
    /// own start/stop/ps leave them out: a stack action must not re-run a
    /// one-off command or kill someone's interactive session.
    pub fn member_of(&self) -> Option<&str> {
        let one_off = self.labels.get(LABEL_ONEOFF).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if one_off { None } else { self.stack.as_deref() }
    }

    pub fn is_paused(&self) -> bool {
        self.state == "paused"
    }

    /// Labelled `docknap.exclude=true`: windows and bulk actions leave it alone.
    pub fn is_excluded(&self) -> bool {
        label_true(&self.labels, LABEL_EXCLUDE)
    }

    /// Labelled `docknap.protect=true`.
    pub fn is_protected(&self) -> bool {
        label_true(&self.labels, LABEL_PROTECT)
    }

    /// Labelled `docknap.autoheal=true` or `autoheal=true`.
    pub fn wants_autoheal(&self) -> bool {
        LABELS_AUTOHEAL.iter().any(|k| label_true(&self.labels, k))
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StackStatus {
    Running,
    Stopped,
    Paused,
    Partial,
}

impl StackStatus {
    /// The contract's rule: running when every container runs, stopped when
    /// none runs or is paused, paused when all are paused, partial otherwise.
    pub fn of<'a>(containers: impl IntoIterator<Item = &'a Container>) -> StackStatus {
        let (mut total, mut running, mut paused) = (0, 0, 0);
        for c in containers {
            total += 1;
            running += usize::from(c.is_running());
            paused += usize::from(c.is_paused());
        }
        match (running, paused) {
            (r, _) if r == total => StackStatus::Running,
            (0, 0) => StackStatus::Stopped,
            (_, p) if p == total => StackStatus::Paused,
            _ => StackStatus::Partial,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stack {
    pub host: String,
    pub name: String,
    pub status: StackStatus,
    pub containers: Vec<Container>,
    pub services: Vec<String>,
}

impl Stack {
    pub fn build(host: &str, name: &str, mut containers: Vec<Container>) -> Stack {
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        let services: BTreeSet<String> = containers.iter().filter_map(|c| c.service.clone()).collect();
        Stack {
            host: host.to_string(),
            name: name.to_string(),
            status: StackStatus::of(&containers),
            services: services.into_iter().collect(),
            containers,
        }
    }
}
