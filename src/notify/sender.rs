//! The sender: drains the outbox, one task per attempt, and records the
//! outcomes; when to retry and what an answer means.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

use super::{
    KEEP_DELIVERIES, MAX_IN_FLIGHT, MAX_RETRY_AFTER, Notifier, Outcome, PER_CHANNEL, PRUNE_EVERY, RETRIES, http,
};
use crate::model::Message;
use crate::store::notify::{Attempted, Claimed};

impl Notifier {
    /// The sender: until `stop`, claims what is due, sends it in the
    /// background and records the outcomes; sleeps until the next due
    /// delivery, a newly queued one, or a finished attempt.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let now = self.clock.now();
        match self.store.run(move |s| s.release_notify_leases(now)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "notification attempts cut off by the last shutdown are due again"),
            Err(e) => tracing::error!(error = %e, "could not release notification attempts"),
        }
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(i64, Attempted)>();
        let mut busy: HashMap<i64, usize> = HashMap::new();
        let mut finished: Vec<(i64, Attempted)> = Vec::new();
        let mut pruned: Option<std::time::Instant> = None;
        loop {
            let mut store_failed = false;
            if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                pruned = Some(std::time::Instant::now());
                let cutoff = self.clock.now() - KEEP_DELIVERIES;
                match self.store.run(move |s| s.prune_notify_deliveries(cutoff)).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(deliveries = n, "finished notification deliveries older than 30 days forgotten")
                    }
                    Err(e) => tracing::warn!(error = %e, "could not prune notification deliveries"),
                }
            }
            while let Ok(d) = done_rx.try_recv() {
                finished.push(d);
            }
            if !finished.is_empty() {
                for (channel, _) in &finished {
                    if let Some(n) = busy.get_mut(channel) {
                        *n -= 1;
                        if *n == 0 {
                            busy.remove(channel);
                        }
                    }
                }
                let batch: Vec<Attempted> = finished.drain(..).map(|(_, a)| a).collect();
                let now = self.clock.now();
                if let Err(e) = self.store.run(move |s| s.finish_notify_attempts(&batch, now)).await {
                    tracing::error!(error = %e, "could not record notification attempts; they will be retried");
                }
            }
            let in_flight: usize = busy.values().sum();
            let room = MAX_IN_FLIGHT - in_flight;
            let mut claimed_any = false;
            if room > 0 {
                let (now, held) = (self.clock.now(), busy.clone());
                match self.store.run(move |s| s.claim_notify_due(now, &held, PER_CHANNEL, room)).await {
                    Ok(claimed) => {
                        claimed_any = !claimed.is_empty();
                        for c in claimed {
                            *busy.entry(c.channel_id).or_default() += 1;
                            let (this, done) = (self.clone(), done_tx.clone());
                            tokio::spawn(async move {
                                let channel = c.channel_id;
                                let _ = done.send((channel, this.deliver(c).await));
                            });
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not read the notification outbox; trying again in a second");
                        store_failed = true;
                    }
                }
            }
            let next = self.store.run(|s| s.next_notify_due()).await.ok().flatten();
            let now = self.clock.now();
            // Due but not claimable (its channel is busy, or no room): a finished attempt wakes us.
            let wait = match next {
                _ if store_failed => Some(Duration::from_secs(1)),
                Some(t) if t > now => Some((t - now).to_std().unwrap_or_default()),
                Some(_) if claimed_any && busy.values().sum::<usize>() < MAX_IN_FLIGHT => Some(Duration::ZERO),
                _ => None,
            };
            let sleep = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.store.outbox.notified() => {}
                d = done_rx.recv() => finished.extend(d),
                _ = stop.changed() => return,
            }
        }
    }

    /// One claimed delivery's attempt and what to record for it.
    async fn deliver(&self, c: Claimed) -> Attempted {
        let id = c.id;
        let channel = match self.channel(c.channel_id).await {
            Ok(ch) => ch,
            Err(_) => {
                return Attempted {
                    id,
                    ok: false,
                    status: None,
                    error: Some("the channel is gone".into()),
                    retry_at: None,
                };
            }
        };
        if !channel.enabled {
            return Attempted {
                id,
                ok: false,
                status: None,
                error: Some("the channel is disabled".into()),
                retry_at: None,
            };
        }
        let m =
            Message { notices: c.notices, id: format!("msg_docknap_{id}"), link: self.public_url.clone(), test: false };
        let outcome = self.attempt(&channel, &m).await;
        let now = self.clock.now();
        let (ok, status, error, retry_at) = match outcome {
            Outcome::Delivered(status) => (true, status, None, None),
            Outcome::Failed { status, error } => (false, status, Some(error), None),
            Outcome::Retry { status, error, after } => (false, status, Some(error), retry_at(now, c.attempt, after)),
        };
        let (channel_id, attempt, error_text) = (channel.id, c.attempt, error.as_deref());
        match (ok, retry_at.is_some()) {
            (true, _) => {
                // Final outcomes only: a retry is counted when it ends.
                crate::metrics::global().notification(true);
                tracing::debug!(channel = channel_id, delivery = id, attempt, "notification delivered");
            }
            (false, true) => {
                tracing::info!(
                    channel = channel_id,
                    delivery = id,
                    attempt,
                    status,
                    error = error_text,
                    "a notification attempt failed; will retry"
                );
            }
            (false, false) => {
                crate::metrics::global().notification(false);
                tracing::warn!(
                    channel = channel_id,
                    delivery = id,
                    attempts = attempt,
                    status,
                    error = error_text,
                    "a notification could not be delivered; given up"
                );
            }
        }
        Attempted { id, ok, status, error, retry_at }
    }
}

/// What an HTTP answer means for the delivery.
pub(super) fn classify(a: &http::Answer, check_ok_field: bool) -> Outcome {
    let status = Some(a.status);
    match a.status {
        200..=299 if check_ok_field => {
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            if v.get("ok").and_then(|o| o.as_bool()) == Some(true) {
                Outcome::Delivered(status)
            } else {
                let code = v
                    .get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("no ok in the answer")
                    .chars()
                    .take(80)
                    .collect::<String>();
                Outcome::Failed { status, error: format!("the service refused the message: {code}") }
            }
        }
        200..=299 => Outcome::Delivered(status),
        408 | 429 | 500..=599 => {
            Outcome::Retry { status, error: format!("the service answered {}", a.status), after: a.retry_after }
        }
        _ => Outcome::Failed { status, error: format!("the service answered {} (not retried)", a.status) },
    }
}

/// When to try again after attempt number `attempt` failed, or `None` when
/// the budget is spent. A longer `Retry-After` wins over the backoff.
fn retry_at(now: DateTime<Utc>, attempt: i64, retry_after: Option<u64>) -> Option<DateTime<Utc>> {
    let base = *RETRIES.get(usize::try_from(attempt - 1).ok()?)?;
    let jittered = (base as f64 * rand::random_range(0.8..1.2)) as u64;
    let wait_ms = (jittered * 1000).max(retry_after.unwrap_or(0).min(MAX_RETRY_AFTER) * 1000);
    Some(now + chrono::Duration::milliseconds(wait_ms as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<u64>, body: &str) -> http::Answer {
        http::Answer { status, retry_after, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn client_errors_other_than_408_and_429_are_not_retried() {
        assert!(matches!(classify(&answer(204, None, ""), false), Outcome::Delivered(_)));
        assert!(matches!(classify(&answer(404, None, ""), false), Outcome::Failed { .. }));
        assert!(matches!(classify(&answer(401, None, ""), false), Outcome::Failed { .. }));
        assert!(matches!(classify(&answer(408, None, ""), false), Outcome::Retry { .. }));
        assert!(matches!(classify(&answer(429, Some(7), ""), false), Outcome::Retry { after: Some(7), .. }));
        assert!(matches!(classify(&answer(503, None, ""), false), Outcome::Retry { .. }));
        assert!(matches!(
            classify(&answer(200, None, r#"{"ok":false,"error":"channel_not_found"}"#), true),
            Outcome::Failed { .. }
        ));
        assert!(matches!(classify(&answer(200, None, r#"{"ok":true}"#), true), Outcome::Delivered(_)));
    }

    #[test]
    fn retries_follow_the_documented_budget_with_jitter_and_a_longer_retry_after_wins() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        for (attempt, base) in (1..).zip(RETRIES) {
            let wait = (retry_at(now, attempt, None).unwrap() - now).num_milliseconds() as f64 / 1000.0;
            assert!(wait >= base as f64 * 0.8 && wait <= base as f64 * 1.2, "attempt {attempt}: {wait}");
        }
        assert_eq!(retry_at(now, 6, None), None, "six attempts in all");
        let wait = retry_at(now, 1, Some(90)).unwrap() - now;
        assert_eq!(wait.num_seconds(), 90);
    }
}
