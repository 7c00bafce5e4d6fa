//! An in-memory [`Engine`] for unit tests of actions, the scheduler and windows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use super::Actions;
use crate::audit::Audit;
use std::time::Duration;

use crate::docker::fleet::Connect;
use crate::docker::{ContainerEvent, DockerError, Engine, EngineInfo, Fleet, Health, SwarmService, View};
use crate::events::Events;
use crate::model::{Action, Container, ContainerState, LOCAL_HOST, ServiceMode};

/// Containers by id; every `act` is recorded and changes the state.
#[derive(Default)]
pub struct FakeEngine {
    pub containers: Mutex<BTreeMap<String, Container>>,
    /// Health per container id; absent means no health check.
    pub health: Mutex<HashMap<String, Health>>,
    pub acts: Mutex<Vec<(String, Action)>>,
    /// How long each `act` takes.
    pub delay: Mutex<std::time::Duration>,
    /// Exit codes of containers that have finished, by id.
    pub exit_codes: Mutex<HashMap<String, i64>>,
    /// Container ids whose every `act` fails.
    pub failing: Mutex<std::collections::HashSet<String>>,
    /// Restart policies by container id; absent means `no`.
    pub restart_policies: Mutex<HashMap<String, String>>,
    /// Every call made to this engine, of any kind.
    pub calls: std::sync::atomic::AtomicUsize,
    /// Swarm services by id; `None`: not a Swarm manager. Tasks follow a
    /// scale at once (running = desired).
    pub services: Mutex<Option<BTreeMap<String, SwarmService>>>,
    /// Every `scale_service`, in order.
    pub scales: Mutex<Vec<(String, u64)>>,
    /// The `ForceUpdate` counter per service id.
    pub force_updates: Mutex<HashMap<String, u64>>,
    /// Stats streams opened; each sends a sample a second, memory 0, 1, 2…
    pub stats_opened: std::sync::atomic::AtomicUsize,
    /// The events stream, taken by the first `container_events`; unset, a
    /// stream that never yields (a quiet engine).
    pub event_feed: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ContainerEvent>>>,
}

impl FakeEngine {
    /// Makes this engine a Swarm manager with these services, all converged.
    pub fn with_services(services: &[(&str, Option<&str>, ServiceMode, u64)]) -> FakeEngine {
        let services = services.iter().map(|&(name, stack, mode, n)| {
            let id = format!("id-{name}");
            let s = SwarmService {
                id: id.clone(),
                name: name.into(),
                stack: stack.map(Into::into),
                mode,
                running: n,
                desired: n,
            };
            (id, s)
        });
        FakeEngine { services: Mutex::new(Some(services.collect())), ..Default::default() }
    }
}

#[async_trait]
impl Engine for FakeEngine {
    async fn info(&self) -> Result<EngineInfo, DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(EngineInfo { version: "fake".into(), api_version: "1.41".into() })
    }

    async fn list(&self, id: Option<&str>) -> Result<Vec<Container>, DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let all = self.containers.lock().unwrap();
        Ok(all.values().filter(|c| id.is_none_or(|id| c.id == id)).cloned().collect())
    }

    async fn list_ids(&self, ids: &[String]) -> Result<Vec<Container>, DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let all = self.containers.lock().unwrap();
        Ok(ids.iter().filter_map(|id| all.get(id).cloned()).collect())
    }

    async fn health(&self, id: &str) -> Result<Health, DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.health.lock().unwrap().get(id).cloned().unwrap_or(Health::None))
    }

    async fn exit_code(&self, id: &str) -> Result<Option<i64>, DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.exit_codes.lock().unwrap().get(id).copied())
    }

    async fn restart_policy(&self, id: &str) -> Result<String, DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.restart_policies.lock().unwrap().get(id).cloned().unwrap_or_else(|| "no".into()))
    }

    async fn act(&self, id: &str, action: Action) -> Result<(), DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.acts.lock().unwrap().push((id.to_string(), action));
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if self.failing.lock().unwrap().contains(id) {
            return Err(DockerError::Api(500, "refused by the test".into()));
        }
        let mut all = self.containers.lock().unwrap();
        let c = all.get_mut(id).ok_or(DockerError::NotFound)?;
        c.state = match action {
            Action::Start | Action::Run | Action::Restart | Action::Unpause => ContainerState::Running,
            Action::Stop => ContainerState::Exited,
            Action::Pause => ContainerState::Paused,
        };
        Ok(())
    }

    fn container_events(&self) -> BoxStream<'static, Result<ContainerEvent, DockerError>> {
        match self.event_feed.lock().unwrap().take() {
            Some(rx) => {
                Box::pin(futures_util::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|ev| (Ok(ev), rx)) },
                ))
            }
            None => Box::pin(futures_util::stream::pending()),
        }
    }

    async fn swarm_services(&self) -> Result<Option<Vec<SwarmService>>, DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.services.lock().unwrap().as_ref().map(|all| all.values().cloned().collect()))
    }

    async fn scale_service(&self, id: &str, replicas: u64) -> Result<(), DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.scales.lock().unwrap().push((id.to_string(), replicas));
        let mut all = self.services.lock().unwrap();
        let s = all.as_mut().and_then(|all| all.get_mut(id)).ok_or(DockerError::NotFound)?;
        if s.mode == ServiceMode::Global {
            return Err(DockerError::Conflict("a global service has no replica count to scale".into()));
        }
        (s.desired, s.running) = (replicas, replicas);
        Ok(())
    }

    async fn force_update_service(&self, id: &str) -> Result<(), DockerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !self.services.lock().unwrap().as_ref().is_some_and(|all| all.contains_key(id)) {
            return Err(DockerError::NotFound);
        }
        *self.force_updates.lock().unwrap().entry(id.to_string()).or_default() += 1;
        Ok(())
    }

    fn stats(&self, _id: &str) -> BoxStream<'static, Result<crate::model::Stats, DockerError>> {
        use futures_util::StreamExt;
        self.stats_opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        futures_util::stream::unfold(0u64, |n| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((Ok(crate::model::Stats { memory_bytes: n, ..Default::default() }), n + 1))
        })
        .boxed()
    }
}

/// Actions over `containers`, with the view loaded and the engine "up".
pub fn actions(containers: Vec<Container>, audit: Arc<Audit>) -> (Arc<FakeEngine>, Arc<View>, Actions) {
    actions_with_events(containers, audit, Events::default())
}

/// The same, with the view publishing to `events`.
pub fn actions_with_events(
    containers: Vec<Container>,
    audit: Arc<Audit>,
    events: Events,
) -> (Arc<FakeEngine>, Arc<View>, Actions) {
    let engine = Arc::new(FakeEngine::default());
    engine.containers.lock().unwrap().extend(containers.iter().map(|c| (c.id.clone(), c.clone())));
    let view = Arc::new(View::new(LOCAL_HOST, events.clone()));
    view.replace_all(containers);
    view.set_docker_ok(true);
    let connect: Connect = Arc::new(|_| Err("no engines but the fake".into()));
    let fleet = Arc::new(Fleet::new(connect, events, Duration::from_secs(60)));
    fleet.adopt(LOCAL_HOST, engine.clone(), view.clone());
    let actions = Actions::new(fleet, audit.store().clone(), audit, None);
    (engine, view, actions)
}
