//! Resource figures only while someone looks: the first request for a
//! container opens the engine's stats stream, later ones read its latest
//! sample, and the stream closes once nobody has asked for [`LINGER`]. With
//! 200 containers and no one on a stats page, the engine is never asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{DockerError, Engine};
use crate::model::{Container, Stats};

/// How long a stream stays open after the last request for it (a page asks
/// every few seconds while open).
pub const LINGER: Duration = Duration::from_secs(30);
/// How long a first request waits for the first sample (the engine sends
/// one about a second after the stream opens).
const FIRST_SAMPLE: Duration = Duration::from_secs(5);

type Latest = Option<Result<Stats, DockerError>>;

struct Watched {
    latest: watch::Sender<Latest>,
    asked: Mutex<Instant>,
}

#[derive(Default)]
pub struct StatsHub {
    watched: Arc<Mutex<HashMap<String, Arc<Watched>>>>,
}

impl StatsHub {
    /// The latest figures of the running container `id`.
    pub async fn sample(&self, engine: &Arc<dyn Engine>, id: &str) -> Result<Stats, DockerError> {
        let watched = {
            let mut all = self.watched.lock().unwrap_or_else(|e| e.into_inner());
            let w = all.entry(id.to_string()).or_insert_with(|| {
                let w = Arc::new(Watched { latest: watch::channel(None).0, asked: Mutex::new(Instant::now()) });
                tokio::spawn(follow(engine.clone(), id.to_string(), w.clone(), self.watched.clone()));
                w
            });
            *w.asked.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            w.clone()
        };
        let mut rx = watched.latest.subscribe();
        match tokio::time::timeout(FIRST_SAMPLE, rx.wait_for(Option::is_some)).await {
            Ok(Ok(latest)) => latest.clone().unwrap_or_else(|| Err(DockerError::Unavailable("no stats".into()))),
            Ok(Err(_)) => Err(DockerError::Unavailable("the stats stream ended".into())),
            Err(_) => Err(DockerError::Unavailable(format!("no stats within {} s", FIRST_SAMPLE.as_secs()))),
        }
    }

    /// The containers whose stats stream is open now.
    pub fn watching(&self) -> usize {
        self.watched.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A container's figures; a stopped one uses nothing, and is not asked.
    pub async fn of_container(&self, engine: &Arc<dyn Engine>, c: &Container) -> Result<Stats, DockerError> {
        if c.is_running() { self.sample(engine, &c.id).await } else { Ok(Stats::default()) }
    }

    /// The sums over a stack's running members, asked together.
    pub async fn of_stack(&self, engine: &Arc<dyn Engine>, members: &[Container]) -> Result<Stats, DockerError> {
        let all = futures_util::future::join_all(members.iter().map(|c| self.of_container(engine, c))).await;
        Ok(Stats::sum(all.into_iter().collect::<Result<Vec<_>, _>>()?))
    }
}

/// Reads one container's stream until nobody has asked for [`LINGER`], the
/// stream ends or fails; then forgets it, so the next request opens anew.
async fn follow(engine: Arc<dyn Engine>, id: String, w: Arc<Watched>, all: Arc<Mutex<HashMap<String, Arc<Watched>>>>) {
    let mut stream = engine.stats(&id);
    loop {
        match tokio::time::timeout(LINGER, stream.next()).await {
            Ok(Some(Ok(s))) => {
                w.latest.send_replace(Some(Ok(s)));
            }
            Ok(Some(Err(e))) => {
                w.latest.send_replace(Some(Err(e)));
                break;
            }
            Ok(None) => break,
            // Silent for LINGER: whoever still asks gets a fresh stream.
            Err(_) => break,
        }
        if w.asked.lock().unwrap_or_else(|e| e.into_inner()).elapsed() > LINGER {
            break;
        }
    }
    let mut all = all.lock().unwrap_or_else(|e| e.into_inner());
    if all.get(&id).is_some_and(|now| Arc::ptr_eq(now, &w)) {
        all.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::actions::fake::FakeEngine;

    #[tokio::test(start_paused = true)]
    async fn one_stream_serves_every_viewer_and_closes_when_nobody_looks() {
        let fake = Arc::new(FakeEngine::default());
        let engine: Arc<dyn Engine> = fake.clone();
        let hub = StatsHub::default();
        assert_eq!(hub.sample(&engine, "c1").await.unwrap().memory_bytes, 0);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let (a, b) = tokio::join!(hub.sample(&engine, "c1"), hub.sample(&engine, "c1"));
        assert_eq!((a.unwrap().memory_bytes, b.unwrap().memory_bytes), (2, 2), "the latest sample");
        assert_eq!(fake.stats_opened.load(Ordering::SeqCst), 1);

        tokio::time::sleep(LINGER + Duration::from_secs(2)).await;
        assert_eq!(hub.watching(), 0, "closed once nobody asked for LINGER");
        hub.sample(&engine, "c1").await.unwrap();
        assert_eq!(fake.stats_opened.load(Ordering::SeqCst), 2, "reopened on the next request");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_container_is_not_asked() {
        let fake = Arc::new(FakeEngine::default());
        let engine: Arc<dyn Engine> = fake.clone();
        let stopped = Container::new(
            "s".into(),
            "s",
            "i".into(),
            "exited".into(),
            String::new(),
            Default::default(),
            Default::default(),
        );
        assert_eq!(StatsHub::default().of_container(&engine, &stopped).await.unwrap(), Stats::default());
        assert_eq!(fake.stats_opened.load(Ordering::SeqCst), 0);
    }
}
