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

/// Docker's container state, as the engine names it. `stopping` comes from
/// newer engines; `unknown` stands for a state the engine left out.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Stopping,
    Unknown,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        use ContainerState::*;
        match self {
            Created => "created",
            Running => "running",
            Paused => "paused",
            Restarting => "restarting",
            Removing => "removing",
            Exited => "exited",
            Dead => "dead",
            Stopping => "stopping",
            Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Docker's name of a state; anything else is `unknown`.
impl From<&str> for ContainerState {
    fn from(s: &str) -> Self {
        use ContainerState::*;
        [Created, Running, Paused, Restarting, Removing, Exited, Dead, Stopping]
            .into_iter()
            .find(|v| v.as_str() == s)
            .unwrap_or(Unknown)
    }
}

/// A container as the API shows it (the contract's shape).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Container {
    /// Set by the host's view: the engine does not know what we call it.
    pub host: String,
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[schema(required = true)]
    pub stack: Option<String>,
    #[schema(required = true)]
    pub service: Option<String>,
    pub created: DateTime<Utc>,
    /// Its health check's verdict; `None` without a health check or while stopped.
    #[schema(required = true)]
    pub health: Option<ContainerHealth>,
}

impl Container {
    pub fn new(
        id: String,
        name: &str,
        image: String,
        state: ContainerState,
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
            stack: labels.get(LABEL_PROJECT).cloned(),
            service: labels.get(LABEL_SERVICE).cloned(),
            health: ContainerHealth::from_status(&status),
            status,
            labels,
            created,
        }
    }

    pub fn is_running(&self) -> bool {
        self.state == ContainerState::Running
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
        self.state == ContainerState::Paused
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

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerHealth {
    Healthy,
    Starting,
    Unhealthy,
}

impl ContainerHealth {
    /// From the engine's status text, the only place a list shows health:
    /// `Up 5 minutes (healthy)`, `Up 3 seconds (health: starting)`.
    pub fn from_status(status: &str) -> Option<ContainerHealth> {
        let verdict = status.strip_suffix(')')?.rsplit_once('(')?.1;
        match verdict.trim_start_matches("health: ") {
            "healthy" => Some(ContainerHealth::Healthy),
            "unhealthy" => Some(ContainerHealth::Unhealthy),
            "starting" => Some(ContainerHealth::Starting),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerHealth::Healthy => "healthy",
            ContainerHealth::Starting => "starting",
            ContainerHealth::Unhealthy => "unhealthy",
        }
    }

    /// A stack's health is its worst member's (unhealthy, then starting);
    /// `None` when no member has a health check.
    pub fn worst<'a>(containers: impl IntoIterator<Item = &'a Container>) -> Option<ContainerHealth> {
        containers.into_iter().filter_map(|c| c.health).max()
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Stack {
    pub host: String,
    pub name: String,
    pub status: StackStatus,
    /// Its members' worst health-check verdict (`null`: none has a check).
    #[schema(required = true)]
    pub health: Option<ContainerHealth>,
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
            health: ContainerHealth::worst(&containers),
            services: services.into_iter().collect(),
            containers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_read_from_the_engines_status_text() {
        let cases = [
            ("Up 5 minutes (healthy)", Some(ContainerHealth::Healthy)),
            ("Up 2 seconds (health: starting)", Some(ContainerHealth::Starting)),
            ("Up 1 hour (unhealthy)", Some(ContainerHealth::Unhealthy)),
            ("Up 5 minutes (Paused)", None),
            ("Exited (0) 3 seconds ago", None),
            ("Up 5 minutes", None),
        ];
        for (status, want) in cases {
            assert_eq!(ContainerHealth::from_status(status), want, "{status}");
        }
    }

    #[test]
    fn a_stack_is_as_healthy_as_its_worst_checked_member() {
        let c = |status: &str| {
            Container::new("i".into(), "n", "img".into(), "running".into(), status.into(), BTreeMap::new(), Utc::now())
        };
        let (ok, starting, bad, unchecked) =
            (c("Up (healthy)"), c("Up (health: starting)"), c("Up (unhealthy)"), c("Up"));
        assert_eq!(ContainerHealth::worst([&ok, &unchecked]), Some(ContainerHealth::Healthy));
        assert_eq!(ContainerHealth::worst([&ok, &starting]), Some(ContainerHealth::Starting));
        assert_eq!(ContainerHealth::worst([&starting, &bad, &ok]), Some(ContainerHealth::Unhealthy));
        assert_eq!(ContainerHealth::worst([&unchecked]), None);
    }
}
