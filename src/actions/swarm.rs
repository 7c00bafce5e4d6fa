//! Lifecycle actions on Swarm services and Swarm stacks. A service has no
//! stopped state: a stop scales it to 0 and remembers the count it had, a
//! start scales it back to that count, a restart is a forced rolling update.
//! The caller serialises actions per target, persists what [`Remember`]
//! says, and audits.

use std::collections::HashMap;

use super::{ActionError, Actions};
use crate::docker::{DockerError, Engine, Host, SwarmService};
use crate::model::{Action, ActionResult, ContainerResult, Service, ServiceMode, Target, TargetType};

impl Actions {
    /// A service or Swarm stack: scaled, with the replica counts a stop
    /// takes down remembered in the store (a lost write is logged: the
    /// action itself happened).
    pub(super) async fn run_swarm(
        &self,
        host: &Host,
        target: &Target,
        action: Action,
    ) -> Result<ActionResult, ActionError> {
        let name = host.name().to_string();
        let saved = self.store.run(move |s| s.saved_replicas(&name)).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, host = host.name(), "cannot read remembered replica counts; starting with 1");
            Default::default()
        });
        let swarm_target = match target.target_type {
            TargetType::Service => ServiceTarget::Service(&target.target_id),
            _ => ServiceTarget::Stack(&target.target_id),
        };
        let outcomes = act_on_services(&*host.engine, swarm_target, action, &saved).await?;
        host.refresh_services();
        for o in &outcomes {
            let (h, service) = (host.name().to_string(), o.service().to_string());
            let written = match o.remember {
                Remember::Unchanged => continue,
                Remember::Save(n) => {
                    self.store.run(move |s| s.save_replicas(&h, &service, n, chrono::Utc::now())).await
                }
                Remember::Forget => self.store.run(move |s| s.forget_replicas(&h, &service)).await,
            };
            if let Err(e) = written {
                tracing::error!(error = %e, host = host.name(), service = o.service(), "cannot record a replica count");
            }
        }
        let results: Vec<ContainerResult> = outcomes.into_iter().map(|o| o.result).collect();
        Ok(ActionResult::of(target, action, results))
    }

    /// Every Swarm service of the selected hosts, with the replica count
    /// DockNap remembers for each.
    pub async fn services(&self, host: Option<&str>) -> Vec<Service> {
        let listed = self.fleet.services(host);
        let mut saved: HashMap<String, HashMap<String, u64>> = HashMap::new();
        let mut out = Vec::with_capacity(listed.len());
        for (h, s) in listed {
            if !saved.contains_key(&h) {
                let name = h.clone();
                let counts = self.store.run(move |st| st.saved_replicas(&name)).await.unwrap_or_default();
                saved.insert(h.clone(), counts);
            }
            let remembered = saved[&h].get(&s.name).copied();
            out.push(s.into_service(&h, remembered));
        }
        out
    }
}

/// The replica count a start scales a service to when DockNap remembers
/// none for it (it was scaled to 0 by hand, or by another DockNap).
pub const DEFAULT_START_REPLICAS: u64 = 1;

/// What a service action is on.
#[derive(Debug, Clone, Copy)]
pub enum ServiceTarget<'a> {
    /// A service, by name.
    Service(&'a str),
    /// Every service with this `com.docker.stack.namespace` label.
    Stack(&'a str),
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceActionError {
    /// The API's 400 `invalid_action`.
    #[error(
        "a Swarm service cannot be given '{0}': Swarm has no pause (stop scales it to 0 instead), and run is for one container"
    )]
    InvalidAction(Action),
    /// The API's 409 `unsupported`.
    #[error("cannot stop {0}: a global service runs one task per node and has no replica count to scale to 0")]
    Unsupported(String),
    #[error("no Swarm service named '{0}'")]
    NoService(String),
    #[error("no Swarm stack named '{0}'")]
    NoStack(String),
    #[error("this host is not a Swarm manager")]
    NotAManager,
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// What to do with a service's remembered replica count after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remember {
    Unchanged,
    /// A stop took it down from this many: save it.
    Save(u64),
    /// A start consumed it (or found the service running): drop it.
    Forget,
}

/// One service's part of an action. `result.container` is the service name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOutcome {
    pub result: ContainerResult,
    pub remember: Remember,
}

impl ServiceOutcome {
    pub fn service(&self) -> &str {
        &self.result.container
    }
}

/// Runs `action` on the target's services, read fresh from the engine.
/// `saved` holds the remembered counts by service name.
///
/// A stop of a swarm stack scales each replicated service to 0 and leaves
/// its global services running, each reported as a failed entry (so the
/// result is not ok: the stack is not fully down, and the audit says why).
/// Refusing the whole stop instead would make a stack with a node agent in
/// it impossible to take down at all. Only when every service of the stack
/// is global is the stop refused, as for a single global service.
pub async fn act_on_services(
    engine: &dyn Engine,
    target: ServiceTarget<'_>,
    action: Action,
    saved: &HashMap<String, u64>,
) -> Result<Vec<ServiceOutcome>, ServiceActionError> {
    if matches!(action, Action::Pause | Action::Unpause | Action::Run) {
        return Err(ServiceActionError::InvalidAction(action));
    }
    let all = engine.swarm_services().await?.ok_or(ServiceActionError::NotAManager)?;
    let mut members: Vec<SwarmService> = match target {
        ServiceTarget::Service(name) => all.into_iter().filter(|s| s.name == name).collect(),
        ServiceTarget::Stack(stack) => all.into_iter().filter(|s| s.stack.as_deref() == Some(stack)).collect(),
    };
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let global = |s: &SwarmService| s.mode == ServiceMode::Global;
    match target {
        _ if !members.is_empty() && action == Action::Stop && members.iter().all(global) => {
            let what = match target {
                ServiceTarget::Service(name) => format!("service '{name}'"),
                ServiceTarget::Stack(stack) => format!("stack '{stack}' (all its services are global)"),
            };
            return Err(ServiceActionError::Unsupported(what));
        }
        ServiceTarget::Service(name) if members.is_empty() => return Err(ServiceActionError::NoService(name.into())),
        ServiceTarget::Stack(stack) if members.is_empty() => return Err(ServiceActionError::NoStack(stack.into())),
        _ => {}
    }
    let mut outcomes = Vec::with_capacity(members.len());
    // One after another: each call only records the new spec, the engine
    // converges the tasks afterwards, so there is nothing to gain in parallel.
    for s in &members {
        outcomes.push(act_on(engine, s, action, saved.get(&s.name).copied()).await);
    }
    Ok(outcomes)
}

async fn act_on(engine: &dyn Engine, s: &SwarmService, action: Action, saved: Option<u64>) -> ServiceOutcome {
    let done = |remember| ServiceOutcome { result: ok(&s.name), remember };
    let failed = |error: String| ServiceOutcome { result: fail(&s.name, error), remember: Remember::Unchanged };
    // DockerError::NotFound speaks of containers.
    let engine_failed = |e: DockerError| match e {
        DockerError::NotFound => failed("the service no longer exists".into()),
        e => failed(e.to_string()),
    };
    let forget_if_saved = if saved.is_some() { Remember::Forget } else { Remember::Unchanged };
    match (action, s.mode) {
        (Action::Stop, ServiceMode::Global) => failed("left running: a global service cannot be scaled to 0".into()),
        // Already down: keep the count remembered when it went down.
        (Action::Stop, _) if s.desired == 0 => done(Remember::Unchanged),
        (Action::Stop, _) => match engine.scale_service(&s.id, 0).await {
            Ok(()) => done(Remember::Save(s.desired)),
            Err(e) => engine_failed(e),
        },
        // Global services run wherever they can; a running replicated one
        // was started by someone else, and a remembered count is stale.
        (Action::Start, ServiceMode::Global) => done(Remember::Unchanged),
        (Action::Start, _) if s.desired > 0 => done(forget_if_saved),
        (Action::Start, _) => match engine.scale_service(&s.id, saved.unwrap_or(DEFAULT_START_REPLICAS)).await {
            Ok(()) => done(forget_if_saved),
            Err(e) => engine_failed(e),
        },
        (Action::Restart, _) => match engine.force_update_service(&s.id).await {
            Ok(()) => done(Remember::Unchanged),
            Err(e) => engine_failed(e),
        },
        (Action::Pause | Action::Unpause | Action::Run, _) => unreachable!("refused before any service is read"),
    }
}

fn ok(name: &str) -> ContainerResult {
    ContainerResult { container: name.to_string(), ok: true, error: None }
}

fn fail(name: &str, error: String) -> ContainerResult {
    ContainerResult { container: name.to_string(), ok: false, error: Some(error) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::fake::FakeEngine;
    use ServiceMode::{Global, Replicated};

    fn shop() -> FakeEngine {
        FakeEngine::with_services(&[
            ("shop_web", Some("shop"), Replicated, 3),
            ("shop_db", Some("shop"), Replicated, 1),
            ("shop_agent", Some("shop"), Global, 2),
            ("solo", None, Replicated, 2),
            ("agent", None, Global, 2),
        ])
    }

    fn desired(engine: &FakeEngine, name: &str) -> u64 {
        engine.services.lock().unwrap().as_ref().unwrap()[&format!("id-{name}")].desired
    }

    fn set_desired(engine: &FakeEngine, name: &str, n: u64) {
        engine.services.lock().unwrap().as_mut().unwrap().get_mut(&format!("id-{name}")).unwrap().desired = n;
    }

    async fn one(engine: &FakeEngine, name: &str, action: Action, saved: &[(&str, u64)]) -> ServiceOutcome {
        let saved = saved.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut v = act_on_services(engine, ServiceTarget::Service(name), action, &saved).await.unwrap();
        assert_eq!(v.len(), 1);
        v.pop().unwrap()
    }

    #[tokio::test]
    async fn stop_scales_to_zero_and_remembers_the_count() {
        let engine = shop();
        let o = one(&engine, "solo", Action::Stop, &[]).await;
        assert!(o.result.ok, "{o:?}");
        assert_eq!(o.remember, Remember::Save(2));
        assert_eq!(desired(&engine, "solo"), 0);
    }

    #[tokio::test]
    async fn start_scales_back_to_the_remembered_count_and_forgets_it() {
        let engine = shop();
        set_desired(&engine, "solo", 0);
        let o = one(&engine, "solo", Action::Start, &[("solo", 5)]).await;
        assert_eq!((o.result.ok, o.remember), (true, Remember::Forget));
        assert_eq!(desired(&engine, "solo"), 5);
    }

    #[tokio::test]
    async fn start_with_nothing_remembered_brings_one_replica() {
        let engine = shop();
        set_desired(&engine, "solo", 0);
        let o = one(&engine, "solo", Action::Start, &[]).await;
        assert_eq!((o.result.ok, o.remember), (true, Remember::Unchanged));
        assert_eq!(desired(&engine, "solo"), DEFAULT_START_REPLICAS);
    }

    #[tokio::test]
    async fn stop_of_a_stopped_service_keeps_the_remembered_count() {
        let engine = shop();
        set_desired(&engine, "solo", 0);
        let o = one(&engine, "solo", Action::Stop, &[("solo", 4)]).await;
        assert_eq!((o.result.ok, o.remember), (true, Remember::Unchanged));
        assert!(engine.scales.lock().unwrap().is_empty(), "nothing to do");
    }

    #[tokio::test]
    async fn start_of_a_running_service_does_nothing_and_drops_a_stale_count() {
        let engine = shop();
        let o = one(&engine, "solo", Action::Start, &[("solo", 7)]).await;
        assert_eq!((o.result.ok, o.remember), (true, Remember::Forget));
        assert!(engine.scales.lock().unwrap().is_empty());
        assert_eq!(desired(&engine, "solo"), 2);
    }

    #[tokio::test]
    async fn restart_forces_an_update() {
        let engine = shop();
        let o = one(&engine, "agent", Action::Restart, &[]).await;
        assert_eq!((o.result.ok, o.remember), (true, Remember::Unchanged));
        one(&engine, "agent", Action::Restart, &[]).await;
        assert_eq!(engine.force_updates.lock().unwrap()["id-agent"], 2);
        assert!(engine.scales.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn pause_and_unpause_are_invalid_for_services() {
        let engine = shop();
        for action in [Action::Pause, Action::Unpause] {
            let e =
                act_on_services(&engine, ServiceTarget::Service("solo"), action, &HashMap::new()).await.unwrap_err();
            assert!(matches!(e, ServiceActionError::InvalidAction(a) if a == action), "{e}");
            let e = act_on_services(&engine, ServiceTarget::Stack("shop"), action, &HashMap::new()).await.unwrap_err();
            assert!(matches!(e, ServiceActionError::InvalidAction(_)), "{e}");
        }
        assert_eq!(engine.calls.load(std::sync::atomic::Ordering::Relaxed), 0, "refused before asking the engine");
    }

    #[tokio::test]
    async fn stop_of_a_global_service_is_unsupported() {
        let engine = shop();
        let e =
            act_on_services(&engine, ServiceTarget::Service("agent"), Action::Stop, &HashMap::new()).await.unwrap_err();
        assert!(matches!(&e, ServiceActionError::Unsupported(what) if what == "service 'agent'"), "{e}");
        assert!(engine.scales.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_stack_stop_downs_its_replicated_services_and_reports_global_ones_left_running() {
        let engine = shop();
        let saved = HashMap::from([("shop_db".to_string(), 9)]);
        let v = act_on_services(&engine, ServiceTarget::Stack("shop"), Action::Stop, &saved).await.unwrap();
        let summary: Vec<(&str, bool, Remember)> = v.iter().map(|o| (o.service(), o.result.ok, o.remember)).collect();
        assert_eq!(
            summary,
            vec![
                ("shop_agent", false, Remember::Unchanged),
                ("shop_db", true, Remember::Save(1)),
                ("shop_web", true, Remember::Save(3)),
            ]
        );
        assert!(v[0].result.error.as_deref().unwrap().starts_with("left running"));
        assert_eq!((desired(&engine, "shop_web"), desired(&engine, "shop_agent")), (0, 2));
        assert_eq!(desired(&engine, "solo"), 2, "outside the stack");

        let saved = HashMap::from([("shop_web".to_string(), 3), ("shop_db".to_string(), 1)]);
        let v = act_on_services(&engine, ServiceTarget::Stack("shop"), Action::Start, &saved).await.unwrap();
        assert!(v.iter().all(|o| o.result.ok), "{v:?}");
        assert_eq!((desired(&engine, "shop_web"), desired(&engine, "shop_db")), (3, 1));
    }

    #[tokio::test]
    async fn a_stack_of_only_global_services_cannot_be_stopped() {
        let engine = FakeEngine::with_services(&[("mon_agent", Some("mon"), Global, 2)]);
        let e = act_on_services(&engine, ServiceTarget::Stack("mon"), Action::Stop, &HashMap::new()).await.unwrap_err();
        assert!(matches!(e, ServiceActionError::Unsupported(_)), "{e}");
    }

    #[tokio::test]
    async fn unknown_targets_and_non_managers_are_told_apart() {
        let engine = shop();
        let none = HashMap::new();
        let e = act_on_services(&engine, ServiceTarget::Service("nope"), Action::Stop, &none).await.unwrap_err();
        assert!(matches!(e, ServiceActionError::NoService(_)), "{e}");
        let e = act_on_services(&engine, ServiceTarget::Stack("nope"), Action::Start, &none).await.unwrap_err();
        assert!(matches!(e, ServiceActionError::NoStack(_)), "{e}");
        let e = act_on_services(&FakeEngine::default(), ServiceTarget::Service("solo"), Action::Start, &none)
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceActionError::NotAManager), "{e}");
    }

    #[tokio::test]
    async fn a_failed_scale_remembers_nothing() {
        let engine = shop();
        // The list still shows it (as the engine's may, a moment after removal) but the scale fails.
        let listed = SwarmService {
            id: "id-gone".into(),
            name: "gone".into(),
            stack: None,
            mode: Replicated,
            running: 2,
            desired: 2,
        };
        let o = act_on(&engine, &listed, Action::Stop, None).await;
        assert_eq!((o.result.ok, o.remember), (false, Remember::Unchanged));
        assert_eq!(o.result.error.as_deref(), Some("the service no longer exists"));
    }
}
