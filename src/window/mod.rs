//! Windows: when a target should be up; outside them, down, and DockNap
//! keeps it so. This module is the domain service (validation, CRUD,
//! overrides, state); [`reconcile`] compares the desired state with the
//! engine's and acts only on a difference.

pub mod conflicts;
mod order;
mod reconcile;
pub mod spec;
mod swarm;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::Notify;

use self::conflicts::{Found, HORIZON, Target, TimedSchedule, TimedWindow};
use self::reconcile::Memory;
use self::spec::{SpecError, WindowSpec};
use crate::actions::{ActionError, Actions};
use crate::audit::Audit;
use crate::clock::Clock;
use crate::docker::Fleet;
use crate::events::{Event, Events};
use crate::model::{AuditAction, ScheduleView, validate_host_name};
use crate::model::{
    Desired, DownAction, Enforce, InvalidValue, LOCAL_HOST, LabelOrigin, NewAuditEntry, Override, TargetType, Window,
    WindowFields, WindowState, WindowView, format_grace,
};
use crate::scheduler::cron::{CronError, CronExpr, parse_timezone};
use crate::scheduler::{LABELS_ACTOR, ScheduleError, Scheduler, target_name};
use crate::store::{Store, StoreError};

pub const DEFAULT_GRACE_SECONDS: u32 = 15 * 60;
pub const MAX_PREVIEW: usize = 100;
/// How long an override lasts by default on a window without boundaries.
pub const OVERRIDE_WITHOUT_BOUNDARY_HOURS: i64 = 24;

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Value(#[from] InvalidValue),
    #[error(transparent)]
    Zone(#[from] CronError),
    #[error(transparent)]
    Target(#[from] ActionError),
    #[error("missing field '{0}'")]
    MissingField(&'static str),
    #[error("no window with id {0}")]
    NotFound(i64),
    #[error("window {0} is defined by container labels ({1}): change the labels, not the window")]
    ReadOnly(i64, String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

fn store_err(id: i64) -> impl Fn(StoreError) -> WindowError {
    move |e| match e {
        StoreError::NotFound => WindowError::NotFound(id),
        StoreError::Conflict(m) => WindowError::Conflict(m),
        e => WindowError::Store(e),
    }
}

/// A create or update request; on update, `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct WindowInput {
    pub host: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub spec: Option<String>,
    pub timezone: Option<String>,
    pub down_action: Option<String>,
    pub enforce: Option<String>,
    pub grace: Option<String>,
    pub enabled: Option<bool>,
}

/// A window with its spec and zone parsed (parsing is ~20 µs; a pass over
/// 1,000 windows must not pay it every time).
#[derive(Clone)]
pub(crate) struct Compiled {
    pub window: Window,
    pub spec: WindowSpec,
    pub tz: Tz,
}

impl Compiled {
    fn new(window: Window) -> Option<Compiled> {
        let parsed = WindowSpec::parse(&window.fields.spec).ok().zip(parse_timezone(&window.fields.timezone).ok());
        let (spec, tz) = match parsed {
            Some(p) => p,
            // A label window whose labels are wrong is listed with its error
            // (stored disabled, so never enforced).
            None if window.label.as_ref().is_some_and(|l| l.error.is_some()) => {
                (WindowSpec::parse("never").ok()?, chrono_tz::UTC)
            }
            None => return None,
        };
        Some(Compiled { window, spec, tz })
    }

    /// The override, while it lasts.
    fn active_override(&self, now: DateTime<Utc>) -> Option<&Override> {
        self.window.override_.as_ref().filter(|o| o.until > now)
    }

    pub fn desired(&self, now: DateTime<Utc>) -> Desired {
        self.active_override(now).map(|o| o.desired).unwrap_or_else(|| self.spec.desired_at(now, self.tz))
    }

    /// Where an override ends by default: the next boundary, or a day from
    /// now for a window that has none (`always`, `never`).
    pub fn override_end(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.spec
            .next_transition(now, self.tz)
            .map_or(now + chrono::Duration::hours(OVERRIDE_WITHOUT_BOUNDARY_HOURS), |(at, _)| at)
    }

    /// The next instant the desired state may change: a boundary of the
    /// spec or the end of the override.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let boundary = self.spec.next_transition(now, self.tz).map(|(at, _)| at);
        match self.active_override(now) {
            Some(o) => Some(boundary.map_or(o.until, |b| b.min(o.until))),
            None => boundary,
        }
    }
}

pub struct Windows {
    store: Arc<Store>,
    actions: Arc<Actions>,
    scheduler: Arc<Scheduler>,
    audit: Arc<Audit>,
    events: Events,
    clock: Arc<dyn Clock>,
    fleet: Arc<Fleet>,
    default_tz: Tz,
    /// Every window, compiled, kept in step with the store by each change
    /// (all of them go through this service).
    windows: RwLock<Vec<Compiled>>,
    /// Wakes the reconciler: an edit, an override, drift.
    wake: Notify,
    /// What the reconciler remembers between passes, per window.
    memory: Mutex<HashMap<i64, Memory>>,
}

impl Windows {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<Store>,
        actions: Arc<Actions>,
        scheduler: Arc<Scheduler>,
        audit: Arc<Audit>,
        events: Events,
        clock: Arc<dyn Clock>,
        default_tz: Tz,
    ) -> Result<Arc<Windows>, StoreError> {
        let windows = Arc::new(Windows {
            store,
            fleet: actions.fleet().clone(),
            actions: actions.clone(),
            scheduler,
            audit,
            events,
            clock,
            default_tz,
            windows: RwLock::default(),
            wake: Notify::new(),
            memory: Mutex::default(),
        });
        let all = windows.store.windows()?.into_iter().filter_map(Compiled::new).collect();
        *windows.windows.write().unwrap_or_else(|e| e.into_inner()) = all;
        actions.observe(windows.clone());
        Ok(windows)
    }

    /// Puts a window as the store now has it into the in-memory list.
    pub(crate) fn put(&self, w: Window) {
        let id = w.id;
        let mut all = self.windows.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|c| c.window.id != id);
        all.extend(Compiled::new(w));
        all.sort_by_key(|c| c.window.id);
    }

    pub(crate) fn compiled(&self) -> Vec<Compiled> {
        self.windows.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn find(&self, id: i64) -> Result<Compiled, WindowError> {
        self.compiled().into_iter().find(|c| c.window.id == id).ok_or(WindowError::NotFound(id))
    }

    pub(crate) fn view(&self, c: &Compiled) -> WindowView {
        let now = self.clock.now();
        let w = &c.window;
        let f = &w.fields;
        let desired = c.desired(now);
        let error = w.label.as_ref().and_then(|l| l.error.clone());
        let reason = match (c.active_override(now), self.gave_up(w.id)) {
            (_, _) if error.is_some() => Some(format!("not enforced: {}", error.as_deref().unwrap_or_default())),
            (Some(o), _) => Some(format!(
                "override by {}{}",
                o.by,
                o.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            )),
            (None, Some(names)) => Some(format!("not acting on {names}: something else restarted it 3 times")),
            (None, None) if !f.enabled => Some("disabled: not enforced".into()),
            (None, None) => {
                Some(if desired == Desired::Up { "inside the window" } else { "outside the window" }.into())
            }
        };
        let since = match c.active_override(now) {
            Some(_) => None,
            None => c.spec.previous_transition(now, c.tz),
        };
        WindowView {
            id: w.id,
            host: f.host.clone(),
            target_type: f.target_type,
            target_id: f.target_id.clone(),
            spec: f.spec.clone(),
            timezone: f.timezone.clone(),
            down_action: f.down_action,
            enforce: f.enforce,
            grace: format_grace(f.grace_seconds),
            enabled: f.enabled,
            source: w.source,
            origin: w.label.as_ref().map(|l| l.origin.clone()),
            error,
            state: WindowState { desired, since, next_change: c.next_change(now), reason },
            override_: c.active_override(now).cloned(),
            conflicts: Vec::new(),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }

    pub async fn list(&self) -> Result<Vec<WindowView>, WindowError> {
        let compiled = self.compiled();
        let mut found = self.conflicts(&self.scheduler.list().await?, &compiled);
        Ok(compiled.iter().map(|c| self.with_conflicts(c, &mut found)).collect())
    }

    pub async fn get(&self, id: i64) -> Result<WindowView, WindowError> {
        let c = self.find(id)?;
        let mut found = self.conflicts(&self.scheduler.list().await?, &self.compiled());
        Ok(self.with_conflicts(&c, &mut found))
    }

    fn with_conflicts(&self, c: &Compiled, found: &mut Found) -> WindowView {
        let mut view = self.view(c);
        view.conflicts = found.windows.remove(&c.window.id).unwrap_or_default();
        view
    }

    /// Sets each schedule's conflicts (with the others and with the windows).
    pub fn annotate_schedules(&self, schedules: &mut [ScheduleView]) {
        let mut found = self.conflicts(schedules, &self.compiled());
        for s in schedules {
            s.conflicts = found.schedules.remove(&s.id).unwrap_or_default();
        }
    }

    /// `candidate` with its conflicts, as if it were saved (it replaces the
    /// stored schedule with its id, if any).
    /// Only the schedules and windows that can overlap it are read: those on
    /// its host aimed at it, its stack, or that stack's containers.
    pub async fn schedule_with_conflicts(&self, mut candidate: ScheduleView) -> Result<ScheduleView, WindowError> {
        let target = self.target(&candidate.host, candidate.target_type, &candidate.target_id);
        let scope = target.stack.clone().unwrap_or_else(|| candidate.target_id.clone());
        let mut names: Vec<String> = vec![candidate.target_id.clone(), scope.clone()];
        let stack = crate::model::Target::new(&candidate.host, TargetType::Stack, &scope);
        names.extend(self.fleet.members(&stack).unwrap_or_default().into_iter().map(|c| c.name));
        let mut all = self.scheduler.list_on(&candidate.host, names.clone()).await?;
        all.retain(|s| s.id != candidate.id);
        all.push(candidate.clone());
        let windows: Vec<Compiled> = self
            .compiled()
            .into_iter()
            .filter(|c| c.window.fields.host == candidate.host && names.contains(&c.window.fields.target_id))
            .collect();
        let mut found = self.conflicts(&all, &windows);
        candidate.conflicts = found.schedules.remove(&candidate.id).unwrap_or_default();
        Ok(candidate)
    }

    fn target(&self, host: &str, target_type: TargetType, target_id: &str) -> Target {
        let stack = match target_type {
            TargetType::Container => self.fleet.stack_of(host, target_id),
            _ => None,
        };
        Target { host: host.to_string(), target_type, target_id: target_id.to_string(), stack }
    }

    fn conflicts(&self, schedules: &[ScheduleView], windows: &[Compiled]) -> Found {
        let now = self.clock.now();
        let windows: Vec<TimedWindow> = windows
            .iter()
            .filter(|c| c.window.fields.enabled)
            .map(|c| TimedWindow {
                id: c.window.id,
                target: self.target(&c.window.fields.host, c.window.fields.target_type, &c.window.fields.target_id),
                spec: &c.spec,
                tz: c.tz,
            })
            .collect();
        // Sequences are left out: their steps are checked when they run.
        let targeted: Vec<(&ScheduleView, Target)> = schedules
            .iter()
            .filter(|s| s.enabled && s.action.brings_up().is_some() && s.target_type != TargetType::Sequence)
            .map(|s| (s, self.target(&s.host, s.target_type, &s.target_id)))
            .collect();
        // Only a schedule that shares its scope with another or with a window
        // can clash: the others' week of fires is never computed.
        let mut in_scope: HashMap<(&str, &str), usize> = HashMap::new();
        for t in targeted.iter().map(|(_, t)| t).chain(windows.iter().map(|w| &w.target)) {
            *in_scope.entry((t.host.as_str(), t.scope())).or_default() += 1;
        }
        let timed: Vec<TimedSchedule> = targeted
            .iter()
            .filter(|(_, t)| in_scope[&(t.host.as_str(), t.scope())] > 1)
            .filter_map(|(s, target)| {
                let tz = parse_timezone(&s.timezone).ok()?;
                let fires = match (&s.cron, s.at) {
                    (Some(cron), _) => conflicts::fires_within(&CronExpr::parse(cron).ok()?, tz, now, now + HORIZON),
                    (None, Some(at)) => (at > now && at <= now + HORIZON).then_some(at).into_iter().collect(),
                    (None, None) => return None,
                };
                Some(TimedSchedule { id: s.id, target: target.clone(), action: s.action, fires })
            })
            .collect();
        conflicts::find(&timed, &windows)
    }

    pub fn default_timezone(&self) -> Tz {
        self.default_tz
    }

    fn validate(&self, input: WindowInput, current: Option<&WindowFields>) -> Result<WindowFields, WindowError> {
        fn pick<T: Clone>(new: Option<T>, old: Option<&T>, name: &'static str) -> Result<T, WindowError> {
            new.or_else(|| old.cloned()).ok_or(WindowError::MissingField(name))
        }
        let host = input.host.map(|h| h.trim().to_string()).or_else(|| current.map(|c| c.host.clone()));
        let host = host.unwrap_or_else(|| LOCAL_HOST.to_string());
        validate_host_name(&host)?;
        if self.fleet.get(&host).is_none() {
            return Err(ActionError::UnknownHost(host).into());
        }
        let target_type: TargetType = match input.target_type {
            Some(t) => t.parse()?,
            None => pick(None, current.map(|c| &c.target_type), "target_type")?,
        };
        if target_type == TargetType::Group {
            return Err(WindowError::Invalid(
                "a window keeps one target; for a group, give each stack its own window".into(),
            ));
        }
        let target_id = target_name(target_type, &pick(input.target_id, current.map(|c| &c.target_id), "target_id")?)?;
        let spec = WindowSpec::parse(&pick(input.spec, current.map(|c| &c.spec), "spec")?)?.as_str().to_string();
        let timezone = match input.timezone.or_else(|| current.map(|c| c.timezone.clone())) {
            Some(tz) => parse_timezone(tz.trim())?.name().to_string(),
            None => self.default_tz.name().to_string(),
        };
        let down_action: DownAction = match input.down_action {
            Some(a) => a.parse()?,
            None => current.map_or(DownAction::Stop, |c| c.down_action),
        };
        if target_type.is_swarm() && down_action == DownAction::Pause {
            return Err(WindowError::Invalid(format!(
                "down_action must be stop for a Swarm {target_type}: services are scaled to 0, not paused"
            )));
        }
        let enforce: Enforce = match input.enforce {
            Some(e) => e.parse()?,
            None => current.map_or(Enforce::Both, |c| c.enforce),
        };
        let grace_seconds = match input.grace {
            Some(g) => parse_grace(&g)?,
            None => current.map_or(DEFAULT_GRACE_SECONDS, |c| c.grace_seconds),
        };
        let enabled = input.enabled.or(current.map(|c| c.enabled)).unwrap_or(true);
        Ok(WindowFields { host, target_type, target_id, spec, timezone, down_action, enforce, grace_seconds, enabled })
    }

    /// An imported window, validated as a new one, except that its host may
    /// also be one the same import adds (`also_hosts`).
    pub fn validate_imported(&self, input: WindowInput, also_hosts: &[String]) -> Result<WindowFields, WindowError> {
        let host = input.host.clone().map(|h| h.trim().to_string());
        let mut f = self.validate(WindowInput { host: None, ..input }, None)?;
        if let Some(h) = host {
            validate_host_name(&h)?;
            if self.fleet.get(&h).is_none() && !also_hosts.contains(&h) {
                return Err(ActionError::UnknownHost(h).into());
            }
            f.host = h;
        }
        Ok(f)
    }

    /// Windows were changed behind this service (an import): read them
    /// again; the reconciler forgets what it knew of `changed` ones.
    pub async fn reload(&self, changed: &[i64]) -> Result<(), WindowError> {
        let all = self.store.run(|s| s.windows()).await.map_err(store_err(0))?;
        let compiled: Vec<Compiled> = all.into_iter().filter_map(Compiled::new).collect();
        for id in changed {
            self.forget(*id);
        }
        *self.windows.write().unwrap_or_else(|e| e.into_inner()) = compiled;
        self.wake.notify_one();
        Ok(())
    }

    /// Validates `input` as a new window would be, storing nothing (the
    /// editor's `?dry_run=true`).
    pub async fn dry_run(&self, id: Option<i64>, input: WindowInput) -> Result<WindowView, WindowError> {
        let current = id.map(|id| self.find(id)).transpose()?;
        let fields = self.validate(input, current.as_ref().map(|c| &c.window.fields))?;
        let now = self.clock.now();
        let window = Window {
            id: id.unwrap_or(0),
            fields,
            source: crate::model::Source::Api,
            label: None,
            override_: current.as_ref().and_then(|c| c.window.override_.clone()),
            created_at: current.as_ref().map_or(now, |c| c.window.created_at),
            updated_at: now,
            stopped: Vec::new(),
        };
        let candidate = Compiled::new(window).ok_or_else(|| WindowError::Invalid("invalid window".into()))?;
        let mut others = self.compiled();
        others.retain(|c| c.window.id != candidate.window.id);
        others.push(candidate.clone());
        let mut found = self.conflicts(&self.scheduler.list().await?, &others);
        Ok(self.with_conflicts(&candidate, &mut found))
    }

    pub async fn create(self: &Arc<Self>, input: WindowInput, actor: &str) -> Result<WindowView, WindowError> {
        let fields = self.validate(input, None)?;
        let now = self.clock.now();
        let w = self.store.run(move |s| s.insert_window(&fields, now)).await.map_err(store_err(0))?;
        self.changed(w, actor, crate::model::AuditAction::WindowCreate).await
    }

    pub async fn update(self: &Arc<Self>, id: i64, input: WindowInput, actor: &str) -> Result<WindowView, WindowError> {
        let current = self.find(id)?;
        read_only(&current.window)?;
        let fields = self.validate(input, Some(&current.window.fields))?;
        let now = self.clock.now();
        let w = self.store.run(move |s| s.update_window(id, &fields, now)).await.map_err(store_err(id))?;
        self.forget(id);
        self.changed(w, actor, crate::model::AuditAction::WindowUpdate).await
    }

    pub async fn delete(self: &Arc<Self>, id: i64, actor: &str) -> Result<(), WindowError> {
        read_only(&self.find(id)?.window)?;
        let w = self.store.run(move |s| s.delete_window(id)).await.map_err(store_err(id))?;
        self.forget(id);
        self.windows.write().unwrap_or_else(|e| e.into_inner()).retain(|c| c.window.id != id);
        self.audit.record(
            NewAuditEntry::new(
                actor,
                crate::model::AuditAction::WindowDelete,
                true,
                format!("deleted window {id}: {}", describe(&w.fields)),
            )
            .target("window", &id.to_string()),
        );
        self.events.publish(Event::Window { id, window: None });
        self.wake.notify_one();
        Ok(())
    }

    /// Makes the label-defined windows of `host` what its containers' labels
    /// say now (those keyed in `keep` stay even if not defined); each change
    /// audited as done by `labels`.
    /// Answers how many it created, updated and deleted.
    pub async fn sync_labels(
        &self,
        host: &str,
        desired: Vec<(WindowFields, LabelOrigin)>,
        keep: Vec<String>,
    ) -> Result<usize, WindowError> {
        let (now, h) = (self.clock.now(), host.to_string());
        let sync =
            self.store.run(move |s| s.sync_label_windows(&h, &desired, &keep, now)).await.map_err(store_err(0))?;
        let changed = sync.created.len() + sync.updated.len() + sync.deleted.len();
        for w in &sync.deleted {
            self.forget(w.id);
            self.windows.write().unwrap_or_else(|e| e.into_inner()).retain(|c| c.window.id != w.id);
            self.audit.record(
                NewAuditEntry::new(
                    LABELS_ACTOR,
                    AuditAction::WindowDelete,
                    true,
                    format!("deleted window {}: {}", w.id, describe(&w.fields)),
                )
                .target("window", &w.id.to_string()),
            );
            self.events.publish(Event::Window { id: w.id, window: None });
        }
        for (list, what) in [(sync.created, AuditAction::WindowCreate), (sync.updated, AuditAction::WindowUpdate)] {
            for w in list {
                self.forget(w.id);
                self.changed(w, LABELS_ACTOR, what).await?;
            }
        }
        self.wake.notify_one();
        Ok(changed)
    }

    /// Sets an override; `until` defaults to the next boundary of the spec.
    pub async fn set_override(
        self: &Arc<Self>,
        id: i64,
        desired: &str,
        until: Option<DateTime<Utc>>,
        reason: Option<String>,
        actor: &str,
    ) -> Result<WindowView, WindowError> {
        let c = self.find(id)?;
        let desired: Desired = desired.parse()?;
        let now = self.clock.now();
        let until = match until {
            Some(u) if u <= now => return Err(WindowError::Invalid("until must be in the future".into())),
            Some(u) => u,
            None => c.override_end(now),
        };
        let reason = reason.map(|r| r.chars().take(256).collect::<String>()).filter(|r| !r.trim().is_empty());
        let o = Override { desired, until, by: actor.to_string(), reason };
        let w = self.store.run(move |s| s.set_override(id, Some(&o))).await.map_err(store_err(id))?;
        self.changed(w, actor, crate::model::AuditAction::WindowOverride).await
    }

    pub async fn clear_override(self: &Arc<Self>, id: i64, actor: &str) -> Result<WindowView, WindowError> {
        self.find(id)?;
        let w = self.store.run(move |s| s.set_override(id, None)).await.map_err(store_err(id))?;
        self.changed(w, actor, crate::model::AuditAction::WindowOverrideClear).await
    }

    async fn changed(
        &self,
        w: Window,
        actor: &str,
        what: crate::model::AuditAction,
    ) -> Result<WindowView, WindowError> {
        let id = w.id;
        self.put(w);
        let view = self.get(id).await?;
        let detail = match &view.override_ {
            Some(o) if what == crate::model::AuditAction::WindowOverride => {
                format!(", kept {} until {}", o.desired, o.until.to_rfc3339())
            }
            _ => String::new(),
        };
        let c = self.find(id)?;
        self.audit.record(
            NewAuditEntry::new(actor, what, true, format!("window {id}: {}{detail}", describe(&c.window.fields)))
                .target("window", &id.to_string()),
        );
        self.events.publish(Event::Window { id, window: Some(view.clone()) });
        self.wake.notify_one();
        Ok(view)
    }

    /// The states at `at` and the next `count` transitions after `after`,
    /// from the same function the reconciler uses.
    #[allow(clippy::type_complexity)]
    pub fn preview(
        &self,
        spec: &str,
        timezone: Option<&str>,
        at: &[DateTime<Utc>],
        after: Option<DateTime<Utc>>,
        count: usize,
    ) -> Result<(Vec<(DateTime<Utc>, Desired)>, Vec<(DateTime<Utc>, Desired)>), WindowError> {
        let spec = WindowSpec::parse(spec)?;
        let tz = timezone.map(|t| parse_timezone(t.trim())).transpose()?.unwrap_or(self.default_tz);
        let states = at.iter().map(|t| (*t, spec.desired_at(*t, tz))).collect();
        let after = after.unwrap_or_else(|| self.clock.now());
        Ok((states, spec.transitions(after, tz, count.min(MAX_PREVIEW))))
    }

    fn forget(&self, id: i64) {
        self.memory.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// Label-defined windows change with their labels, not through the API.
fn read_only(w: &Window) -> Result<(), WindowError> {
    match &w.label {
        Some(l) => Err(WindowError::ReadOnly(w.id, l.origin.clone())),
        None => Ok(()),
    }
}

/// `30s`, `15m`, `2h`, `1h30m`, or `0` (at once).
pub fn parse_grace(text: &str) -> Result<u32, WindowError> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|d| u32::try_from(d.as_secs()).ok())
        .filter(|s| *s <= 7 * 86_400)
        .ok_or_else(|| {
            WindowError::Invalid(format!("grace '{text}' is not a duration like 30s, 15m or 2h (at most 7d)"))
        })
}

fn describe(f: &WindowFields) -> String {
    format!(
        "{} {} up '{}' ({}), down by {}, enforce {}, grace {}{}",
        f.target_type,
        f.target_id,
        f.spec,
        f.timezone,
        f.down_action,
        f.enforce,
        format_grace(f.grace_seconds),
        if f.enabled { "" } else { ", disabled" }
    )
}
