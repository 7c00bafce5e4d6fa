//! Lifecycle actions on containers and stacks: what a person clicks and what
//! the scheduler fires go through [`Actions::run`], so both get the same
//! ordering, idempotency, locking, self-protection and audit.

mod deps;
mod group;
mod job;
pub mod order;
mod sequence;
mod swarm;
pub use self::swarm::{
    DEFAULT_START_REPLICAS, Remember, ServiceActionError, ServiceOutcome, ServiceTarget, act_on_services,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

pub use self::deps::detect_self_container_id;
use self::deps::{Condition, Member, dependency_levels};
pub use self::group::Together;
use self::job::check_run_target;
pub use self::job::{DEFAULT_RUN_TIMEOUT, parse_run_timeout};

use crate::audit::Audit;
use crate::docker::{DockerError, Engine, Fleet, Health, Host};
use crate::model::{
    Action, ActionResult, Container, ContainerResult, ContainerState, InvalidValue, LOCAL_HOST, NewAuditEntry, Target,
    TargetType,
};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("no {} named '{}'{}", .0.target_type, .0.target_id, on_host(&.0.host))]
    NotFound(Target),
    #[error("no host named '{0}'")]
    UnknownHost(String),
    #[error("refusing to {0} DockNap's own container")]
    SelfProtection(Action),
    #[error("{} is protected (docknap.protect=true): to {action} it anyway, ask again with ?force=true", .names.join(", "))]
    Protected { action: Action, names: Vec<String> },
    #[error("the Docker Engine{} is unreachable", on_host(.0))]
    DockerUnavailable(String),
    #[error(transparent)]
    Swarm(#[from] ServiceActionError),
}

/// ` on nas` for a host other than `local`, for messages.
fn on_host(host: &str) -> String {
    if host == LOCAL_HOST { String::new() } else { format!(" on {host}") }
}

/// Who asked, for the audit log.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A person's action; `force` overrides `docknap.protect=true`.
    Manual { actor: String, client: Option<std::net::IpAddr>, force: bool },
    /// A schedule's "run now" test, by a person.
    TestRun { actor: String, schedule_id: i64 },
    /// A schedule's fire that was due at `due`.
    Scheduled { schedule_id: i64, due: chrono::DateTime<chrono::Utc> },
    /// A window keeping its target where it should be.
    Window { window_id: i64 },
    /// Auto-heal restarting a container the engine reports unhealthy.
    Autoheal,
}

impl Trigger {
    /// The schedule a run belongs to, if any.
    pub fn schedule_id(&self) -> Option<i64> {
        match self {
            Trigger::TestRun { schedule_id, .. } | Trigger::Scheduled { schedule_id, .. } => Some(*schedule_id),
            Trigger::Manual { .. } | Trigger::Window { .. } | Trigger::Autoheal => None,
        }
    }

    pub fn actor(&self) -> &str {
        match self {
            Trigger::Manual { actor, .. } | Trigger::TestRun { actor, .. } => actor,
            Trigger::Scheduled { .. } => "scheduler",
            Trigger::Window { .. } => "window",
            Trigger::Autoheal => "autoheal",
        }
    }

    /// Protection guards against people only: schedules, windows and
    /// auto-heal carry out what the owner set up (and a schedule's "run now"
    /// runs what the schedule says).
    fn refuses_protected(&self) -> bool {
        matches!(self, Trigger::Manual { force: false, .. })
    }
}

/// Told of every action that is not a window's own, before it runs: a
/// window turns a person's or a schedule's start/stop into an override
/// instead of undoing it.
#[async_trait::async_trait]
pub trait ActionObserver: Send + Sync {
    async fn before(&self, target: &Target, action: Action, trigger: &Trigger);
}

/// How long a stack start waits for a `service_healthy` dependency.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Actions {
    fleet: Arc<Fleet>,
    /// Remembers Swarm replica counts across a stop.
    store: Arc<Store>,
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
    target: Target,
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
    pub fn new(fleet: Arc<Fleet>, store: Arc<Store>, audit: Arc<Audit>, self_id: Option<String>) -> Actions {
        if let Some(id) = &self_id {
            tracing::info!(container = %id, "running inside a container; self-protection is on");
        }
        Actions {
            fleet,
            store,
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

    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    pub fn audit(&self) -> &Arc<Audit> {
        &self.audit
    }

    /// Is this host's engine connected? (False for a host that does not exist.)
    pub fn host_ok(&self, host: &str) -> bool {
        self.fleet.get(host).is_some_and(|h| h.view.docker_ok())
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
        target: &Target,
        action: Action,
        trigger: &Trigger,
    ) -> Result<ActionResult, ActionError> {
        self.run_job(target, action, trigger, None).await
    }

    /// [`Actions::run`], with a `run`'s own time limit (`None`: [`DEFAULT_RUN_TIMEOUT`]).
    pub async fn run_job(
        self: &Arc<Self>,
        target: &Target,
        action: Action,
        trigger: &Trigger,
        run_timeout: Option<Duration>,
    ) -> Result<ActionResult, ActionError> {
        check_run_target(target.target_type, action)?;
        if target.target_type == TargetType::Group {
            return self.run_group(target, action, trigger).await;
        }
        self.dispatch(target, action, trigger, Vec::new(), run_timeout.unwrap_or(DEFAULT_RUN_TIMEOUT)).await
    }

    /// [`Actions::run`] on the target's containers except those named in
    /// `leave_out` (excluded, one-shot, or already where they should be).
    pub async fn run_leaving_out(
        self: &Arc<Self>,
        target: &Target,
        action: Action,
        trigger: &Trigger,
        leave_out: Vec<String>,
    ) -> Result<ActionResult, ActionError> {
        check_run_target(target.target_type, action)?;
        self.dispatch(target, action, trigger, leave_out, DEFAULT_RUN_TIMEOUT).await
    }

    async fn dispatch(
        self: &Arc<Self>,
        target: &Target,
        action: Action,
        trigger: &Trigger,
        leave_out: Vec<String>,
        run_timeout: Duration,
    ) -> Result<ActionResult, ActionError> {
        if let (Some(observer), false) = (self.observer.get(), matches!(trigger, Trigger::Window { .. })) {
            observer.before(target, action, trigger).await;
        }
        let this = Arc::clone(self);
        let (target, trigger) = (target.clone(), trigger.clone());
        let key = self.next_in_flight.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight { target: target.clone(), action, trigger: trigger.clone(), started: Instant::now() };
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(key, in_flight);
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = this.run_audited(&target, action, &trigger, &leave_out, run_timeout).await;
            crate::metrics::global().action_duration(target.target_type, action, started.elapsed().as_secs_f64());
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
            tracing::warn!(action = %f.action, target = %f.target, "an action was cut off by the shutdown");
            let message = "interrupted: DockNap shut down before this action finished".to_string();
            self.record(&f.trigger, &f.target, f.action, false, message, None, f.started);
        }
    }

    async fn run_audited(
        &self,
        target: &Target,
        action: Action,
        trigger: &Trigger,
        leave_out: &[String],
        run_timeout: Duration,
    ) -> Result<ActionResult, ActionError> {
        let started = Instant::now();
        let outcome = self.run_unaudited(target, action, leave_out, run_timeout, trigger.refuses_protected()).await;
        let (ok, message) = match &outcome {
            Ok(r) => (r.ok, r.summary()),
            Err(e) => (false, e.to_string()),
        };
        self.record(trigger, target, action, ok, message, outcome.as_ref().ok(), started);
        outcome
    }

    /// Audits an action refused before it ran (bulk refuses protected
    /// targets up front, all or nothing).
    pub fn refuse(&self, trigger: &Trigger, target: &Target, action: Action, error: &ActionError) {
        self.record(trigger, target, action, false, error.to_string(), None, Instant::now());
    }

    /// The audit entry of one action: who, what, the result per container
    /// (and a run's exit code and log tail), how long.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        trigger: &Trigger,
        target: &Target,
        action: Action,
        ok: bool,
        message: String,
        result: Option<&ActionResult>,
        started: Instant,
    ) {
        let mut entry = NewAuditEntry::new(trigger.actor(), action, ok, message).on(target);
        let mut forced = None;
        let (trigger_name, schedule_id, due, window_id) = match trigger {
            Trigger::Manual { client, force, .. } => {
                entry.client_addr = client.map(|c| c.to_string());
                forced = Some(*force);
                ("manual", None, None, None)
            }
            Trigger::TestRun { schedule_id, .. } => ("test_run", Some(*schedule_id), None, None),
            Trigger::Scheduled { schedule_id, due } => ("scheduled", Some(*schedule_id), Some(*due), None),
            Trigger::Window { window_id } => ("window", None, None, Some(*window_id)),
            Trigger::Autoheal => ("autoheal", None, None, None),
        };
        let mut details = serde_json::json!({
            "trigger": trigger_name,
            "schedule_id": schedule_id,
            "due": due,
            "window_id": window_id,
            "force": forced,
            "results": result.map(|r| r.results.as_slice()).unwrap_or_default(),
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        if let Some(run) = result.and_then(|r| r.run.as_ref()) {
            details["exit_code"] = serde_json::json!(run.exit_code);
            details["log_tail"] = serde_json::json!(run.log_tail);
        }
        self.audit.record(entry.details(details));
    }

    async fn run_unaudited(
        &self,
        target: &Target,
        action: Action,
        leave_out: &[String],
        run_timeout: Duration,
        refuse_protected: bool,
    ) -> Result<ActionResult, ActionError> {
        let host = self.fleet.get(&target.host).ok_or_else(|| ActionError::UnknownHost(target.host.clone()))?;
        if !host.view.docker_ok() {
            return Err(ActionError::DockerUnavailable(target.host.clone()));
        }
        let view = &host.view;
        let not_found = || ActionError::NotFound(target.clone());
        let lock_key = match target.target_type {
            TargetType::Stack => format!("{}/stack:{}", target.host, target.target_id),
            // A container of a stack shares the stack's lock, so a click on one
            // container cannot interleave with a scheduled stop of its stack.
            TargetType::Container => match view.container(&target.target_id) {
                Some(Container { stack: Some(s), .. }) => format!("{}/stack:{s}", target.host),
                Some(c) => format!("{}/container:{}", target.host, c.name),
                None => return Err(not_found()),
            },
            // Expanded by `run`; one reaching here was handed to run_leaving_out.
            TargetType::Group => return Err(ActionError::InvalidTarget("a group is acted on stack by stack".into())),
            TargetType::Sequence => {
                return Err(ActionError::InvalidTarget(
                    "a sequence is a schedule's steps, run by the scheduler".into(),
                ));
            }
            TargetType::Service | TargetType::SwarmStack => {
                let _guard = self.lock_target(format!("{}/swarm", target.host)).await;
                return self.run_swarm(&host, target, action).await;
            }
        };
        let _guard = self.lock_target(lock_key).await;

        // Membership is read after the lock: the previous action may have changed it.
        let mut members = match target.target_type {
            TargetType::Stack => view.stack(&target.target_id).map(|s| s.containers),
            _ => view.container(&target.target_id).map(|c| vec![c]),
        }
        .ok_or_else(not_found)?;
        members.retain(|c| !leave_out.contains(&c.name));
        if action.interrupts() && target.host == LOCAL_HOST && self.is_self_among(&members) {
            return Err(ActionError::SelfProtection(action));
        }
        let protected = protected_among(&members, action);
        if refuse_protected && !protected.is_empty() {
            return Err(ActionError::Protected { action, names: protected });
        }

        let on = On { host: &host, health_timeout: self.health_timeout };
        if action == Action::Run {
            let [c] = members.as_slice() else { return Err(not_found()) };
            let (result, run) = on.run_to_exit(c, run_timeout).await;
            return Ok(ActionResult { run: Some(run), ..ActionResult::of(target, action, vec![result]) });
        }
        let levels = dependency_levels(&members);
        let results = match action {
            Action::Start | Action::Unpause => on.forward(&levels, action).await,
            Action::Stop | Action::Pause => on.backward(&levels, action).await,
            Action::Restart if target.target_type == TargetType::Stack => {
                let mut stopped = on.backward(&levels, Action::Stop).await;
                let started = on.forward(&levels, Action::Start).await;
                merge_results(&mut stopped, started);
                stopped
            }
            Action::Restart => on.forward(&levels, Action::Restart).await,
            Action::Run => unreachable!("handled above"),
        };
        Ok(ActionResult::of(target, action, results))
    }

    async fn lock_target(&self, key: String) -> TargetGuard<'_> {
        let lock = self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone();
        TargetGuard { locks: &self.locks, key, guard: Some(lock.lock_owned().await) }
    }

    fn is_self_among(&self, members: &[Container]) -> bool {
        let Some(me) = &self.self_id else { return false };
        members.iter().any(|c| c.id.starts_with(me.as_str()) || me.starts_with(c.id.as_str()))
    }
}

/// The container steps of one action, on one host.
struct On<'a> {
    host: &'a Host,
    health_timeout: Duration,
}

impl On<'_> {
    fn engine(&self) -> &dyn Engine {
        &*self.host.engine
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
            let (blocked, ready): (Vec<&Member>, Vec<&Member>) =
                level.iter().partition(|m| held.contains_key(&m.service));
            for m in blocked {
                let why =
                    format!("skipped: '{}', which depends on it, failed to {}", held[&m.service], action.as_str());
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
            match self.engine().exit_code(&c.id).await {
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
            match self.engine().health(&c.id).await {
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
        let view = &self.host.view;
        let state = match view.unless_lost(self.engine().list(Some(&c.id))).await {
            Ok(mut v) => match v.pop() {
                Some(fresh) => fresh.state,
                None => return failed(c, "container no longer exists".into()),
            },
            Err(e) => return failed(c, e.to_string()),
        };
        for step in plan(action, state) {
            match view.unless_lost(self.engine().act(&c.id, *step)).await {
                Ok(()) | Err(DockerError::NotModified) => {}
                Err(e) => return failed(c, e.to_string()),
            }
        }
        ContainerResult { container: c.name.clone(), ok: true, error: None }
    }
}

/// The `docknap.protect=true` containers among `members` that `action`
/// would take down (stop, pause, restart).
pub fn protected_among(members: &[Container], action: Action) -> Vec<String> {
    if !action.interrupts() {
        return Vec::new();
    }
    members.iter().filter(|c| c.is_protected()).map(|c| c.name.clone()).collect()
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
pub fn plan(action: Action, state: ContainerState) -> &'static [Action] {
    use Action::*;
    use ContainerState::{Paused, Restarting, Running};
    match (action, state) {
        (Start, Paused) => &[Unpause],
        (Start, _) => &[Start],
        (Stop, Running | Restarting) => &[Stop],
        (Stop, Paused) => &[Unpause, Stop],
        (Stop, _) => &[],
        (Restart, Paused) => &[Unpause, Restart],
        (Restart, _) => &[Restart],
        (Pause, Running) => &[Pause],
        // Paused already, or not running: nothing to freeze.
        (Pause, _) => &[],
        (Unpause, Paused) => &[Unpause],
        (Unpause, _) => &[],
        // Not a state change: a run is started and waited for by `run_to_exit`.
        (Run, _) => &[],
    }
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
