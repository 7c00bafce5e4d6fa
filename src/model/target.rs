//! What DockNap acts on, what it does to it, and what came of it.

use serde::{Deserialize, Serialize};

use super::vocabulary;

/// The engine of `DOCKER_HOST`: every target without a host is on it.
pub const LOCAL_HOST: &str = "local";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    Stack,
    Container,
    /// A Swarm service, by name.
    Service,
    /// The services of one `com.docker.stack.namespace`.
    SwarmStack,
    /// Every compose stack of every host in a group (schedules and bulk
    /// actions; its host is [`ALL_HOSTS`]).
    Group,
    /// A schedule's ordered steps (schedules only; its host is [`ALL_HOSTS`]).
    Sequence,
}

vocabulary!(TargetType, TargetType, {
    Stack => "stack", Container => "container", Service => "service", SwarmStack => "swarm_stack", Group => "group",
    Sequence => "sequence",
});

/// The host of a group target: it spans hosts.
pub const ALL_HOSTS: &str = "*";

impl TargetType {
    /// Swarm targets are scaled, not started container by container.
    pub fn is_swarm(self) -> bool {
        matches!(self, TargetType::Service | TargetType::SwarmStack)
    }
}

/// What an action, schedule or window is aimed at: a target on one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Target {
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
}

impl Target {
    pub fn new(host: &str, target_type: TargetType, target_id: &str) -> Target {
        Target { host: host.to_string(), target_type, target_id: target_id.to_string() }
    }

    /// On the `local` host.
    pub fn local(target_type: TargetType, target_id: &str) -> Target {
        Target::new(LOCAL_HOST, target_type, target_id)
    }
}

/// `stack web`, or `stack web on nas` off the local host: for messages.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.target_type, self.target_id)?;
        if self.host != LOCAL_HOST && self.host != ALL_HOSTS {
            write!(f, " on {}", self.host)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Start,
    Stop,
    Restart,
    Pause,
    Unpause,
    /// A container as a job: start it and wait until it exits (ok on code 0).
    Run,
}

vocabulary!(Action, Action, {
    Start => "start", Stop => "stop", Restart => "restart", Pause => "pause", Unpause => "unpause", Run => "run",
});

impl Action {
    /// Would this action take a container out of service?
    pub fn interrupts(self) -> bool {
        matches!(self, Action::Stop | Action::Restart | Action::Pause)
    }

    /// Does it bring a target up (`Some(true)`), down (`Some(false)`), or
    /// neither (a restart leaves it as it was)?
    pub fn brings_up(self) -> Option<bool> {
        match self {
            Action::Start | Action::Unpause => Some(true),
            Action::Stop | Action::Pause => Some(false),
            Action::Restart | Action::Run => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ContainerResult {
    pub container: String,
    pub ok: bool,
    #[schema(required = true)]
    pub error: Option<String>,
}

/// How a `run` went: its exit code (`None`: it did not exit), how long it
/// ran, and the last lines of its log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RunOutcome {
    #[schema(required = true)]
    pub exit_code: Option<i64>,
    pub duration_ms: u64,
    pub log_tail: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionResult {
    pub host: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub action: Action,
    pub ok: bool,
    pub results: Vec<ContainerResult>,
    /// A `run`'s exit code, duration and log tail, beside the rest.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunOutcome>,
    /// A sequence's result per step, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub steps: Option<Vec<ActionResult>>,
}

impl ActionResult {
    /// The result of `action` on `target`: ok when every container's part was.
    pub fn of(target: &Target, action: Action, results: Vec<ContainerResult>) -> ActionResult {
        ActionResult {
            host: target.host.clone(),
            target_type: target.target_type,
            target_id: target.target_id.clone(),
            action,
            ok: results.iter().all(|r| r.ok),
            results,
            run: None,
            steps: None,
        }
    }

    /// One line for logs, audit and a schedule's `last_run`.
    pub fn summary(&self) -> String {
        if let Some(steps) = &self.steps {
            let failed: Vec<String> = steps
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.ok)
                .map(|(i, r)| format!("step {} ({} {}): {}", i + 1, r.action, r.target(), r.first_error()))
                .collect();
            return if failed.is_empty() {
                format!("sequence of {} step(s) ok", steps.len())
            } else {
                format!("sequence failed: {}", failed.join("; "))
            };
        }
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|r| !r.ok)
            .map(|r| format!("{}: {}", r.container, r.error.as_deref().unwrap_or("failed")))
            .collect();
        if let Some(run) = &self.run {
            let secs = run.duration_ms as f64 / 1000.0;
            return match (run.exit_code, failed.is_empty()) {
                (Some(code), true) => format!("run {}: exited with code {code} after {secs:.1} s", self.target()),
                _ => format!("run {} failed after {secs:.1} s: {}", self.target(), failed.join("; ")),
            };
        }
        if failed.is_empty() {
            format!("{} {}: {} container(s) ok", self.action, self.target(), self.results.len())
        } else {
            format!("{} {} failed for {}", self.action, self.target(), failed.join("; "))
        }
    }

    pub fn target(&self) -> Target {
        Target::new(&self.host, self.target_type, &self.target_id)
    }

    fn first_error(&self) -> &str {
        self.results.iter().find_map(|r| r.error.as_deref()).unwrap_or("failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), *a);
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        for t in TargetType::ALL {
            assert_eq!(t.to_string().parse::<TargetType>().unwrap(), *t);
        }
        assert_eq!(
            "Stop".parse::<Action>().unwrap_err().to_string(),
            "action must be start, stop, restart, pause, unpause or run, not 'Stop'"
        );
    }
}
