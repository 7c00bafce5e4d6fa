//! Keeps the [`View`] current: list everything once, then follow the events
//! stream. When the stream breaks (engine restart, socket gone), reconnect
//! with backoff, reload fully, and follow again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::{ContainerEvent, DockerError, Engine, View};
use crate::events::Incident;
use crate::model::{Container, ContainerHealth};

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Most container ids refreshed by one engine call.
const MAX_BATCH: usize = 256;
/// The engine publishes some events (`die` among them) a moment before its
/// container list shows the change (longer on a loaded machine). Containers
/// whose listed state disagrees with their latest event are listed again,
/// first after `SETTLE_PAUSE`, then twice as long each time up to
/// `SETTLE_PAUSE_MAX`, for `SETTLE_FOR` at most; then the list is taken as
/// it is. Those re-lists are timers of the events loop, never a wait inside
/// it: one lagging container must not hold every other container's events
/// (a crash-looping `restart: always` container never settles on `die`).
const SETTLE_PAUSE: Duration = Duration::from_millis(25);
const SETTLE_PAUSE_MAX: Duration = Duration::from_secs(1);
const SETTLE_FOR: Duration = Duration::from_secs(10);
/// The default of `DOCKNAP_ENGINE_RECHECK`: after this long without events,
/// the list is compared with the view. An idle events stream carries
/// nothing, so a dead connection (a rebooted remote host, a socket proxy that
/// stopped forwarding without closing) would otherwise leave the view stale
/// forever with the engine reported reachable.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(60);
/// The engine calls that decide whether the engine is there (the version
/// probe, the recheck's list) give up after this long: a connection that
/// went silent must not hold discovery for bollard's two-minute timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connected session ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Why, for the hosts page.
    Unreachable(String),
    /// The stream closed or missed changes while the engine answered (a
    /// proxy's idle timeout, say): reconnect without an outage.
    StreamLost,
}

/// Follows the engine until `shutdown`; `recheck` is how long a quiet events
/// stream is trusted before the list is compared with the view.
pub async fn run(engine: Arc<dyn Engine>, view: Arc<View>, recheck: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let ended = tokio::select! {
            ended = follow(&*engine, &view, recheck, &mut backoff) => ended,
            _ = shutdown.changed() => return,
        };
        // Whatever ended the session may have left pooled connections dead.
        engine.reconnect();
        if let Ended::Unreachable(why) = ended {
            view.unreachable(why);
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
async fn follow(engine: &dyn Engine, view: &View, recheck: Duration, backoff: &mut Duration) -> Ended {
    let info = match tokio::time::timeout(PROBE_TIMEOUT, engine.info()).await {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => {
            tracing::debug!(host = view.host(), error = %e, "Docker Engine not reachable yet");
            return Ended::Unreachable(e.to_string());
        }
        Err(_) => {
            tracing::warn!(
                host = view.host(),
                timeout_s = PROBE_TIMEOUT.as_secs(),
                "the Docker Engine did not answer its version probe"
            );
            return Ended::Unreachable(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()));
        }
    };
    // The stream starts a few seconds in the past (see the engine), so
    // nothing that happens while we list is lost.
    let events = engine.container_events();
    let all = match probe(engine.list(None)).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(host = view.host(), error = %e, "listing containers failed");
            return Ended::Unreachable(e.to_string());
        }
    };
    tracing::info!(host = view.host(), version = %info.version, api = %info.api_version, containers = all.len(), "connected to the Docker Engine");
    view.replace_all(all);
    view.connected(&info.version);
    *backoff = MIN_BACKOFF;

    // Events come in bursts (a compose up, a stack stop): take what is queued
    // at once and refresh those containers with one engine call, so the view
    // never lags behind a busy engine one call per event.
    let mut batches = events.ready_chunks(MAX_BATCH);
    let mut stops_asked = HashMap::new();
    let mut lagging = Lagging::default();
    loop {
        let batch = tokio::select! {
            batch = batches.next() => batch,
            () = lagging.due() => {
                let ids = lagging.ids();
                match probe(engine.list_ids(&ids)).await {
                    Ok(found) => {
                        lagging.relisted(&found);
                        view.update_many(&ids, found);
                    }
                    Err(e) => {
                        tracing::warn!(host = view.host(), error = %e, containers = ids.len(), "refreshing containers failed");
                        return Ended::Unreachable(e.to_string());
                    }
                }
                continue;
            }
            () = tokio::time::sleep(recheck) => match tokio::time::timeout(PROBE_TIMEOUT, engine.list(None)).await {
                Ok(Ok(all)) if agrees(view, &all) => continue,
                Ok(Ok(_)) => {
                    tracing::warn!(host = view.host(), "the Docker events stream missed changes; reconnecting");
                    return Ended::StreamLost;
                }
                Ok(Err(e)) => {
                    tracing::warn!(host = view.host(), error = %e, "Docker Engine stopped answering");
                    return Ended::Unreachable(e.to_string());
                }
                // A silent connection, or a hung engine: the next session
                // dials afresh and tells the two apart.
                Err(_) => {
                    tracing::warn!(host = view.host(), timeout_s = PROBE_TIMEOUT.as_secs(), "the Docker Engine did not answer a recheck; reconnecting");
                    return Ended::StreamLost;
                }
            },
        };
        let Some(batch) = batch else {
            tracing::warn!(host = view.host(), "Docker events stream ended");
            return Ended::StreamLost;
        };
        // The latest action per container is what its state must show.
        let mut latest: BTreeMap<String, String> = BTreeMap::new();
        for ev in batch {
            match ev {
                Ok(ev) => {
                    report_trouble(view, &ev, &mut stops_asked);
                    pass_on(view, &ev.id, &ev.action);
                    latest.insert(ev.id, ev.action);
                }
                Err(e) => {
                    tracing::warn!(host = view.host(), error = %e, "Docker events stream broke");
                    return Ended::Unreachable(e.to_string());
                }
            }
        }
        let ids: Vec<String> = latest.keys().cloned().collect();
        match probe(engine.list_ids(&ids)).await {
            Ok(found) => {
                lagging.listed(latest, &found);
                view.update_many(&ids, found);
            }
            Err(e) => {
                tracing::warn!(host = view.host(), error = %e, containers = ids.len(), "refreshing containers failed");
                return Ended::Unreachable(e.to_string());
            }
        }
    }
}

/// A `die` this long after a `kill` of the same container was asked for.
const ASKED_WINDOW: Duration = Duration::from_secs(60);

/// Tells notifications of a container that died on its own (exit non-zero
/// with no stop or kill asked of the engine first, by DockNap or anyone)
/// or turned unhealthy. `stops_asked`: when each container was last sent a signal.
fn report_trouble(view: &View, ev: &ContainerEvent, stops_asked: &mut HashMap<String, std::time::Instant>) {
    let now = std::time::Instant::now();
    let name = || ev.name.clone().unwrap_or_else(|| ev.id.chars().take(12).collect());
    match ev.action.as_str() {
        "kill" | "stop" => {
            stops_asked.retain(|_, at| now.duration_since(*at) < ASKED_WINDOW);
            stops_asked.insert(ev.id.clone(), now);
        }
        "die" => {
            let asked = stops_asked.get(&ev.id).is_some_and(|at| now.duration_since(*at) < ASKED_WINDOW);
            match ev.exit_code {
                Some(code) if code != 0 && !asked => {
                    view.incident(Incident::ContainerDied {
                        host: view.host().to_string(),
                        name: name(),
                        exit_code: code,
                    });
                }
                _ => {}
            }
        }
        "health_status: unhealthy" => {
            view.incident(Incident::ContainerUnhealthy { host: view.host().to_string(), name: name() })
        }
        _ => {}
    }
}

/// Health changes go to the services that act on them (auto-heal); they
/// change nothing the container list shows.
fn pass_on(view: &View, id: &str, action: &str) {
    if action.starts_with("health_status") {
        view.engine_event(id, action);
    }
}

/// An engine call that gives up after [`PROBE_TIMEOUT`]: no call of
/// discovery's may hang on a connection that stopped answering.
async fn probe<T>(call: impl std::future::Future<Output = Result<T, DockerError>>) -> Result<T, DockerError> {
    tokio::time::timeout(PROBE_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| Err(DockerError::Unavailable(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))))
}

/// Do the view and a fresh list hold the same containers, names and states?
/// (Status texts such as "Up 5 minutes" age without events.)
fn agrees(view: &View, listed: &[Container]) -> bool {
    let key = |c: &Container| (c.id.clone(), c.name.clone(), c.state, c.health);
    let mut known: Vec<_> = view.containers().iter().map(key).collect();
    let mut fresh: Vec<_> = listed.iter().map(key).collect();
    known.sort();
    fresh.sort();
    known == fresh
}

/// Containers whose listed state lags behind their latest event: id → that
/// event's action and when the lag was first seen; `next`: when they are
/// listed again (a fixed instant, so a busy events stream cannot put it off).
#[derive(Default)]
struct Lagging {
    ids: BTreeMap<String, (String, tokio::time::Instant)>,
    pause: Duration,
    next: Option<tokio::time::Instant>,
}

impl Lagging {
    /// After the list of a batch's containers (`latest`: id → its latest action).
    fn listed(&mut self, latest: BTreeMap<String, String>, found: &[Container]) {
        let now = tokio::time::Instant::now();
        let mut new = false;
        for (id, action) in latest {
            if shows_event(&action, found.iter().find(|c| c.id == id)) {
                self.ids.remove(&id);
            } else {
                new |= !self.ids.contains_key(&id);
                self.ids.entry(id).and_modify(|e| e.0.clone_from(&action)).or_insert((action, now));
            }
        }
        if self.ids.is_empty() {
            self.next = None;
        } else if new {
            // A new laggard is looked at soon, never later than planned.
            self.pause = SETTLE_PAUSE;
            let soon = now + SETTLE_PAUSE;
            self.next = Some(self.next.map_or(soon, |t| t.min(soon)));
        }
    }

    /// After a re-list of [`Lagging::ids`].
    fn relisted(&mut self, found: &[Container]) {
        let now = tokio::time::Instant::now();
        self.ids.retain(|id, (action, since)| {
            !shows_event(action, found.iter().find(|c| &c.id == id)) && now.duration_since(*since) < SETTLE_FOR
        });
        self.pause = (self.pause * 2).min(SETTLE_PAUSE_MAX);
        self.next = (!self.ids.is_empty()).then(|| now + self.pause);
    }

    fn ids(&self) -> Vec<String> {
        self.ids.keys().cloned().collect()
    }

    /// Resolves when the lagging containers are to be listed again; never
    /// while none lag.
    async fn due(&self) {
        crate::clock::sleep_until_or_never(self.next).await
    }
}

/// Does the listed container (`None`: not listed) reflect an event's action?
fn shows_event(action: &str, listed: Option<&Container>) -> bool {
    let state = listed.map(|c| c.state.as_str());
    match action {
        "destroy" => state.is_none(),
        "start" | "restart" | "unpause" => state == Some("running"),
        "die" | "stop" => !matches!(state, Some("running" | "paused")),
        "pause" => state == Some("paused"),
        // `health_status: healthy`: the list's status text must show it too.
        health if health.starts_with("health_status") => {
            health.rsplit(' ').next() == listed.and_then(|c| c.health).map(ContainerHealth::as_str)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerState;

    /// A listed container with id `id`, name `name`, in `state`.
    fn container(id: &str, name: &str, state: &str) -> Container {
        Container::new(id.into(), name, "img".into(), state.into(), "Up".into(), Default::default(), Default::default())
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_is_caught_by_the_idle_recheck() {
        use crate::actions::fake::FakeEngine;
        // The fake's event stream never yields: a dead connection.
        let engine = Arc::new(FakeEngine::default());
        engine.containers.lock().unwrap().insert("i".into(), container("i", "n", "running"));
        let view = Arc::new(View::new("local", crate::events::Events::default()));
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(run(engine.clone(), view.clone(), DEFAULT_RECHECK, shutdown));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(view.container("n").unwrap().state, ContainerState::Running);

        // Status text ages without events: no reconnect, nothing published.
        engine.containers.lock().unwrap().get_mut("i").unwrap().status = "Up 2 minutes".into();
        tokio::time::sleep(DEFAULT_RECHECK + Duration::from_secs(1)).await;
        assert_eq!(view.container("n").unwrap().status, "Up");

        // A change the stream never delivered is found within one recheck.
        engine.containers.lock().unwrap().get_mut("i").unwrap().state = "exited".into();
        tokio::time::sleep(DEFAULT_RECHECK + Duration::from_secs(1)).await;
        assert_eq!(view.container("n").unwrap().state, ContainerState::Exited);
        assert!(view.docker_ok(), "the engine answered all along");
    }

    #[tokio::test(start_paused = true)]
    async fn a_container_whose_list_lags_its_event_holds_up_no_other_container() {
        use crate::actions::fake::FakeEngine;
        let engine = Arc::new(FakeEngine::default());
        let (feed, rx) = tokio::sync::mpsc::unbounded_channel();
        *engine.event_feed.lock().unwrap() = Some(rx);
        engine
            .containers
            .lock()
            .unwrap()
            .extend([("x".into(), container("x", "x", "running")), ("y".into(), container("y", "y", "exited"))]);
        let view = Arc::new(View::new("local", crate::events::Events::default()));
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(run(engine.clone(), view.clone(), DEFAULT_RECHECK, shutdown));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let event = |id: &str, action: &str| ContainerEvent {
            id: id.into(),
            action: action.into(),
            name: None,
            exit_code: None,
        };
        let state = |id: &str| view.container(id).unwrap().state;

        // x died, but the engine's list still shows it running.
        feed.send(event("x", "die")).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        engine.containers.lock().unwrap().get_mut("y").unwrap().state = "running".into();
        feed.send(event("y", "start")).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(state("y"), ContainerState::Running, "y is not held up by x");
        assert_eq!(state("x"), ContainerState::Running, "the list as it is, for now");

        // Seconds later the list catches up: x is listed again without a new
        // event of its own, while other containers' events keep coming.
        let busy = tokio::spawn(async move {
            loop {
                feed.send(event("y", "start")).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        engine.containers.lock().unwrap().get_mut("x").unwrap().state = "exited".into();
        tokio::time::sleep(SETTLE_PAUSE_MAX + Duration::from_millis(10)).await;
        assert_eq!(state("x"), ContainerState::Exited);
        busy.abort();
    }

    /// A fake engine whose every call hangs (never answers, never fails)
    /// while `hung` is set: a proxy or engine that stopped answering.
    #[derive(Default)]
    struct Hanging {
        inner: crate::actions::fake::FakeEngine,
        hung: std::sync::atomic::AtomicBool,
        reconnects: std::sync::atomic::AtomicUsize,
    }

    impl Hanging {
        async fn gate(&self) {
            while self.hung.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    #[async_trait::async_trait]
    impl Engine for Hanging {
        async fn info(&self) -> Result<super::super::EngineInfo, DockerError> {
            self.gate().await;
            self.inner.info().await
        }
        async fn list(&self, id: Option<&str>) -> Result<Vec<Container>, DockerError> {
            self.gate().await;
            self.inner.list(id).await
        }
        async fn list_ids(&self, ids: &[String]) -> Result<Vec<Container>, DockerError> {
            self.gate().await;
            self.inner.list_ids(ids).await
        }
        async fn health(&self, id: &str) -> Result<super::super::Health, DockerError> {
            self.inner.health(id).await
        }
        async fn exit_code(&self, id: &str) -> Result<Option<i64>, DockerError> {
            self.inner.exit_code(id).await
        }
        async fn restart_policy(&self, id: &str) -> Result<String, DockerError> {
            self.inner.restart_policy(id).await
        }
        async fn act(&self, id: &str, action: crate::model::Action) -> Result<(), DockerError> {
            self.inner.act(id, action).await
        }
        fn container_events(&self) -> futures_util::stream::BoxStream<'static, Result<ContainerEvent, DockerError>> {
            self.inner.container_events()
        }
        async fn swarm_services(&self) -> Result<Option<Vec<super::super::SwarmService>>, DockerError> {
            self.inner.swarm_services().await
        }
        async fn scale_service(&self, id: &str, replicas: u64) -> Result<(), DockerError> {
            self.inner.scale_service(id, replicas).await
        }
        async fn force_update_service(&self, id: &str) -> Result<(), DockerError> {
            self.inner.force_update_service(id).await
        }
        fn reconnect(&self) {
            self.reconnects.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_engine_that_stops_answering_is_reported_within_the_recheck_and_two_probe_timeouts() {
        use std::sync::atomic::Ordering::SeqCst;
        let c = container("i", "n", "running");
        let engine = Arc::new(Hanging::default());
        engine.inner.containers.lock().unwrap().insert("i".into(), c);
        let view = Arc::new(View::new("local", crate::events::Events::default()));
        let (_stop, shutdown) = watch::channel(false);
        let recheck = Duration::from_secs(10);
        tokio::spawn(run(engine.clone(), view.clone(), recheck, shutdown));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(view.docker_ok());

        // Every call now hangs (bollard alone would wait two minutes per call).
        engine.hung.store(true, SeqCst);
        let begun = tokio::time::Instant::now();
        while view.docker_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let took = begun.elapsed();
        assert!(took <= recheck + PROBE_TIMEOUT * 2 + MAX_BACKOFF, "{took:?}");
        assert!(engine.reconnects.load(SeqCst) >= 1, "pooled connections were dropped");

        // It answers again: back within one backoff and one probe.
        engine.inner.containers.lock().unwrap().get_mut("i").unwrap().state = "exited".into();
        engine.hung.store(false, SeqCst);
        let begun = tokio::time::Instant::now();
        while !view.docker_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(begun.elapsed() <= MAX_BACKOFF + PROBE_TIMEOUT, "{:?}", begun.elapsed());
        assert_eq!(view.container("n").unwrap().state, ContainerState::Exited, "re-listed");
    }

    #[test]
    fn events_are_checked_against_the_listed_state() {
        let c = |state: &str| container("i", "n", state);
        assert!(!shows_event("die", Some(&c("running"))), "the engine's list lags behind `die`");
        assert!(shows_event("die", Some(&c("exited"))));
        assert!(shows_event("die", None), "died and already removed");
        assert!(shows_event("start", Some(&c("running"))));
        assert!(!shows_event("pause", Some(&c("running"))));
        assert!(!shows_event("destroy", Some(&c("exited"))));
        assert!(shows_event("rename", Some(&c("exited"))));
    }
}
