//! Schedules and windows as code: container labels define them (see
//! [`parse`]); this service keeps the stored label objects equal to what the
//! labels of each connected host's containers say, as containers appear,
//! change and go (the view follows the engine's events). Objects of a host
//! that is unreachable are kept as they were until it answers again; those
//! of a host that was removed go with it.

pub mod parse;

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tokio::sync::watch;

use crate::docker::Fleet;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::window::Windows;

/// How often the fleet is looked at for changes (a counter read).
const POLL: Duration = Duration::from_millis(200);
/// A `compose up` replaces containers one by one: wait until the fleet is
/// quiet this long (at most [`SETTLE_MAX`]) so its halfway states are not
/// taken for the labels.
const SETTLE: Duration = Duration::from_millis(400);
const SETTLE_MAX: Duration = Duration::from_secs(3);

pub struct Labels {
    store: Arc<Store>,
    fleet: Arc<Fleet>,
    scheduler: Arc<Scheduler>,
    windows: Arc<Windows>,
    default_tz: Tz,
}

impl Labels {
    pub fn new(store: Arc<Store>, fleet: Arc<Fleet>, scheduler: Arc<Scheduler>, windows: Arc<Windows>, default_tz: Tz) -> Labels {
        Labels { store, fleet, scheduler, windows, default_tz }
    }

    /// What decides a sync: the containers of every host, and which hosts answer.
    fn state(&self) -> (u64, Vec<(String, bool)>) {
        let hosts = self.fleet.all().iter().map(|h| (h.name().to_string(), h.view.docker_ok())).collect();
        (self.fleet.generation(), hosts)
    }

    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut synced = None;
        loop {
            let now = self.state();
            if synced.as_ref() != Some(&now) {
                let settled = tokio::select! {
                    s = self.settle(now) => s,
                    _ = stop.changed() => return,
                };
                self.sync_all().await;
                synced = Some(settled);
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
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
    pub async fn sync_all(&self) {
        let gone: Vec<String> = match self.store.run(|s| s.label_hosts()).await {
            Ok(hosts) => hosts.into_iter().filter(|h| self.fleet.get(h).is_none()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read which hosts have label objects");
                Vec::new()
            }
        };
        for host in gone {
            self.apply(&host, parse::Defined::default()).await;
        }
        for host in self.fleet.all() {
            if host.view.docker_ok() {
                self.apply(host.name(), parse::defined(host.name(), &host.view.containers(), self.default_tz)).await;
            }
        }
    }

    /// Makes one host's label objects `defined`.
    async fn apply(&self, host: &str, defined: parse::Defined) {
        let began = std::time::Instant::now();
        let (schedules, windows) = (defined.schedules.len(), defined.windows.len());
        let mut changed = 0;
        match self.scheduler.sync_labels(host, defined.schedules).await {
            Ok(n) => changed += n,
            Err(e) => tracing::warn!(host, error = %e, "could not apply the schedules of container labels"),
        }
        match self.windows.sync_labels(host, defined.windows).await {
            Ok(n) => changed += n,
            Err(e) => tracing::warn!(host, error = %e, "could not apply the windows of container labels"),
        }
        if changed > 0 {
            let ms = began.elapsed().as_millis() as u64;
            tracing::info!(host, schedules, windows, changed, ms, "container labels applied");
        }
    }
}
