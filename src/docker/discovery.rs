//! Keeps the [`View`] current: list everything once, then follow the events
//! stream. When the stream breaks (engine restart, socket gone), reconnect
//! with backoff, reload fully, and follow again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::{Engine, View};

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub async fn run(engine: Arc<dyn Engine>, view: Arc<View>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        tokio::select! {
            _ = follow(&*engine, &view, &mut backoff) => {}
            _ = shutdown.changed() => return,
        }
        view.set_docker_ok(false);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connected session: returns when the engine is (or becomes) unreachable.
async fn follow(engine: &dyn Engine, view: &View, backoff: &mut Duration) {
    let info = match engine.info().await {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(error = %e, "Docker Engine not reachable yet");
            return;
        }
    };
    // Subscribe before listing, so nothing that happens during the list is lost.
    let mut events = engine.container_events();
    let all = match engine.list(None).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "listing containers failed");
            return;
        }
    };
    tracing::info!(version = %info.version, api = %info.api_version, containers = all.len(), "connected to the Docker Engine");
    view.replace_all(all);
    view.set_docker_ok(true);
    *backoff = MIN_BACKOFF;

    while let Some(ev) = events.next().await {
        let id = match ev {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "Docker events stream broke");
                return;
            }
        };
        match engine.list(Some(&id)).await {
            Ok(mut found) => view.update(&id, found.pop()),
            Err(e) => {
                tracing::warn!(error = %e, container = %id, "refreshing a container failed");
                return;
            }
        }
    }
    tracing::warn!("Docker events stream ended");
}
