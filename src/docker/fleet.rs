//! Every Docker engine DockNap manages, each with its own connection, view
//! and discovery task: one host that hangs or dies never holds up another's
//! reads, actions or schedules.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::{Engine, View, discovery};
use crate::events::{Event, Events};
use crate::model::{Container, HostConfig, HostStatus, HostView, LOCAL_HOST, Stack, Target, TargetType};

/// Makes the engine client of a host (a fake in unit tests).
pub type Connect = Arc<dyn Fn(&HostConfig) -> Result<Arc<dyn Engine>, String> + Send + Sync>;

/// One engine: how it was declared, its client, its view.
pub struct Host {
    pub config: HostConfig,
    pub engine: Arc<dyn Engine>,
    pub view: Arc<View>,
    /// Ends this host's discovery when the host is removed or replaced.
    stop: watch::Sender<bool>,
}

impl Host {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn status(&self) -> HostStatus {
        match self.view.docker_status() {
            "ok" => HostStatus::Ok,
            "unreachable" => HostStatus::Unreachable,
            _ => HostStatus::Connecting,
        }
    }

    pub fn to_view(&self) -> HostView {
        let (version, error) = self.view.engine_state();
        let status = self.status();
        HostView {
            name: self.config.name.clone(),
            url: self.config.url.clone(),
            group: self.config.group.clone(),
            source: self.config.source,
            tls: self.config.tls.is_some(),
            status,
            version,
            containers: self.view.container_count(),
            swarm_manager: false,
            error: if status == HostStatus::Ok { None } else { error },
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub struct Fleet {
    hosts: RwLock<BTreeMap<String, Arc<Host>>>,
    connect: Connect,
    events: Events,
    recheck: Duration,
    /// Bumped when a host is added, replaced or removed.
    generation: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{0}")]
    Connect(String),
}

impl Fleet {
    pub fn new(connect: Connect, events: Events, recheck: Duration) -> Fleet {
        Fleet { hosts: RwLock::default(), connect, events, recheck, generation: AtomicU64::new(0) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Host>>> {
        self.hosts.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects a host (replacing one of the same name) and starts following
    /// it. Must be called inside the runtime.
    pub fn put(&self, config: HostConfig) -> Result<Arc<Host>, FleetError> {
        let engine = (self.connect)(&config).map_err(FleetError::Connect)?;
        let view = Arc::new(View::new(&config.name, self.events.clone()));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(discovery::run(engine.clone(), view.clone(), self.recheck, stopped));
        let host = Arc::new(Host { config, engine, view, stop });
        let old = self.hosts.write().unwrap_or_else(|e| e.into_inner()).insert(host.name().to_string(), host.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(old) = old {
            // Its containers are no longer what this host shows.
            old.view.replace_all(Vec::new());
        }
        self.events.publish(Event::Host { name: host.name().to_string(), host: Some(host.to_view()) });
        Ok(host)
    }

    /// A host whose view the test itself keeps (no discovery task).
    #[cfg(test)]
    pub(crate) fn adopt(&self, name: &str, engine: Arc<dyn Engine>, view: Arc<View>) -> Arc<Host> {
        let config = HostConfig {
            name: name.to_string(),
            url: "unix:///fake.sock".into(),
            group: None,
            source: crate::model::HostSource::Env,
            tls: None,
        };
        let host = Arc::new(Host { config, engine, view, stop: watch::channel(false).0 });
        self.hosts.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), host.clone());
        host
    }

    pub fn remove(&self, name: &str) -> bool {
        let Some(old) = self.hosts.write().unwrap_or_else(|e| e.into_inner()).remove(name) else { return false };
        self.generation.fetch_add(1, Ordering::AcqRel);
        old.view.replace_all(Vec::new());
        self.events.publish(Event::Host { name: name.to_string(), host: None });
        true
    }

    pub fn get(&self, name: &str) -> Option<Arc<Host>> {
        self.read().get(name).cloned()
    }

    /// `local` first, then by name.
    pub fn all(&self) -> Vec<Arc<Host>> {
        let map = self.read();
        map.get(LOCAL_HOST).into_iter().chain(map.iter().filter(|(n, _)| *n != LOCAL_HOST).map(|(_, h)| h)).cloned().collect()
    }

    /// The hosts a `?host=` filter selects: all, or the one named.
    fn selected(&self, host: Option<&str>) -> Vec<Arc<Host>> {
        match host {
            Some(name) => self.get(name).into_iter().collect(),
            None => self.all(),
        }
    }

    pub fn containers(&self, host: Option<&str>) -> Vec<Container> {
        self.selected(host).iter().flat_map(|h| h.view.containers()).collect()
    }

    pub fn stacks(&self, host: Option<&str>) -> Vec<Stack> {
        self.selected(host).iter().flat_map(|h| h.view.stacks()).collect()
    }

    /// The containers a stack or container target stands for on its host
    /// (`None` when the host or the target is not there).
    pub fn members(&self, target: &Target) -> Option<Vec<Container>> {
        let view = &self.get(&target.host)?.view;
        match target.target_type {
            TargetType::Stack => view.stack(&target.target_id).map(|s| s.containers),
            TargetType::Container => view.container(&target.target_id).map(|c| vec![c]),
            TargetType::Service | TargetType::SwarmStack => None,
        }
    }

    /// The stack a container belongs to, on its host.
    pub fn stack_of(&self, host: &str, container: &str) -> Option<String> {
        self.get(host)?.view.container(container)?.member_of().map(str::to_string)
    }

    /// Changes whenever any host's containers or the set of hosts change,
    /// so a serialised list can be reused until then.
    pub fn generation(&self) -> u64 {
        let views: u64 = self.read().values().map(|h| h.view.generation()).fold(0, u64::wrapping_add);
        (self.generation.load(Ordering::Acquire) << 40).wrapping_add(views)
    }

    /// Each host's status by name, for `/healthz`.
    pub fn statuses(&self) -> BTreeMap<String, HostStatus> {
        self.read().iter().map(|(n, h)| (n.clone(), h.status())).collect()
    }
}
