//! Docker Engine access. Everything goes through the [`Engine`] trait so the
//! rest of DockNap never sees bollard (whose version negotiation we cannot
//! rely on) and pure logic can be tested against a fake.

mod bollard_engine;
pub mod discovery;
pub mod fleet;
mod insight;
pub mod stats;
mod swarm;
mod tls;
pub mod view;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use serde::Serialize;

pub use bollard_engine::BollardEngine;
pub use fleet::{Fleet, Host};
pub use tls::TlsError;
pub use view::View;

use crate::model::{Action, Container, LogLine, LogQuery, Service, ServiceMode, Stats};

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
    /// The container's name and, for `die`, its exit code (notifications).
    pub name: Option<String>,
    pub exit_code: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
}

/// A Swarm service as the engine reports it; [`Service`] adds the host and
/// the remembered replica count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmService {
    pub id: String,
    pub name: String,
    /// Its `com.docker.stack.namespace` label.
    pub stack: Option<String>,
    pub mode: ServiceMode,
    /// Tasks running now.
    pub running: u64,
    /// The spec's replica count; for a global service, the tasks it wants
    /// (one per eligible node).
    pub desired: u64,
}

impl SwarmService {
    pub fn into_service(self, host: &str, saved_replicas: Option<u64>) -> Service {
        Service {
            host: host.to_string(),
            id: self.id,
            name: self.name,
            stack: self.stack,
            mode: self.mode,
            replicas: self.running,
            desired_replicas: self.desired,
            saved_replicas,
        }
    }
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
    /// The container's restart policy name: `no`, `always`, `unless-stopped`, `on-failure`.
    async fn restart_policy(&self, id: &str) -> Result<String, DockerError>;
    async fn act(&self, id: &str, action: Action) -> Result<(), DockerError>;
    /// State-relevant container events, until the stream breaks.
    fn container_events(&self) -> BoxStream<'static, Result<ContainerEvent, DockerError>>;
    /// The Swarm services (jobs left out), or `None` when this engine is not
    /// a Swarm manager. One engine call with the running-task counts, cheap
    /// enough to poll: those counts change with no `service` event.
    async fn swarm_services(&self) -> Result<Option<Vec<SwarmService>>, DockerError>;
    /// Sets a replicated service's spec count (`Conflict` for a global one).
    async fn scale_service(&self, id: &str, replicas: u64) -> Result<(), DockerError>;
    /// A rolling replacement of the service's tasks (`ForceUpdate` + 1).
    async fn force_update_service(&self, id: &str) -> Result<(), DockerError>;
    /// A container's log: the last `tail` lines (since `since`), then, when
    /// following, new lines as they come. Pulled: a reader that stops
    /// reading holds the engine's connection back, not a growing buffer.
    fn logs(&self, _id: &str, _q: &LogQuery) -> BoxStream<'static, Result<LogLine, DockerError>> {
        unsupported()
    }
    /// A container's resource use, about once a second while read.
    fn stats(&self, _id: &str) -> BoxStream<'static, Result<Stats, DockerError>> {
        unsupported()
    }
    /// Forget open connections: the next call dials the engine afresh. A
    /// connection that went silent (a proxy that stopped forwarding) would
    /// otherwise be reused from the pool and hang the next call too.
    fn reconnect(&self) {}
}

/// What the unit tests' fake engines answer for logs and stats.
fn unsupported<T: Send + 'static>() -> BoxStream<'static, Result<T, DockerError>> {
    use futures_util::StreamExt;
    futures_util::stream::once(async { Err(DockerError::Unavailable("this engine has no logs or stats".into())) })
        .boxed()
}
