//! The engine that fires schedules: one task that sleeps until the earliest
//! next fire and is woken at once by any schedule change; each fire runs on
//! its own task so a slow stop never delays another schedule.

use std::collections::HashSet;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};

use super::cron::plan_missed;
use super::plan::{LOOK_AGAIN, Plan, Planned};
use super::{Scheduler, Timing};
use crate::actions::Trigger;
use crate::events::Event;
use crate::model::{LastRun, NewAuditEntry, Schedule};
use crate::store::StoreError;

/// The engine re-plans at least this often even when nothing is due, so a
/// wall-clock jump or a host suspend (monotonic timers stop while suspended)
/// is noticed within a minute. One wake-up a minute costs nothing measurable.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How long a fire waits for an engine that is not connected (yet) before
/// it runs anyway and fails with "unreachable".
const ENGINE_WAIT: Duration = Duration::from_secs(15);

/// A schedule's run in progress; dropping it (also on a panic) ends it.
pub(super) struct Running {
    set: Arc<StdMutex<HashSet<i64>>>,
    id: i64,
}

impl Running {
    pub(super) fn claim(set: &Arc<StdMutex<HashSet<i64>>>, id: i64) -> Option<Running> {
        set.lock().unwrap_or_else(|e| e.into_inner()).insert(id).then(|| Running { set: set.clone(), id })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

impl Scheduler {
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
    /// Only the schedules whose next instant has come are looked at; the
    /// store is read in full once, then each change updates its own entry.
    pub(super) async fn tick(self: &Arc<Self>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let _g = self.dispatch.lock().await;
        let now = self.clock.now();
        if !self.started.load(std::sync::atomic::Ordering::Relaxed) || !self.plan().is_loaded() {
            let all = self.store.run(|s| s.schedules()).await?;
            if !self.started.swap(true, std::sync::atomic::Ordering::Relaxed) {
                self.account_for_cut_off_runs(&all).await;
            }
            self.plan().load(&all);
        }
        let due = self.plan().due(now);
        for (e, from) in due {
            let remembered = self.handled.lock().unwrap_or_else(|e| e.into_inner()).get(&e.id).copied();
            let from = remembered.map_or(from, |r| r.max(from));
            let plan = plan_missed(e.timing.fires(), e.tz, from, now);
            let once_done = matches!(e.timing, Timing::At(at) if at <= now);
            let retire = once_done && plan.run_late.is_none() && !self.is_running(e.id);
            // Nothing more to come (a one-time schedule whose run goes on, or
            // that could not be retired): looked at again within a minute.
            let next = plan.next.unwrap_or(now + LOOK_AGAIN);
            if plan.missed_total == 0 && plan.run_late.is_none() && !retire {
                self.plan().planned(e.id, from, next);
                continue;
            }
            let id = e.id;
            // An error leaves the entry due: the next tick tries again.
            let schedule = self.store.run(move |s| s.schedule(id)).await?;
            self.plan().planned(id, now, next);
            if plan.missed_total > 0 {
                let why = "while DockNap was not running or the clock jumped";
                self.audit_missed(&schedule, &plan.missed, plan.missed_total, why);
            }
            if plan.missed_total > 0 || plan.run_late.is_some() {
                // Claimed before the run starts, so a restart mid-run does not repeat it.
                self.handled.lock().unwrap_or_else(|e| e.into_inner()).insert(id, now);
                let running = plan.run_late;
                if let Err(e) = self.store.run(move |s| s.set_checked_until(id, now, running)).await {
                    // The run goes ahead: a full disk must not stop schedules.
                    tracing::error!(error = %e, schedule = id, "could not record a fire as handled; keeping it in memory");
                }
            }
            if retire {
                // Its instant passed (run, missed, or cut off): it is over.
                self.retire(&schedule).await;
                continue;
            }
            if let Some(at) = plan.run_late {
                // A run that outlasts its period would otherwise queue fires
                // on the target lock and replay them back to back.
                if let Some(running) = Running::claim(&self.running, id) {
                    let this = Arc::clone(self);
                    tokio::spawn(async move {
                        let _running = running;
                        this.fire(schedule, at).await
                    });
                } else {
                    self.audit_missed(&schedule, &[at], 1, "because its previous run was still going");
                }
            }
        }
        Ok(self.plan().earliest())
    }

    pub(super) fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every planned schedule, the store read first when the plan is not
    /// loaded (under the dispatch lock, so no change made meanwhile is lost).
    pub(super) async fn planned(&self) -> Result<Vec<Arc<Planned>>, StoreError> {
        if !self.plan().is_loaded() {
            let _g = self.dispatch.lock().await;
            if !self.plan().is_loaded() {
                let all = self.store.run(|s| s.schedules()).await?;
                self.plan().load(&all);
            }
        }
        Ok(self.plan().all())
    }

    /// A run that was under way when the previous process died (kill -9,
    /// power loss) did not finish as far as anyone knows: audited as missed,
    /// never repeated.
    async fn account_for_cut_off_runs(&self, all: &[Schedule]) {
        for s in all {
            let Some(due) = s.running_due else { continue };
            let id = s.id;
            // Killed after the run's audit entry was written: it finished, and is not also missed.
            let finished = self.store.run(move |st| st.scheduled_run_audited(id, due)).await.unwrap_or(false);
            if !finished {
                self.audit_missed(
                    s,
                    &[due],
                    1,
                    "because DockNap stopped before this run finished (it is not repeated)",
                );
            }
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
    async fn wait_for_engine(&self, host: &str) {
        // A group's hosts are each waited for by nothing: its run reports each.
        if host == crate::model::ALL_HOSTS {
            return;
        }
        let mut changes = self.events.subscribe();
        let deadline = tokio::time::sleep(ENGINE_WAIT);
        tokio::pin!(deadline);
        while !self.actions.host_ok(host) {
            tokio::select! {
                r = changes.recv() => if let Err(broadcast::error::RecvError::Closed) = r { return },
                _ = &mut deadline => return,
            }
        }
    }

    pub(super) fn audit_missed(&self, s: &Schedule, missed: &[DateTime<Utc>], total: usize, why: &str) {
        let message = match (missed.first(), missed.last()) {
            (Some(a), Some(b)) if total > 1 => format!("missed {total} runs between {a} and {b} {why}"),
            (Some(a), _) => format!("missed the run due at {a} {why}"),
            _ => format!("missed {total} runs {why}"),
        };
        self.audit.record(
            NewAuditEntry::new("scheduler", crate::model::AuditAction::Missed, false, message)
                .on(&s.fields.target())
                .details(serde_json::json!({ "schedule_id": s.id, "missed": missed, "missed_total": total })),
        );
    }

    fn is_running(&self, id: i64) -> bool {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).contains(&id)
    }

    /// A one-time schedule whose instant has passed is disabled (`next_run: null`).
    async fn retire(&self, s: &Schedule) {
        let id = s.id;
        match self.store.run(move |st| st.set_schedule_enabled(id, false)).await {
            Ok(updated) => {
                self.plan().remove(id);
                tracing::info!(schedule = id, "a one-time schedule ran its course and is now disabled");
                self.events.publish(Event::Schedule { id, schedule: Some(self.view(&updated)) });
            }
            Err(e) => tracing::error!(error = %e, schedule = id, "could not disable a one-time schedule"),
        }
    }

    async fn fire(&self, s: Schedule, due: DateTime<Utc>) {
        let f = &s.fields;
        self.wait_for_engine(&f.host).await;
        if !self.still_wanted(&s).await {
            tracing::info!(schedule = s.id, "a fire was dropped: the schedule was deleted, disabled or changed");
            return;
        }
        let late = (self.clock.now() - due).num_milliseconds();
        tracing::info!(schedule = s.id, action = %f.action, host = %f.host, target = %f.target_id, due = ?due, late_ms = late, "schedule fired");
        let outcome = self.execute(&s, &Trigger::Scheduled { schedule_id: s.id, due }).await;
        let (ok, mut message) = match &outcome {
            Ok(r) => (r.ok, r.summary()),
            Err(e) => (false, e.to_string()),
        };
        crate::metrics::global().schedule_run(f.action, ok, late as f64 / 1000.0);
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
            host: f.host.clone(),
            target_type: f.target_type,
            target_id: f.target_id.clone(),
            action: f.action,
            at: due,
            ok,
            message,
        });
        if f.at.is_some() {
            self.retire(&s).await;
        } else if let Ok(updated) = self.stored(s.id).await {
            self.events.publish(Event::Schedule { id: s.id, schedule: Some(self.view(&updated)) });
        }
    }
}
