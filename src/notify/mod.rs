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
mod incidents;
mod sender;
pub mod services;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::audit::Audit;
use crate::clock::Clock;
use crate::model::{
    AuditAction, Channel, ChannelInput, Delivery, EventKind, HostSource, Message, NewAuditEntry, Notice,
};
use crate::store::notify::ChannelUpdate;
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = NotifyTestResult)]
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
    Retry {
        status: Option<u16>,
        error: String,
        after: Option<u64>,
    },
    Failed {
        status: Option<u16>,
        error: String,
    },
}

pub struct Notifier {
    store: Arc<Store>,
    audit: Arc<Audit>,
    clock: Arc<dyn Clock>,
    http: HttpClient,
    tls: Arc<rustls::ClientConfig>,
    hosts: services::Hosts,
    public_url: Option<String>,
}

impl Notifier {
    /// Checks the env channels and makes the store hold exactly them.
    pub fn new(
        store: Arc<Store>,
        audit: Arc<Audit>,
        clock: Arc<dyn Clock>,
        config: NotifyConfig,
    ) -> Result<Arc<Notifier>, String> {
        let mut env = Vec::new();
        for (i, raw) in config.env_urls.iter().enumerate() {
            let url = services::normalize(raw);
            services::parse(&url)
                .map_err(|e| format!("DOCKNAP_NOTIFY_URLS: URL {} ({}): {e}", i + 1, crate::model::redact_url(&url)))?;
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
        }))
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
        let name =
            r.name.or_else(|| old.map(|c| c.name.clone())).ok_or(NotifyError::MissingField("name"))?.trim().to_string();
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
                return Err(NotifyError::Invalid(
                    "invalid_secret",
                    "only generic+https:// webhooks are signed with a secret".into(),
                ));
            }
            http::decode_secret(s).map_err(|e| NotifyError::Invalid("invalid_secret", e))?;
        }
        let events = match r.events {
            Some(list) => crate::model::parse_events(&list)?,
            None => old.map_or_else(EventKind::defaults, |c| c.events.clone()),
        };
        Ok(ChannelInput { name, url, secret, events, enabled: r.enabled.or(old.map(|c| c.enabled)).unwrap_or(true) })
    }

    /// An imported channel, checked as a new one would be; `url` is the
    /// document's or the existing channel's (a redacted export keeps it).
    pub fn check_imported(&self, r: ChannelRequest) -> Result<ChannelInput, NotifyError> {
        self.validate(r, None)
    }

    pub async fn create(&self, actor: &str, r: ChannelRequest) -> Result<ChannelView, NotifyError> {
        let input = self.validate(r, None)?;
        let now = self.clock.now();
        let c = self.store.run(move |s| s.insert_notify_channel(&input, HostSource::Api, now)).await?;
        self.audited(actor, AuditAction::NotifyChannelCreate, &c, "created");
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
        self.audited(actor, AuditAction::NotifyChannelUpdate, &c, "updated");
        Ok(ChannelView::from(&c))
    }

    pub async fn delete(&self, actor: &str, id: i64) -> Result<(), NotifyError> {
        let old = self.channel(id).await?;
        if old.source == HostSource::Env {
            return Err(NotifyError::ReadOnly(id));
        }
        self.store.run(move |s| s.delete_notify_channel(id)).await?;
        self.audited(actor, AuditAction::NotifyChannelDelete, &old, "deleted");
        Ok(())
    }

    /// Audits a change with the channel's name and redacted URL only.
    fn audited(&self, actor: &str, action: AuditAction, c: &Channel, what: &str) {
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
        let notice = Notice::new(
            EventKind::ActionSucceeded,
            now,
            true,
            format!("Test notification from DockNap, sent by {actor}."),
        );
        let m = Message {
            notices: vec![notice],
            id: format!("test_{}_{}", id, now.timestamp_millis()),
            link: self.public_url.clone(),
            test: true,
        };
        let outcome = self.attempt(&c, &m).await;
        let result = match outcome {
            Outcome::Delivered(status) => TestResult { ok: true, status, error: None },
            Outcome::Retry { status, error, .. } | Outcome::Failed { status, error } => {
                TestResult { ok: false, status, error: Some(error) }
            }
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
                Ok(sig) => extra.extend([
                    ("webhook-id", m.id.clone()),
                    ("webhook-timestamp", ts.to_string()),
                    ("webhook-signature", sig),
                ]),
                Err(e) => return Outcome::Failed { status: None, error: e },
            }
        }
        let answer = match self.http.send(call, &extra).await {
            Ok(a) => a,
            Err(error) => return Outcome::Retry { status: None, error, after: None },
        };
        sender::classify(&answer, call.check_ok_field)
    }
}
