//! [`Engine`] over bollard. The client is created lazily and dropped on
//! connection errors, so a socket that appears after start-up (or comes back
//! after an engine restart) is picked up by the next call.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerSummaryStateEnum, HealthStatusEnum};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

use super::tls::{TlsClient, TlsError};
use super::{ContainerEvent, DockerError, Engine, EngineInfo, Health};
use crate::model::Action;
use crate::model::{Container, ContainerState, LogLine, LogQuery, Stats, TlsMaterial};

/// Seconds before an HTTP call to the engine gives up.
const CALL_TIMEOUT: u64 = 120;
/// Stop and restart wait inside one call for the container's own stop
/// timeout (compose's `stop_grace_period`, which may be minutes) before the
/// engine kills it: giving up earlier would report a failure and move on to
/// its dependencies while it is still shutting down.
const STOP_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How far back the events stream starts. bollard sends the request only at
/// the stream's first poll, after discovery has listed the containers; the
/// engine replays events since this instant, so none from that gap is lost
/// (a replayed one only costs a re-list of its container).
const EVENTS_REPLAY_SECS: i64 = 10;

/// Event actions that can change what the API shows for a container (the
/// engine matches `health_status` against `health_status: healthy` etc.),
/// those notifications read (`kill`: a stop was asked for), and health
/// changes for auto-heal.
const RELEVANT_EVENTS: &[&str] = &[
    "create",
    "start",
    "restart",
    "stop",
    "die",
    "pause",
    "unpause",
    "destroy",
    "rename",
    "update",
    "kill",
    "health_status",
];

pub struct BollardEngine {
    host: String,
    /// Mutual TLS for a `tcp://` engine, parsed once at [`BollardEngine::connect`].
    tls: Option<TlsClient>,
    client: Mutex<Option<Docker>>,
}

impl BollardEngine {
    /// A `unix://` or plain `tcp://` engine.
    pub fn new(host: &str) -> BollardEngine {
        BollardEngine { host: host.to_string(), tls: None, client: Mutex::new(None) }
    }

    /// Any engine; with TLS material, a `tcp://` one over mutual TLS. Bad
    /// material fails here, before any connection is tried.
    pub fn connect(url: &str, tls: Option<&TlsMaterial>) -> Result<BollardEngine, TlsError> {
        let tls = tls.map(|m| TlsClient::new(url, m)).transpose()?;
        Ok(BollardEngine { tls, ..BollardEngine::new(url) })
    }

    fn client(&self) -> Result<Docker, DockerError> {
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = if let Some(tls) = &self.tls {
            Ok(tls.docker(CALL_TIMEOUT))
        } else if let Some(path) = self.host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, CALL_TIMEOUT, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_http(&self.host, CALL_TIMEOUT, bollard::API_DEFAULT_VERSION)
        }
        .map_err(|e| DockerError::Unavailable(e.to_string()))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    fn map_err(&self, e: BollardError) -> DockerError {
        let mapped = classify(e);
        if matches!(mapped, DockerError::Unavailable(_)) {
            *self.client.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        mapped
    }
}

fn classify(e: BollardError) -> DockerError {
    match e {
        BollardError::DockerResponseServerError { status_code, message } => match status_code {
            304 => DockerError::NotModified,
            404 => DockerError::NotFound,
            409 => DockerError::Conflict(message),
            _ => DockerError::Api(status_code, message),
        },
        other => DockerError::Unavailable(other.to_string()),
    }
}

impl BollardEngine {
    /// All containers (`None`) or those with the given ids.
    async fn list_filtered(&self, ids: Option<Vec<&str>>) -> Result<Vec<Container>, DockerError> {
        let mut opts = ListContainersOptionsBuilder::new().all(true);
        if let Some(ids) = ids {
            opts = opts.filters(&HashMap::from([("id", ids)]));
        }
        let list = self.client()?.list_containers(Some(opts.build())).await.map_err(|e| self.map_err(e))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let name = c.names.as_ref()?.first()?.clone();
                let labels: BTreeMap<_, _> = c.labels.unwrap_or_default().into_iter().collect();
                let created = DateTime::<Utc>::from_timestamp(c.created.unwrap_or(0), 0).unwrap_or_default();
                Some(Container::new(
                    c.id?,
                    &name,
                    c.image.unwrap_or_default(),
                    state_of(c.state),
                    c.status.unwrap_or_default(),
                    labels,
                    created,
                ))
            })
            .collect())
    }
}

fn state_of(s: Option<ContainerSummaryStateEnum>) -> ContainerState {
    use ContainerSummaryStateEnum::*;
    match s {
        Some(CREATED) => ContainerState::Created,
        Some(RUNNING) => ContainerState::Running,
        Some(PAUSED) => ContainerState::Paused,
        Some(RESTARTING) => ContainerState::Restarting,
        Some(EXITED) => ContainerState::Exited,
        Some(REMOVING) => ContainerState::Removing,
        Some(DEAD) => ContainerState::Dead,
        Some(STOPPING) => ContainerState::Stopping,
        Some(EMPTY) | None => ContainerState::Unknown,
    }
}

#[async_trait]
impl Engine for BollardEngine {
    async fn info(&self) -> Result<EngineInfo, DockerError> {
        let v = self.client()?.version().await.map_err(|e| self.map_err(e))?;
        Ok(EngineInfo { version: v.version.unwrap_or_default(), api_version: v.api_version.unwrap_or_default() })
    }

    async fn list(&self, id: Option<&str>) -> Result<Vec<Container>, DockerError> {
        self.list_filtered(id.map(|id| vec![id])).await
    }

    async fn list_ids(&self, ids: &[String]) -> Result<Vec<Container>, DockerError> {
        self.list_filtered(Some(ids.iter().map(String::as_str).collect())).await
    }

    async fn health(&self, id: &str) -> Result<Health, DockerError> {
        let c = self.client()?.inspect_container(id, None).await.map_err(|e| self.map_err(e))?;
        Ok(match c.state.and_then(|s| s.health).and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            _ => Health::None,
        })
    }

    async fn exit_code(&self, id: &str) -> Result<Option<i64>, DockerError> {
        use bollard::models::ContainerStateStatusEnum::{DEAD, EXITED};
        let c = self.client()?.inspect_container(id, None).await.map_err(|e| self.map_err(e))?;
        let state = c.state.unwrap_or_default();
        Ok(matches!(state.status, Some(EXITED | DEAD)).then(|| state.exit_code.unwrap_or(-1)))
    }

    async fn restart_policy(&self, id: &str) -> Result<String, DockerError> {
        let c = self.client()?.inspect_container(id, None).await.map_err(|e| self.map_err(e))?;
        let policy = c.host_config.and_then(|h| h.restart_policy).and_then(|p| p.name);
        Ok(policy.map(|p| p.to_string()).filter(|p| !p.is_empty()).unwrap_or_else(|| "no".into()))
    }

    async fn act(&self, id: &str, action: Action) -> Result<(), DockerError> {
        let mut c = self.client()?;
        if matches!(action, Action::Stop | Action::Restart) {
            c = c.with_timeout(STOP_CALL_TIMEOUT);
        }
        let r = match action {
            // A run's engine call is its start; waiting for the exit is the caller's.
            Action::Start | Action::Run => c.start_container(id, None).await,
            Action::Stop => c.stop_container(id, None).await,
            Action::Restart => c.restart_container(id, None).await,
            Action::Pause => c.pause_container(id).await,
            Action::Unpause => c.unpause_container(id).await,
        };
        r.map_err(|e| self.map_err(e))
    }

    fn container_events(&self) -> BoxStream<'static, Result<ContainerEvent, DockerError>> {
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return futures_util::stream::once(async move { Err(e) }).boxed(),
        };
        let filters = HashMap::from([("type", vec!["container"]), ("event", RELEVANT_EVENTS.to_vec())]);
        let since = (Utc::now().timestamp() - EVENTS_REPLAY_SECS).to_string();
        client
            .events(Some(EventsOptionsBuilder::new().filters(&filters).since(&since).build()))
            .map_err(|e| DockerError::Unavailable(e.to_string()))
            .try_filter_map(|ev| async move {
                let action = ev.action.unwrap_or_default();
                Ok(ev.actor.and_then(|a| {
                    let attr = |k: &str| a.attributes.as_ref().and_then(|m| m.get(k)).cloned();
                    let (name, exit_code) = (attr("name"), attr("exitCode").and_then(|c| c.parse().ok()));
                    a.id.map(|id| ContainerEvent { id, action, name, exit_code })
                }))
            })
            .boxed()
    }

    fn logs(&self, id: &str, q: &LogQuery) -> BoxStream<'static, Result<LogLine, DockerError>> {
        match self.client() {
            Ok(c) => super::insight::logs(&c, id, q).map_err(classify).boxed(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn stats(&self, id: &str) -> BoxStream<'static, Result<Stats, DockerError>> {
        match self.client() {
            Ok(c) => super::insight::stats(&c, id).map_err(classify).boxed(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn reconnect(&self) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn swarm_services(&self) -> Result<Option<Vec<super::SwarmService>>, DockerError> {
        super::swarm::services(&self.client()?).await.map_err(|e| self.map_err(e))
    }

    async fn scale_service(&self, id: &str, replicas: u64) -> Result<(), DockerError> {
        super::swarm::scale(&self.client()?, id, replicas).await.map_err(|e| self.map_err(e))
    }

    async fn force_update_service(&self, id: &str) -> Result<(), DockerError> {
        super::swarm::force_update(&self.client()?, id).await.map_err(|e| self.map_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn events_are_asked_from_before_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let engine = BollardEngine::new(&format!("unix://{}", sock.display()));
        let called_at = Utc::now().timestamp();
        let mut events = engine.container_events();
        tokio::spawn(async move { events.next().await });
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed early");
            request.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&request).lines().next().unwrap().to_string();
        let since: i64 = line
            .split(['?', '&', ' '])
            .find_map(|kv| kv.strip_prefix("since="))
            .unwrap_or_else(|| panic!("no since in {line}"))
            .parse()
            .unwrap();
        assert!((called_at - EVENTS_REPLAY_SECS - 1..=called_at - EVENTS_REPLAY_SECS + 1).contains(&since), "{line}");
    }
}
