//! Notifications: channels (Shoutrrr URLs, from the API or
//! `DOCKNAP_NOTIFY_URLS`), and the sender that drains the outbox.
//!
//! A notice is queued in the store in the same transaction as the result it
//! reports (audited results) or on its own (engine incidents); nothing that
//! acts ever waits for a delivery. One sender task sleeps until the next
//! delivery is due, sends at most [`PER_CHANNEL`] at a time per channel and
//! [`MAX_IN_FLIGHT`] in all, each under a deadline, so a hanging endpoint
//! holds only its own channel, and never for longer than that deadline.

pub mod http;
pub mod services;
pub mod smtp;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};

use crate::audit::Audit;
use crate::clock::Clock;
use crate::events::Incident;
use crate::model::{Channel, ChannelInput, Delivery, EventKind, HostSource, Message, NewAuditEntry, Notice};
use crate::store::notify::{Attempted, ChannelUpdate, Claimed};
use crate::store::{Store, StoreError};

use self::http::HttpClient;
use self::services::{HttpCall, Service};

/// Waits after failed attempts: about 5 s, 30 s, 2 min, 10 min and 1 h
/// (±20 % jitter); after the sixth attempt the delivery is given up.
const RETRIES: [u64; 5] = [5, 30, 120, 600, 3600];
/// The longest `Retry-After` honoured (a longer one is taken as this).
const MAX_RETRY_AFTER: u64 = 6 * 3600;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts under way at once, per channel and in all.
pub const PER_CHANNEL: usize = 4;
pub const MAX_IN_FLIGHT: usize = 32;
const MAX_NAME: usize = 100;
/// Finished deliveries are listed this long, then forgotten.
const KEEP_DELIVERIES: chrono::Duration = chrono::Duration::days(30);
const PRUNE_EVERY: Duration = Duration::from_secs(86400);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("missing field: {0}")]
    MissingField(&'static str),
    #[error("no notification channel {0}")]
    NotFound(i64),
    #[error("notification channel {0} comes from DOCKNAP_NOTIFY_URLS and is read-only here")]
    ReadOnly(i64),
    #[error(transparent)]
    Value(#[from] crate::model::InvalidValue),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for NotifyError {
    fn from(e: StoreError) -> Self {
        NotifyError::Store(e)
    }
}

/// Settings from the environment.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// `DOCKNAP_NOTIFY_URLS` (secret: never logged).
    pub env_urls: Vec<String>,
    /// `DOCKNAP_NOTIFY_CA_FILE`'s PEM: a private CA for self-hosted endpoints.
    pub ca_pem: Option<String>,
    /// `DOCKNAP_PUBLIC_URL`, for links back.
    pub public_url: Option<String>,
    /// `DOCKNAP_NOTIFY_TEST_BASE_URL`: tests only.
    pub test_base: Option<String>,
}

/// A channel as the API shows it: the URL cut to scheme and host.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub events: Vec<EventKind>,
    pub enabled: bool,
    pub source: HostSource,
    /// Whether webhook deliveries are signed (the secret itself is write-only).
    pub has_secret: bool,
}

impl From<&Channel> for ChannelView {
    fn from(c: &Channel) -> Self {
        ChannelView {
            id: c.id,
            name: c.name.clone(),
            url: c.redacted_url(),
            events: c.events.clone(),
            enabled: c.enabled,
            source: c.source,
            has_secret: c.secret.is_some(),
        }
    }
}

/// What the Test button shows: the real result of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub ok: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A create or replace request, before validation.
#[derive(Debug, Default)]
pub struct ChannelRequest {
    pub name: Option<String>,
    pub url: Option<String>,
    /// `Some(None)`: remove the secret.
    pub secret: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Delivered(Option<u16>),
    /// Worth another attempt (no answer, 408, 429, 5xx, an SMTP 4xx).
    Retry { status: Option<u16>, error: String, after: Option<u64> },
    Failed { status: Option<u16>, error: String },
}

pub struct Notifier {
    store: Arc<Store>,
    audit: Arc<Audit>,
    clock: Arc<dyn Clock>,
    http: HttpClient,
    tls: Arc<rustls::ClientConfig>,
    hosts: services::Hosts,
    public_url: Option<String>,
    delivered: AtomicU64,
    failed: AtomicU64,
}

/// `(ok, failed)` delivery totals since start-up (each attempt's final
/// outcome; retries are not counted until they end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ok: u64,
    pub failed: u64,
}

impl Notifier {
    /// Checks the env channels and makes the store hold exactly them.
    pub fn new(store: Arc<Store>, audit: Arc<Audit>, clock: Arc<dyn Clock>, config: NotifyConfig) -> Result<Arc<Notifier>, String> {
        let mut env = Vec::new();
        for (i, raw) in config.env_urls.iter().enumerate() {
            let url = services::normalize(raw);
            services::parse(&url).map_err(|e| format!("DOCKNAP_NOTIFY_URLS: URL {} ({}): {e}", i + 1, crate::model::redact_url(&url)))?;
            env.push((format!("env-{}", i + 1), url));
        }
        store.sync_env_notify_channels(&env, clock.now()).map_err(|e| format!("DOCKNAP_NOTIFY_URLS: {e}"))?;
        let tls = http::tls_config(config.ca_pem.as_deref())?;
        Ok(Arc::new(Notifier {
            store,
            audit,
            clock,
            http: HttpClient::new(tls.clone(), HTTP_TIMEOUT),
            tls,
            hosts: services::Hosts { test_base: config.test_base },
            public_url: config.public_url,
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }))
    }

    /// Deliveries that ended, by outcome (for `docknap_notifications_total{ok}`).
    pub fn counts(&self) -> Counts {
        Counts { ok: self.delivered.load(Ordering::Relaxed), failed: self.failed.load(Ordering::Relaxed) }
    }

    pub async fn list(&self) -> Result<Vec<ChannelView>, NotifyError> {
        let all = self.store.run(|s| s.notify_channels()).await?;
        Ok(all.iter().map(ChannelView::from).collect())
    }

    pub async fn get(&self, id: i64) -> Result<ChannelView, NotifyError> {
        Ok(ChannelView::from(&self.channel(id).await?))
    }

    async fn channel(&self, id: i64) -> Result<Channel, NotifyError> {
        self.store.run(move |s| s.notify_channel(id)).await.map_err(|e| match e {
            StoreError::NotFound => NotifyError::NotFound(id),
            e => e.into(),
        })
    }

    fn validate(&self, r: ChannelRequest, old: Option<&Channel>) -> Result<ChannelInput, NotifyError> {
        let name = r.name.or_else(|| old.map(|c| c.name.clone())).ok_or(NotifyError::MissingField("name"))?.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(NotifyError::Invalid("invalid_name", format!("name must be 1 to {MAX_NAME} characters")));
        }
        let url = match r.url {
            Some(u) => services::normalize(&u),
            None => old.map(|c| c.url.clone()).ok_or(NotifyError::MissingField("url"))?,
        };
        let service = services::parse(&url).map_err(|e| NotifyError::Invalid("invalid_url", e))?;
        let secret = match r.secret {
            Some(s) => s.filter(|s| !s.is_empty()),
            None => old.and_then(|c| c.secret.clone()),
        };
        if let Some(s) = &secret {
            if !matches!(service, Service::Webhook { .. }) {
                return Err(NotifyError::Invalid("invalid_secret", "only generic+https:// webhooks are signed with a secret".into()));
            }
            http::decode_secret(s).map_err(|e| NotifyError::Invalid("invalid_secret", e))?;
        }
        let events = match r.events {
            Some(list) => crate::model::parse_events(&list)?,
            None => old.map_or_else(EventKind::defaults, |c| c.events.clone()),
        };
        Ok(ChannelInput { name, url, secret, events, enabled: r.enabled.or(old.map(|c| c.enabled)).unwrap_or(true) })
    }

    pub async fn create(&self, actor: &str, r: ChannelRequest) -> Result<ChannelView, NotifyError> {
        let input = self.validate(r, None)?;
        let now = self.clock.now();
        let c = self.store.run(move |s| s.insert_notify_channel(&input, HostSource::Api, now)).await?;
        self.audited(actor, "notify_channel_create", &c, "created");
        Ok(ChannelView::from(&c))
    }

    pub async fn update(&self, actor: &str, id: i64, r: ChannelRequest) -> Result<ChannelView, NotifyError> {
        let old = self.channel(id).await?;
        if old.source == HostSource::Env {
            return Err(NotifyError::ReadOnly(id));
        }
        let url_given = r.url.is_some();
        let secret_given = r.secret.is_some();
        let i = self.validate(r, Some(&old))?;
        let now = self.clock.now();
        let c = self
            .store
            .run(move |s| {
                let update = ChannelUpdate {
                    name: &i.name,
                    url: url_given.then_some(i.url.as_str()),
                    secret: secret_given.then_some(i.secret.as_deref()),
                    events: &i.events,
                    enabled: i.enabled,
                };
                s.update_notify_channel(id, &update, now)
            })
            .await?;
        self.audited(actor, "notify_channel_update", &c, "updated");
        Ok(ChannelView::from(&c))
    }

    pub async fn delete(&self, actor: &str, id: i64) -> Result<(), NotifyError> {
        let old = self.channel(id).await?;
        if old.source == HostSource::Env {
            return Err(NotifyError::ReadOnly(id));
        }
        self.store.run(move |s| s.delete_notify_channel(id)).await?;
        self.audited(actor, "notify_channel_delete", &old, "deleted");
        Ok(())
    }

    /// Audits a change with the channel's name and redacted URL only.
    fn audited(&self, actor: &str, action: &str, c: &Channel, what: &str) {
        let message = format!("notification channel '{}' ({}) {what}", c.name, c.redacted_url());
        self.audit.record(NewAuditEntry::new(actor, action, true, message).target("notification", &c.id.to_string()));
    }

    pub async fn deliveries(&self, id: i64, limit: i64) -> Result<Vec<Delivery>, NotifyError> {
        self.channel(id).await?;
        Ok(self.store.run(move |s| s.notify_deliveries(id, limit)).await?)
    }

    /// The latest failed deliveries of all channels (the dashboard).
    pub async fn failures(&self, limit: i64) -> Result<Vec<Delivery>, NotifyError> {
        Ok(self.store.run(move |s| s.failed_notify_deliveries(limit)).await?)
    }

    /// Sends a test message now and records it among the deliveries.
    pub async fn test(&self, actor: &str, id: i64) -> Result<TestResult, NotifyError> {
        let c = self.channel(id).await?;
        let now = self.clock.now();
        let notice = Notice::new(EventKind::ActionSucceeded, now, true, format!("Test notification from DockNap, sent by {actor}."));
        let m = Message { notices: vec![notice], id: format!("test_{}_{}", id, now.timestamp_millis()), link: self.public_url.clone(), test: true };
        let outcome = self.attempt(&c, &m).await;
        let result = match outcome {
            Outcome::Delivered(status) => TestResult { ok: true, status, error: None },
            Outcome::Retry { status, error, .. } | Outcome::Failed { status, error } => TestResult { ok: false, status, error: Some(error) },
        };
        tracing::info!(channel = id, ok = result.ok, status = result.status, "notification channel tested");
        let r = result.clone();
        self.store.run(move |s| s.record_notify_test(id, r.ok, r.status, r.error.as_deref(), now)).await?;
        Ok(result)
    }

    /// One attempt at delivering `m` through `c`.
    async fn attempt(&self, c: &Channel, m: &Message) -> Outcome {
        let service = match services::parse(&c.url) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed { status: None, error: e },
        };
        if let Service::Smtp(cfg) = &service {
            return match smtp::send(cfg, m, &self.tls, SMTP_TIMEOUT, self.clock.now()).await {
                Ok(()) => Outcome::Delivered(None),
                Err(e) if e.code.is_some_and(|c| c >= 500) => Outcome::Failed { status: e.code, error: e.message },
                Err(e) => Outcome::Retry { status: e.code, error: e.message, after: None },
            };
        }
        let mut last = Outcome::Delivered(None);
        for call in service.http_calls(m, &self.hosts) {
            last = self.call(c, &call, m).await;
            if !matches!(last, Outcome::Delivered(_)) {
                return last;
            }
        }
        last
    }

    async fn call(&self, c: &Channel, call: &HttpCall, m: &Message) -> Outcome {
        let mut extra = Vec::new();
        if let Some(secret) = &c.secret {
            let ts = self.clock.now().timestamp();
            match http::sign(secret, &m.id, ts, &call.body) {
                Ok(sig) => extra.extend([("webhook-id", m.id.clone()), ("webhook-timestamp", ts.to_string()), ("webhook-signature", sig)]),
                Err(e) => return Outcome::Failed { status: None, error: e },
            }
        }
        let answer = match self.http.send(call, &extra).await {
            Ok(a) => a,
            Err(error) => return Outcome::Retry { status: None, error, after: None },
        };
        classify(&answer, call.check_ok_field)
    }

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
                    Ok(n) => tracing::info!(deliveries = n, "finished notification deliveries older than 30 days forgotten"),
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
            Err(_) => return Attempted { id, ok: false, status: None, error: Some("the channel is gone".into()), retry_at: None },
        };
        if !channel.enabled {
            return Attempted { id, ok: false, status: None, error: Some("the channel is disabled".into()), retry_at: None };
        }
        let m = Message { notices: c.notices, id: format!("msg_docknap_{id}"), link: self.public_url.clone(), test: false };
        let outcome = self.attempt(&channel, &m).await;
        let now = self.clock.now();
        let (ok, status, error, retry_at) = match outcome {
            Outcome::Delivered(status) => (true, status, None, None),
            Outcome::Failed { status, error } => (false, status, Some(error), None),
            Outcome::Retry { status, error, after } => (false, status, Some(error), retry_at(now, c.attempt, after)),
        };
        if retry_at.is_none() {
            if ok {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let level_error = !ok && retry_at.is_none();
        if level_error {
            tracing::warn!(channel = channel.id, delivery = id, attempts = c.attempt, status, error = error.as_deref(), "a notification could not be delivered; given up");
        } else if !ok {
            tracing::info!(channel = channel.id, delivery = id, attempt = c.attempt, status, error = error.as_deref(), "a notification attempt failed; will retry");
        } else {
            tracing::debug!(channel = channel.id, delivery = id, attempt = c.attempt, "notification delivered");
        }
        Attempted { id, ok, status, error, retry_at }
    }

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
                    let mut n = Notice::new(EventKind::HostUnreachable, now, false, format!("the Docker Engine of host {host} is unreachable{why}"));
                    n.host = Some(host);
                    n
                }
                Incident::HostUp { host } => {
                    if !down.remove(&host) {
                        continue;
                    }
                    let mut n = Notice::new(EventKind::HostRecovered, now, true, format!("the Docker Engine of host {host} answers again"));
                    n.host = Some(host);
                    n
                }
                Incident::ContainerDied { host, name, exit_code } => {
                    let mut n = Notice::new(EventKind::ContainerDied, now, false, format!("container {name} exited with code {exit_code}"));
                    n.details = serde_json::json!({ "exit_code": exit_code });
                    (n.host, n.target_type, n.target_id) = (Some(host), Some("container".into()), Some(name));
                    n
                }
                Incident::ContainerUnhealthy { host, name } => {
                    let mut n = Notice::new(EventKind::ContainerUnhealthy, now, false, format!("container {name} is unhealthy"));
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

/// What an HTTP answer means for the delivery.
fn classify(a: &http::Answer, check_ok_field: bool) -> Outcome {
    let status = Some(a.status);
    match a.status {
        200..=299 if check_ok_field => {
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            if v.get("ok").and_then(|o| o.as_bool()) == Some(true) {
                Outcome::Delivered(status)
            } else {
                let code = v.get("error").and_then(|e| e.as_str()).unwrap_or("no ok in the answer").chars().take(80).collect::<String>();
                Outcome::Failed { status, error: format!("the service refused the message: {code}") }
            }
        }
        200..=299 => Outcome::Delivered(status),
        408 | 429 | 500..=599 => Outcome::Retry { status, error: format!("the service answered {}", a.status), after: a.retry_after },
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
        assert!(matches!(classify(&answer(200, None, r#"{"ok":false,"error":"channel_not_found"}"#), true), Outcome::Failed { .. }));
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
