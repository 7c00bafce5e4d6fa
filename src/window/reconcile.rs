//! The reconciler: one task that compares each enabled window's desired
//! state with its containers' and acts only on a difference. It sleeps until
//! the next boundary, override end or grace deadline, and wakes early on an
//! edit, an override, or an engine event (debounced). A pass that finds
//! nothing to change makes no engine call.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::model::Target;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};

use super::{Compiled, Windows};
use crate::actions::{ActionObserver, Trigger};
use crate::docker::fleet::Snapshot;
use crate::events::{Event, Published};
use crate::model::{
    Action, Container, ContainerState, Desired, DownAction, Enforce, NewAuditEntry, Override, TargetType,
};

/// Engine events come in bursts (a compose up): one pass after it settles.
const DEBOUNCE: Duration = Duration::from_millis(300);
/// Restarts by something else, in one down period, before a window stops
/// fighting over a container.
pub const MAX_FIGHTS: u32 = 3;
/// Longest sleep: a wall-clock step (or a suspend) that crosses a boundary
/// is acted on within this long, as the scheduler does (its `MAX_SLEEP`).
/// A pass with nothing to change makes no engine call, so this costs one
/// in-memory comparison a minute.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// What the reconciler remembers of one window between passes.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    /// The desired state of the last pass: a change is a boundary.
    pub(super) desired: Option<Desired>,
    /// Containers (or Swarm services) found running during down time, by name, and since when.
    pub(super) drift_since: HashMap<String, DateTime<Utc>>,
    /// Containers this window stopped in this down period (by name), and
    /// whether the list has shown them down since.
    stopped_now: HashMap<String, bool>,
    /// How often something else started each of them again.
    fights: HashMap<String, u32>,
    /// Containers the window gave up on until the next boundary.
    gave_up: BTreeSet<String>,
    /// Containers of a windowed stack acted on through DockNap: left alone
    /// until the next boundary.
    exempt: HashSet<String>,
}

impl Windows {
    /// Names the containers this window gave up on, if any.
    pub(super) fn gave_up(&self, id: i64) -> Option<String> {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory
            .get(&id)
            .filter(|m| !m.gave_up.is_empty())
            .map(|m| m.gave_up.iter().cloned().collect::<Vec<_>>().join(", "))
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut events = self.events.subscribe();
        loop {
            let began = std::time::Instant::now();
            let next = self.pass().await;
            tracing::debug!(pass_us = began.elapsed().as_micros() as u64, "reconcile pass");
            let sleep = next
                .map(|t| (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            let deadline = tokio::time::sleep(sleep);
            tokio::pin!(deadline);
            // Wait for the deadline, a wake-up, or a relevant engine event.
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    _ = self.wake.notified() => break,
                    _ = shutdown.changed() => return,
                    ev = events.recv() => match ev {
                        // A host came back (or went): its windows are judged afresh.
                        Ok(ev) if ev.name() == "docker" => break,
                        Ok(ev) if self.concerns(&ev) => {
                            tokio::time::sleep(DEBOUNCE).await;
                            break;
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        }
    }

    /// Does this engine event touch a windowed target? Stack events name
    /// their stack; container events, their container. Others' churn on a
    /// shared engine wakes nothing.
    fn concerns(&self, ev: &Published) -> bool {
        #[derive(serde::Deserialize)]
        struct Named {
            host: String,
            name: String,
        }
        let target_type = match ev.name() {
            "stack" => TargetType::Stack,
            "container" => TargetType::Container,
            // A service event may concern its service or its Swarm stack.
            "service" => return self.concerns_swarm(ev),
            _ => return false,
        };
        let Ok(Named { host, name }) = serde_json::from_str(ev.data()) else { return false };
        let all = self.windows.read().unwrap_or_else(|e| e.into_inner());
        all.iter().any(|c| {
            let f = &c.window.fields;
            f.enabled && f.host == host && f.target_type == target_type && f.target_id == name
        })
    }

    /// One pass over every enabled window; returns when the next one is due.
    pub(crate) async fn pass(self: &Arc<Self>) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        let mut next: Option<DateTime<Utc>> = None;
        let mut soonest = |t: Option<DateTime<Utc>>| {
            next = match (next, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let enabled: Vec<Compiled> = self.compiled().into_iter().filter(|c| c.window.fields.enabled).collect();
        let snapshot = self.fleet.snapshot();
        for c in super::order::pass_order(enabled, now, &snapshot) {
            soonest(c.next_change(now));
            soonest(self.keep(&c, now, &snapshot).await);
        }
        next
    }

    /// Brings one window's target to its desired state; returns the next
    /// grace deadline, if any is pending.
    /// `snapshot`: the fleet at the start of the pass.
    async fn keep(self: &Arc<Self>, c: &Compiled, now: DateTime<Utc>, snapshot: &Snapshot) -> Option<DateTime<Utc>> {
        let f = &c.window.fields;
        // An unreachable host's list is stale: nothing to judge until it is back.
        if !self.actions.host_ok(&f.host) {
            return None;
        }
        if f.target_type.is_swarm() {
            return self.keep_swarm(c, now).await;
        }
        let target = f.target();
        // (A container named by id rather than name is not in the snapshot.)
        let members = snapshot.members(&target).map(<[Container]>::to_vec).or_else(|| self.fleet.members(&target))?;
        let desired = c.desired(now);
        let (boundary, exempt) = {
            let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            let boundary = self.passed_boundary(&mut memory, c.window.id, desired);
            (boundary, memory.entry(c.window.id).or_default().exempt.clone())
        };
        let members: Vec<Container> =
            members.into_iter().filter(|m| !m.is_excluded() && !exempt.contains(&m.name)).collect();
        match desired {
            Desired::Up => {
                self.bring_up(c, &members, boundary).await;
                None
            }
            Desired::Down => self.keep_down(c, &members, now, boundary).await,
        }
    }

    /// Notes this pass's desired state; true when it changed (a boundary),
    /// which also forgets what the previous period remembered.
    pub(super) fn passed_boundary(&self, memory: &mut HashMap<i64, Memory>, id: i64, desired: Desired) -> bool {
        let m = memory.entry(id).or_default();
        let boundary = m.desired != Some(desired);
        if boundary {
            *m = Memory { desired: Some(desired), ..Memory::default() };
        }
        boundary
    }

    async fn bring_up(self: &Arc<Self>, c: &Compiled, members: &[Container], boundary: bool) {
        let f = &c.window.fields;
        // down_only leaves alone a stop made outside DockNap during up time;
        // what DockNap itself stopped still comes back (the engine's list may
        // show it running a moment after the boundary's pass).
        let only_ours = f.enforce == Enforce::DownOnly && !boundary;
        let mut to_start = Vec::new();
        for m in members.iter().filter(|m| !m.is_running() && (!only_ours || c.window.stopped.contains(&m.name))) {
            if !self.is_one_shot(c, m).await {
                to_start.push(m.name.clone());
            }
        }
        if to_start.is_empty() {
            return;
        }
        let started = self.act(c, Action::Start, &to_start).await;
        let target = f.target();
        if started && super::order::awaited_by_another(&target, &self.compiled(), self.clock.now(), &self.fleet) {
            // A stack another window brings up depends on this one: it goes first, healthy and settled.
            if let Err(e) = self.actions.wait_started(&target).await {
                tracing::warn!(window = c.window.id, target = %target, error = %e, "a stack others depend on did not become healthy");
            }
        }
        if !c.window.stopped.is_empty() {
            let id = c.window.id;
            self.remember_stopped(id, Vec::new()).await;
        }
    }

    /// One-shot jobs (exited 0, restart policy `no`) stay down at "up",
    /// unless this window is the one that stopped them.
    async fn is_one_shot(&self, c: &Compiled, m: &Container) -> bool {
        if m.state != ContainerState::Exited
            || c.window.stopped.contains(&m.name)
            || !m.status.starts_with("Exited (0)")
        {
            return false;
        }
        let Some(host) = self.fleet.get(&c.window.fields.host) else { return false };
        matches!(host.engine.restart_policy(&m.id).await.as_deref(), Ok("no"))
    }

    async fn keep_down(
        self: &Arc<Self>,
        c: &Compiled,
        members: &[Container],
        now: DateTime<Utc>,
        at_once: bool,
    ) -> Option<DateTime<Utc>> {
        let f = &c.window.fields;
        let up = |m: &&Container| match f.down_action {
            DownAction::Stop => matches!(m.state.as_str(), "running" | "restarting" | "paused"),
            DownAction::Pause => m.state == ContainerState::Running,
        };
        let running: Vec<&Container> = members.iter().filter(up).collect();
        let is_up: HashSet<&str> = running.iter().map(|r| r.name.as_str()).collect();
        // Listed running although we stopped it and never saw it down: the
        // list may lag behind our stop, so ask the engine (only then).
        let suspects: Vec<&Container> = {
            let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            let stopped = memory.get(&c.window.id).map(|m| &m.stopped_now);
            running.iter().copied().filter(|r| stopped.and_then(|s| s.get(&r.name)).is_some_and(|seen| !seen)).collect()
        };
        let mut lagging = HashSet::new();
        let host = self.fleet.get(&f.host)?;
        for r in suspects {
            let listed = host.engine.list(Some(&r.id)).await;
            if listed.is_ok_and(|l| l.first().is_none_or(|now| !matches!(now.state.as_str(), "running" | "restarting")))
            {
                lagging.insert(r.name.clone());
            }
        }
        let grace = chrono::Duration::seconds(i64::from(f.grace_seconds));
        let (due, pending) =
            {
                let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                let m = memory.entry(c.window.id).or_default();
                m.drift_since.retain(|n, _| is_up.contains(n.as_str()));
                for (name, seen_down) in m.stopped_now.iter_mut() {
                    *seen_down |= !is_up.contains(name.as_str());
                }
                let mut due = Vec::new();
                for r in &running {
                    if m.gave_up.contains(&r.name) {
                        continue;
                    }
                    if lagging.contains(&r.name) {
                        continue;
                    }
                    if m.stopped_now.remove(&r.name).is_some() {
                        let fights = m.fights.entry(r.name.clone()).or_default();
                        *fights += 1;
                        if *fights >= MAX_FIGHTS {
                            m.gave_up.insert(r.name.clone());
                            self.audit.record(
                            NewAuditEntry::new("window", crate::model::AuditAction::WindowGaveUp, false, format!(
                                "window {}: {} was started again {MAX_FIGHTS} times by something else in this down \
                                 period; leaving it alone until the next boundary",
                                c.window.id, r.name
                            ))
                            .on(&f.target()),
                        );
                            continue;
                        }
                    }
                    let since = *m.drift_since.entry(r.name.clone()).or_insert(now);
                    if at_once || now >= since + grace {
                        due.push(r.name.clone());
                    }
                }
                let pending = m.drift_since.iter().filter(|(n, _)| !due.contains(n)).map(|(_, s)| *s + grace).min();
                (due, pending)
            };
        if !due.is_empty() {
            let action = match f.down_action {
                DownAction::Stop => Action::Stop,
                DownAction::Pause => Action::Pause,
            };
            if self.act(c, action, &due).await {
                let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                let m = memory.entry(c.window.id).or_default();
                for n in &due {
                    m.drift_since.remove(n);
                    m.stopped_now.insert(n.clone(), false);
                }
            }
            if action == Action::Stop {
                let mut stopped: BTreeSet<String> = c.window.stopped.iter().cloned().collect();
                stopped.extend(due.iter().cloned());
                self.remember_stopped(c.window.id, stopped.into_iter().collect()).await;
            }
        }
        pending
    }

    /// Runs `action` on the target's `chosen` containers (in its order);
    /// true when all of them made it.
    async fn act(self: &Arc<Self>, c: &Compiled, action: Action, chosen: &[String]) -> bool {
        let f = &c.window.fields;
        let target = f.target();
        let all = self.fleet.members(&target).unwrap_or_default();
        let leave_out: Vec<String> = all.into_iter().map(|m| m.name).filter(|n| !chosen.contains(n)).collect();
        let trigger = Trigger::Window { window_id: c.window.id };
        let r = self.actions.run_leaving_out(&target, action, &trigger, leave_out).await;
        r.is_ok_and(|r| r.ok)
    }

    async fn remember_stopped(&self, id: i64, names: Vec<String>) {
        let kept = names.clone();
        if let Err(e) = self.store.run(move |s| s.set_window_stopped(id, &kept)).await {
            tracing::warn!(error = %e, window = id, "could not record which containers the window stopped");
            return;
        }
        let mut all = self.windows.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = all.iter_mut().find(|c| c.window.id == id) {
            c.window.stopped = names;
        }
    }

    /// The enabled window whose target is this one, or the stack this
    /// container belongs to.
    fn window_of(&self, target: &Target) -> Option<Compiled> {
        let stack = match target.target_type {
            TargetType::Container => self.fleet.stack_of(&target.host, &target.target_id),
            _ => None,
        };
        let all = self.compiled();
        let exact = all.iter().find(|c| c.window.fields.enabled && c.window.fields.target() == *target);
        exact
            .or_else(|| {
                all.iter().find(|c| {
                    let f = &c.window.fields;
                    f.enabled
                        && f.host == target.host
                        && f.target_type == TargetType::Stack
                        && Some(&f.target_id) == stack.as_ref()
                })
            })
            .cloned()
    }
}

#[async_trait::async_trait]
impl ActionObserver for Windows {
    /// A start, stop or pause made through DockNap on a windowed target (or a
    /// container of a windowed stack) becomes an override until the next
    /// boundary, instead of being undone as drift.
    async fn before(&self, target: &Target, action: Action, trigger: &Trigger) {
        let Some(up) = action.brings_up() else { return };
        let Some(c) = self.window_of(target) else { return };
        let now = self.clock.now();
        if c.window.fields.target_type != target.target_type {
            // One container of a windowed stack: that container alone is left
            // as the person set it, until the next boundary.
            let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            let m = memory.entry(c.window.id).or_default();
            m.desired.get_or_insert(c.desired(now));
            m.exempt.insert(target.target_id.clone());
            return;
        }
        let until = c.override_end(now);
        let o = Override {
            desired: Desired::from_up(up),
            until,
            by: trigger.actor().to_string(),
            reason: Some(format!("{action} {target} through DockNap")),
        };
        let id = c.window.id;
        let stored = o.clone();
        match self.store.run(move |s| s.set_override(id, Some(&stored))).await {
            Ok(w) => self.put(w),
            Err(e) => {
                tracing::warn!(error = %e, window = id, "could not record an override");
                return;
            }
        }
        self.audit.record(
            NewAuditEntry::new(
                trigger.actor(),
                crate::model::AuditAction::WindowOverride,
                true,
                format!(
                    "window {id}: kept {} until {} ({})",
                    o.desired,
                    until.to_rfc3339(),
                    o.reason.as_deref().unwrap_or_default()
                ),
            )
            .target("window", &id.to_string()),
        );
        if !up {
            // Stopped through DockNap: started again at the next "up", even
            // if it exits 0 like a finished one-shot job would.
            let mut stopped: BTreeSet<String> = c.window.stopped.iter().cloned().collect();
            stopped.extend(self.fleet.members(target).unwrap_or_default().into_iter().map(|m| m.name));
            self.remember_stopped(id, stopped.into_iter().collect()).await;
        }
        self.events.publish(Event::Window { id, window: self.get(id).await.ok() });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::actions::fake::{self, FakeEngine};
    use crate::audit::Audit;
    use crate::clock::FakeClock;
    use crate::docker::View;
    use crate::events::Events;
    use crate::model::{AuditFilter, LABEL_EXCLUDE, LABEL_PROJECT, LABEL_SERVICE};
    use crate::scheduler::Scheduler;
    use crate::store::Store;
    use crate::window::WindowInput;

    struct Bench {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        audit: Arc<Audit>,
        engine: Arc<FakeEngine>,
        view: Arc<View>,
        windows: Arc<Windows>,
        clock: Arc<FakeClock>,
    }

    /// Stack `a`: running `a-web-1` and `a-db-1`, and `a-keep-1` (excluded).
    fn bench() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let clock = Arc::new(FakeClock::at("2026-01-05T12:00:00Z"));
        let audit = Arc::new(Audit::new(store.clone(), clock.clone()));
        let containers = ["web", "db", "keep"]
            .map(|svc| {
                let mut labels = BTreeMap::from([
                    (LABEL_PROJECT.to_string(), "a".to_string()),
                    (LABEL_SERVICE.to_string(), svc.to_string()),
                ]);
                if svc == "keep" {
                    labels.insert(LABEL_EXCLUDE.to_string(), "true".to_string());
                }
                Container::new(
                    format!("id-{svc}"),
                    &format!("a-{svc}-1"),
                    "i".into(),
                    "running".into(),
                    "Up".into(),
                    labels,
                    Default::default(),
                )
            })
            .to_vec();
        let events = Events::default();
        let (engine, view, actions) = fake::actions_with_events(containers, audit.clone(), events.clone());
        let actions = Arc::new(actions);
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            actions.clone(),
            audit.clone(),
            events.clone(),
            clock.clone(),
            chrono_tz::UTC,
        ));
        let windows =
            Windows::new(store.clone(), actions, scheduler, audit.clone(), events, clock.clone(), chrono_tz::UTC)
                .unwrap();
        Bench { _dir: dir, store, audit, engine, view, windows, clock }
    }

    impl Bench {
        /// What discovery would do: the view catches up with the engine.
        fn refresh(&self) {
            self.view.replace_all(self.engine.containers.lock().unwrap().values().cloned().collect());
        }

        fn set_state(&self, id: &str, state: &str) {
            self.engine.containers.lock().unwrap().get_mut(id).unwrap().state = state.into();
            self.refresh();
        }

        fn state(&self, id: &str) -> String {
            self.engine.containers.lock().unwrap()[id].state.to_string()
        }

        fn calls(&self) -> usize {
            self.engine.calls.swap(0, Ordering::Relaxed)
        }
    }

    fn never(grace: &str) -> WindowInput {
        WindowInput {
            target_type: Some("stack".into()),
            target_id: Some("a".into()),
            spec: Some("never".into()),
            grace: Some(grace.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_pass_with_nothing_to_change_calls_the_engine_zero_times() {
        let b = bench();
        b.windows.create(never("0"), "t").await.unwrap();
        b.windows.pass().await;
        assert_eq!(
            (b.state("id-web"), b.state("id-db"), b.state("id-keep")),
            ("exited".into(), "exited".into(), "running".into())
        );
        b.refresh();
        b.calls();
        for _ in 0..3 {
            b.windows.pass().await;
        }
        assert_eq!(b.calls(), 0, "quiet passes make no engine call at all");
    }

    #[tokio::test]
    async fn three_restarts_by_another_tool_and_the_window_stops_fighting() {
        let b = bench();
        let w = b.windows.create(never("0"), "t").await.unwrap();
        b.windows.pass().await;
        // The list lags behind our stop: still "running" is not a fight.
        b.windows.pass().await;
        b.refresh();
        for round in 1..=MAX_FIGHTS {
            b.windows.pass().await; // sees it down
            b.set_state("id-web", "running"); // another tool starts it
            b.windows.pass().await;
            let expected = if round < MAX_FIGHTS { "exited" } else { "running" };
            assert_eq!(b.state("id-web"), expected, "round {round}");
            b.refresh();
        }
        let view = b.windows.get(w.id).await.unwrap();
        assert!(view.state.reason.as_deref().unwrap().contains("a-web-1"), "{:?}", view.state.reason);
        b.audit.flush();
        let gave_up = b
            .store
            .audit(&AuditFilter { limit: 5, action: Some("window_gave_up".into()), ..Default::default() })
            .unwrap();
        assert_eq!(gave_up.len(), 1);
    }

    #[tokio::test]
    async fn one_shot_and_excluded_containers_stay_down_at_up() {
        let b = bench();
        for (id, status) in [
            ("id-web", "Exited (137) 1 minute ago"),
            ("id-db", "Exited (0) 1 minute ago"),
            ("id-keep", "Exited (0) 1 minute ago"),
        ] {
            let mut all = b.engine.containers.lock().unwrap();
            let c = all.get_mut(id).unwrap();
            (c.state, c.status) = ("exited".into(), status.into());
        }
        b.refresh();
        let up = WindowInput { spec: Some("always".into()), ..never("0") };
        b.windows.create(up, "t").await.unwrap();
        b.windows.pass().await;
        assert_eq!(b.state("id-web"), "running", "stopped by a signal: a service");
        assert_eq!(b.state("id-db"), "exited", "exited 0 with restart policy no: a one-shot job");
        assert_eq!(b.state("id-keep"), "exited", "excluded");
    }

    #[tokio::test]
    async fn a_clock_step_across_a_boundary_flips_the_desired_state_once_and_acts_once() {
        let b = bench();
        // Monday 2026-01-05, up until 12:30; the bench's clock says 12:00.
        let up_till_half_past = WindowInput { spec: Some("Mon 00:00-12:30".into()), ..never("0") };
        b.windows.create(up_till_half_past, "t").await.unwrap();
        b.windows.pass().await;
        b.refresh();
        let window_acts = |action: &str| {
            b.audit.flush();
            let filter = AuditFilter {
                limit: 50,
                actor: Some("window".into()),
                action: Some(action.into()),
                ..Default::default()
            };
            b.store.audit(&filter).unwrap().len()
        };
        assert_eq!((b.state("id-web"), window_acts("stop")), ("running".into(), 0));

        // The wall clock steps forward an hour, past 12:30: down, once.
        b.clock.set("2026-01-05T13:00:00Z");
        for _ in 0..3 {
            b.windows.pass().await;
            b.refresh();
        }
        assert_eq!(
            (b.state("id-web"), b.state("id-db"), b.state("id-keep")),
            ("exited".into(), "exited".into(), "running".into())
        );
        assert_eq!(window_acts("stop"), 1, "one stop for the step, none for the passes after it");
        b.calls();
        b.windows.pass().await;
        assert_eq!(b.calls(), 0);

        // Stepped back an hour, before 12:30 again: a window is read on the
        // wall clock, so the target is up again, once.
        b.clock.set("2026-01-05T12:00:00Z");
        for _ in 0..3 {
            b.windows.pass().await;
            b.refresh();
        }
        assert_eq!((b.state("id-web"), b.state("id-db")), ("running".into(), "running".into()));
        assert_eq!((window_acts("start"), window_acts("stop")), (1, 1));

        // A step back that crosses no boundary changes nothing.
        b.clock.set("2026-01-05T11:00:00Z");
        b.calls();
        for _ in 0..3 {
            b.windows.pass().await;
        }
        assert_eq!((b.calls(), window_acts("start"), window_acts("stop")), (0, 1, 1));
    }
}
