//! Engine incidents (hosts down and back, containers dead or unhealthy)
//! become notices.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::Notifier;
use crate::events::Incident;
use crate::model::{EventKind, Notice};

impl Notifier {
    /// Turns engine incidents into notices until `stop`. A host is
    /// "recovered" only after it was reported unreachable.
    /// `rx` is subscribed before the hosts start ([`Events::incidents`]), so
    /// a host already unreachable at start-up is not missed.
    pub async fn watch(self: Arc<Self>, mut rx: broadcast::Receiver<Incident>, mut stop: watch::Receiver<bool>) {
        let mut down: BTreeSet<String> = BTreeSet::new();
        loop {
            let incident = tokio::select! {
                r = rx.recv() => match r {
                    Ok(i) => i,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "notifications fell behind engine incidents");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.changed() => return,
            };
            let now = self.clock.now();
            let notice = match incident {
                Incident::HostDown { host, error } => {
                    if !down.insert(host.clone()) {
                        continue;
                    }
                    let why = error.map(|e| format!(": {e}")).unwrap_or_default();
                    let mut n = Notice::new(
                        EventKind::HostUnreachable,
                        now,
                        false,
                        format!("the Docker Engine of host {host} is unreachable{why}"),
                    );
                    n.host = Some(host);
                    n
                }
                Incident::HostUp { host } => {
                    if !down.remove(&host) {
                        continue;
                    }
                    let mut n = Notice::new(
                        EventKind::HostRecovered,
                        now,
                        true,
                        format!("the Docker Engine of host {host} answers again"),
                    );
                    n.host = Some(host);
                    n
                }
                Incident::ContainerDied { host, name, exit_code } => {
                    let mut n = Notice::new(
                        EventKind::ContainerDied,
                        now,
                        false,
                        format!("container {name} exited with code {exit_code}"),
                    );
                    n.details = serde_json::json!({ "exit_code": exit_code });
                    (n.host, n.target_type, n.target_id) = (Some(host), Some("container".into()), Some(name));
                    n
                }
                Incident::ContainerUnhealthy { host, name } => {
                    let mut n = Notice::new(
                        EventKind::ContainerUnhealthy,
                        now,
                        false,
                        format!("container {name} is unhealthy"),
                    );
                    (n.host, n.target_type, n.target_id) = (Some(host), Some("container".into()), Some(name));
                    n
                }
            };
            if let Err(e) = self.store.run(move |s| s.enqueue_notices(&[notice], now)).await {
                tracing::error!(error = %e, "could not queue a notification");
            }
        }
    }
}
