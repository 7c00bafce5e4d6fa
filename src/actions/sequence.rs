//! Sequences: a schedule's steps over any targets on any hosts, one after
//! another ("stop app, run backup, start app"; "start db, then app").

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::{Actions, On, Trigger};
use crate::model::{
    ALL_HOSTS, Action, ActionResult, ContainerResult, NewAuditEntry, OnFailure, Step, Target, TargetType,
};

impl Actions {
    /// Runs `steps` in order, each once the previous one finished (a start
    /// also waits for its containers' health checks). After a failed step
    /// the rest are skipped unless `on_failure` is continue. Each step is
    /// audited as its own action, and the whole once more; `on_step` hears
    /// of each step as it finishes.
    pub async fn run_sequence(
        self: &Arc<Self>,
        steps: &[Step],
        on_failure: OnFailure,
        trigger: &Trigger,
        run_timeout: Option<Duration>,
        on_step: &(dyn Fn(usize, &ActionResult) + Send + Sync),
    ) -> ActionResult {
        let started = Instant::now();
        let mut results: Vec<ActionResult> = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let target = step.target();
            let failed_before = results.iter().any(|r| !r.ok);
            if failed_before && on_failure == OnFailure::Stop {
                let skipped = step_failed(&target, step.action, "skipped: an earlier step failed".into());
                on_step(i, &skipped);
                results.push(skipped);
                continue;
            }
            let mut r = match self.run_job(&target, step.action, trigger, run_timeout).await {
                Ok(r) => r,
                Err(e) => step_failed(&target, step.action, e.to_string()),
            };
            if r.ok && step.action == Action::Start {
                if let Err(e) = self.wait_healthy(&target).await {
                    r.ok = false;
                    r.results.push(ContainerResult { container: step.target_id.clone(), ok: false, error: Some(e) });
                }
            }
            tracing::info!(step = i + 1, action = %step.action, target = %target, ok = r.ok, "sequence step finished");
            on_step(i, &r);
            results.push(r);
        }
        let whole = Target::new(ALL_HOSTS, TargetType::Sequence, "");
        let result = ActionResult { steps: Some(results), ..ActionResult::of(&whole, Action::Run, Vec::new()) };
        let result = ActionResult { ok: result.steps.iter().flatten().all(|r| r.ok), ..result };
        let details = serde_json::json!({
            "schedule_id": trigger.schedule_id(),
            "steps": result.steps,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        self.audit.record(
            NewAuditEntry::new(trigger.actor(), crate::model::AuditAction::Sequence, result.ok, result.summary())
                .on(&whole)
                .details(details),
        );
        result
    }

    /// After a start: waits until the target's containers with a health
    /// check report healthy, then for its `docknap.settle` time, so that
    /// what depends on it can start.
    pub async fn wait_started(&self, target: &Target) -> Result<(), String> {
        self.wait_healthy(target).await?;
        let members = self.fleet.members(target).unwrap_or_default();
        let settle = super::order::StackLabels::of(&target.target_id, &members).map(|l| l.settle).unwrap_or_default();
        tokio::time::sleep(settle).await;
        Ok(())
    }

    /// Waits until every container of a started target that has a health
    /// check reports healthy (for at most the health timeout).
    pub(super) async fn wait_healthy(&self, target: &Target) -> Result<(), String> {
        if target.target_type.is_swarm() {
            return Ok(());
        }
        let Some(host) = self.fleet.get(&target.host) else { return Ok(()) };
        let members = self.fleet.members(target).unwrap_or_default();
        let on = On { host: &host, health_timeout: self.health_timeout };
        let waited = join_all(members.iter().map(|c| on.wait_healthy(c))).await;
        match members.iter().zip(waited).find(|(_, w)| w.is_err()) {
            Some((c, Err(e))) => Err(format!("{}: {e}", c.name)),
            _ => Ok(()),
        }
    }
}

fn step_failed(target: &Target, action: Action, error: String) -> ActionResult {
    ActionResult::of(
        target,
        action,
        vec![ContainerResult { container: target.target_id.clone(), ok: false, error: Some(error) }],
    )
}
