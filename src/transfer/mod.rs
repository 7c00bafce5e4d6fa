//! Export and import of DockNap's objects: one JSON document with a section
//! per kind (schedules, windows, hosts; notification channels are one more
//! section, see [`Document`]). Label-defined objects are not exported and an
//! import never touches them. Import is all or nothing: every object is
//! validated first, then one store transaction applies the plan; any error,
//! or a dry run, leaves everything as it was.

mod import;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::clock::Clock;
use crate::hosts::Hosts;
use crate::model::{
    Channel, HostConfig, HostSource, NewAuditEntry, ScheduleFields, TargetType, TlsMaterial, WindowFields, format_grace,
};
use crate::notify::Notifier;
use crate::scheduler::{Scheduler, StepInput};
use crate::store::{Store, StoreError};
use crate::window::Windows;

pub use import::{ImportResult, Mode};

pub const VERSION: u32 = 2;

/// The export document.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub version: u32,
    #[serde(default)]
    pub schedules: Vec<ScheduleDoc>,
    #[serde(default)]
    pub windows: Vec<WindowDoc>,
    #[serde(default)]
    pub notifications: Vec<ChannelDoc>,
    #[serde(default)]
    pub hosts: Vec<HostDoc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDoc {
    #[serde(default)]
    pub host: Option<String>,
    pub target_type: String,
    pub target_id: String,
    pub action: String,
    /// One of `cron` and `at`.
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
}

impl From<&ScheduleFields> for ScheduleDoc {
    fn from(f: &ScheduleFields) -> Self {
        ScheduleDoc {
            host: Some(f.host.clone()),
            target_type: f.target_type.to_string(),
            target_id: f.target_id.clone(),
            action: f.action.to_string(),
            cron: f.cron.clone(),
            at: f.at.map(|t| t.to_rfc3339()),
            timezone: Some(f.timezone.clone()),
            enabled: Some(f.enabled),
            timeout: f.run_timeout.map(|t| format!("{t}s")),
            steps: (f.target_type == TargetType::Sequence).then(|| {
                f.steps
                    .iter()
                    .map(|s| StepInput {
                        host: Some(s.host.clone()),
                        target_type: Some(s.target_type.to_string()),
                        target_id: Some(s.target_id.clone()),
                        action: Some(s.action.to_string()),
                    })
                    .collect()
            }),
            on_failure: (f.target_type == TargetType::Sequence).then(|| f.on_failure.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowDoc {
    #[serde(default)]
    pub host: Option<String>,
    pub target_type: String,
    pub target_id: String,
    pub spec: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub down_action: Option<String>,
    #[serde(default)]
    pub enforce: Option<String>,
    #[serde(default)]
    pub grace: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl From<&WindowFields> for WindowDoc {
    fn from(f: &WindowFields) -> Self {
        WindowDoc {
            host: Some(f.host.clone()),
            target_type: f.target_type.to_string(),
            target_id: f.target_id.clone(),
            spec: f.spec.clone(),
            timezone: Some(f.timezone.clone()),
            down_action: Some(f.down_action.to_string()),
            enforce: Some(f.enforce.to_string()),
            grace: Some(format_grace(f.grace_seconds)),
            enabled: Some(f.enabled),
        }
    }
}

/// A host's TLS material in a document: the PEM strings (`?secrets=true`),
/// or `"redacted"`: on import, the existing host's material is kept.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TlsDoc {
    Material { ca: String, cert: String, key: String },
    Redacted(String),
}

pub const REDACTED: &str = "redacted";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostDoc {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub tls: Option<TlsDoc>,
}

impl HostDoc {
    fn of(h: &HostConfig, secrets: bool) -> HostDoc {
        let tls = h.tls.as_ref().map(|t| match secrets {
            true => TlsDoc::Material { ca: t.ca.clone(), cert: t.cert.clone(), key: t.key.clone() },
            false => TlsDoc::Redacted(REDACTED.into()),
        });
        HostDoc { name: h.name.clone(), url: h.url.clone(), group: h.group.clone(), tls }
    }
}

impl TlsDoc {
    /// The material, `Ok(None)` when redacted, or why the value is not one.
    fn material(&self) -> Result<Option<TlsMaterial>, String> {
        match self {
            TlsDoc::Material { ca, cert, key } => {
                Ok(Some(TlsMaterial { ca: ca.clone(), cert: cert.clone(), key: key.clone() }))
            }
            TlsDoc::Redacted(s) if s == REDACTED => Ok(None),
            TlsDoc::Redacted(_) => Err(format!("tls must be {{ca, cert, key}} or \"{REDACTED}\"")),
        }
    }
}

/// A notification channel made through the API (those of
/// `DOCKNAP_NOTIFY_URLS` are configuration, not exported).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelDoc {
    pub name: String,
    /// The whole URL (`?secrets=true`), or `"redacted"`: an import keeps the
    /// URL of the channel of that name.
    pub url: String,
    /// The webhook signing secret, `"redacted"` (kept likewise), or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl ChannelDoc {
    fn of(c: &Channel, secrets: bool) -> ChannelDoc {
        let hide = |s: &String| if secrets { s.clone() } else { REDACTED.to_string() };
        ChannelDoc {
            name: c.name.clone(),
            url: hide(&c.url),
            secret: c.secret.as_ref().map(hide),
            events: Some(c.events.iter().map(|e| e.to_string()).collect()),
            enabled: Some(c.enabled),
        }
    }
}

pub struct Transfer {
    store: Arc<Store>,
    scheduler: Arc<Scheduler>,
    windows: Arc<Windows>,
    hosts: Arc<Hosts>,
    notifier: Arc<Notifier>,
    audit: Arc<Audit>,
    clock: Arc<dyn Clock>,
}

impl Transfer {
    pub fn new(
        store: Arc<Store>,
        scheduler: Arc<Scheduler>,
        windows: Arc<Windows>,
        hosts: Arc<Hosts>,
        notifier: Arc<Notifier>,
        audit: Arc<Audit>,
        clock: Arc<dyn Clock>,
    ) -> Transfer {
        Transfer { store, scheduler, windows, hosts, notifier, audit, clock }
    }

    /// Every API-made schedule, window, channel and host; channel URLs and
    /// TLS material only with `secrets`.
    pub async fn export(&self, secrets: bool, actor: &str) -> Result<Document, StoreError> {
        let (schedules, windows, hosts, channels) =
            self.store.run(|s| Ok((s.schedules()?, s.windows()?, s.hosts()?, s.notify_channels()?))).await?;
        let doc = Document {
            version: VERSION,
            schedules: schedules.iter().filter(|s| s.label.is_none()).map(|s| ScheduleDoc::from(&s.fields)).collect(),
            windows: windows.iter().filter(|w| w.label.is_none()).map(|w| WindowDoc::from(&w.fields)).collect(),
            notifications: channels
                .iter()
                .filter(|c| c.source == HostSource::Api)
                .map(|c| ChannelDoc::of(c, secrets))
                .collect(),
            hosts: hosts.iter().map(|h| HostDoc::of(h, secrets)).collect(),
        };
        let message = format!(
            "exported {} schedule(s), {} window(s), {} notification channel(s), {} host(s){}",
            doc.schedules.len(),
            doc.windows.len(),
            doc.notifications.len(),
            doc.hosts.len(),
            if secrets { " with their secrets" } else { "" }
        );
        self.audit.record(
            NewAuditEntry::new(actor, crate::model::AuditAction::Export, true, message)
                .details(serde_json::json!({"secrets": secrets})),
        );
        Ok(doc)
    }
}
