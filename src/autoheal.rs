//! Auto-heal: a container labelled `docknap.autoheal=true` (or `autoheal=true`,
//! docker-autoheal's label, so its users switch without editing compose
//! files) is restarted when its engine reports it `unhealthy`, on every
//! host, at most [`MAX_PER_HOUR`] times an hour; each restart, and each one
//! held back by that cap, is audited with the actor `autoheal`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::actions::{Actions, Trigger};
use crate::docker::Health;
use crate::events::EngineEvent;
use crate::model::{Action, NewAuditEntry, Target, TargetType};

pub const MAX_PER_HOUR: usize = 3;
const PERIOD: Duration = Duration::from_secs(3600);
/// The actor of auto-heal's audit entries.
pub const ACTOR: &str = "autoheal";

/// Restarts per container within the last hour.
#[derive(Default)]
pub struct Limiter {
    recent: HashMap<(String, String), VecDeque<Instant>>,
}

impl Limiter {
    /// Takes one restart for `(host, container)` at `now` when fewer than
    /// [`MAX_PER_HOUR`] were taken in the hour before it.
    pub fn take(&mut self, host: &str, container: &str, now: Instant) -> bool {
        self.recent.retain(|_, q| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= PERIOD) {
                q.pop_front();
            }
            !q.is_empty()
        });
        let q = self.recent.entry((host.to_string(), container.to_string())).or_default();
        if q.len() >= MAX_PER_HOUR {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// Follows the engines' health changes until `stop`.
pub async fn run(actions: Arc<Actions>, mut rx: broadcast::Receiver<EngineEvent>, mut stop: watch::Receiver<bool>) {
    let mut limiter = Limiter::default();
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = stop.changed() => return,
        };
        match ev {
            Ok(ev) => on_event(&actions, &mut limiter, ev).await,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "auto-heal fell behind the engine events")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn on_event(actions: &Arc<Actions>, limiter: &mut Limiter, ev: EngineEvent) {
    if ev.action.trim() != "health_status: unhealthy" {
        return;
    }
    let Some(host) = actions.fleet().get(&ev.host) else { return };
    let Some(c) = host.view.container(&ev.id) else { return };
    if !c.wants_autoheal() {
        return;
    }
    // The events stream replays a few seconds at reconnect: act on what the
    // container is now, not on an old event.
    if !matches!(host.engine.health(&c.id).await, Ok(Health::Unhealthy)) {
        return;
    }
    let target = Target::new(&ev.host, TargetType::Container, &c.name);
    if !limiter.take(&ev.host, &c.name, Instant::now()) {
        let message = format!("not restarted: auto-heal already restarted it {MAX_PER_HOUR} times in the last hour");
        tracing::warn!(host = %ev.host, container = %c.name, "{message}");
        actions.audit().record(
            NewAuditEntry::new(ACTOR, Action::Restart, false, message)
                .on(&target)
                .details(serde_json::json!({"trigger": "autoheal", "health": "unhealthy"})),
        );
        return;
    }
    tracing::info!(host = %ev.host, container = %c.name, "unhealthy: auto-heal restarts it");
    // Its own task: a slow restart must not hold up the next container's event.
    let actions = actions.clone();
    tokio::spawn(async move {
        if let Err(e) = actions.run(&target, Action::Restart, &Trigger::Autoheal).await {
            tracing::warn!(target = %target, error = %e, "auto-heal could not restart the container");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn three_restarts_an_hour_per_container_then_none_until_the_first_is_an_hour_old() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.take("local", "a", t0 + Duration::from_secs(60 * i)), "restart {i}");
        }
        assert!(!l.take("local", "a", t0 + Duration::from_secs(600)));
        assert!(l.take("local", "b", t0 + Duration::from_secs(600)), "per container");
        assert!(l.take("nas", "a", t0 + Duration::from_secs(600)), "per host");
        assert!(!l.take("local", "a", t0 + PERIOD - Duration::from_secs(1)));
        assert!(l.take("local", "a", t0 + PERIOD), "the first one is an hour old");
        assert!(!l.take("local", "a", t0 + PERIOD + Duration::from_secs(1)));
    }
}
