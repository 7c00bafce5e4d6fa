//! Windows on Swarm services and Swarm stacks: down scales the replicated
//! services to 0 (the count is remembered by the action), up scales them
//! back. Global services run wherever they can and are left alone.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Compiled, Windows};
use crate::actions::Trigger;
use crate::docker::SwarmService;
use crate::events::Published;
use crate::model::{Action, Desired, Enforce, ServiceMode, TargetType};

impl Windows {
    /// One pass for a Swarm target; returns the next grace deadline, if any.
    pub(super) async fn keep_swarm(self: &Arc<Self>, c: &Compiled, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let f = &c.window.fields;
        let services: Vec<SwarmService> = self
            .fleet
            .get(&f.host)?
            .swarm_services()?
            .into_iter()
            .filter(|s| s.mode == ServiceMode::Replicated)
            .filter(|s| match f.target_type {
                TargetType::Service => s.name == f.target_id,
                _ => s.stack.as_deref() == Some(f.target_id.as_str()),
            })
            .collect();
        let desired = c.desired(now);
        let (boundary, due, pending) = {
            let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            let boundary = self.passed_boundary(&mut memory, c.window.id, desired);
            let m = memory.entry(c.window.id).or_default();
            let up: Vec<&SwarmService> = services.iter().filter(|s| s.desired > 0).collect();
            m.drift_since.retain(|name, _| up.iter().any(|s| &s.name == name));
            let grace = chrono::Duration::seconds(i64::from(f.grace_seconds));
            let mut due = false;
            if desired == Desired::Down {
                for s in &up {
                    let since = *m.drift_since.entry(s.name.clone()).or_insert(now);
                    due |= boundary || now >= since + grace;
                }
            }
            let pending = if due { None } else { m.drift_since.values().map(|s| *s + grace).min() };
            (boundary, due, pending)
        };
        let action = match desired {
            Desired::Down if due => Action::Stop,
            // down_only: a service someone scaled to 0 during up time stays so.
            Desired::Up if (boundary || f.enforce == Enforce::Both) && services.iter().any(|s| s.desired == 0) => {
                Action::Start
            }
            _ => return pending,
        };
        let trigger = Trigger::Window { window_id: c.window.id };
        if let Err(e) = self.actions.run(&f.target(), action, &trigger).await {
            tracing::warn!(window = c.window.id, error = %e, "a window could not {action} its Swarm target");
        }
        pending
    }

    /// Does a service event touch a window on that service or its Swarm stack?
    pub(super) fn concerns_swarm(&self, ev: &Published) -> bool {
        #[derive(serde::Deserialize)]
        struct Changed {
            host: String,
            name: String,
            service: Option<Stacked>,
        }
        #[derive(serde::Deserialize)]
        struct Stacked {
            stack: Option<String>,
        }
        let Ok(Changed { host, name, service }) = serde_json::from_str(ev.data()) else { return false };
        let stack = service.and_then(|s| s.stack);
        let all = self.windows.read().unwrap_or_else(|e| e.into_inner());
        all.iter().any(|c| {
            let f = &c.window.fields;
            f.enabled
                && f.host == host
                && match f.target_type {
                    TargetType::Service => f.target_id == name,
                    TargetType::SwarmStack => stack.as_deref() == Some(f.target_id.as_str()),
                    _ => false,
                }
        })
    }
}
