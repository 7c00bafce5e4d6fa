//! Keeps the [`View`] current: list everything once, then follow the events
//! stream. When the stream breaks (engine restart, socket gone), reconnect
//! with backoff, reload fully, and follow again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::{ContainerEvent, DockerError, Engine, View};
use crate::model::Container;

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Most container ids refreshed by one engine call.
const MAX_BATCH: usize = 256;
/// The engine publishes some events (`die` among them) a moment before its
/// container list shows the change; a refresh that disagrees with the event
/// is retried this often, this far apart, before the list is taken as it is.
const SETTLE_TRIES: u32 = 20;
const SETTLE_PAUSE: Duration = Duration::from_millis(25);
/// After this long without events, the list is compared with the view. An
/// idle events stream carries nothing, so a dead TCP connection (a rebooted
/// remote host, a socket proxy gone) would otherwise leave the view stale
/// forever with the engine reported reachable.
const IDLE_RECHECK: Duration = Duration::from_secs(60);

/// How a connected session ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Unreachable,
    /// The stream closed or missed changes while the engine answered (a
    /// proxy's idle timeout, say): reconnect without an outage.
    StreamLost,
}

pub async fn run(engine: Arc<dyn Engine>, view: Arc<View>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let ended = tokio::select! {
            ended = follow(&*engine, &view, &mut backoff) => ended,
            _ = shutdown.changed() => return,
        };
        if ended == Ended::Unreachable {
            view.set_docker_ok(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connected session: returns when the engine becomes unreachable or
/// the stream can no longer be trusted.
async fn follow(engine: &dyn Engine, view: &View, backoff: &mut Duration) -> Ended {
    let info = match engine.info().await {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(error = %e, "Docker Engine not reachable yet");
            return Ended::Unreachable;
        }
    };
    // The stream starts a few seconds in the past (see the engine), so
    // nothing that happens while we list is lost.
    let events = engine.container_events();
    let all = match engine.list(None).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "listing containers failed");
            return Ended::Unreachable;
        }
    };
    tracing::info!(version = %info.version, api = %info.api_version, containers = all.len(), "connected to the Docker Engine");
    view.replace_all(all);
    view.set_docker_ok(true);
    *backoff = MIN_BACKOFF;

    // Events come in bursts (a compose up, a stack stop): take what is queued
    // at once and refresh those containers with one engine call, so the view
    // never lags behind a busy engine one call per event.
    let mut batches = events.ready_chunks(MAX_BATCH);
    loop {
        let batch = tokio::select! {
            batch = batches.next() => batch,
            () = tokio::time::sleep(IDLE_RECHECK) => match engine.list(None).await {
                Ok(all) if agrees(view, &all) => continue,
                Ok(_) => {
                    tracing::warn!("the Docker events stream missed changes; reconnecting");
                    return Ended::StreamLost;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Docker Engine stopped answering");
                    return Ended::Unreachable;
                }
            },
        };
        let Some(batch) = batch else {
            tracing::warn!("Docker events stream ended");
            return Ended::StreamLost;
        };
        // The latest action per container is what its state must show.
        let mut latest: BTreeMap<String, String> = BTreeMap::new();
        for ev in batch {
            match ev {
                Ok(ContainerEvent { id, action }) => {
                    latest.insert(id, action);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Docker events stream broke");
                    return Ended::Unreachable;
                }
            }
        }
        let ids: Vec<String> = latest.keys().cloned().collect();
        match refresh_settled(engine, &latest).await {
            Ok(found) => view.update_many(&ids, found),
            Err(e) => {
                tracing::warn!(error = %e, containers = ids.len(), "refreshing containers failed");
                return Ended::Unreachable;
            }
        }
    }
}

/// Do the view and a fresh list hold the same containers, names and states?
/// (Status texts such as "Up 5 minutes" age without events.)
fn agrees(view: &View, listed: &[Container]) -> bool {
    let key = |c: &Container| (c.id.clone(), c.name.clone(), c.state.clone());
    let mut known: Vec<_> = view.containers().iter().map(key).collect();
    let mut fresh: Vec<_> = listed.iter().map(key).collect();
    known.sort();
    fresh.sort();
    known == fresh
}

/// Lists the containers in `latest` until each shows what its latest event
/// says (bounded: see [`SETTLE_TRIES`]).
async fn refresh_settled(engine: &dyn Engine, latest: &BTreeMap<String, String>) -> Result<Vec<Container>, DockerError> {
    let ids: Vec<String> = latest.keys().cloned().collect();
    let mut found = engine.list_ids(&ids).await?;
    for _ in 0..SETTLE_TRIES {
        let settled = latest.iter().all(|(id, action)| shows_event(action, found.iter().find(|c| &c.id == id)));
        if settled {
            break;
        }
        tokio::time::sleep(SETTLE_PAUSE).await;
        found = engine.list_ids(&ids).await?;
    }
    Ok(found)
}

/// Does the listed container (`None`: not listed) reflect an event's action?
fn shows_event(action: &str, listed: Option<&Container>) -> bool {
    let state = listed.map(|c| c.state.as_str());
    match action {
        "destroy" => state.is_none(),
        "start" | "restart" | "unpause" => state == Some("running"),
        "die" | "stop" => !matches!(state, Some("running" | "paused")),
        "pause" => state == Some("paused"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_is_caught_by_the_idle_recheck() {
        use crate::actions::fake::FakeEngine;
        let c = |state: &str| Container::new("i".into(), "n", "img".into(), state.into(), "Up".into(), Default::default(), Default::default());
        // The fake's event stream never yields: a dead connection.
        let engine = Arc::new(FakeEngine::default());
        engine.containers.lock().unwrap().insert("i".into(), c("running"));
        let view = Arc::new(View::new(crate::events::Events::default()));
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(run(engine.clone(), view.clone(), shutdown));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(view.container("n").unwrap().state, "running");

        // Status text ages without events: no reconnect, nothing published.
        engine.containers.lock().unwrap().get_mut("i").unwrap().status = "Up 2 minutes".into();
        tokio::time::sleep(IDLE_RECHECK + Duration::from_secs(1)).await;
        assert_eq!(view.container("n").unwrap().status, "Up");

        // A change the stream never delivered is found within one recheck.
        engine.containers.lock().unwrap().get_mut("i").unwrap().state = "exited".into();
        tokio::time::sleep(IDLE_RECHECK + Duration::from_secs(1)).await;
        assert_eq!(view.container("n").unwrap().state, "exited");
        assert!(view.docker_ok(), "the engine answered all along");
    }

    #[test]
    fn events_are_checked_against_the_listed_state() {
        let c = |state: &str| Container::new("i".into(), "n", "img".into(), state.into(), String::new(), Default::default(), Default::default());
        assert!(!shows_event("die", Some(&c("running"))), "the engine's list lags behind `die`");
        assert!(shows_event("die", Some(&c("exited"))));
        assert!(shows_event("die", None), "died and already removed");
        assert!(shows_event("start", Some(&c("running"))));
        assert!(!shows_event("pause", Some(&c("running"))));
        assert!(!shows_event("destroy", Some(&c("exited"))));
        assert!(shows_event("rename", Some(&c("exited"))));
    }
}
