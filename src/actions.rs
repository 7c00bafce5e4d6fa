//! Lifecycle actions on containers and stacks: what a person clicks and what
//! the scheduler fires go through [`Actions::run`], so both get the same
//! ordering, idempotency, locking, self-protection and audit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::audit::Audit;
use crate::docker::{DockerError, Engine, Health, View};
use crate::model::{
    Action, ActionResult, Container, ContainerResult, InvalidValue, LABEL_DEPENDS_ON, NewAuditEntry, TargetType,
};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("no {0} named '{1}'")]
    NotFound(TargetType, String),
    #[error("refusing to {0} DockNap's own container")]
    SelfProtection(Action),
    #[error("the Docker Engine is unreachable")]
    DockerUnavailable,
}

/// Who asked, for the audit log.
#[derive(Debug, Clone)]
pub enum Trigger {
    Manual { actor: String, client: Option<std::net::IpAddr> },
    /// A schedule's "run now" test, by a person.
    TestRun { actor: String, schedule_id: i64 },
    /// A schedule's fire that was due at `due`.
    Scheduled { schedule_id: i64, due: chrono::DateTime<chrono::Utc> },
    /// A window keeping its target where it should be.
    Window { window_id: i64 },
}

impl Trigger {
    pub fn actor(&self) -> &str {
        match self {
            Trigger::Manual { actor, .. } | Trigger::TestRun { actor, .. } => actor,
            Trigger::Scheduled { .. } => "scheduler",
            Trigger::Window { .. } => "window",
        }
    }
}

/// Told of every action that is not a window's own, before it runs: a
/// window turns a person's or a schedule's start/stop into an override
/// instead of undoing it.
#[async_trait::async_trait]
pub trait ActionObserver: Send + Sync {
    async fn before(&self, target_type: TargetType, target_id: &str, action: Action, trigger: &Trigger);
}

/// How long a stack start waits for a `service_healthy` dependency.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Actions {
    engine: Arc<dyn Engine>,
    view: Arc<View>,
    audit: Arc<Audit>,
    self_id: Option<String>,
    health_timeout: Duration,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Actions under way, so a shutdown can wait for them and audit those it
    /// has to cut off.
    in_flight: Mutex<HashMap<u64, InFlight>>,
    next_in_flight: AtomicU64,
    /// Signalled each time an action under way ends.
    settled: tokio::sync::Notify,
    observer: std::sync::OnceLock<Arc<dyn ActionObserver>>,
}

struct InFlight {
    target_type: TargetType,
    target_id: String,
    action: Action,
    trigger: Trigger,
    started: Instant,
}

/// Holds one target's lock. On drop (also on an early return or a panic) it
/// removes the map entry once nobody else holds or waits for it, so the map
/// does not grow with every target ever acted on.
struct TargetGuard<'a> {
    locks: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for TargetGuard<'_> {
    fn drop(&mut self) {
        // Waiters clone the Arc under this map lock, so a count of 1 here
        // (the map's own) means nobody can be waiting.
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        self.guard = None;
        if map.get(&self.key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&self.key);
        }
    }
}

impl Actions {
    pub fn new(engine: Arc<dyn Engine>, view: Arc<View>, audit: Arc<Audit>, self_id: Option<String>) -> Actions {
        if let Some(id) = &self_id {
            tracing::info!(container = %id, "running inside a container; self-protection is on");
        }
        Actions {
            engine,
            view,
            audit,
            self_id,
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
            locks: Mutex::default(),
            in_flight: Mutex::default(),
            next_in_flight: AtomicU64::new(0),
            settled: tokio::sync::Notify::new(),
            observer: std::sync::OnceLock::new(),
        }
    }

    /// Sets the one observer (the windows service), once, at start-up.
    pub fn observe(&self, observer: Arc<dyn ActionObserver>) {
        if self.observer.set(observer).is_err() {
            tracing::error!("an action observer was already set");
        }
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    pub fn audit(&self) -> &Arc<Audit> {
        &self.audit
    }

    pub fn docker_ok(&self) -> bool {
        self.view.docker_ok()
    }

    pub fn with_health_timeout(mut self, t: Duration) -> Self {
        self.health_timeout = t;
        self
    }

    /// Validates, serialises per target, runs, and audits one action. The
    /// work runs on its own task: a client that hangs up mid-stop must not
    /// cancel the stop half-way or lose its audit entry.
    pub async fn run(
        self: &Arc<Self>,
        target_type: TargetType,
        target_id: &str,
        action: Action,
        trigger: &Trigger,
    ) -> Result<ActionResult, ActionError> {
        self.run_leaving_out(target_type, target_id, action, trigger, Vec::new()).await
    }

    /// [`Actions::run`] on the target's containers except those named in
    /// `leave_out` (excluded, one-shot, or already where they should be).
    pub async fn run_leaving_out(
        self: &Arc<Self>,
        target_type: TargetType,
        target_id: &str,
        action: Action,
        trigger: &Trigger,
        leave_out: Vec<String>,
    ) -> Result<ActionResult, ActionError> {
        if let (Some(observer), false) = (self.observer.get(), matches!(trigger, Trigger::Window { .. })) {
            observer.before(target_type, target_id, action, trigger).await;
        }
        let this = Arc::clone(self);
        let (target_id, trigger) = (target_id.to_string(), trigger.clone());
        let key = self.next_in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight {
            target_type,
            target_id: target_id.clone(),
            action,
            trigger: trigger.clone(),
            started: Instant::now(),
        };
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(key, in_flight);
        tokio::spawn(async move {
            let outcome = this.run_audited(target_type, &target_id, action, &trigger, &leave_out).await;
            this.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            this.settled.notify_one();
            outcome
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// At shutdown: waits until `deadline` for the actions under way, then
    /// audits each one still running as interrupted (the process is about to
    /// end it) so that none goes unrecorded.
    pub async fn finish_in_flight(&self, deadline: tokio::time::Instant) {
        let in_flight = || self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        while !in_flight().is_empty() {
            if tokio::time::timeout_at(deadline, self.settled.notified()).await.is_err() {
                break;
            }
        }
        for f in std::mem::take(&mut *in_flight()).into_values() {
            tracing::warn!(action = %f.action, target = %f.target_id, "an action was cut off by the shutdown");
            let message = "interrupted: DockNap shut down before this action finished".to_string();
            self.record(&f.trigger, f.target_type, &f.target_id, f.action, false, message, &[], f.started);
        }
    }

    async fn run_audited(
        &self,
        target_type: TargetType,
        target_id: &str,
        action: Action,
        trigger: &Trigger,
        leave_out: &[String],
    ) -> Result<ActionResult, ActionError> {
        let started = Instant::now();
        let outcome = self.run_unaudited(target_type, target_id, action, leave_out).await;
        let (ok, message, results) = match &outcome {
            Ok(r) => (r.ok, r.summary(), r.results.as_slice()),
            Err(e) => (false, e.to_string(), &[][..]),
        };
        self.record(trigger, target_type, target_id, action, ok, message, results, started);
        outcome
    }

    /// The audit entry of one action: who, what, the result per container, how long.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        trigger: &Trigger,
        target_type: TargetType,
        target_id: &str,
        action: Action,
        ok: bool,
        message: String,
        results: &[ContainerResult],
        started: Instant,
    ) {
        let mut entry = NewAuditEntry::new(trigger.actor(), action.as_str(), ok, message).target(target_type.as_str(), target_id);
        let (trigger_name, schedule_id, due, window_id) = match trigger {
            Trigger::Manual { client, .. } => {
                entry.client_addr = client.map(|c| c.to_string());
                ("manual", None, None, None)
            }
            Trigger::TestRun { schedule_id, .. } => ("test_run", Some(*schedule_id), None, None),
            Trigger::Scheduled { schedule_id, due } => ("scheduled", Some(*schedule_id), Some(*due), None),
            Trigger::Window { window_id } => ("window", None, None, Some(*window_id)),
        };
        self.audit.record(entry.details(serde_json::json!({
            "trigger": trigger_name,
            "schedule_id": schedule_id,
            "due": due,
            "window_id": window_id,
            "results": results,
            "duration_ms": started.elapsed().as_millis() as u64,
        })));
    }

    async fn run_unaudited(
        &self,
        target_type: TargetType,
        target_id: &str,
        action: Action,
        leave_out: &[String],
    ) -> Result<ActionResult, ActionError> {
        if !self.view.docker_ok() {
            return Err(ActionError::DockerUnavailable);
        }
        let lock_key = match target_type {
            TargetType::Stack => format!("stack:{target_id}"),
            // A container of a stack shares the stack's lock, so a click on one
            // container cannot interleave with a scheduled stop of its stack.
            TargetType::Container => match self.view.container(target_id) {
                Some(Container { stack: Some(s), .. }) => format!("stack:{s}"),
                Some(c) => format!("container:{}", c.name),
                None => return Err(ActionError::NotFound(target_type, target_id.to_string())),
            },
        };
        let _guard = self.lock_target(lock_key).await;

        // Membership is read after the lock: the previous action may have changed it.
        let mut members = match target_type {
            TargetType::Stack => self.view.stack(target_id).map(|s| s.containers),
            TargetType::Container => self.view.container(target_id).map(|c| vec![c]),
        }
        .ok_or_else(|| ActionError::NotFound(target_type, target_id.to_string()))?;
        members.retain(|c| !leave_out.contains(&c.name));
        if action.interrupts() && self.is_self_among(&members) {
            return Err(ActionError::SelfProtection(action));
        }

        let levels = dependency_levels(&members);
        let results = match action {
            Action::Start | Action::Unpause => self.forward(&levels, action).await,
            Action::Stop | Action::Pause => self.backward(&levels, action).await,
            Action::Restart if target_type == TargetType::Stack => {
                let mut stopped = self.backward(&levels, Action::Stop).await;
                let started = self.forward(&levels, Action::Start).await;
                merge_results(&mut stopped, started);
                stopped
            }
            Action::Restart => self.forward(&levels, Action::Restart).await,
        };
        Ok(ActionResult {
            target_type,
            target_id: target_id.to_string(),
            action,
            ok: results.iter().all(|r| r.ok),
            results,
        })
    }

    async fn lock_target(&self, key: String) -> TargetGuard<'_> {
        let lock = self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone();
        TargetGuard { locks: &self.locks, key, guard: Some(lock.lock_owned().await) }
    }

    fn is_self_among(&self, members: &[Container]) -> bool {
        let Some(me) = &self.self_id else { return false };
        members.iter().any(|c| c.id.starts_with(me.as_str()) || me.starts_with(c.id.as_str()))
    }

    /// Dependencies first; waits for `service_healthy` and
    /// `service_completed_successfully` dependencies.
    async fn forward(&self, levels: &[Vec<Member>], action: Action) -> Vec<ContainerResult> {
        let mut results = Vec::new();
        // Service → why it is not ready.
        let mut not_ready: BTreeMap<String, &'static str> = BTreeMap::new();
        for level in levels {
            let (blocked, ready): (Vec<&Member>, Vec<&Member>) =
                level.iter().partition(|m| m.waits_for.iter().any(|d| not_ready.contains_key(d)));
            for m in blocked {
                let dep = m.waits_for.iter().find(|d| not_ready.contains_key(*d)).expect("partitioned on it");
                results.push(failed(&m.container, format!("not started: dependency '{dep}' {}", not_ready[dep])));
                not_ready.insert(m.service.clone(), Condition::Started.unmet());
            }
            // A level's waits run side by side: one bounded wait per level, not per container.
            let outcomes = join_all(ready.iter().map(|m| async move {
                let r = self.apply(&m.container, action).await;
                if !r.ok || action != Action::Start {
                    return r;
                }
                let waited = match m.awaited {
                    Condition::Started => return r,
                    Condition::Healthy => self.wait_healthy(&m.container).await,
                    Condition::CompletedSuccessfully => self.wait_completed(&m.container).await,
                };
                match waited {
                    Ok(()) => r,
                    Err(e) => failed(&m.container, e),
                }
            }))
            .await;
            for (m, r) in ready.iter().zip(outcomes) {
                if !r.ok {
                    not_ready.insert(m.service.clone(), m.awaited.unmet());
                }
                results.push(r);
            }
        }
        results
    }

    /// Dependents first. A service one of whose dependents failed is left
    /// alone: a database is not pulled from under an app still running.
    async fn backward(&self, levels: &[Vec<Member>], action: Action) -> Vec<ContainerResult> {
        let mut results = Vec::new();
        // Service → a dependent of it that did not make it.
        let mut held: BTreeMap<String, String> = BTreeMap::new();
        let hold_deps = |held: &mut BTreeMap<String, String>, m: &Member| {
            for d in &m.deps {
                held.entry(d.clone()).or_insert_with(|| m.service.clone());
            }
        };
        for level in levels.iter().rev() {
            let (blocked, ready): (Vec<&Member>, Vec<&Member>) = level.iter().partition(|m| held.contains_key(&m.service));
            for m in blocked {
                let why = format!("skipped: '{}', which depends on it, failed to {}", held[&m.service], action.as_str());
                results.push(failed(&m.container, why));
                hold_deps(&mut held, m);
            }
            let outcomes = join_all(ready.iter().map(|m| self.apply(&m.container, action))).await;
            for (m, r) in ready.into_iter().zip(outcomes) {
                if !r.ok {
                    hold_deps(&mut held, m);
                }
                results.push(r);
            }
        }
        results
    }

    /// For `service_completed_successfully`: the container ran and exited 0.
    async fn wait_completed(&self, c: &Container) -> Result<(), String> {
        self.poll_until("did not finish", || async {
            match self.engine.exit_code(&c.id).await {
                Ok(Some(0)) => Some(Ok(())),
                Ok(Some(code)) => Some(Err(format!("exited with code {code}"))),
                Ok(None) => None,
                Err(e) => Some(Err(format!("cannot read its exit code: {e}"))),
            }
        })
        .await
    }

    async fn wait_healthy(&self, c: &Container) -> Result<(), String> {
        self.poll_until("did not become healthy", || async {
            match self.engine.health(&c.id).await {
                Ok(Health::Healthy | Health::None) => Some(Ok(())),
                Ok(Health::Unhealthy) => Some(Err("started but reported unhealthy".into())),
                Ok(Health::Starting) => None,
                Err(e) => Some(Err(format!("health check failed: {e}"))),
            }
        })
        .await
    }

    /// Asks `probe` every 200 ms until it decides, for at most the health
    /// timeout; then fails with "`undecided` within <timeout>".
    async fn poll_until<F, Fut>(&self, undecided: &str, mut probe: F) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<Result<(), String>>>,
    {
        let deadline = Instant::now() + self.health_timeout;
        loop {
            if let Some(decided) = probe().await {
                return decided;
            }
            if Instant::now() >= deadline {
                return Err(format!("{undecided} within {}", humantime::format_duration(self.health_timeout)));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Brings one container to the wanted state, doing what the user meant
    /// from whatever state it is in now.
    async fn apply(&self, c: &Container, action: Action) -> ContainerResult {
        let state = match self.engine.list(Some(&c.id)).await {
            Ok(mut v) => match v.pop() {
                Some(fresh) => fresh.state,
                None => return failed(c, "container no longer exists".into()),
            },
            Err(e) => return failed(c, e.to_string()),
        };
        for step in plan(action, &state) {
            match self.engine.act(&c.id, *step).await {
                Ok(()) | Err(DockerError::NotModified) => {}
                Err(e) => return failed(c, e.to_string()),
            }
        }
        ContainerResult { container: c.name.clone(), ok: true, error: None }
    }
}

fn failed(c: &Container, error: String) -> ContainerResult {
    ContainerResult { container: c.name.clone(), ok: false, error: Some(error) }
}

/// A restart reports each container once: its worst outcome.
fn merge_results(into: &mut Vec<ContainerResult>, later: Vec<ContainerResult>) {
    for r in later {
        match into.iter_mut().find(|x| x.container == r.container) {
            Some(x) if x.ok => *x = r,
            Some(_) => {}
            None => into.push(r),
        }
    }
}

/// The engine calls that take a container in `state` to what `action` means.
/// Already there is success with nothing to do; a paused container is
/// unpaused first (stopping a frozen process hangs until the kill timeout).
/// A start is always sent: the engine's list can lag behind a container's
/// exit (see discovery), so one that has just stopped may still list as
/// running, and the engine itself answers 304 to a start of one that runs.
pub fn plan(action: Action, state: &str) -> &'static [Action] {
    use Action::*;
    match (action, state) {
        (Start, "paused") => &[Unpause],
        (Start, _) => &[Start],
        (Stop, "running" | "restarting") => &[Stop],
        (Stop, "paused") => &[Unpause, Stop],
        (Stop, _) => &[],
        (Restart, "paused") => &[Unpause, Restart],
        (Restart, _) => &[Restart],
        (Pause, "running") => &[Pause],
        // Paused already, or not running: nothing to freeze.
        (Pause, _) => &[],
        (Unpause, "paused") => &[Unpause],
        (Unpause, _) => &[],
    }
}

#[derive(Debug, Clone)]
struct Member {
    container: Container,
    service: String,
    /// Services this one depends on (in this stack).
    deps: Vec<String>,
    /// Services that must be ready (healthy, or finished with 0) before
    /// this one starts.
    waits_for: Vec<String>,
    /// What some other service waits for this one to become.
    awaited: Condition,
}

/// A compose `depends_on` condition, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    /// Why a service that failed this condition holds its dependents back.
    fn unmet(self) -> &'static str {
        match self {
            Condition::Started => "did not start",
            Condition::Healthy => "is not healthy",
            Condition::CompletedSuccessfully => "did not complete successfully",
        }
    }
}

/// `db:service_healthy:false,cache:service_started:true` → [(db, Healthy), …]
fn parse_depends_on(label: &str) -> Vec<(String, Condition)> {
    label
        .split(',')
        .filter_map(|dep| {
            let mut parts = dep.trim().split(':');
            let name = parts.next().filter(|n| !n.is_empty())?;
            let condition = match parts.next() {
                Some("service_healthy") => Condition::Healthy,
                Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                _ => Condition::Started,
            };
            Some((name.to_string(), condition))
        })
        .collect()
}

/// Groups a stack's containers into levels: each level depends only on
/// earlier ones. Dependencies outside the stack are ignored; a cycle (which
/// compose refuses anyway) lands in one final level rather than hanging.
fn dependency_levels(containers: &[Container]) -> Vec<Vec<Member>> {
    let service_of = |c: &Container| c.service.clone().unwrap_or_else(|| c.name.clone());
    let services: BTreeSet<String> = containers.iter().map(service_of).collect();
    let mut deps: BTreeMap<String, Vec<(String, Condition)>> = BTreeMap::new();
    for c in containers {
        let d = c.labels.get(LABEL_DEPENDS_ON).map(|l| parse_depends_on(l)).unwrap_or_default();
        deps.entry(service_of(c)).or_default().extend(d.into_iter().filter(|(s, _)| services.contains(s)));
    }
    let mut awaited: BTreeMap<&String, Condition> = BTreeMap::new();
    for (s, condition) in deps.values().flatten() {
        let a = awaited.entry(s).or_insert(Condition::Started);
        *a = (*a).max(*condition);
    }

    let mut level_of: BTreeMap<&String, usize> = BTreeMap::new();
    let mut remaining: BTreeSet<&String> = services.iter().collect();
    let mut level = 0;
    while !remaining.is_empty() {
        let ready: Vec<&String> = remaining
            .iter()
            .copied()
            .filter(|s| deps[*s].iter().all(|(d, _)| level_of.get(d).is_some_and(|l| *l < level)))
            .collect();
        let ready = if ready.is_empty() { remaining.iter().copied().collect() } else { ready };
        for s in ready {
            level_of.insert(s, level);
            remaining.remove(s);
        }
        level += 1;
    }

    let mut levels: Vec<Vec<Member>> = vec![Vec::new(); level];
    for c in containers {
        let service = service_of(c);
        let member = Member {
            container: c.clone(),
            deps: deps[&service].iter().map(|(s, _)| s.clone()).collect(),
            waits_for: deps[&service].iter().filter(|(_, c)| *c > Condition::Started).map(|(s, _)| s.clone()).collect(),
            awaited: awaited.get(&service).copied().unwrap_or(Condition::Started),
            service: service.clone(),
        };
        levels[level_of[&service]].push(member);
    }
    levels
}

/// DockNap's own container id, when it runs in one: Docker bind-mounts
/// /etc/hostname and friends from /var/lib/docker/containers/<id>/, which
/// shows in our mount table whatever the cgroup layout.
pub fn detect_self_container_id() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    find_container_id(&mountinfo)
}

fn find_container_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let rest = &line[line.find("/containers/")? + "/containers/".len()..];
        let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        (id.len() == 64 && rest[64..].starts_with('/')).then_some(id)
    })
}

/// An in-memory [`Engine`] for unit tests of actions and the scheduler.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use futures_util::stream::BoxStream;

    use super::Actions;
    use crate::audit::Audit;
    use crate::docker::{ContainerEvent, DockerError, Engine, EngineInfo, Health, View};
    use crate::model::{Action, Container};
    use crate::events::Events;

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
                Action::Start | Action::Restart | Action::Unpause => "running",
                Action::Stop => "exited",
                Action::Pause => "paused",
            }
            .into();
            Ok(())
        }

        fn container_events(&self) -> BoxStream<'static, Result<ContainerEvent, DockerError>> {
            Box::pin(futures_util::stream::pending())
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
        let view = Arc::new(View::new(events));
        view.replace_all(containers);
        view.set_docker_ok(true);
        let actions = Actions::new(engine.clone(), view.clone(), audit, None);
        (engine, view, actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::model::{LABEL_PROJECT, LABEL_SERVICE};

    fn c(service: &str, depends_on: Option<&str>) -> Container {
        let mut labels = BTreeMap::from([
            (LABEL_PROJECT.to_string(), "p".to_string()),
            (LABEL_SERVICE.to_string(), service.to_string()),
        ]);
        if let Some(d) = depends_on {
            labels.insert(LABEL_DEPENDS_ON.to_string(), d.to_string());
        }
        Container::new(format!("id-{service}"), &format!("p-{service}-1"), "i".into(), "exited".into(), String::new(), labels, Default::default())
    }

    fn audit(store: Arc<crate::store::Store>) -> Arc<Audit> {
        Arc::new(Audit::new(store, Arc::new(SystemClock)))
    }

    fn names(levels: &[Vec<Member>]) -> Vec<Vec<&str>> {
        levels.iter().map(|l| l.iter().map(|m| m.service.as_str()).collect()).collect()
    }

    #[test]
    fn levels_follow_depends_on() {
        let cs = vec![
            c("web", Some("api:service_started:false,cache:service_started:false")),
            c("api", Some("db:service_healthy:false")),
            c("db", None),
            c("cache", None),
            c("worker", Some("db:service_started:true,elsewhere:service_started:false")),
        ];
        let levels = dependency_levels(&cs);
        assert_eq!(names(&levels), vec![vec!["db", "cache"], vec!["api", "worker"], vec!["web"]]);
        let db = &levels[0][0];
        assert_eq!(db.awaited, Condition::Healthy);
        assert_eq!(levels[1][0].waits_for, vec!["db"]);
    }

    #[test]
    fn no_label_means_one_parallel_level_and_cycles_terminate() {
        assert_eq!(dependency_levels(&[c("a", None), c("b", None)]).len(), 1);
        let cyc = dependency_levels(&[c("a", Some("b:service_started:false")), c("b", Some("a:service_started:false"))]);
        assert_eq!(names(&cyc), vec![vec!["a", "b"]]);
    }

    #[test]
    fn plans_do_what_the_user_meant() {
        use Action::*;
        assert_eq!(plan(Start, "running"), &[Start], "the engine answers 304; the listed state may lag");
        assert_eq!(plan(Start, "paused"), &[Unpause]);
        assert_eq!(plan(Start, "exited"), &[Start]);
        assert_eq!(plan(Stop, "paused"), &[Unpause, Stop]);
        assert_eq!(plan(Stop, "exited"), &[] as &[Action]);
        assert_eq!(plan(Pause, "paused"), &[] as &[Action]);
        assert_eq!(plan(Unpause, "running"), &[] as &[Action]);
        assert_eq!(plan(Restart, "paused"), &[Unpause, Restart]);
    }

    #[test]
    fn finds_own_container_id_in_mountinfo() {
        let id = "a".repeat(64);
        let line = format!(
            "612 600 0:30 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw"
        );
        assert_eq!(find_container_id(&format!("1 2 3 / / rw\n{line}\n")), Some(id));
        assert_eq!(find_container_id("1 2 3 / / rw - overlay overlay rw\n"), None);
    }

    #[tokio::test]
    async fn dependencies_stuck_starting_fail_after_one_bounded_wait_per_level() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
        let containers = vec![
            c("db", None),
            c("cache", None),
            c("app", Some("db:service_healthy:false,cache:service_healthy:false")),
        ];
        let (engine, _, actions) = fake::actions(containers, audit(store));
        engine.health.lock().unwrap().extend([("id-db".to_string(), Health::Starting), ("id-cache".to_string(), Health::Starting)]);
        let actions = Arc::new(actions.with_health_timeout(Duration::from_millis(400)));

        let begun = Instant::now();
        let trigger = Trigger::Manual { actor: "t".into(), client: None };
        let r = actions.run(TargetType::Stack, "p", Action::Start, &trigger).await.unwrap();
        assert!(begun.elapsed() < Duration::from_millis(750), "the two waits overlap: {:?}", begun.elapsed());
        assert!(!r.ok);
        let error = |name: &str| r.results.iter().find(|x| x.container == name).and_then(|x| x.error.clone()).unwrap();
        assert_eq!(error("p-db-1"), "did not become healthy within 400ms");
        assert_eq!(error("p-app-1"), "not started: dependency 'db' is not healthy");
        let started: Vec<String> = engine.acts.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(started.len(), 2, "app was never started: {started:?}");
        assert!(actions.locks.lock().unwrap().is_empty(), "the target lock is forgotten");
    }

    #[tokio::test]
    async fn a_dependent_that_fails_to_stop_keeps_its_dependencies_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
        let running = |mut c: Container| {
            c.state = "running".into();
            c
        };
        let containers = vec![
            running(c("db", None)),
            running(c("cache", None)),
            running(c("app", Some("db:service_started:false"))),
            running(c("web", Some("app:service_started:false,cache:service_started:false"))),
        ];
        let (engine, _, actions) = fake::actions(containers, audit(store));
        engine.failing.lock().unwrap().insert("id-app".into());
        let actions = Arc::new(actions);
        let trigger = Trigger::Manual { actor: "t".into(), client: None };
        let r = actions.run(TargetType::Stack, "p", Action::Stop, &trigger).await.unwrap();
        let outcome = |name: &str| r.results.iter().find(|x| x.container == name).map(|x| (x.ok, x.error.clone())).unwrap();
        assert_eq!(outcome("p-web-1"), (true, None));
        assert_eq!(outcome("p-cache-1"), (true, None), "only what app depends on is held");
        assert!(!outcome("p-app-1").0);
        assert_eq!(outcome("p-db-1"), (false, Some("skipped: 'app', which depends on it, failed to stop".into())));
        let stopped: Vec<String> = engine.acts.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
        assert!(!stopped.contains(&"id-db".to_string()), "{stopped:?}");
    }

    #[tokio::test]
    async fn shutdown_waits_for_actions_then_audits_the_ones_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::Store::open(dir.path()).unwrap());
        let (engine, _, actions) = fake::actions(vec![c("quick", None), c("slow", None)], audit(store.clone()));
        let actions = Arc::new(actions);
        let trigger = Trigger::Scheduled { schedule_id: 7, due: chrono::Utc::now() };

        // Finishes within the grace: audited with its real result, nothing more.
        *engine.delay.lock().unwrap() = Duration::from_millis(100);
        let quick = tokio::spawn({
            let (actions, trigger) = (actions.clone(), trigger.clone());
            async move { actions.run(TargetType::Container, "p-quick-1", Action::Start, &trigger).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        actions.finish_in_flight(tokio::time::Instant::now() + Duration::from_secs(2)).await;
        assert!(quick.await.unwrap().unwrap().ok);

        // Outlives the grace: audited as interrupted before the process ends.
        *engine.delay.lock().unwrap() = Duration::from_secs(30);
        let slow = tokio::spawn({
            let actions = actions.clone();
            async move { actions.run(TargetType::Container, "p-slow-1", Action::Start, &trigger).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let begun = Instant::now();
        actions.finish_in_flight(tokio::time::Instant::now() + Duration::from_millis(200)).await;
        assert!(begun.elapsed() < Duration::from_secs(1));
        slow.abort();

        actions.audit.flush();
        let entries = store.audit(&crate::model::AuditFilter { limit: 10, ..Default::default() }).unwrap();
        let summary: Vec<(String, bool, String)> =
            entries.iter().map(|e| (e.target_id.clone().unwrap_or_default(), e.ok, e.message.clone())).collect();
        assert_eq!(summary.len(), 2, "{summary:?}");
        assert_eq!(summary[0].0, "p-slow-1");
        assert!(!summary[0].1 && summary[0].2.starts_with("interrupted"), "{summary:?}");
        assert_eq!(entries[0].actor, "scheduler");
        assert_eq!((summary[1].0.as_str(), summary[1].1), ("p-quick-1", true));
    }

    #[test]
    fn restart_merge_keeps_worst_outcome() {
        let ok = |n: &str| ContainerResult { container: n.into(), ok: true, error: None };
        let bad = |n: &str| ContainerResult { container: n.into(), ok: false, error: Some("x".into()) };
        let mut a = vec![ok("a"), bad("b")];
        merge_results(&mut a, vec![bad("a"), ok("b")]);
        assert_eq!(a, vec![bad("a"), bad("b")]);
    }
}
