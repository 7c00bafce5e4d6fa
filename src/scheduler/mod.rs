//! Schedules: validation and CRUD (domain level, no HTTP), and the engine that
//! fires them. The engine is one task that sleeps until the earliest next
//! fire and is woken at once by any schedule change; each fire runs on its
//! own task so a slow stop never delays another schedule.

pub mod cron;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::{Mutex, Notify, broadcast, watch};

use self::cron::{CronError, CronExpr, parse_timezone, plan_missed};
use crate::actions::{ActionError, Actions, Trigger};
use crate::audit::Audit;
use crate::clock::Clock;
use crate::events::{Event, Events};
use crate::model::{
    Action, ActionResult, LOCAL_HOST, LastRun, NewAuditEntry, Schedule, ScheduleFields, ScheduleView, TargetType, Upcoming,
};
use crate::store::{Store, StoreError};

/// The engine re-plans at least this often even when nothing is due, so a
/// wall-clock jump or a host suspend (monotonic timers stop while suspended)
/// is noticed within a minute. One wake-up a minute costs nothing measurable.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How long a fire waits for an engine that is not connected (yet) before
/// it runs anyway and fails with "unreachable".
const ENGINE_WAIT: Duration = Duration::from_secs(15);

pub const MAX_TARGET_LEN: usize = 255;
pub const MAX_PREVIEW: usize = 100;

/// A create or update request; on update, `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ScheduleInput {
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Cron(#[from] CronError),
    #[error("missing field '{0}'")]
    MissingField(&'static str),
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("no schedule with id {0}")]
    NotFound(i64),
    #[error(transparent)]
    Store(StoreError),
}

fn store_err(id: i64) -> impl Fn(StoreError) -> ScheduleError {
    move |e| match e {
        StoreError::NotFound => ScheduleError::NotFound(id),
        e => ScheduleError::Store(e),
    }
}

/// A schedule with its parsed expression and zone.
struct Compiled {
    schedule: Schedule,
    expr: CronExpr,
    tz: Tz,
}

impl Compiled {
    fn new(schedule: Schedule) -> Option<Compiled> {
        let expr = CronExpr::parse(&schedule.fields.cron).ok()?;
        let tz = parse_timezone(&schedule.fields.timezone).ok()?;
        Some(Compiled { schedule, expr, tz })
    }
}

pub struct Scheduler {
    store: Arc<Store>,
    actions: Arc<Actions>,
    audit: Arc<Audit>,
    events: Events,
    clock: Arc<dyn Clock>,
    default_tz: Tz,
    wake: Notify,
    /// Held while a schedule is changed and while a fire is dispatched, so a
    /// fire never acts on a schedule that was deleted or disabled before it.
    dispatch: Mutex<()>,
    /// Schedules with a run in progress.
    running: Arc<StdMutex<HashSet<i64>>>,
    /// Fires handled up to here, per schedule, when the store could not
    /// record it (disk full): the plan holds in memory, so nothing runs twice.
    handled: StdMutex<std::collections::HashMap<i64, DateTime<Utc>>>,
    /// Set after the first tick: runs cut off by a previous process's death
    /// are looked for once, at start-up.
    started: std::sync::atomic::AtomicBool,
}

/// A schedule's run in progress; dropping it (also on a panic) ends it.
struct Running {
    set: Arc<StdMutex<HashSet<i64>>>,
    id: i64,
}

impl Running {
    fn claim(set: &Arc<StdMutex<HashSet<i64>>>, id: i64) -> Option<Running> {
        set.lock().unwrap_or_else(|e| e.into_inner()).insert(id).then(|| Running { set: set.clone(), id })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

impl Scheduler {
    pub fn new(
        store: Arc<Store>,
        actions: Arc<Actions>,
        audit: Arc<Audit>,
        events: Events,
        clock: Arc<dyn Clock>,
        default_tz: Tz,
    ) -> Scheduler {
        let (wake, dispatch, running) = (Notify::new(), Mutex::new(()), Arc::default());
        Scheduler { store, actions, audit, events, clock, default_tz, wake, dispatch, running, handled: StdMutex::default(), started: Default::default() }
    }

    // ---- domain operations behind the API ----

    pub fn view(&self, s: &Schedule) -> ScheduleView {
        let f = &s.fields;
        let next_run = if f.enabled {
            Compiled::new(s.clone()).and_then(|c| c.expr.next_after(self.clock.now(), c.tz))
        } else {
            None
        };
        ScheduleView {
            id: s.id,
            host: LOCAL_HOST.to_string(),
            target_type: f.target_type,
            target_id: f.target_id.clone(),
            action: f.action,
            cron: f.cron.clone(),
            timezone: f.timezone.clone(),
            enabled: f.enabled,
            created_at: s.created_at,
            updated_at: s.updated_at,
            next_run,
            last_run: s.last_run.clone(),
            conflicts: Vec::new(),
        }
    }

    /// The zone of schedules created without one (`DOCKNAP_TZ`).
    pub fn default_timezone(&self) -> &'static str {
        self.default_tz.name()
    }

    pub async fn list(&self) -> Result<Vec<ScheduleView>, ScheduleError> {
        Ok(self.store.run(|s| s.schedules()).await.map_err(store_err(0))?.iter().map(|s| self.view(s)).collect())
    }

    pub async fn get(&self, id: i64) -> Result<ScheduleView, ScheduleError> {
        Ok(self.view(&self.stored(id).await?))
    }

    async fn stored(&self, id: i64) -> Result<Schedule, ScheduleError> {
        self.store.run(move |s| s.schedule(id)).await.map_err(store_err(id))
    }

    fn validate(&self, input: ScheduleInput, current: Option<&ScheduleFields>) -> Result<ScheduleFields, ScheduleError> {
        fn pick<T: Clone>(new: Option<T>, old: Option<&T>, name: &'static str) -> Result<T, ScheduleError> {
            new.or_else(|| old.cloned()).ok_or(ScheduleError::MissingField(name))
        }
        let target_type: TargetType = match input.target_type {
            Some(t) => t.parse().map_err(ActionError::from)?,
            None => pick(None, current.map(|c| &c.target_type), "target_type")?,
        };
        let action: Action = match input.action {
            Some(a) => a.parse().map_err(ActionError::from)?,
            None => pick(None, current.map(|c| &c.action), "action")?,
        };
        let target_id = target_name(target_type, &pick(input.target_id, current.map(|c| &c.target_id), "target_id")?)?;
        let cron = CronExpr::parse(&pick(input.cron, current.map(|c| &c.cron), "cron")?)?.as_str().to_string();
        let timezone = match input.timezone.or_else(|| current.map(|c| c.timezone.clone())) {
            Some(tz) => parse_timezone(tz.trim())?.name().to_string(),
            None => self.default_tz.name().to_string(),
        };
        let enabled = input.enabled.or(current.map(|c| c.enabled)).unwrap_or(true);
        Ok(ScheduleFields { target_type, target_id, action, cron, timezone, enabled })
    }

    /// The schedule `input` would make (or make of schedule `id`), stored
    /// nowhere: the editor's `?dry_run=true`.
    pub async fn dry_run(&self, id: Option<i64>, input: ScheduleInput) -> Result<ScheduleView, ScheduleError> {
        let current = match id {
            Some(id) => Some(self.stored(id).await?),
            None => None,
        };
        let fields = self.validate(input, current.as_ref().map(|c| &c.fields))?;
        let now = self.clock.now();
        let s = Schedule {
            id: id.unwrap_or(0),
            fields,
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
            last_run: current.as_ref().and_then(|c| c.last_run.clone()),
            checked_until: None,
            running_due: None,
        };
        Ok(self.view(&s))
    }

    pub async fn create(&self, input: ScheduleInput, actor: &str) -> Result<ScheduleView, ScheduleError> {
        let fields = self.validate(input, None)?;
        let _g = self.dispatch.lock().await;
        let now = self.clock.now();
        let s = self.store.run(move |s| s.insert_schedule(&fields, now)).await.map_err(store_err(0))?;
        self.changed(&s, actor, "schedule_create")
    }

    pub async fn update(&self, id: i64, input: ScheduleInput, actor: &str) -> Result<ScheduleView, ScheduleError> {
        let _g = self.dispatch.lock().await;
        let current = self.stored(id).await?;
        let fields = self.validate(input, Some(&current.fields))?;
        let now = self.clock.now();
        let s = self.store.run(move |s| s.update_schedule(id, &fields, now)).await.map_err(store_err(id))?;
        self.changed(&s, actor, "schedule_update")
    }

    pub async fn delete(&self, id: i64, actor: &str) -> Result<(), ScheduleError> {
        let _g = self.dispatch.lock().await;
        let s = self.store.run(move |s| s.delete_schedule(id)).await.map_err(store_err(id))?;
        self.handled.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.audit.record(
            NewAuditEntry::new(actor, "schedule_delete", true, format!("deleted schedule {id}: {}", describe(&s.fields)))
                .target("schedule", &id.to_string()),
        );
        self.events.publish(Event::Schedule { id, schedule: None });
        self.wake.notify_one();
        Ok(())
    }

    fn changed(&self, s: &Schedule, actor: &str, what: &str) -> Result<ScheduleView, ScheduleError> {
        let view = self.view(s);
        self.audit.record(
            NewAuditEntry::new(actor, what, true, format!("schedule {}: {}", s.id, describe(&s.fields)))
                .target("schedule", &s.id.to_string()),
        );
        self.events.publish(Event::Schedule { id: s.id, schedule: Some(view.clone()) });
        self.wake.notify_one();
        Ok(view)
    }

    /// A person's "run now": the schedule's action, audited as a test run.
    /// It does not touch `last_run`, which says what the schedule itself did.
    pub async fn run_now(&self, id: i64, actor: &str) -> Result<ActionResult, ScheduleError> {
        let s = self.stored(id).await?;
        let f = &s.fields;
        let trigger = Trigger::TestRun { actor: actor.to_string(), schedule_id: id };
        Ok(self.actions.run(f.target_type, &f.target_id, f.action, &trigger).await?)
    }

    /// The next fires over all enabled schedules, soonest first: at most
    /// `limit`, none after `until`, and at most `per_schedule` of any one
    /// schedule (so an every-minute schedule cannot crowd the others out of
    /// a week's timeline).
    pub async fn upcoming(
        &self,
        limit: usize,
        until: Option<DateTime<Utc>>,
        per_schedule: Option<usize>,
    ) -> Result<Vec<Upcoming>, ScheduleError> {
        let now = self.clock.now();
        let compiled: Vec<Compiled> = self
            .store
            .run(|s| s.schedules())
            .await
            .map_err(store_err(0))?
            .into_iter()
            .filter(|s| s.fields.enabled)
            .filter_map(Compiled::new)
            .collect();
        // A k-way merge: one pending fire per schedule in a min-heap.
        let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = compiled
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.expr.next_after(now, c.tz).map(|t| Reverse((t, i))))
            .collect();
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut taken = vec![0usize; compiled.len()];
        while let Some(Reverse((at, i))) = heap.pop() {
            if out.len() >= limit || until.is_some_and(|u| at > u) {
                break;
            }
            let c = &compiled[i];
            out.push(Upcoming {
                schedule_id: c.schedule.id,
                target_type: c.schedule.fields.target_type,
                target_id: c.schedule.fields.target_id.clone(),
                action: c.schedule.fields.action,
                at,
            });
            taken[i] += 1;
            if per_schedule.is_some_and(|cap| taken[i] >= cap) {
                continue;
            }
            if let Some(next) = c.expr.next_after(at, c.tz) {
                heap.push(Reverse((next, i)));
            }
        }
        Ok(out)
    }

    pub fn preview(
        &self,
        cron: &str,
        timezone: Option<&str>,
        count: usize,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        let expr = CronExpr::parse(cron)?;
        let tz = timezone.map(|t| parse_timezone(t.trim())).transpose()?.unwrap_or(self.default_tz);
        Ok(expr.upcoming(after.unwrap_or_else(|| self.clock.now()), tz, count.min(MAX_PREVIEW)))
    }

    // ---- the engine ----

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let next = match self.tick().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "the scheduler could not read schedules; retrying");
                    Some(self.clock.now() + chrono::Duration::seconds(5))
                }
            };
            let sleep = next
                .map(|t| (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Handles every fire due by now and returns the earliest next one.
    async fn tick(self: &Arc<Self>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let _g = self.dispatch.lock().await;
        let now = self.clock.now();
        let mut earliest: Option<DateTime<Utc>> = None;
        let all = self.store.run(|s| s.schedules()).await?;
        if !self.started.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.account_for_cut_off_runs(&all).await;
        }
        for s in all.into_iter().filter(|s| s.fields.enabled) {
            let Some(c) = Compiled::new(s) else { continue };
            let stored = c.schedule.checked_until.unwrap_or(c.schedule.created_at);
            let remembered = self.handled.lock().unwrap_or_else(|e| e.into_inner()).get(&c.schedule.id).copied();
            let from = remembered.map_or(stored, |r| r.max(stored));
            let plan = plan_missed(&c.expr, c.tz, from, now);
            if plan.missed_total > 0 {
                let why = "while DockNap was not running or the clock jumped";
                self.audit_missed(&c.schedule, &plan.missed, plan.missed_total, why);
            }
            if plan.missed_total > 0 || plan.run_late.is_some() {
                // Claimed before the run starts, so a restart mid-run does not repeat it.
                let id = c.schedule.id;
                self.handled.lock().unwrap_or_else(|e| e.into_inner()).insert(id, now);
                let running = plan.run_late;
                if let Err(e) = self.store.run(move |s| s.set_checked_until(id, now, running)).await {
                    // The run goes ahead: a full disk must not stop schedules.
                    tracing::error!(error = %e, schedule = id, "could not record a fire as handled; keeping it in memory");
                }
            }
            if let Some(at) = plan.run_late {
                // A run that outlasts its period would otherwise queue fires
                // on the target lock and replay them back to back.
                if let Some(running) = Running::claim(&self.running, c.schedule.id) {
                    let this = Arc::clone(self);
                    tokio::spawn(async move {
                        let _running = running;
                        this.fire(c.schedule, at).await
                    });
                } else {
                    self.audit_missed(&c.schedule, &[at], 1, "because its previous run was still going");
                }
            }
            earliest = match (earliest, plan.next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(earliest)
    }

    /// A run that was under way when the previous process died (kill -9,
    /// power loss) did not finish as far as anyone knows: audited as missed,
    /// never repeated.
    async fn account_for_cut_off_runs(&self, all: &[Schedule]) {
        for s in all {
            let Some(due) = s.running_due else { continue };
            self.audit_missed(s, &[due], 1, "because DockNap stopped before this run finished (it is not repeated)");
            let id = s.id;
            if let Err(e) = self.store.run(move |st| st.clear_running(id)).await {
                tracing::warn!(error = %e, schedule = id, "could not clear a cut-off run");
            }
        }
    }

    /// Re-reads the schedule under the dispatch lock: a delete, disable or
    /// edit that got the lock after `tick` planned this fire wins. One that
    /// comes after this check finds the fire already under way.
    async fn still_wanted(&self, planned: &Schedule) -> bool {
        let _g = self.dispatch.lock().await;
        self.stored(planned.id).await.is_ok_and(|now| now.fields.enabled && now.fields == planned.fields)
    }

    /// A catch-up run is due at start-up before discovery has connected; give
    /// the engine a moment rather than failing the run with "unreachable".
    async fn wait_for_engine(&self) {
        let mut changes = self.events.subscribe();
        let deadline = tokio::time::sleep(ENGINE_WAIT);
        tokio::pin!(deadline);
        while !self.actions.docker_ok() {
            tokio::select! {
                r = changes.recv() => if let Err(broadcast::error::RecvError::Closed) = r { return },
                _ = &mut deadline => return,
            }
        }
    }

    fn audit_missed(&self, s: &Schedule, missed: &[DateTime<Utc>], total: usize, why: &str) {
        let message = match (missed.first(), missed.last()) {
            (Some(a), Some(b)) if total > 1 => format!("missed {total} runs between {a} and {b} {why}"),
            (Some(a), _) => format!("missed the run due at {a} {why}"),
            _ => format!("missed {total} runs {why}"),
        };
        self.audit.record(
            NewAuditEntry::new("scheduler", "missed", false, message)
                .target(s.fields.target_type.as_str(), &s.fields.target_id)
                .details(serde_json::json!({ "schedule_id": s.id, "missed": missed, "missed_total": total })),
        );
    }

    async fn fire(&self, s: Schedule, due: DateTime<Utc>) {
        let f = &s.fields;
        self.wait_for_engine().await;
        if !self.still_wanted(&s).await {
            tracing::info!(schedule = s.id, "a fire was dropped: the schedule was deleted, disabled or changed");
            return;
        }
        let late = (self.clock.now() - due).num_milliseconds();
        tracing::info!(schedule = s.id, action = %f.action, target = %f.target_id, due = ?due, late_ms = late, "schedule fired");
        let outcome = self.actions.run(f.target_type, &f.target_id, f.action, &Trigger::Scheduled { schedule_id: s.id, due }).await;
        let (ok, mut message) = match &outcome {
            Ok(r) => (r.ok, r.summary()),
            Err(e) => (false, e.to_string()),
        };
        if late > 60_000 {
            message = format!("{message} (ran {} s late)", late / 1000);
        }
        let run = LastRun { at: due, ok, message: message.clone() };
        let id = s.id;
        if let Err(e) = self.store.run(move |store| store.record_run(id, &run, None)).await {
            tracing::error!(error = %e, schedule = s.id, "could not record a run");
        }
        self.events.publish(Event::ScheduleRun {
            schedule_id: s.id,
            target_type: f.target_type,
            target_id: f.target_id.clone(),
            action: f.action,
            at: due,
            ok,
            message,
        });
        if let Ok(updated) = self.stored(s.id).await {
            self.events.publish(Event::Schedule { id: s.id, schedule: Some(self.view(&updated)) });
        }
    }
}

/// A target name as given (trimmed), if it can be one: schedules and
/// windows may name targets that do not exist yet.
pub fn target_name(target_type: TargetType, raw: &str) -> Result<String, ActionError> {
    let name = raw.trim();
    if name.is_empty() || name.len() > MAX_TARGET_LEN || name.chars().any(char::is_control) {
        return Err(ActionError::InvalidTarget(format!(
            "target_id must be a {target_type} name of 1 to {MAX_TARGET_LEN} characters"
        )));
    }
    Ok(name.to_string())
}

fn describe(f: &ScheduleFields) -> String {
    format!(
        "{} {} {} at '{}' ({}){}",
        f.action,
        f.target_type,
        f.target_id,
        f.cron,
        f.timezone,
        if f.enabled { "" } else { ", disabled" }
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Timelike;

    use super::*;
    use crate::actions::fake::{self, FakeEngine};
    use crate::model::AuditFilter;
    use crate::clock::FakeClock;
    use crate::model::{Container, LABEL_PROJECT, LABEL_SERVICE};

    struct Bench {
        _dir: tempfile::TempDir,
        clock: Arc<FakeClock>,
        engine: Arc<FakeEngine>,
        store: Arc<Store>,
        audit: Arc<Audit>,
        view: Arc<crate::docker::View>,
        scheduler: Arc<Scheduler>,
    }

    /// Stacks `a` and `b` with one running container each (`a-x-1`, `b-x-1`).
    fn bench() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let clock = Arc::new(FakeClock::at("2026-01-01T00:00:00Z"));
        let containers = ["a", "b"]
            .map(|p| {
                let labels = BTreeMap::from([(LABEL_PROJECT.to_string(), p.to_string()), (LABEL_SERVICE.to_string(), "x".to_string())]);
                Container::new(format!("id-{p}"), &format!("{p}-x-1"), "i".into(), "running".into(), String::new(), labels, Default::default())
            })
            .to_vec();
        let audit = Arc::new(Audit::new(store.clone(), clock.clone()));
        let events = Events::default();
        let (engine, view, actions) = fake::actions_with_events(containers, audit.clone(), events.clone());
        let scheduler = Arc::new(Scheduler::new(
            store.clone(),
            Arc::new(actions),
            audit.clone(),
            events,
            clock.clone(),
            chrono_tz::UTC,
        ));
        Bench { _dir: dir, clock, engine, store, audit, view, scheduler }
    }

    #[tokio::test]
    async fn upcoming_caps_each_schedule_so_none_crowds_out_the_others() {
        let b = bench();
        let every_minute = b.scheduler.create(input("stack", "a", "restart", "* * * * *"), "t").await.unwrap();
        let nightly = b.scheduler.create(input("stack", "b", "stop", "0 23 * * *"), "t").await.unwrap();
        let until = Some("2026-01-03T00:00:00Z".parse().unwrap());
        let ids = |v: Vec<Upcoming>| v.iter().map(|u| u.schedule_id).collect::<Vec<_>>();

        let crowded = ids(b.scheduler.upcoming(100, until, None).await.unwrap());
        assert_eq!(crowded.len(), 100);
        assert!(!crowded.contains(&nightly.id), "100 minutes hold no 23:00");

        let capped = ids(b.scheduler.upcoming(100, until, Some(10)).await.unwrap());
        assert_eq!(capped.iter().filter(|id| **id == every_minute.id).count(), 10);
        assert_eq!(capped.iter().filter(|id| **id == nightly.id).count(), 2, "both nights before `until`");
    }

    fn input(target_type: &str, target: &str, action: &str, cron: &str) -> ScheduleInput {
        ScheduleInput {
            target_type: Some(target_type.into()),
            target_id: Some(target.into()),
            action: Some(action.into()),
            cron: Some(cron.into()),
            ..Default::default()
        }
    }

    impl Bench {
        fn acts(&self) -> Vec<(String, Action)> {
            self.engine.acts.lock().unwrap().clone()
        }

        fn audit(&self, action: &str) -> Vec<crate::model::AuditEntry> {
            let filter = AuditFilter { limit: 100, action: Some(action.into()), ..Default::default() };
            self.audit.flush();
            self.store.audit(&filter).unwrap()
        }

        /// Lets spawned fires run until `done` holds (bounded).
        async fn settle(&self, done: impl Fn(&Bench) -> bool) {
            for _ in 0..2000 {
                if done(self) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            panic!("fires did not settle");
        }
    }

    #[tokio::test]
    async fn a_fire_planned_before_a_delete_or_disable_never_acts() {
        let b = bench();
        let deleted = b.scheduler.create(input("stack", "a", "stop", "* * * * * *"), "t").await.unwrap();
        let disabled = b.scheduler.create(input("container", "a-x-1", "stop", "* * * * * *"), "t").await.unwrap();
        let kept = b.scheduler.create(input("stack", "b", "stop", "* * * * * *"), "t").await.unwrap();
        b.clock.set("2026-01-01T00:00:01.500Z");

        // All three fires are planned (spawned) before the changes land: the
        // fires wait for the engine, which comes back only after the changes.
        b.view.set_docker_ok(false);
        b.scheduler.tick().await.unwrap();
        b.scheduler.delete(deleted.id, "t").await.unwrap();
        let off = ScheduleInput { enabled: Some(false), ..Default::default() };
        b.scheduler.update(disabled.id, off, "t").await.unwrap();
        b.view.set_docker_ok(true);

        b.settle(|b| b.store.schedule(kept.id).unwrap().last_run.is_some()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.acts(), [("id-b".to_string(), Action::Stop)]);
        assert!(b.store.schedule(disabled.id).unwrap().last_run.is_none());
        let runs = b.audit("stop");
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].details.as_ref().unwrap()["schedule_id"], kept.id);
    }

    #[tokio::test]
    async fn an_edit_that_keeps_the_timing_does_not_skip_a_due_fire() {
        let b = bench();
        let kept = b.scheduler.create(input("stack", "a", "stop", "0 * * * * *"), "t").await.unwrap();
        let retimed = b.scheduler.create(input("stack", "b", "stop", "0 * * * * *"), "t").await.unwrap();
        // The minute has struck, and the edits land before the tick sees it.
        b.clock.set("2026-01-01T00:01:00.001Z");
        let same = ScheduleInput { enabled: Some(true), target_id: Some("a".into()), ..Default::default() };
        b.scheduler.update(kept.id, same, "t").await.unwrap();
        let other = ScheduleInput { cron: Some("30 * * * * *".into()), ..Default::default() };
        b.scheduler.update(retimed.id, other, "t").await.unwrap();
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.store.schedule(kept.id).unwrap().last_run.is_some()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.acts(), [("id-a".to_string(), Action::Stop)], "the new timing starts afresh");
    }

    #[tokio::test]
    async fn a_gap_is_audited_as_missed_and_only_a_recent_fire_runs_once_late() {
        let b = bench();
        let every10s = b.scheduler.create(input("container", "a-x-1", "restart", "*/10 * * * * *"), "t").await.unwrap();
        let hourly = b.scheduler.create(input("container", "b-x-1", "restart", "0 0 * * * *"), "t").await.unwrap();

        // Down (or suspended) for five minutes: 30 fires of every10s were due.
        b.clock.set("2026-01-01T00:05:03Z");
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.store.schedule(every10s.id).unwrap().last_run.is_some()).await;
        assert_eq!(b.acts(), [("id-a".to_string(), Action::Restart)], "one late run, no burst");
        let run = b.store.schedule(every10s.id).unwrap().last_run.unwrap();
        assert_eq!((run.at, run.ok), ("2026-01-01T00:05:00Z".parse().unwrap(), true));
        let missed = b.audit("missed");
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].details.as_ref().unwrap()["missed_total"], 29);

        // The clock jumps 80 minutes: hourly's 01:00 fire is 20 minutes late,
        // beyond the catch-up window, so it is only audited.
        b.engine.acts.lock().unwrap().clear();
        b.clock.set("2026-01-01T01:20:00Z");
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.store.schedule(every10s.id).unwrap().last_run.unwrap().at.minute() == 20).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.acts(), [("id-a".to_string(), Action::Restart)]);
        assert!(b.store.schedule(hourly.id).unwrap().last_run.is_none());
        let missed = b.audit("missed");
        assert_eq!(missed.len(), 3, "{missed:?}");
        assert!(missed.iter().any(|e| e.details.as_ref().unwrap()["schedule_id"] == hourly.id));

        // Nothing is due again in the same instant: no second run.
        b.scheduler.tick().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.acts().len(), 1);
    }

    #[tokio::test]
    async fn a_run_cut_off_by_the_previous_process_is_audited_as_missed_once_and_not_repeated() {
        let b = bench();
        let s = b.scheduler.create(input("stack", "a", "stop", "0 * * * *"), "t").await.unwrap();
        // What a process killed during the 00:00 run left behind.
        let due = "2026-01-01T00:00:00Z".parse().unwrap();
        b.store.set_checked_until(s.id, due, Some(due)).unwrap();
        b.scheduler.tick().await.unwrap();
        b.scheduler.tick().await.unwrap();
        let missed = b.audit("missed");
        assert_eq!(missed.len(), 1, "{missed:?}");
        assert!(missed[0].message.contains("DockNap stopped before this run finished"), "{}", missed[0].message);
        assert_eq!(b.store.schedule(s.id).unwrap().running_due, None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(b.acts().is_empty(), "not repeated");
    }

    #[tokio::test]
    async fn when_the_disk_refuses_writes_due_fires_still_run_and_only_once() {
        let b = bench();
        let s = b.scheduler.create(input("container", "a-x-1", "restart", "* * * * * *"), "t").await.unwrap();
        // Stands in for a full disk: schedules can be read but not updated.
        let side = rusqlite::Connection::open(b._dir.path().join(crate::store::DB_FILE)).unwrap();
        side.execute_batch("CREATE TRIGGER full BEFORE UPDATE ON schedules BEGIN SELECT RAISE(ABORT, 'disk full'); END")
            .unwrap();
        b.clock.set("2026-01-01T00:00:01.100Z");
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.audit("restart").len() == 1).await;
        b.scheduler.tick().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(b.acts().len(), 1, "the fire ran once, remembered in memory");
        assert!(b.store.schedule(s.id).unwrap().last_run.is_none(), "its result could not be stored");
        side.execute_batch("DROP TRIGGER full").unwrap();
        b.clock.set("2026-01-01T00:00:02.100Z");
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.store.schedule(s.id).unwrap().last_run.is_some()).await;
        assert_eq!(b.acts().len(), 2);
    }

    #[tokio::test]
    async fn a_fire_while_the_previous_run_still_goes_is_skipped_not_queued() {
        let b = bench();
        *b.engine.delay.lock().unwrap() = Duration::from_millis(300);
        b.scheduler.create(input("container", "a-x-1", "restart", "* * * * * *"), "t").await.unwrap();
        b.clock.set("2026-01-01T00:00:01.100Z");
        b.scheduler.tick().await.unwrap();
        b.clock.set("2026-01-01T00:00:02.100Z");
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.scheduler.tick().await.unwrap();

        b.settle(|b| b.audit("restart").len() == 1).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(b.acts().len(), 1, "the second fire was not queued behind the first");
        let missed = b.audit("missed");
        assert_eq!(missed.len(), 1);
        assert!(missed[0].message.contains("previous run was still going"), "{}", missed[0].message);

        // Once the run is over, the next fire runs again.
        b.clock.set("2026-01-01T00:00:03.100Z");
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.audit("restart").len() == 2).await;
    }

    #[tokio::test]
    async fn the_wall_clock_stepped_forward_an_hour_audits_the_skipped_fires_and_runs_the_latest_once() {
        let b = bench();
        let every_minute = b.scheduler.create(input("container", "a-x-1", "restart", "* * * * *"), "t").await.unwrap();
        let half_past = b.scheduler.create(input("container", "b-x-1", "restart", "30 * * * *"), "t").await.unwrap();
        b.clock.set("2026-01-01T00:00:30Z");
        b.scheduler.tick().await.unwrap();
        assert!(b.acts().is_empty());

        // NTP (or a person) steps the clock forward an hour while DockNap runs.
        b.clock.set("2026-01-01T01:00:30Z");
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.store.schedule(every_minute.id).unwrap().last_run.is_some()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.acts(), [("id-a".to_string(), Action::Restart)], "one run, no burst of 60");
        let run = b.store.schedule(every_minute.id).unwrap().last_run.unwrap();
        assert_eq!(run.at, "2026-01-01T01:00:00Z".parse::<DateTime<Utc>>().unwrap(), "the latest fire, 30 s late");
        // 00:01 … 00:59 are missed; 00:30 of the other is 30 minutes late: missed, not run.
        let missed = b.audit("missed");
        let total = |id: i64| {
            missed.iter().find(|e| e.details.as_ref().unwrap()["schedule_id"] == id).map(|e| e.details.as_ref().unwrap()["missed_total"].clone())
        };
        assert_eq!(total(every_minute.id), Some(serde_json::json!(59)), "{missed:?}");
        assert_eq!(total(half_past.id), Some(serde_json::json!(1)), "{missed:?}");
        assert!(b.store.schedule(half_past.id).unwrap().last_run.is_none());

        // The same instant again, and the next minute: one run each, nothing replayed.
        b.scheduler.tick().await.unwrap();
        b.clock.set("2026-01-01T01:01:00.010Z");
        b.scheduler.tick().await.unwrap();
        b.settle(|b| b.audit("restart").len() == 2).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.acts().len(), 2);
        assert_eq!(b.audit("missed").len(), 2, "no new missed entries");
    }

    #[tokio::test]
    async fn the_wall_clock_stepped_back_an_hour_runs_no_fire_twice() {
        let b = bench();
        let s = b.scheduler.create(input("container", "a-x-1", "restart", "* * * * *"), "t").await.unwrap();
        for (i, at) in ["2026-01-01T00:01:00.010Z", "2026-01-01T00:02:00.010Z"].into_iter().enumerate() {
            b.clock.set(at);
            b.scheduler.tick().await.unwrap();
            b.settle(|b| b.audit("restart").len() == i + 1).await;
        }

        // Stepped back an hour: 23:02 … 00:02 happen again on the wall clock.
        // Every wall-clock minute up to 00:02 has run once already.
        for at in ["2025-12-31T23:02:00.010Z", "2025-12-31T23:03:00.010Z", "2025-12-31T23:59:00.010Z", "2026-01-01T00:01:00.010Z", "2026-01-01T00:02:00.010Z"] {
            b.clock.set(at);
            b.scheduler.tick().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(b.acts().len(), 2, "nothing ran twice");
        assert!(b.audit("missed").is_empty(), "and nothing is called missed: those minutes ran");

        // Past the furthest point reached before the step, runs go on, on time.
        b.clock.set("2026-01-01T00:03:00.010Z");
        b.scheduler.tick().await.unwrap();
        let at: DateTime<Utc> = "2026-01-01T00:03:00Z".parse().unwrap();
        // The action is audited a moment before the run is recorded.
        b.settle(|b| b.store.schedule(s.id).unwrap().last_run.is_some_and(|r| r.at == at)).await;
        assert_eq!(b.acts().len(), 3);
        assert!(b.audit("missed").is_empty());
    }
}
