//! `POST /api/import`: validate every object, then plan and apply the
//! changes in one transaction. Matching is the contract's: schedules by
//! `(host, target_type, target_id, action, cron)`, windows by
//! `(host, target_type, target_id)`, hosts by `name`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ChannelDoc, Document, HostDoc, REDACTED, Transfer, VERSION};
use crate::model::{
    ChannelInput, HostConfig, HostSource, NewAuditEntry, ScheduleFields, TlsMaterial, WindowFields, validate_group,
    validate_host_name, validate_host_url,
};
use crate::notify::{ChannelRequest, Notifier};
use crate::scheduler::ScheduleInput;
use crate::store::{ImportTx, StoreError};
use crate::window::WindowInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Create and update; leave what the document does not name.
    Merge,
    /// Also delete what the document does not name (label objects excepted).
    Replace,
}

/// One object an import creates, updates, deletes or leaves unchanged.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Item {
    pub kind: &'static str,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportProblem {
    pub kind: &'static str,
    pub name: String,
    pub message: String,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportResult {
    pub applied: bool,
    pub created: Vec<Item>,
    pub updated: Vec<Item>,
    pub deleted: Vec<Item>,
    pub unchanged: Vec<Item>,
    pub errors: Vec<ImportProblem>,
}

impl ImportResult {
    fn error(&mut self, kind: &'static str, name: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ImportProblem { kind, name: name.into(), message: message.into() });
    }
}

/// A host of the document, validated; `tls: None` with `keep_tls`: the
/// existing host's material is kept ("redacted").
struct HostIn {
    config: HostConfig,
    keep_tls: bool,
}

/// The document, every object validated.
struct Valid {
    schedules: Vec<ScheduleFields>,
    windows: Vec<WindowFields>,
    hosts: Vec<HostIn>,
    /// Checked inside the transaction, where a redacted URL or secret is
    /// completed from the channel of that name.
    channels: Vec<ChannelDoc>,
}

/// What the transaction changed, for the services' in-memory state.
#[derive(Default)]
struct Applied {
    deleted_schedules: Vec<i64>,
    changed_windows: Vec<i64>,
    hosts_put: Vec<HostConfig>,
    hosts_removed: Vec<String>,
}

/// `'0 23 * * *'`, or the one-time instant.
fn timing(f: &ScheduleFields) -> String {
    match (&f.cron, f.at) {
        (Some(cron), _) => format!("'{cron}'"),
        (None, Some(at)) => at.to_rfc3339(),
        (None, None) => String::new(),
    }
}

fn schedule_name(f: &ScheduleFields) -> String {
    format!("{} {} {} on {} at {}", f.action, f.target_type, f.target_id, f.host, timing(f))
}

fn window_name(f: &WindowFields) -> String {
    format!("{} {} on {}", f.target_type, f.target_id, f.host)
}

fn schedule_key(f: &ScheduleFields) -> (&str, &str, &str, &str, String) {
    (&f.host, f.target_type.as_str(), &f.target_id, f.action.as_str(), timing(f))
}

fn window_key(f: &WindowFields) -> (&str, &str, &str) {
    (&f.host, f.target_type.as_str(), &f.target_id)
}

impl Transfer {
    /// Every import that is not a dry run is audited, applied or not.
    pub async fn import(
        self: &Arc<Self>,
        document: serde_json::Value,
        mode: Mode,
        dry_run: bool,
        actor: &str,
    ) -> ImportResult {
        let out = self.validate_and_apply(document, mode, dry_run).await;
        if !dry_run {
            let message = format!(
                "import ({}): {} created, {} updated, {} deleted, {} unchanged, {} error(s)",
                if mode == Mode::Merge { "merge" } else { "replace" },
                out.created.len(),
                out.updated.len(),
                out.deleted.len(),
                out.unchanged.len(),
                out.errors.len()
            );
            let first_error = out.errors.first().map(|e| format!("{} {}: {}", e.kind, e.name, e.message));
            self.audit.record(
                NewAuditEntry::new(actor, crate::model::AuditAction::Import, out.applied, message)
                    .details(serde_json::json!({"created": out.created, "updated": out.updated, "deleted": out.deleted, "first_error": first_error})),
            );
        }
        out
    }

    async fn validate_and_apply(
        self: &Arc<Self>,
        document: serde_json::Value,
        mode: Mode,
        dry_run: bool,
    ) -> ImportResult {
        let mut out = ImportResult::default();
        let doc: Document = match serde_json::from_value(document) {
            Ok(d) => d,
            Err(e) => {
                out.error("document", "", format!("not a DockNap export: {e}"));
                return out;
            }
        };
        let Some(valid) = self.validate(doc, &mut out) else { return out };
        let now = self.clock.now();
        let notifier = self.notifier.clone();
        let outcome = self
            .store
            .run(move |s| {
                s.import(now, |tx| {
                    let applied = apply(tx, valid, mode, &notifier, &mut out)?;
                    let commit = out.errors.is_empty() && !dry_run;
                    out.applied = commit;
                    Ok(((out, applied), commit))
                })
            })
            .await;
        let (out, applied) = match outcome {
            Ok(v) => v,
            Err(e) => {
                let mut out = ImportResult::default();
                out.error("document", "", e.to_string());
                return out;
            }
        };
        if out.applied {
            self.scheduler.reload(&applied.deleted_schedules);
            if let Err(e) = self.windows.reload(&applied.changed_windows).await {
                tracing::error!(error = %e, "could not reload the windows after an import");
            }
            self.hosts.imported(applied.hosts_put, &applied.hosts_removed);
        }
        out
    }

    /// Every object checked as the API would check a new one; `None` (with
    /// the errors in `out`) when any is wrong.
    fn validate(&self, doc: Document, out: &mut ImportResult) -> Option<Valid> {
        if doc.version != VERSION {
            out.error("document", "", format!("version must be {VERSION}, not {}", doc.version));
        }
        let host_names: Vec<String> = doc.hosts.iter().map(|h| h.name.trim().to_string()).collect();
        let mut valid = Valid { schedules: Vec::new(), windows: Vec::new(), hosts: Vec::new(), channels: Vec::new() };
        for mut c in doc.notifications {
            c.name = c.name.trim().to_string();
            if valid.channels.iter().any(|v| v.name == c.name) {
                out.error("notification", c.name, "given twice in the document");
            } else {
                valid.channels.push(c);
            }
        }
        for h in doc.hosts {
            let name = h.name.clone();
            match self.valid_host(h) {
                Ok(Some(h)) => valid.hosts.push(h),
                Ok(None) => out.unchanged.push(Item { kind: "host", name }),
                Err(e) => out.error("host", name, e),
            }
        }
        for d in doc.schedules {
            let when = d.cron.clone().or_else(|| d.at.clone()).unwrap_or_default();
            let name = format!("{} {} {} at '{when}'", d.action, d.target_type, d.target_id);
            let input = ScheduleInput {
                host: d.host,
                target_type: Some(d.target_type),
                target_id: Some(d.target_id),
                action: Some(d.action),
                cron: d.cron,
                at: d.at,
                timezone: d.timezone,
                enabled: d.enabled,
                timeout: d.timeout,
                steps: d.steps,
                on_failure: d.on_failure,
            };
            match self.scheduler.validate_imported(input, &host_names) {
                Ok(f) if valid.schedules.iter().any(|v| schedule_key(v) == schedule_key(&f)) => {
                    out.error("schedule", schedule_name(&f), "given twice in the document")
                }
                Ok(f) => valid.schedules.push(f),
                Err(e) => out.error("schedule", name, e.to_string()),
            }
        }
        for d in doc.windows {
            let name = format!("{} {}", d.target_type, d.target_id);
            let input = WindowInput {
                host: d.host,
                target_type: Some(d.target_type),
                target_id: Some(d.target_id),
                spec: Some(d.spec),
                timezone: d.timezone,
                down_action: d.down_action,
                enforce: d.enforce,
                grace: d.grace,
                enabled: d.enabled,
            };
            match self.windows.validate_imported(input, &host_names) {
                Ok(f) if valid.windows.iter().any(|v| window_key(v) == window_key(&f)) => {
                    out.error("window", window_name(&f), "given twice in the document")
                }
                Ok(f) => valid.windows.push(f),
                Err(e) => out.error("window", name, e.to_string()),
            }
        }
        out.errors.is_empty().then_some(valid)
    }

    /// A document host: `Ok(None)` for a declared (env) host the document
    /// describes as it is, which an import leaves alone.
    fn valid_host(&self, h: HostDoc) -> Result<Option<HostIn>, String> {
        let name = h.name.trim().to_string();
        validate_host_name(&name).map_err(|e| e.to_string())?;
        if let Some(existing) = self.hosts.fleet().get(&name).filter(|e| e.config.source == HostSource::Env) {
            return if existing.config.url == h.url.trim() {
                Ok(None)
            } else {
                Err("declared by DOCKER_HOST or DOCKNAP_HOSTS: change it there, not by an import".into())
            };
        }
        let tls = h.tls.as_ref().map(|t| t.material()).transpose()?;
        let keep_tls = matches!(tls, Some(None));
        let tls: Option<TlsMaterial> = tls.flatten();
        let group = h.group.map(|g| g.trim().to_string()).filter(|g| !g.is_empty());
        if let Some(g) = &group {
            validate_group(g).map_err(|e| e.to_string())?;
        }
        let url = h.url.trim().to_string();
        validate_host_url(&url, tls.is_some() || keep_tls).map_err(|e| e.to_string())?;
        Ok(Some(HostIn { config: HostConfig { name, url, group, source: HostSource::Api, tls }, keep_tls }))
    }
}

/// Plans and applies the document inside the transaction; problems found
/// there (a secret that is not kept anywhere, a host still in use) go to
/// `out.errors`, and then nothing is committed.
fn apply(
    tx: &ImportTx,
    valid: Valid,
    mode: Mode,
    notifier: &Notifier,
    out: &mut ImportResult,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    let item = |kind, name| Item { kind, name };

    // Channels, by name. Those of DOCKNAP_NOTIFY_URLS are configuration.
    let current = tx.channels()?;
    let named: Vec<String> = valid.channels.iter().map(|c| c.name.clone()).collect();
    for d in valid.channels {
        let name = d.name.clone();
        let existing = current.iter().find(|c| c.name == name);
        if existing.is_some_and(|c| c.source == HostSource::Env) {
            out.error("notification", name, "declared by DOCKNAP_NOTIFY_URLS: change it there, not by an import");
            continue;
        }
        let input = match channel_input(d, existing.map(|c| (c.url.as_str(), c.secret.as_deref())), notifier) {
            Ok(i) => i,
            Err(e) => {
                out.error("notification", name, e);
                continue;
            }
        };
        match existing {
            Some(c)
                if c.url == input.url
                    && c.secret == input.secret
                    && c.events == input.events
                    && c.enabled == input.enabled =>
            {
                out.unchanged.push(item("notification", name))
            }
            Some(c) => {
                tx.update_channel(c.id, &input)?;
                out.updated.push(item("notification", name));
            }
            None => {
                tx.insert_channel(&input)?;
                out.created.push(item("notification", name));
            }
        }
    }
    if mode == Mode::Replace {
        for c in current.iter().filter(|c| c.source == HostSource::Api && !named.contains(&c.name)) {
            tx.delete_channel(c.id)?;
            out.deleted.push(item("notification", c.name.clone()));
        }
    }

    // Hosts first (schedules and windows may name them); their deletions last.
    let current_hosts = tx.hosts()?;
    let named: Vec<String> = valid.hosts.iter().map(|h| h.config.name.clone()).collect();
    for mut h in valid.hosts {
        let existing = current_hosts.iter().find(|c| c.name == h.config.name);
        if h.keep_tls {
            match existing.and_then(|e| e.tls.clone()) {
                Some(tls) => h.config.tls = Some(tls),
                None => {
                    out.error("host", h.config.name.clone(), "its TLS material is not in the document (export with ?secrets=true) and no host of that name has any");
                    continue;
                }
            }
        }
        match existing {
            Some(e) if *e == h.config => out.unchanged.push(item("host", h.config.name.clone())),
            Some(_) => {
                tx.update_host(&h.config)?;
                out.updated.push(item("host", h.config.name.clone()));
                applied.hosts_put.push(h.config);
            }
            None => {
                tx.insert_host(&h.config)?;
                out.created.push(item("host", h.config.name.clone()));
                applied.hosts_put.push(h.config);
            }
        }
    }

    // Schedules: each stored one matches at most one of the document.
    let mut current = tx.schedules()?;
    for f in valid.schedules {
        match current.iter().position(|s| schedule_key(&s.fields) == schedule_key(&f)) {
            Some(i) => {
                let s = current.swap_remove(i);
                if s.fields == f {
                    out.unchanged.push(item("schedule", schedule_name(&f)));
                } else {
                    tx.update_schedule(s.id, &f)?;
                    out.updated.push(item("schedule", schedule_name(&f)));
                }
            }
            None => {
                tx.insert_schedule(&f)?;
                out.created.push(item("schedule", schedule_name(&f)));
            }
        }
    }
    if mode == Mode::Replace {
        for s in current {
            tx.delete_schedule(s.id)?;
            applied.deleted_schedules.push(s.id);
            out.deleted.push(item("schedule", schedule_name(&s.fields)));
        }
    }

    // Windows: deletions before writes, so a target's one enabled window can move.
    let mut current = tx.windows()?;
    let mut writes = Vec::new();
    for f in valid.windows {
        match current.iter().position(|w| window_key(&w.fields) == window_key(&f)) {
            Some(i) => writes.push((Some(current.swap_remove(i)), f)),
            None => writes.push((None, f)),
        }
    }
    if mode == Mode::Replace {
        for w in current {
            tx.delete_window(w.id)?;
            applied.changed_windows.push(w.id);
            out.deleted.push(item("window", window_name(&w.fields)));
        }
    }
    for (existing, f) in writes {
        let written = match &existing {
            Some(w) if w.fields == f => {
                out.unchanged.push(item("window", window_name(&f)));
                continue;
            }
            Some(w) => tx.update_window(w.id, &f).map(|()| w.id),
            None => tx.insert_window(&f),
        };
        match written {
            Ok(id) => {
                applied.changed_windows.push(id);
                let list = if existing.is_some() { &mut out.updated } else { &mut out.created };
                list.push(item("window", window_name(&f)));
            }
            Err(StoreError::Conflict(m)) => out.error("window", window_name(&f), m),
            Err(e) => return Err(e),
        }
    }

    if mode == Mode::Replace {
        for h in current_hosts.iter().filter(|h| !named.contains(&h.name)) {
            match tx.delete_host(&h.name) {
                Ok(()) => {
                    applied.hosts_removed.push(h.name.clone());
                    out.deleted.push(item("host", h.name.clone()));
                }
                Err(StoreError::Conflict(m)) => out.error("host", h.name.clone(), m),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(applied)
}

/// A document channel, checked as a new one; a `"redacted"` URL or secret
/// is the existing channel's (`existing`: its URL and secret), else an error.
fn channel_input(
    d: ChannelDoc,
    existing: Option<(&str, Option<&str>)>,
    notifier: &Notifier,
) -> Result<ChannelInput, String> {
    let missing = |what: &str| {
        format!("its {what} is not in the document (export with ?secrets=true) and no channel of that name has one")
    };
    let url = match d.url.trim() {
        REDACTED => existing.map(|(u, _)| u.to_string()).ok_or_else(|| missing("URL"))?,
        u => u.to_string(),
    };
    let secret = match d.secret.as_deref().map(str::trim) {
        Some(REDACTED) => {
            Some(existing.and_then(|(_, s)| s).map(str::to_string).ok_or_else(|| missing("signing secret"))?)
        }
        Some(s) => Some(s.to_string()),
        None => None,
    };
    let request = ChannelRequest {
        name: Some(d.name),
        url: Some(url),
        secret: Some(secret),
        events: d.events,
        enabled: d.enabled,
    };
    notifier.check_imported(request).map_err(|e| e.to_string())
}
