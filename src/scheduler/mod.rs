//! Schedules: validation and CRUD (domain level, no HTTP); the engine that
//! fires them is in [`engine`].

pub mod cron;
mod engine;
mod plan;

use std::collections::HashSet;
use std::sync::{Arc, Mutex as StdMutex};

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::{Mutex, Notify};

use self::cron::{CronError, CronExpr, parse_timezone};
use crate::actions::{ActionError, Actions, Trigger};
use crate::audit::Audit;
use crate::clock::Clock;
use crate::events::{Event, Events};
use crate::model::{
    ALL_HOSTS, Action, ActionResult, AuditAction, InvalidValue, LOCAL_HOST, LabelOrigin, NewAuditEntry, OnFailure,
    Schedule, ScheduleFields, ScheduleView, Source, Step, TargetType, Upcoming, validate_group, validate_host_name,
};
use crate::store::{Store, StoreError};

pub const MAX_TARGET_LEN: usize = 255;
pub const MAX_PREVIEW: usize = 100;

/// The most steps a sequence may have.
pub const MAX_STEPS: usize = 20;

/// A create or update request; on update, `None` keeps the current value.
/// Giving `cron` replaces an `at`, and the other way round.
#[derive(Debug, Clone, Default)]
pub struct ScheduleInput {
    pub host: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub cron: Option<String>,
    /// RFC 3339: a one-time schedule.
    pub at: Option<String>,
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    /// A run's time limit: `30m`, `2h`.
    pub timeout: Option<String>,
    pub steps: Option<Vec<StepInput>>,
    pub on_failure: Option<String>,
}

/// One step of a sequence as given (`host` defaults to `local`).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    pub host: Option<String>,
    #[schema(value_type = Option<crate::model::TargetType>)]
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[schema(value_type = Option<crate::model::Action>)]
    pub action: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Cron(#[from] CronError),
    #[error("missing field '{0}'")]
    MissingField(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("schedule {0} is running now; a sequence does not overlap itself")]
    Busy(i64),
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("no schedule with id {0}")]
    NotFound(i64),
    #[error("schedule {0} is defined by container labels ({1}): change the labels, not the schedule")]
    ReadOnly(i64, String),
    #[error(transparent)]
    Store(StoreError),
}

fn store_err(id: i64) -> impl Fn(StoreError) -> ScheduleError {
    move |e| match e {
        StoreError::NotFound => ScheduleError::NotFound(id),
        e => ScheduleError::Store(e),
    }
}

/// When a schedule fires: its cron expression, or its one instant.
enum Timing {
    Cron(CronExpr),
    At(DateTime<Utc>),
}

impl Timing {
    fn of(f: &ScheduleFields) -> Option<Timing> {
        match (&f.cron, f.at) {
            (Some(cron), _) => CronExpr::parse(cron).ok().map(Timing::Cron),
            (None, Some(at)) => Some(Timing::At(at)),
            (None, None) => None,
        }
    }

    fn fires(&self) -> &dyn self::cron::Fires {
        match self {
            Timing::Cron(expr) => expr,
            Timing::At(at) => at,
        }
    }
}

/// The first fire of a schedule's fields after `t` (`None`: none to come,
/// or fields that do not compile).
fn next_fire(f: &ScheduleFields, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = parse_timezone(&f.timezone).ok()?;
    Timing::of(f)?.fires().next_after(t, tz)
}

pub struct Scheduler {
    store: Arc<Store>,
    actions: Arc<Actions>,
    audit: Arc<Audit>,
    events: Events,
    clock: Arc<dyn Clock>,
    default_tz: Tz,
    wake: Notify,
    /// Held while a schedule is changed and while a fire is dispatched, so a
    /// fire never acts on a schedule that was deleted or disabled before it.
    dispatch: Mutex<()>,
    /// Schedules with a run in progress.
    running: Arc<StdMutex<HashSet<i64>>>,
    /// Fires handled up to here, per schedule, when the store could not
    /// record it (disk full): the plan holds in memory, so nothing runs twice.
    handled: StdMutex<std::collections::HashMap<i64, DateTime<Utc>>>,
    /// Set after the first tick: runs cut off by a previous process's death
    /// are looked for once, at start-up.
    started: std::sync::atomic::AtomicBool,
    plan: StdMutex<plan::Plan>,
}

impl Scheduler {
    pub fn new(
        store: Arc<Store>,
        actions: Arc<Actions>,
        audit: Arc<Audit>,
        events: Events,
        clock: Arc<dyn Clock>,
        default_tz: Tz,
    ) -> Scheduler {
        let (wake, dispatch, running) = (Notify::new(), Mutex::new(()), Arc::default());
        Scheduler {
            store,
            actions,
            audit,
            events,
            clock,
            default_tz,
            wake,
            dispatch,
            running,
            handled: StdMutex::default(),
            started: Default::default(),
            plan: StdMutex::default(),
        }
    }

    // ---- domain operations behind the API ----

    pub fn view(&self, s: &Schedule) -> ScheduleView {
        let f = &s.fields;
        let next_run = if f.enabled { next_fire(f, self.clock.now()) } else { None };
        ScheduleView {
            id: s.id,
            host: f.host.clone(),
            target_type: f.target_type,
            target_id: f.target_id.clone(),
            action: f.action,
            cron: f.cron.clone(),
            at: f.at,
            timezone: f.timezone.clone(),
            enabled: f.enabled,
            timeout: f.run_timeout.map(|t| humantime::format_duration(Duration::from_secs(t.into())).to_string()),
            steps: f.steps.clone(),
            on_failure: (f.target_type == TargetType::Sequence).then_some(f.on_failure),
            source: if s.label.is_some() { Source::Label } else { Source::Api },
            origin: s.label.as_ref().map(|l| l.origin.clone()),
            error: s.label.as_ref().and_then(|l| l.error.clone()),
            created_at: s.created_at,
            updated_at: s.updated_at,
            next_run,
            last_run: s.last_run.clone(),
            conflicts: Vec::new(),
        }
    }

    /// The zone of schedules created without one (`DOCKNAP_TZ`).
    pub fn default_timezone(&self) -> &'static str {
        self.default_tz.name()
    }

    pub async fn list(&self) -> Result<Vec<ScheduleView>, ScheduleError> {
        Ok(self.store.run(|s| s.schedules()).await.map_err(store_err(0))?.iter().map(|s| self.view(s)).collect())
    }

    /// The schedules on `host` aimed at one of `names` (the few a new
    /// schedule can clash with, without reading every schedule).
    pub async fn list_on(&self, host: &str, names: Vec<String>) -> Result<Vec<ScheduleView>, ScheduleError> {
        let host = host.to_string();
        let found = self.store.run(move |s| s.schedules_on(&host, &names)).await.map_err(store_err(0))?;
        Ok(found.iter().map(|s| self.view(s)).collect())
    }

    pub async fn get(&self, id: i64) -> Result<ScheduleView, ScheduleError> {
        Ok(self.view(&self.stored(id).await?))
    }

    async fn stored(&self, id: i64) -> Result<Schedule, ScheduleError> {
        self.store.run(move |s| s.schedule(id)).await.map_err(store_err(id))
    }

    fn validate(
        &self,
        input: ScheduleInput,
        current: Option<&ScheduleFields>,
    ) -> Result<ScheduleFields, ScheduleError> {
        let target_type: TargetType = match &input.target_type {
            Some(t) => t.parse().map_err(ActionError::from)?,
            None => pick(None, current.map(|c| &c.target_type), "target_type")?,
        };
        let enabled = input.enabled.or(current.map(|c| c.enabled)).unwrap_or(true);
        let (cron, at) = self.timing(&input, current, enabled)?;
        let timezone = match input.timezone.clone().or_else(|| current.map(|c| c.timezone.clone())) {
            Some(tz) => parse_timezone(tz.trim())?.name().to_string(),
            None => self.default_tz.name().to_string(),
        };
        let run_timeout = match &input.timeout {
            Some(t) if t.trim().is_empty() => None,
            Some(t) => Some(crate::actions::parse_run_timeout(t)?.as_secs() as u32),
            None => current.and_then(|c| c.run_timeout),
        };
        if target_type == TargetType::Sequence {
            let (steps, on_failure) = self.sequence(input, current)?;
            let run_timeout = run_timeout.filter(|_| steps.iter().any(|s| s.action == Action::Run));
            return Ok(ScheduleFields {
                host: ALL_HOSTS.to_string(),
                target_type,
                target_id: String::new(),
                action: Action::Run,
                cron,
                at,
                timezone,
                enabled,
                run_timeout,
                steps,
                on_failure,
            });
        }
        if input.steps.is_some() || input.on_failure.is_some() {
            return Err(ScheduleError::Invalid("steps and on_failure are for target_type sequence".into()));
        }
        let action: Action = match input.action {
            Some(a) => a.parse().map_err(ActionError::from)?,
            None => pick(None, current.map(|c| &c.action), "action")?,
        };
        check_action(target_type, action)?;
        let target_id = target_name(target_type, &pick(input.target_id, current.map(|c| &c.target_id), "target_id")?)?;
        let host = if target_type == TargetType::Group {
            // A group spans hosts; it may have none yet, as a target may not exist yet.
            validate_group(&target_id).map_err(ActionError::from)?;
            ALL_HOSTS.to_string()
        } else {
            match input.host {
                Some(h) => self.known_host(h.trim())?,
                None => {
                    current.map(|c| c.host.clone()).filter(|h| h != ALL_HOSTS).unwrap_or_else(|| LOCAL_HOST.to_string())
                }
            }
        };
        let run_timeout = run_timeout.filter(|_| action == Action::Run);
        Ok(ScheduleFields {
            host,
            target_type,
            target_id,
            action,
            cron,
            at,
            timezone,
            enabled,
            run_timeout,
            steps: Vec::new(),
            on_failure: OnFailure::Stop,
        })
    }

    /// Exactly one of `cron` and `at`: one given replaces the other. An
    /// enabled one-time schedule's instant must be ahead (a disabled one may
    /// have had its turn: an export of it imports as it was).
    fn timing(
        &self,
        input: &ScheduleInput,
        current: Option<&ScheduleFields>,
        enabled: bool,
    ) -> Result<(Option<String>, Option<DateTime<Utc>>), ScheduleError> {
        match (&input.cron, &input.at) {
            (Some(_), Some(_)) => Err(ScheduleError::Invalid("give cron or at, not both".into())),
            (Some(cron), None) => Ok((Some(CronExpr::parse(cron)?.as_str().to_string()), None)),
            (None, Some(at)) => {
                let t = DateTime::parse_from_rfc3339(at.trim())
                    .map_err(|_| {
                        ScheduleError::Invalid(format!(
                            "at must be an RFC 3339 time such as 2026-12-24T18:00:00+01:00, not '{}'",
                            at.trim()
                        ))
                    })?
                    .with_timezone(&Utc);
                let unchanged = current.is_some_and(|c| c.at == Some(t));
                if t <= self.clock.now() && enabled && !unchanged {
                    return Err(ScheduleError::Invalid(format!("at {t} is in the past")));
                }
                Ok((None, Some(t)))
            }
            (None, None) => match current {
                Some(c) => Ok((c.cron.clone(), c.at)),
                None => Err(ScheduleError::MissingField("cron")),
            },
        }
    }

    /// A sequence's steps (1 to [`MAX_STEPS`], each a target on a known host)
    /// and what a failed step does.
    fn sequence(
        &self,
        input: ScheduleInput,
        current: Option<&ScheduleFields>,
    ) -> Result<(Vec<Step>, OnFailure), ScheduleError> {
        let on_failure = match input.on_failure {
            Some(o) => o.trim().parse().map_err(ActionError::from)?,
            None => current.map(|c| c.on_failure).unwrap_or_default(),
        };
        let steps = match input.steps {
            None => {
                return Ok((pick(None, current.map(|c| &c.steps), "steps")?, on_failure)).and_then(|(s, o)| {
                    if s.is_empty() { Err(ScheduleError::MissingField("steps")) } else { Ok((s, o)) }
                });
            }
            Some(steps) => steps,
        };
        if steps.is_empty() || steps.len() > MAX_STEPS {
            return Err(ScheduleError::Invalid(format!("a sequence has 1 to {MAX_STEPS} steps, not {}", steps.len())));
        }
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(i, st)| {
                let n = i + 1;
                let field = |v: Option<String>, name: &str| {
                    v.ok_or_else(|| ScheduleError::Invalid(format!("step {n}: missing field '{name}'")))
                };
                let in_step = |e: ScheduleError| ScheduleError::Invalid(format!("step {n}: {e}"));
                let target_type: TargetType = field(st.target_type, "target_type")?
                    .parse()
                    .map_err(|e: InvalidValue| in_step(ActionError::from(e).into()))?;
                if matches!(target_type, TargetType::Group | TargetType::Sequence) {
                    return Err(in_step(ScheduleError::Invalid(format!(
                        "a step acts on a stack, container, service or swarm_stack, not a {target_type}"
                    ))));
                }
                let action: Action = field(st.action, "action")?
                    .parse()
                    .map_err(|e: InvalidValue| in_step(ActionError::from(e).into()))?;
                check_action(target_type, action).map_err(in_step)?;
                let target_id =
                    target_name(target_type, &field(st.target_id, "target_id")?).map_err(|e| in_step(e.into()))?;
                let host =
                    self.known_host(st.host.as_deref().unwrap_or(LOCAL_HOST).trim()).map_err(|e| in_step(e.into()))?;
                Ok(Step { host, target_type, target_id, action })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((steps, on_failure))
    }

    /// An imported schedule, validated as a new one, except that its host
    /// may also be one the same import adds (`also_hosts`).
    pub fn validate_imported(
        &self,
        input: ScheduleInput,
        also_hosts: &[String],
    ) -> Result<ScheduleFields, ScheduleError> {
        let host = input.host.clone();
        let mut f = self.validate(ScheduleInput { host: None, ..input }, None)?;
        if let (Some(h), false) = (host, f.host == ALL_HOSTS) {
            let h = h.trim().to_string();
            validate_host_name(&h).map_err(ActionError::from)?;
            if self.actions.fleet().get(&h).is_none() && !also_hosts.contains(&h) {
                return Err(ActionError::UnknownHost(h).into());
            }
            f.host = h;
        }
        Ok(f)
    }

    /// Schedules were changed behind this service (an import): plan afresh.
    pub fn reload(&self, deleted: &[i64]) {
        let mut handled = self.handled.lock().unwrap_or_else(|e| e.into_inner());
        for id in deleted {
            handled.remove(id);
        }
        self.plan().reset();
        self.wake.notify_one();
    }

    /// A host a schedule may name: one DockNap knows (it may be unreachable).
    fn known_host(&self, host: &str) -> Result<String, ActionError> {
        validate_host_name(host)?;
        match self.actions.fleet().get(host) {
            Some(_) => Ok(host.to_string()),
            None => Err(ActionError::UnknownHost(host.to_string())),
        }
    }

    /// The schedule `input` would make (or make of schedule `id`), stored
    /// nowhere: the editor's `?dry_run=true`.
    pub async fn dry_run(&self, id: Option<i64>, input: ScheduleInput) -> Result<ScheduleView, ScheduleError> {
        let current = match id {
            Some(id) => Some(self.stored(id).await?),
            None => None,
        };
        let fields = self.validate(input, current.as_ref().map(|c| &c.fields))?;
        let now = self.clock.now();
        let s = Schedule {
            id: id.unwrap_or(0),
            fields,
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
            last_run: current.as_ref().and_then(|c| c.last_run.clone()),
            checked_until: None,
            running_due: None,
            label: current.as_ref().and_then(|c| c.label.clone()),
        };
        Ok(self.view(&s))
    }

    pub async fn create(&self, input: ScheduleInput, actor: &str) -> Result<ScheduleView, ScheduleError> {
        let fields = self.validate(input, None)?;
        let _g = self.dispatch.lock().await;
        let now = self.clock.now();
        let s = self.store.run(move |s| s.insert_schedule(&fields, now)).await.map_err(store_err(0))?;
        self.changed(&s, actor, crate::model::AuditAction::ScheduleCreate)
    }

    pub async fn update(&self, id: i64, input: ScheduleInput, actor: &str) -> Result<ScheduleView, ScheduleError> {
        let _g = self.dispatch.lock().await;
        let current = self.stored(id).await?;
        read_only(&current)?;
        let fields = self.validate(input, Some(&current.fields))?;
        let now = self.clock.now();
        let s = self.store.run(move |s| s.update_schedule(id, &fields, now)).await.map_err(store_err(id))?;
        self.changed(&s, actor, crate::model::AuditAction::ScheduleUpdate)
    }

    pub async fn delete(&self, id: i64, actor: &str) -> Result<(), ScheduleError> {
        let _g = self.dispatch.lock().await;
        read_only(&self.stored(id).await?)?;
        let s = self.store.run(move |s| s.delete_schedule(id)).await.map_err(store_err(id))?;
        self.handled.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.plan().remove(id);
        self.audit.record(
            NewAuditEntry::new(
                actor,
                crate::model::AuditAction::ScheduleDelete,
                true,
                format!("deleted schedule {id}: {}", describe(&s.fields)),
            )
            .target("schedule", &id.to_string()),
        );
        self.events.publish(Event::Schedule { id, schedule: None });
        self.wake.notify_one();
        Ok(())
    }

    fn changed(
        &self,
        s: &Schedule,
        actor: &str,
        what: crate::model::AuditAction,
    ) -> Result<ScheduleView, ScheduleError> {
        let view = self.view(s);
        self.plan().put(s);
        self.audit.record(
            NewAuditEntry::new(actor, what, true, format!("schedule {}: {}", s.id, describe(&s.fields)))
                .target("schedule", &s.id.to_string()),
        );
        self.events.publish(Event::Schedule { id: s.id, schedule: Some(view.clone()) });
        self.wake.notify_one();
        Ok(view)
    }

    /// Makes the label-defined schedules of `host` what its containers'
    /// labels say now (those keyed in `keep` stay even if not defined); each
    /// change audited as done by `labels`.
    /// Answers how many it created, updated and deleted.
    pub async fn sync_labels(
        &self,
        host: &str,
        desired: Vec<(ScheduleFields, LabelOrigin)>,
        keep: Vec<String>,
    ) -> Result<usize, ScheduleError> {
        let _g = self.dispatch.lock().await;
        let (now, h) = (self.clock.now(), host.to_string());
        let sync =
            self.store.run(move |s| s.sync_label_schedules(&h, &desired, &keep, now)).await.map_err(store_err(0))?;
        if sync.is_empty() {
            return Ok(0);
        }
        for (list, what) in [(&sync.created, AuditAction::ScheduleCreate), (&sync.updated, AuditAction::ScheduleUpdate)]
        {
            for s in list {
                self.changed(s, LABELS_ACTOR, what)?;
            }
        }
        let mut handled = self.handled.lock().unwrap_or_else(|e| e.into_inner());
        for s in &sync.deleted {
            handled.remove(&s.id);
            self.plan().remove(s.id);
            self.audit.record(
                NewAuditEntry::new(
                    LABELS_ACTOR,
                    AuditAction::ScheduleDelete,
                    true,
                    format!("deleted schedule {}: {}", s.id, describe(&s.fields)),
                )
                .target("schedule", &s.id.to_string()),
            );
            self.events.publish(Event::Schedule { id: s.id, schedule: None });
        }
        self.wake.notify_one();
        Ok(sync.created.len() + sync.updated.len() + sync.deleted.len())
    }

    /// A person's "run now": the schedule's action, audited as a test run.
    /// It does not touch `last_run`, which says what the schedule itself did.
    /// A sequence's run-now takes its turn like a fire: never beside another
    /// run of the same sequence (that one is refused and audited as missed).
    pub async fn run_now(&self, id: i64, actor: &str) -> Result<ActionResult, ScheduleError> {
        let s = self.stored(id).await?;
        let trigger = Trigger::TestRun { actor: actor.to_string(), schedule_id: id };
        let _running = if s.fields.target_type == TargetType::Sequence {
            match engine::Running::claim(&self.running, id) {
                Some(r) => Some(r),
                None => {
                    self.audit_missed(&s, &[self.clock.now()], 1, "because its previous run was still going");
                    return Err(ScheduleError::Busy(id));
                }
            }
        } else {
            None
        };
        Ok(self.execute(&s, &trigger).await?)
    }

    /// Runs a schedule's action, or its sequence's steps, once.
    async fn execute(&self, s: &Schedule, trigger: &Trigger) -> Result<ActionResult, ActionError> {
        let f = &s.fields;
        let timeout = f.run_timeout.map(|t| Duration::from_secs(t.into()));
        if f.target_type == TargetType::Sequence {
            let (events, id, steps) = (self.events.clone(), s.id, f.steps.len());
            let on_step = move |i: usize, r: &ActionResult| {
                events.publish(Event::SequenceStep {
                    schedule_id: id,
                    step: i + 1,
                    steps,
                    ok: r.ok,
                    message: r.summary(),
                });
            };
            return Ok(self.actions.run_sequence(&f.steps, f.on_failure, trigger, timeout, &on_step).await);
        }
        self.actions.run_job(&f.target(), f.action, trigger, timeout).await
    }

    /// The next fires over all enabled schedules, soonest first: at most
    /// `limit`, none after `until`, and at most `per_schedule` of any one
    /// schedule (so an every-minute schedule cannot crowd the others out of
    /// a week's timeline).
    pub async fn upcoming(
        &self,
        limit: usize,
        until: Option<DateTime<Utc>>,
        per_schedule: Option<usize>,
    ) -> Result<Vec<Upcoming>, ScheduleError> {
        let planned = self.planned().await.map_err(store_err(0))?;
        Ok(plan::upcoming(&planned, self.clock.now(), limit, until, per_schedule))
    }

    pub fn preview(
        &self,
        cron: &str,
        timezone: Option<&str>,
        count: usize,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        let expr = CronExpr::parse(cron)?;
        let tz = timezone.map(|t| parse_timezone(t.trim())).transpose()?.unwrap_or(self.default_tz);
        Ok(expr.upcoming(after.unwrap_or_else(|| self.clock.now()), tz, count.min(MAX_PREVIEW)))
    }
}

fn pick<T: Clone>(new: Option<T>, old: Option<&T>, name: &'static str) -> Result<T, ScheduleError> {
    new.or_else(|| old.cloned()).ok_or(ScheduleError::MissingField(name))
}

/// Actions a target type cannot take: pause on Swarm, run but on a container.
fn check_action(target_type: TargetType, action: Action) -> Result<(), ScheduleError> {
    if target_type.is_swarm() && matches!(action, Action::Pause | Action::Unpause) {
        return Err(ActionError::Invalid(InvalidValue::Action(format!(
            "{action}' on a Swarm {target_type} (use stop or start)"
        )))
        .into());
    }
    if action == Action::Run && target_type != TargetType::Container {
        return Err(ScheduleError::Invalid(format!(
            "run is for a container (it starts it and waits for its exit), not a {target_type}"
        )));
    }
    Ok(())
}

/// A target name as given (trimmed), if it can be one: schedules and
/// windows may name targets that do not exist yet.
pub fn target_name(target_type: TargetType, raw: &str) -> Result<String, ActionError> {
    let name = raw.trim();
    if name.is_empty() || name.len() > MAX_TARGET_LEN || name.chars().any(char::is_control) {
        return Err(ActionError::InvalidTarget(format!(
            "target_id must be a {target_type} name of 1 to {MAX_TARGET_LEN} characters"
        )));
    }
    Ok(name.to_string())
}

/// The audit actor of changes made by container labels.
pub const LABELS_ACTOR: &str = "labels";

/// Label-defined schedules change with their labels, not through the API.
fn read_only(s: &Schedule) -> Result<(), ScheduleError> {
    match &s.label {
        Some(l) => Err(ScheduleError::ReadOnly(s.id, l.origin.clone())),
        None => Ok(()),
    }
}

fn describe(f: &ScheduleFields) -> String {
    let what = if f.target_type == TargetType::Sequence {
        let steps: Vec<String> = f.steps.iter().map(|s| format!("{} {}", s.action, s.target())).collect();
        format!("sequence [{}] (on failure {})", steps.join(", "), f.on_failure)
    } else {
        format!("{} {}", f.action, f.target())
    };
    let when = match (&f.cron, f.at) {
        (Some(cron), _) => format!("at '{cron}'"),
        (None, Some(at)) => format!("once at {at}"),
        (None, None) => String::new(),
    };
    format!("{what} {when} ({}){}", f.timezone, if f.enabled { "" } else { ", disabled" })
}

#[cfg(test)]
mod tests;
