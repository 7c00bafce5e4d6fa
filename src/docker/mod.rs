//! Docker Engine access. Everything goes through the [`Engine`] trait so the
//! rest of DockNap never sees bollard (whose version negotiation we cannot
//! rely on) and pure logic can be tested against a fake.

mod bollard_engine;
pub mod discovery;
pub mod view;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use serde::Serialize;

pub use bollard_engine::BollardEngine;
pub use view::{Stack, StackStatus, View};

use crate::actions::Action;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// Set to `True` on `docker compose run` containers.
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";

/// A container as the API shows it (the contract's shape).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Container {
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The container has no health check.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DockerError {
    #[error("the Docker Engine is unreachable: {0}")]
    Unavailable(String),
    #[error("no such container")]
    NotFound,
    /// 304: the container is already in the requested state.
    #[error("already in that state")]
    NotModified,
    #[error("{0}")]
    Conflict(String),
    #[error("Docker Engine error {0}: {1}")]
    Api(u16, String),
}

/// A container event from the engine: which container, and Docker's action
/// name (`start`, `die`, `pause`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    pub action: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
}

#[async_trait]
pub trait Engine: Send + Sync + 'static {
    async fn info(&self) -> Result<EngineInfo, DockerError>;
    /// All containers, or the one with this id.
    async fn list(&self, id: Option<&str>) -> Result<Vec<Container>, DockerError>;
    /// The containers with these ids that still exist, in one engine call.
    async fn list_ids(&self, ids: &[String]) -> Result<Vec<Container>, DockerError>;
    async fn health(&self, id: &str) -> Result<Health, DockerError>;
    /// The exit code of a container that has run and stopped; `None` while
    /// it has not (running, restarting, paused, or never started).
    async fn exit_code(&self, id: &str) -> Result<Option<i64>, DockerError>;
    async fn act(&self, id: &str, action: Action) -> Result<(), DockerError>;
    /// State-relevant container events, until the stream breaks.
    fn container_events(&self) -> BoxStream<'static, Result<ContainerEvent, DockerError>>;
}
