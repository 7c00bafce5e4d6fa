//! Schedules and windows as code: container labels define them (see
//! [`parse`]); this service keeps the stored label objects equal to what the
//! labels of each connected host's containers say, as containers appear,
//! change and go (the view follows the engine's events). Objects of a host
//! that is unreachable are kept as they were until it answers again; those
//! of a host that was removed go with it.

pub mod parse;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::{broadcast, watch};

use crate::docker::Fleet;
use crate::events::Events;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::window::Windows;

/// A `compose up` replaces containers one by one: wait until the fleet is
/// quiet this long (at most [`SETTLE_MAX`]) so its halfway states are not
/// taken for the labels.
const SETTLE: Duration = Duration::from_millis(400);
const SETTLE_MAX: Duration = Duration::from_secs(3);
/// An object whose labels vanish is deleted only when they stay away this
/// long: while `compose up` re-creates a container, or while the view
/// catches up with a busy engine, they can be missing for a moment, and the
/// object (its id, its run history) must survive that.
pub const DELETE_AFTER: Duration = Duration::from_secs(5);

pub struct Labels {
    store: Arc<Store>,
    fleet: Arc<Fleet>,
    scheduler: Arc<Scheduler>,
    windows: Arc<Windows>,
    default_tz: Tz,
    /// Per host: the keys defined at the last sync, and since when each key
    /// that was defined is missing.
    seen: Mutex<HashMap<String, Seen>>,
}

#[derive(Default)]
struct Seen {
    defined: HashSet<String>,
    missing_since: HashMap<String, tokio::time::Instant>,
}

impl Seen {
    /// The keys to keep although not defined now; `true` when some of them
    /// will be due for deletion later (a sync is owed then).
    fn keep(&mut self, now_defined: HashSet<String>, at: tokio::time::Instant) -> (Vec<String>, bool) {
        for k in self.defined.difference(&now_defined) {
            self.missing_since.entry(k.clone()).or_insert(at);
        }
        self.missing_since.retain(|k, since| !now_defined.contains(k) && at.duration_since(*since) < DELETE_AFTER);
        self.defined = now_defined;
        let keep: Vec<String> = self.missing_since.keys().cloned().collect();
        let pending = !keep.is_empty();
        (keep, pending)
    }
}

impl Labels {
    pub fn new(
        store: Arc<Store>,
        fleet: Arc<Fleet>,
        scheduler: Arc<Scheduler>,
        windows: Arc<Windows>,
        default_tz: Tz,
    ) -> Labels {
        Labels { store, fleet, scheduler, windows, default_tz, seen: Mutex::default() }
    }

    /// What decides a sync: the containers of every host, and which hosts answer.
    fn state(&self) -> (u64, Vec<(String, bool)>) {
        let hosts = self.fleet.all().iter().map(|h| (h.name().to_string(), h.view.docker_ok())).collect();
        (self.fleet.generation(), hosts)
    }

    /// Syncs whenever the fleet changes: woken by the events that change
    /// what [`Labels::state`] reads (containers, stacks, engines, hosts), so
    /// an idle DockNap never wakes this task.
    pub async fn run(self: Arc<Self>, events: Events, mut stop: watch::Receiver<bool>) {
        // Subscribed before the first look: no change can fall between the two.
        let mut changes = events.subscribe();
        let mut synced = None;
        // Set while objects whose labels vanished wait for DELETE_AFTER.
        let mut owed: Option<tokio::time::Instant> = None;
        loop {
            let now = self.state();
            let due = owed.is_some_and(|at| tokio::time::Instant::now() >= at);
            if synced.as_ref() != Some(&now) || due {
                let settled = tokio::select! {
                    s = self.settle(now) => s,
                    _ = stop.changed() => return,
                };
                let pending = self.sync_all().await;
                owed = pending.then(|| tokio::time::Instant::now() + DELETE_AFTER);
                synced = Some(settled);
            }
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = crate::clock::sleep_until_or_never(owed) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Waits until nothing changed for [`SETTLE`] (or [`SETTLE_MAX`]).
    async fn settle(&self, mut seen: (u64, Vec<(String, bool)>)) -> (u64, Vec<(String, bool)>) {
        let began = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(SETTLE).await;
            let now = self.state();
            if now == seen || began.elapsed() >= SETTLE_MAX {
                return now;
            }
            seen = now;
        }
    }

    /// One pass over the connected hosts, and the hosts that are gone.
    /// `true` when objects whose labels vanished are kept for now.
    pub async fn sync_all(&self) -> bool {
        let gone: Vec<String> = match self.store.run(|s| s.label_hosts()).await {
            Ok(hosts) => hosts.into_iter().filter(|h| self.fleet.get(h).is_none()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read which hosts have label objects");
                Vec::new()
            }
        };
        let mut pending = false;
        for host in gone {
            // Its containers are gone for good: no grace.
            self.seen.lock().unwrap_or_else(|e| e.into_inner()).remove(&host);
            self.apply(&host, parse::Defined::default(), Vec::new()).await;
        }
        for host in self.fleet.all() {
            if !host.view.docker_ok() {
                continue;
            }
            let defined = parse::defined(host.name(), &host.view.containers(), self.default_tz, chrono::Utc::now());
            let keys = defined
                .schedules
                .iter()
                .map(|(_, l)| &l.key)
                .chain(defined.windows.iter().map(|(_, l)| &l.key))
                .cloned()
                .collect();
            let (keep, later) = self
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(host.name().to_string())
                .or_default()
                .keep(keys, tokio::time::Instant::now());
            pending |= later;
            self.apply(host.name(), defined, keep).await;
        }
        pending
    }

    /// Makes one host's label objects `defined`.
    async fn apply(&self, host: &str, defined: parse::Defined, keep: Vec<String>) {
        let began = std::time::Instant::now();
        let (schedules, windows) = (defined.schedules.len(), defined.windows.len());
        let mut changed = 0;
        match self.scheduler.sync_labels(host, defined.schedules, keep.clone()).await {
            Ok(n) => changed += n,
            Err(e) => tracing::warn!(host, error = %e, "could not apply the schedules of container labels"),
        }
        match self.windows.sync_labels(host, defined.windows, keep).await {
            Ok(n) => changed += n,
            Err(e) => tracing::warn!(host, error = %e, "could not apply the windows of container labels"),
        }
        if changed > 0 {
            let ms = began.elapsed().as_millis() as u64;
            tracing::info!(host, schedules, windows, changed, ms, "container labels applied");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_key_that_vanishes_is_kept_until_it_stays_away_for_the_delay() {
        let set = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<HashSet<String>>();
        let mut seen = Seen::default();
        let t0 = tokio::time::Instant::now();
        assert_eq!(seen.keep(set(&["a", "b"]), t0), (vec![], false));
        assert_eq!(
            seen.keep(set(&["a"]), t0 + Duration::from_secs(1)),
            (vec!["b".to_string()], true),
            "b just vanished"
        );
        assert_eq!(
            seen.keep(set(&["a", "b"]), t0 + Duration::from_secs(2)),
            (vec![], false),
            "b is back: nothing to delete"
        );
        seen.keep(set(&["a"]), t0 + Duration::from_secs(3));
        assert_eq!(seen.keep(set(&["a"]), t0 + Duration::from_secs(7)), (vec!["b".to_string()], true));
        assert_eq!(seen.keep(set(&["a"]), t0 + Duration::from_secs(8)), (vec![], false), "gone 5 s: deleted now");
    }
}
