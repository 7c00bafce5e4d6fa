//! Every Docker engine DockNap manages, each with its own connection, view
//! and discovery task: one host that hangs or dies never holds up another's
//! reads, actions or schedules.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::{Engine, SwarmService, View, discovery};
use crate::events::{Event, Events};
use crate::model::{Container, HostConfig, HostStatus, HostView, LOCAL_HOST, Stack, Target, TargetType};

/// Makes the engine client of a host (a fake in unit tests).
pub type Connect = Arc<dyn Fn(&HostConfig) -> Result<Arc<dyn Engine>, String> + Send + Sync>;

/// One engine: how it was declared, its client, its view.
pub struct Host {
    pub config: HostConfig,
    pub engine: Arc<dyn Engine>,
    pub view: Arc<View>,
    /// Resource figures, read from the engine only while someone asks.
    pub stats: super::stats::StatsHub,
    /// Its Swarm services when it is a manager (`None`: not one, or not known yet).
    services: RwLock<Option<Vec<SwarmService>>>,
    /// Asks the Swarm poll for a fresh list now (after a service action).
    services_stale: tokio::sync::Notify,
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

    pub fn swarm_services(&self) -> Option<Vec<SwarmService>> {
        self.services.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A service action changed the list: re-read it now, not at the next poll.
    pub fn refresh_services(&self) {
        self.services_stale.notify_one();
    }

    fn set_services(&self, now: Option<Vec<SwarmService>>, events: &Events) {
        let old = std::mem::replace(&mut *self.services.write().unwrap_or_else(|e| e.into_inner()), now.clone());
        if old == now {
            return;
        }
        let (old, now) = (old.unwrap_or_default(), now.unwrap_or_default());
        let names: std::collections::BTreeSet<&String> = old.iter().chain(now.iter()).map(|s| &s.name).collect();
        for name in names {
            let (a, b) = (old.iter().find(|s| &s.name == name), now.iter().find(|s| &s.name == name));
            if a != b {
                // Saved replica counts are the store's: subscribers re-read the list for them.
                let service = b.cloned().map(|s| s.into_service(self.name(), None));
                events.publish(Event::Service { host: self.name().to_string(), name: name.clone(), service });
            }
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
            swarm_manager: self.services.read().unwrap_or_else(|e| e.into_inner()).is_some(),
            error: if status == HostStatus::Ok { None } else { error },
        }
    }
}

impl Host {
    fn new(config: HostConfig, engine: Arc<dyn Engine>, view: Arc<View>, stop: watch::Sender<bool>) -> Host {
        Host {
            config,
            engine,
            view,
            stats: Default::default(),
            services: RwLock::default(),
            services_stale: Default::default(),
            stop,
        }
    }
}

/// How often a Swarm manager's services are re-read: running task counts
/// change without an event of their own. A host that is not a manager is
/// asked again now and then, in case it becomes one.
const SWARM_POLL: Duration = Duration::from_secs(5);
const SWARM_PROBE: Duration = Duration::from_secs(60);

/// Keeps a host's Swarm services current while it lives.
async fn follow_swarm(host: std::sync::Weak<Host>, events: Events, mut stop: watch::Receiver<bool>) {
    loop {
        // Held for one round only: a removed host is stopped explicitly.
        let Some(h) = host.upgrade() else { return };
        let wait = if h.view.docker_ok() {
            match tokio::time::timeout(Duration::from_secs(10), h.engine.swarm_services()).await {
                Ok(Ok(list)) => {
                    let manager = list.is_some();
                    h.set_services(list, &events);
                    if manager { SWARM_POLL } else { SWARM_PROBE }
                }
                // Unreachable or slow: discovery reports it; keep the last list.
                _ => SWARM_POLL,
            }
        } else {
            SWARM_POLL
        };
        let stale = h.services_stale.notified();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stale => {}
            _ = stop.changed() => return,
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
        tokio::spawn(discovery::run(engine.clone(), view.clone(), self.recheck, stopped.clone()));
        let host = Arc::new(Host::new(config, engine, view, stop));
        tokio::spawn(follow_swarm(Arc::downgrade(&host), self.events.clone(), stopped));
        let old = self.hosts.write().unwrap_or_else(|e| e.into_inner()).insert(host.name().to_string(), host.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(old) = old {
            let _ = old.stop.send(true);
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
        let host = Arc::new(Host::new(config, engine, view, watch::channel(false).0));
        self.hosts.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), host.clone());
        host
    }

    pub fn remove(&self, name: &str) -> bool {
        let Some(old) = self.hosts.write().unwrap_or_else(|e| e.into_inner()).remove(name) else { return false };
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = old.stop.send(true);
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
        map.get(LOCAL_HOST)
            .into_iter()
            .chain(map.iter().filter(|(n, _)| *n != LOCAL_HOST).map(|(_, h)| h))
            .cloned()
            .collect()
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

    /// Every Swarm service of the selected hosts (managers only).
    pub fn services(&self, host: Option<&str>) -> Vec<(String, SwarmService)> {
        self.selected(host)
            .iter()
            .flat_map(|h| h.swarm_services().unwrap_or_default().into_iter().map(|s| (h.name().to_string(), s)))
            .collect()
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
            TargetType::Service | TargetType::SwarmStack | TargetType::Group | TargetType::Sequence => None,
        }
    }

    /// The members of every stack and container of every host as they are
    /// now, for a pass over many targets (one walk of each view instead of
    /// one per target).
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for host in self.all() {
            let name = host.name();
            for c in host.view.containers() {
                if let Some(stack) = c.member_of() {
                    snap.stacks.entry((name.to_string(), stack.to_string())).or_default().push(c.clone());
                }
                snap.containers.insert((name.to_string(), c.name.clone()), c);
            }
        }
        snap
    }

    /// Every compose stack of every host in `group`, as targets.
    pub fn group_stacks(&self, group: &str) -> Vec<Target> {
        let hosts = self.all().into_iter().filter(|h| h.config.group.as_deref() == Some(group));
        hosts.flat_map(|h| h.view.stacks()).map(|s| Target::new(&s.host, TargetType::Stack, &s.name)).collect()
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

/// What [`Fleet::members`] answers, for every target at one moment.
#[derive(Default)]
pub struct Snapshot {
    /// (host, stack) → its containers, by name (as [`View::containers`] lists them).
    stacks: HashMap<(String, String), Vec<Container>>,
    /// (host, container name) → the container.
    containers: HashMap<(String, String), Container>,
}

impl Snapshot {
    /// A stack's or a container's members (by name); `None` when absent.
    pub fn members(&self, target: &Target) -> Option<&[Container]> {
        let key = (target.host.clone(), target.target_id.clone());
        match target.target_type {
            TargetType::Stack => self.stacks.get(&key).map(Vec::as_slice),
            TargetType::Container => self.containers.get(&key).map(std::slice::from_ref),
            _ => None,
        }
    }
}
