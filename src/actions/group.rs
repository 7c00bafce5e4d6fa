//! Several targets at once: a bulk action, or a host group's stacks. Stacks
//! go in their `docknap.depends_on` order (see [`super::order`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::join_all;

use super::order::{StackLabels, levels};
use super::{ActionError, Actions, Trigger};
use crate::model::{Action, ActionResult, ContainerResult, Target, TargetType};

/// Targets acted on at the same time (per dependency level).
const PARALLEL: usize = 4;

/// One of several targets acted on together, and its containers to leave out.
pub struct Together {
    pub target: Target,
    pub leave_out: Vec<String>,
}

impl Together {
    /// `target`, leaving out its `docknap.exclude=true` containers.
    pub fn excluding_labelled(actions: &Actions, target: Target) -> Together {
        let members = actions.fleet.members(&target).unwrap_or_default();
        let leave_out = members.into_iter().filter(|c| c.is_excluded()).map(|c| c.name).collect();
        Together { target, leave_out }
    }
}

type Outcome = Result<ActionResult, ActionError>;

impl Actions {
    /// Every compose stack of the group's hosts, each audited as its own
    /// action (so each host's audit shows it); `docknap.exclude=true`
    /// containers are left out. The result names each container `host/container`.
    pub(super) async fn run_group(
        self: &Arc<Self>,
        target: &Target,
        action: Action,
        trigger: &Trigger,
    ) -> Result<ActionResult, ActionError> {
        let stacks = self.fleet.group_stacks(&target.target_id);
        if stacks.is_empty() {
            return Err(ActionError::NotFound(target.clone()));
        }
        let items: Vec<Together> = stacks.into_iter().map(|s| Together::excluding_labelled(self, s)).collect();
        let names: Vec<Target> = items.iter().map(|t| t.target.clone()).collect();
        let mut results = Vec::new();
        for (stack, outcome) in names.into_iter().zip(self.run_together(items, action, trigger).await) {
            match outcome {
                Ok(r) => results.extend(
                    r.results
                        .into_iter()
                        .map(|c| ContainerResult { container: format!("{}/{}", stack.host, c.container), ..c }),
                ),
                Err(e) => results.push(ContainerResult {
                    container: format!("{}/{}", stack.host, stack.target_id),
                    ok: false,
                    error: Some(e.to_string()),
                }),
            }
        }
        Ok(ActionResult::of(target, action, results))
    }

    /// Several targets, each audited as its own action; results in the order
    /// given. Stacks of one host go by `docknap.depends_on`: a start waits
    /// until the stacks it depends on are running, healthy and settled (and
    /// is not made when one of them failed); stops and pauses go in reverse
    /// (a stack whose dependent failed to stop is left running). Stacks on a
    /// dependency cycle are left alone with the cycle as their error. Other
    /// targets go side by side.
    pub async fn run_together(
        self: &Arc<Self>,
        items: Vec<Together>,
        action: Action,
        trigger: &Trigger,
    ) -> Vec<Outcome> {
        let mut by_host: BTreeMap<String, Vec<(usize, Together)>> = BTreeMap::new();
        let mut others = Vec::new();
        for (i, t) in items.into_iter().enumerate() {
            if t.target.target_type == TargetType::Stack {
                by_host.entry(t.target.host.clone()).or_default().push((i, t));
            } else {
                others.push((i, t));
            }
        }
        let others = futures_util::stream::iter(others)
            .map(|(i, t)| async move { vec![(i, self.run_leaving_out(&t.target, action, trigger, t.leave_out).await)] })
            .buffer_unordered(PARALLEL)
            .collect::<Vec<_>>();
        let stacks = join_all(by_host.into_values().map(|stacks| self.run_stacks_in_order(stacks, action, trigger)));
        let (others, stacks) = tokio::join!(others, stacks);
        let mut all: Vec<(usize, Outcome)> = others.into_iter().chain(stacks).flatten().collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, o)| o).collect()
    }

    /// One host's stacks, level by level of their `docknap.depends_on`.
    async fn run_stacks_in_order(
        self: &Arc<Self>,
        stacks: Vec<(usize, Together)>,
        action: Action,
        trigger: &Trigger,
    ) -> Vec<(usize, Outcome)> {
        let forward = !matches!(action, Action::Stop | Action::Pause);
        let mut out: Vec<(usize, Outcome)> = Vec::new();
        let mut labels: BTreeMap<String, StackLabels> = BTreeMap::new();
        let mut items: BTreeMap<String, (usize, Together)> = BTreeMap::new();
        for (i, t) in stacks {
            let members = self.fleet.members(&t.target).unwrap_or_default();
            match StackLabels::of(&t.target.target_id, &members) {
                Ok(l) => {
                    labels.insert(t.target.target_id.clone(), l);
                    items.insert(t.target.target_id.clone(), (i, t));
                }
                Err(e) => out.push((i, Err(ActionError::InvalidTarget(e)))),
            }
        }
        let (mut order, cycles) = levels(&labels);
        for (name, why) in cycles {
            let (i, _) = items.remove(&name).expect("a stack of the set");
            out.push((i, Err(ActionError::InvalidTarget(why))));
        }
        if !forward {
            order.reverse();
        }
        // Stack → why it holds back the stacks after it.
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for (n, level) in order.iter().enumerate() {
            let held = |name: &String| -> Option<String> {
                let l = &labels[name];
                let blocker = if forward {
                    l.depends_on.iter().find(|d| failed.contains_key(*d)).cloned()
                } else {
                    labels
                        .iter()
                        .find(|(other, ol)| ol.depends_on.contains(name) && failed.contains_key(*other))
                        .map(|(o, _)| o.clone())
                };
                blocker.map(|b| match forward {
                    true => format!(
                        "not started: stack '{b}', which it depends on ({}), {}",
                        super::order::LABEL_STACK_DEPENDS_ON,
                        failed[&b]
                    ),
                    false => format!("left running: stack '{b}', which depends on it, failed to {action}"),
                })
            };
            let verdicts: Vec<(&String, Option<String>)> = level.iter().map(|s| (s, held(s))).collect();
            let mut ready = Vec::new();
            for (name, why) in verdicts {
                match why {
                    Some(why) => {
                        failed.insert(name.clone(), "was not started".into());
                        out.push((items[name].0, Err(ActionError::InvalidTarget(why))));
                    }
                    None => ready.push(name.clone()),
                }
            }
            let items_ref = &items;
            let done = futures_util::stream::iter(ready)
                .map(|name: String| async move {
                    let (i, t) = &items_ref[&name];
                    let outcome = self.run_leaving_out(&t.target, action, trigger, t.leave_out.clone()).await;
                    (name, *i, outcome)
                })
                .buffer_unordered(PARALLEL)
                .collect::<Vec<_>>()
                .await;
            let is_last = n + 1 == order.len();
            let mut settle = std::time::Duration::ZERO;
            for (name, i, mut outcome) in done {
                let ok = outcome.as_ref().is_ok_and(|r| r.ok);
                if !ok {
                    failed.insert(name.clone(), "failed".into());
                } else if forward && !is_last && labels.values().any(|l| l.depends_on.contains(&name)) {
                    // Its dependents start once it is healthy, and settled.
                    if let Err(e) = self.wait_healthy(&items[&name].1.target).await {
                        failed.insert(name.clone(), format!("did not become healthy ({e})"));
                        if let Ok(r) = outcome.as_mut() {
                            r.ok = false;
                            r.results.push(ContainerResult { container: name.clone(), ok: false, error: Some(e) });
                        }
                    } else {
                        settle = settle.max(labels[&name].settle);
                    }
                }
                out.push((i, outcome));
            }
            if !settle.is_zero() {
                tracing::info!(
                    settle_ms = settle.as_millis() as u64,
                    "waiting for the started stacks to settle before their dependents"
                );
                tokio::time::sleep(settle).await;
            }
        }
        out
    }
}
