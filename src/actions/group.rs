//! Host groups as targets: every compose stack of the group's hosts.

use std::sync::Arc;

use futures_util::StreamExt;

use super::{ActionError, Actions, Trigger};
use crate::model::{Action, ActionResult, ContainerResult, Target};

/// Stacks of a group acted on at once.
const GROUP_PARALLEL: usize = 4;

impl Actions {
    /// Every compose stack of the group's hosts, a few at a time, each in
    /// its own order and audited as its own action (so each host's audit
    /// shows it); `docknap.exclude=true` containers are left out. The result
    /// names each container `host/container`.
    pub(super) async fn run_group(self: &Arc<Self>, target: &Target, action: Action, trigger: &Trigger) -> Result<ActionResult, ActionError> {
        let stacks = self.fleet.group_stacks(&target.target_id);
        if stacks.is_empty() {
            return Err(ActionError::NotFound(target.clone()));
        }
        let outcomes: Vec<(Target, Result<ActionResult, ActionError>)> = futures_util::stream::iter(stacks)
            .map(|stack| async move {
                let members = self.fleet.members(&stack).unwrap_or_default();
                let leave_out = members.into_iter().filter(|c| c.is_excluded()).map(|c| c.name).collect();
                let outcome = self.run_leaving_out(&stack, action, trigger, leave_out).await;
                (stack, outcome)
            })
            .buffered(GROUP_PARALLEL)
            .collect()
            .await;
        let mut results = Vec::new();
        for (stack, outcome) in outcomes {
            match outcome {
                Ok(r) => results.extend(r.results.into_iter().map(|c| ContainerResult { container: format!("{}/{}", stack.host, c.container), ..c })),
                Err(e) => results.push(ContainerResult { container: format!("{}/{}", stack.host, stack.target_id), ok: false, error: Some(e.to_string()) }),
            }
        }
        Ok(ActionResult::of(target, action, results))
    }
}
