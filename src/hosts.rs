//! The hosts DockNap manages: `local` (`DOCKER_HOST`), those of
//! `DOCKNAP_HOSTS` (read-only), and those added through the API (stored,
//! with their TLS material). Domain level: no HTTP here.

use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use crate::audit::Audit;
use crate::clock::Clock;
use crate::docker::Fleet;
use crate::model::{
    HostConfig, HostSource, HostView, InvalidValue, LOCAL_HOST, NewAuditEntry, TlsMaterial, validate_group,
    validate_host_name, validate_host_url,
};
use crate::store::{Store, StoreError};

/// A create or update request; on update, absent fields keep their value and
/// `group: null` / `tls: null` remove it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostInput {
    pub name: Option<String>,
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub group: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<crate::model::TlsMaterial>)]
    pub tls: Option<Option<TlsMaterial>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    #[error("missing field '{0}'")]
    MissingField(&'static str),
    /// The TLS material or URL could not make a client (the message names the part, never its content).
    #[error("{0}")]
    Tls(String),
    #[error("no host named '{0}'")]
    NotFound(String),
    #[error("a host named '{0}' exists")]
    Exists(String),
    #[error("host '{0}' is declared in {1} and cannot be changed through the API")]
    ReadOnly(String, &'static str),
    #[error("{0}")]
    InUse(String),
    #[error(transparent)]
    Store(StoreError),
}

pub struct Hosts {
    store: Arc<Store>,
    fleet: Arc<Fleet>,
    audit: Arc<Audit>,
    clock: Arc<dyn Clock>,
}

impl Hosts {
    /// Connects `local`, the env hosts and the stored ones. A stored host
    /// whose name an env host took is skipped with a warning (env wins), and
    /// one that no longer makes a client is logged, not fatal.
    pub fn start(
        store: Arc<Store>,
        fleet: Arc<Fleet>,
        audit: Arc<Audit>,
        clock: Arc<dyn Clock>,
        declared: Vec<HostConfig>,
    ) -> Result<Hosts, String> {
        for h in declared {
            let name = h.name.clone();
            fleet.put(h).map_err(|e| format!("host '{name}': {e}"))?;
        }
        for h in store.hosts().map_err(|e| e.to_string())? {
            if fleet.get(&h.name).is_some() {
                tracing::warn!(host = %h.name, "a host added through the API has the name of a declared one; using the declared one");
                continue;
            }
            let name = h.name.clone();
            if let Err(e) = fleet.put(h) {
                tracing::error!(host = %name, error = %e, "cannot set up a stored host");
            }
        }
        Ok(Hosts { store, fleet, audit, clock })
    }

    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    pub fn list(&self) -> Vec<HostView> {
        self.fleet.all().iter().map(|h| h.to_view()).collect()
    }

    pub fn get(&self, name: &str) -> Result<HostView, HostError> {
        self.fleet.get(name).map(|h| h.to_view()).ok_or_else(|| HostError::NotFound(name.to_string()))
    }

    pub async fn create(&self, input: HostInput, actor: &str) -> Result<HostView, HostError> {
        let name = input.name.ok_or(HostError::MissingField("name"))?.trim().to_string();
        validate_host_name(&name)?;
        if self.fleet.get(&name).is_some() {
            return Err(HostError::Exists(name));
        }
        let base = HostConfig { name, url: String::new(), group: None, source: HostSource::Api, tls: None };
        let config = merged(base, HostInput { name: None, ..input }, true)?;
        let (stored, now) = (config.clone(), self.clock.now());
        self.store.run(move |s| s.insert_host(&stored, now)).await.map_err(|e| match e {
            StoreError::Conflict(_) => HostError::Exists(config.name.clone()),
            e => HostError::Store(e),
        })?;
        self.connect(config, actor, crate::model::AuditAction::HostCreate, "added").await
    }

    pub async fn update(&self, name: &str, input: HostInput, actor: &str) -> Result<HostView, HostError> {
        let current = self.writable(name)?;
        if input.name.as_deref().is_some_and(|n| n != name) {
            return Err(HostError::Invalid(InvalidValue::HostName(format!(
                "{} (a host cannot be renamed)",
                input.name.unwrap_or_default()
            ))));
        }
        let config = merged(current, input, false)?;
        let (stored, now) = (config.clone(), self.clock.now());
        self.store.run(move |s| s.update_host(&stored, now)).await.map_err(HostError::Store)?;
        self.connect(config, actor, crate::model::AuditAction::HostUpdate, "changed").await
    }

    pub async fn delete(&self, name: &str, actor: &str) -> Result<(), HostError> {
        self.writable(name)?;
        let owned = name.to_string();
        self.store.run(move |s| s.delete_unused_host(&owned)).await.map_err(|e| match e {
            StoreError::Conflict(m) => HostError::InUse(m),
            StoreError::NotFound => HostError::NotFound(name.to_string()),
            e => HostError::Store(e),
        })?;
        self.fleet.remove(name);
        self.audit.record(
            NewAuditEntry::new(actor, crate::model::AuditAction::HostDelete, true, format!("deleted host {name}"))
                .target("host", name),
        );
        tracing::info!(host = name, actor, "host deleted");
        Ok(())
    }

    /// Hosts an import stored or deleted: connected or disconnected now.
    pub fn imported(&self, put: Vec<HostConfig>, removed: &[String]) {
        for name in removed {
            self.fleet.remove(name);
        }
        for h in put {
            let name = h.name.clone();
            if let Err(e) = self.fleet.put(h) {
                tracing::error!(host = %name, error = %e, "cannot set up an imported host");
            }
        }
    }

    /// The stored config of an API host; env hosts and `local` are read-only.
    fn writable(&self, name: &str) -> Result<HostConfig, HostError> {
        let host = self.fleet.get(name).ok_or_else(|| HostError::NotFound(name.to_string()))?;
        match host.config.source {
            HostSource::Env if name == LOCAL_HOST => Err(HostError::ReadOnly(name.to_string(), "DOCKER_HOST")),
            HostSource::Env => Err(HostError::ReadOnly(name.to_string(), "DOCKNAP_HOSTS")),
            HostSource::Api => Ok(host.config.clone()),
        }
    }

    async fn connect(
        &self,
        config: HostConfig,
        actor: &str,
        what: crate::model::AuditAction,
        verb: &str,
    ) -> Result<HostView, HostError> {
        let tls = if config.tls.is_some() { " with TLS" } else { "" };
        let message = format!("{verb} host {} at {}{tls}", config.name, config.url);
        let name = config.name.clone();
        let host = self.fleet.put(config).map_err(|e| HostError::Tls(e.to_string()))?;
        self.audit.record(NewAuditEntry::new(actor, what, true, message).target("host", &name));
        tracing::info!(host = %name, actor, "{what}");
        Ok(host.to_view())
    }
}

/// `current` with `input` applied, validated. `creating`: the URL is required.
fn merged(mut current: HostConfig, input: HostInput, creating: bool) -> Result<HostConfig, HostError> {
    match input.url {
        Some(url) => current.url = url.trim().to_string(),
        None if creating => return Err(HostError::MissingField("url")),
        None => {}
    }
    if let Some(group) = input.group {
        current.group = group.map(|g| g.trim().to_string()).filter(|g| !g.is_empty());
    }
    if let Some(g) = &current.group {
        validate_group(g)?;
    }
    if let Some(tls) = input.tls {
        current.tls = tls;
    }
    validate_host_url(&current.url, current.tls.is_some())?;
    Ok(current)
}
